"""
In-process interoperability with OpenSSL (the one bundled with
C{cryptography}, driven through pyOpenSSL memory BIOs), cookie exchange on
in both roles:

  - our client against an OpenSSL server running C{DTLSv1_listen};
  - an OpenSSL client against our server, where the first datagrams go
    through L{examine_first_datagram} and a server L{DTLSConnection} is
    created only for the cookie-bearing ClientHello (as the port does).

Every certificate suite of L{CIPHER_SUITES} runs in OpenSSL's minimum-MTU
mode (OpenSSL fragments Certificate, ServerKeyExchange and Finished; the
tests check that it really did) and with a set MTU. Our clock is explicit
(C{now} values we advance); OpenSSL's DTLS timer runs on the real clock,
so the loss tests sleep until C{DTLSv1_get_timeout} says it expired.
"""

from __future__ import annotations

import time
from typing import Callable

import pytest
from OpenSSL import SSL

from tests.certs import make_pki
from tests.peers.pyopenssl_peer import OpenSSLMemoryPeer, split_records
from twisted_dtls.core.configuration import ClientAuthentication, DTLSConfiguration
from twisted_dtls.core.connection import DTLSConnection
from twisted_dtls.core.constants import (
    AlertDescription,
    ContentType,
    HandshakeType,
    NamedGroup,
    SignatureScheme,
)
from twisted_dtls.core.cookie import CookieContext
from twisted_dtls.core.errors import ProtocolMisuseError
from twisted_dtls.core.events import (
    CloseReason,
    ConnectionClosed,
    DataReceived,
    HandshakeCompleted,
)
from twisted_dtls.core.listener import Verdict, examine_first_datagram
from twisted_dtls.core.records import pull_records
from twisted_dtls.core.suites import CIPHER_SUITES, KeyExchange

PKI = make_pki()
PEER_ADDRESS = ("127.0.0.1", 40001)

CERTIFICATE_SUITES = [s for s, i in CIPHER_SUITES.items() if i.key_exchange.uses_certificates]
MTUS = {"min_mtu": None, "mtu1400": 1400}


def _credential_for(suite):
    if CIPHER_SUITES[suite].key_exchange is KeyExchange.ECDHE_RSA:
        return PKI.server_rsa
    return PKI.server_ec


# -- the harness ------------------------------------------------------------------------


class Link:
    """
    One of our L{DTLSConnection}s and one L{OpenSSLMemoryPeer}, joined by
    hand.

    @ivar from_openssl: every blob OpenSSL produced (one C{bio_read()} each;
        a run of whole records), in order, including dropped ones.
    @ivar from_ours: every datagram our side produced (including the
        stateless HelloVerifyRequests when we are the server).
    @ivar openssl_filter: C{f(index, blob) -> list[bytes]}: the datagrams
        actually delivered to our side for OpenSSL's C{index}-th blob
        (default: the blob itself, as one datagram).
    @ivar ours_filter: C{f(index, datagram) -> bool}: whether our
        C{index}-th datagram reaches OpenSSL.
    """

    def __init__(self, ours: DTLSConfiguration, peer: OpenSSLMemoryPeer, ours_is_client: bool):
        self.now = 0.0
        self.peer = peer
        self.ours_is_client = ours_is_client
        self.configuration = ours
        self.cookies = CookieContext(secret=b"c" * 32)
        self.conn: DTLSConnection | None = DTLSConnection(ours, is_client=True) if ours_is_client else None
        self.events: list = []
        self.received: list[bytes] = []
        self.from_openssl: list[bytes] = []
        self.from_ours: list[bytes] = []
        self.hello_verify_requests: list[bytes] = []
        self.openssl_filter: Callable[[int, bytes], list[bytes]] = lambda i, blob: [blob]
        self.ours_filter: Callable[[int, bytes], bool] = lambda i, d: True
        self.openssl_error: SSL.Error | None = None
        self.timer_fires = {"ours": 0, "openssl": 0}

    # events

    @property
    def completed(self) -> HandshakeCompleted | None:
        return next((e for e in self.events if isinstance(e, HandshakeCompleted)), None)

    @property
    def closed(self) -> ConnectionClosed | None:
        return next((e for e in self.events if isinstance(e, ConnectionClosed)), None)

    # moving bytes

    def _send_to_openssl(self, datagram: bytes) -> None:
        index = len(self.from_ours)
        self.from_ours.append(datagram)
        if not self.ours_filter(index, datagram):
            return
        try:
            self.peer.receive(datagram)
        except SSL.Error as e:
            self.openssl_error = e

    def _deliver_to_ours(self, datagram: bytes) -> None:
        if self.conn is None:
            verdict = examine_first_datagram(datagram, PEER_ADDRESS, self.cookies, self.now)
            if verdict.verdict is Verdict.HELLO_VERIFY:
                self.hello_verify_requests.append(verdict.reply)
                self._send_to_openssl(verdict.reply)
                return
            if verdict.verdict is Verdict.DROP:
                return
            self.conn = DTLSConnection(self.configuration, is_client=False)
        self.conn.receive_datagram(datagram, self.now)

    def _collect_ours(self) -> bool:
        if self.conn is None:
            return False
        out = self.conn.datagrams_to_send(self.now)
        while (event := self.conn.next_event()) is not None:
            self.events.append(event)
            if isinstance(event, DataReceived):
                self.received.append(event.data)
        for datagram in out:
            self._send_to_openssl(datagram)
        return bool(out)

    def _collect_openssl(self) -> bool:
        blobs = self.peer.datagrams()
        for blob in blobs:
            index = len(self.from_openssl)
            self.from_openssl.append(blob)
            for datagram in self.openssl_filter(index, blob):
                self._deliver_to_ours(datagram)
        return bool(blobs)

    def pump(self, rounds: int = 50) -> None:
        """Move datagrams both ways until both sides are quiet."""
        for _ in range(rounds):
            moved = self._collect_ours()
            moved = self._collect_openssl() or moved
            moved = self._collect_ours() or moved
            if not moved:
                return

    def start(self) -> None:
        if self.conn is not None:
            self.conn.connect(self.now)
        self.pump()

    def advance(self) -> bool:
        """
        Fire the earlier of the two retransmission timers (ours on the
        explicit clock, OpenSSL's on the real one, sleeping for it).

        @return: C{False} when neither side has a timer running.
        """
        ours = self.conn.get_timer() if self.conn is not None else None
        theirs = self.peer.get_timeout()
        ours_in = None if ours is None else max(0.0, ours - self.now)
        if ours_in is None and theirs is None:
            return False
        if theirs is None or (ours_in is not None and ours_in <= theirs):
            self.now = max(self.now, ours)
            self.timer_fires["ours"] += 1
            self.conn.handle_timer(self.now)
        else:
            time.sleep(theirs + 0.02)
            self.now += theirs
            self.timer_fires["openssl"] += 1
            try:
                self.peer.handle_timeout()
            except SSL.Error as e:
                self.openssl_error = e
        self.pump()
        return True

    def run(self, until: Callable[[], bool], max_timer_fires: int = 6) -> None:
        self.pump()
        for _ in range(max_timer_fires):
            if until() or self.closed is not None or self.openssl_error is not None:
                return
            if not self.advance():
                return

    def handshake(self, **kw) -> None:
        self.start()
        self.run(lambda: self.completed is not None and self.peer.handshake_done, **kw)

    def assert_established(self) -> None:
        assert self.openssl_error is None, self.openssl_error
        assert self.closed is None, self.closed
        assert self.completed is not None
        assert self.peer.handshake_done

    def exchange_data(self) -> None:
        self.conn.send(b"from twisted_dtls")
        self.pump()
        assert self.peer.recv() == [b"from twisted_dtls"]
        self.peer.send(b"from OpenSSL")
        self.peer.send(b"second OpenSSL record")
        self.pump()
        assert self.received == [b"from OpenSSL", b"second OpenSSL record"]
        self.received.clear()
        big = bytes(range(256)) * 4
        self.conn.send(big)
        self.pump()
        assert self.peer.recv() == [big]


def our_client(**kw) -> DTLSConfiguration:
    kw.setdefault("trust_roots", [PKI.ca_cert])
    kw.setdefault("server_name", "localhost")
    return DTLSConfiguration(**kw)


def our_server(credential=PKI.server_ec, **kw) -> DTLSConfiguration:
    kw.setdefault("cipher_suites", tuple(CERTIFICATE_SUITES))
    return DTLSConfiguration(certificate_chain=credential.chain, private_key=credential.key, **kw)


def openssl_server(credential=PKI.server_ec, cipher: str | None = None, mtu: int | None = 1400, **kw) -> OpenSSLMemoryPeer:
    return OpenSSLMemoryPeer(
        "server",
        cipher=cipher,
        certificate=credential.cert,
        private_key=credential.key,
        chain=credential.chain[1:],
        mtu=mtu,
        cookie_exchange=True,
        **kw,
    )


def openssl_client(cipher: str | None = None, mtu: int | None = 1400, **kw) -> OpenSSLMemoryPeer:
    kw.setdefault("ca", PKI.ca_cert)
    kw.setdefault("server_name", "localhost")
    return OpenSSLMemoryPeer("client", cipher=cipher, mtu=mtu, **kw)


def ours_vs_openssl_server(ours: DTLSConfiguration, peer: OpenSSLMemoryPeer) -> Link:
    return Link(ours, peer, ours_is_client=True)


def openssl_client_vs_ours(ours: DTLSConfiguration, peer: OpenSSLMemoryPeer) -> Link:
    return Link(ours, peer, ours_is_client=False)


# -- parsing OpenSSL's output -----------------------------------------------------------


def plaintext_handshake_fragments(blobs: list[bytes]) -> list[tuple[int, int, int, int]]:
    """(msg_type, length, fragment_offset, fragment_length) of every epoch-0 handshake fragment."""
    out = []
    for blob in blobs:
        records, reason = pull_records(blob)
        assert reason is None
        for record in records:
            if record.content_type != ContentType.handshake or record.epoch != 0:
                continue
            body = record.fragment
            while body:
                length = int.from_bytes(body[1:4], "big")
                offset = int.from_bytes(body[6:9], "big")
                fragment_length = int.from_bytes(body[9:12], "big")
                out.append((body[0], length, offset, fragment_length))
                body = body[12 + fragment_length :]
    return out


def fragmented_types(blobs: list[bytes]) -> set[int]:
    return {t for t, length, off, flen in plaintext_handshake_fragments(blobs) if flen < length}


def encrypted_handshake_records(blobs: list[bytes]) -> int:
    """How many epoch-1 handshake records (Finished and its fragments) the blobs hold."""
    return sum(
        1
        for blob in blobs
        for record in pull_records(blob)[0]
        if record.content_type == ContentType.handshake and record.epoch == 1
    )


def reassembled_plaintext_message(blobs: list[bytes], msg_type: int) -> bytes:
    """The body of the first epoch-0 handshake message of C{msg_type}, put together from its fragments."""
    body: bytearray | None = None
    for blob in blobs:
        for record in pull_records(blob)[0]:
            if record.content_type != ContentType.handshake or record.epoch != 0:
                continue
            data = record.fragment
            while data:
                length = int.from_bytes(data[1:4], "big")
                offset = int.from_bytes(data[6:9], "big")
                fragment_length = int.from_bytes(data[9:12], "big")
                if data[0] == msg_type:
                    if body is None:
                        body = bytearray(length)
                    body[offset : offset + fragment_length] = data[12 : 12 + fragment_length]
                data = data[12 + fragment_length :]
    assert body is not None, f"no handshake message of type {msg_type}"
    return bytes(body)


def server_key_exchange_group_and_scheme(blobs: list[bytes]) -> tuple[int, int]:
    """
    RFC 8422 §5.4: ServerKeyExchange = curve_type(1)=named_curve(3),
    named_curve(2), public(1-byte length), then the signature's
    SignatureAndHashAlgorithm (2) (RFC 5246 §7.4.1.4.1).
    """
    ske = reassembled_plaintext_message(blobs, HandshakeType.server_key_exchange)
    assert ske[0] == 3
    group = int.from_bytes(ske[1:3], "big")
    point_length = ske[3]
    scheme = int.from_bytes(ske[4 + point_length : 6 + point_length], "big")
    return group, scheme


# -- every certificate suite, both roles, two MTU modes ---------------------------------


@pytest.mark.parametrize("mtu", sorted(MTUS))
@pytest.mark.parametrize("suite", CERTIFICATE_SUITES, ids=lambda s: s.name)
def test_our_client_against_openssl_server(suite, mtu):
    info = CIPHER_SUITES[suite]
    credential = _credential_for(suite)
    link = ours_vs_openssl_server(
        our_client(cipher_suites=(suite,)),
        openssl_server(credential, cipher=info.openssl_name, mtu=MTUS[mtu]),
    )
    link.handshake()
    link.assert_established()
    # The cookie exchange took place: OpenSSL's first answer is a
    # HelloVerifyRequest, and our client sent two ClientHellos.
    first = plaintext_handshake_fragments(link.from_openssl[:1])
    assert [f[0] for f in first] == [HandshakeType.hello_verify_request]
    hellos = [f for f in plaintext_handshake_fragments(link.from_ours) if f[0] == HandshakeType.client_hello]
    assert len(hellos) == 2
    assert link.peer.cipher_name() == info.openssl_name
    assert link.completed.cipher_suite == suite
    assert link.completed.peer_certificates[0] == credential.cert
    if MTUS[mtu] is None:
        fragmented = fragmented_types(link.from_openssl)
        assert HandshakeType.certificate in fragmented
        assert HandshakeType.server_key_exchange in fragmented
    else:
        assert fragmented_types(link.from_openssl) == set()
        assert encrypted_handshake_records(link.from_openssl) == 1
    link.exchange_data()


@pytest.mark.parametrize("mtu", sorted(MTUS))
@pytest.mark.parametrize("suite", CERTIFICATE_SUITES, ids=lambda s: s.name)
def test_openssl_client_against_our_server(suite, mtu):
    """
    In minimum-MTU mode the OpenSSL client also presents a certificate
    (our server requires one), so that its Certificate arrives fragmented:
    without one, nothing in a client's flights is large enough to be cut.
    """
    info = CIPHER_SUITES[suite]
    credential = _credential_for(suite)
    fragmenting = MTUS[mtu] is None
    if fragmenting:
        ours = our_server(
            credential,
            cipher_suites=(suite,),
            client_authentication=ClientAuthentication.REQUIRED,
            trust_roots=[PKI.ca_cert],
        )
        peer = openssl_client(
            cipher=info.openssl_name, mtu=None, certificate=PKI.client_ec.cert, private_key=PKI.client_ec.key
        )
    else:
        ours = our_server(credential, cipher_suites=(suite,))
        peer = openssl_client(cipher=info.openssl_name, mtu=MTUS[mtu])
    link = openssl_client_vs_ours(ours, peer)
    link.handshake()
    link.assert_established()
    # Our stateless listener answered the first ClientHello.
    assert len(link.hello_verify_requests) == 1
    assert link.from_ours[0] == link.hello_verify_requests[0]
    assert link.peer.cipher_name() == info.openssl_name
    assert link.completed.cipher_suite == suite
    assert link.peer.peer_certificate() == credential.cert
    if fragmenting:
        assert link.completed.peer_certificates[0] == PKI.client_ec.cert
        assert HandshakeType.certificate in fragmented_types(link.from_openssl)
    else:
        assert link.completed.peer_certificates == ()
        assert fragmented_types(link.from_openssl) == set()
    link.exchange_data()


# -- groups, key types, signature schemes -----------------------------------------------

GROUPS = {
    NamedGroup.x25519: "X25519",
    NamedGroup.secp256r1: "prime256v1",
    NamedGroup.secp384r1: "secp384r1",
}


@pytest.mark.parametrize("group", list(GROUPS), ids=lambda g: g.name)
def test_group_with_openssl_server(group):
    # An RSA certificate: with an ECDSA one OpenSSL also requires the
    # certificate's curve among the client's supported_groups (RFC 8422
    # §5.1), so offering only x25519 would leave it no usable suite.
    link = ours_vs_openssl_server(our_client(groups=(group,)), openssl_server(PKI.server_rsa))
    link.handshake()
    link.assert_established()
    assert server_key_exchange_group_and_scheme(link.from_openssl)[0] == group
    assert link.peer.connection.get_group_name() in (GROUPS[group], group.name)
    link.exchange_data()


def test_ecdsa_certificate_curve_must_be_offered_to_openssl_server():
    """
    The other side of the comment above: our client offering only x25519
    gets no ECDSA P-256 handshake from OpenSSL; it fails cleanly with an
    alert, not an exception.
    """
    link = ours_vs_openssl_server(
        our_client(groups=(NamedGroup.x25519,), cipher_suites=(CERTIFICATE_SUITES[0],)), openssl_server()
    )
    assert CIPHER_SUITES[CERTIFICATE_SUITES[0]].key_exchange is KeyExchange.ECDHE_ECDSA
    link.handshake()
    assert link.openssl_error is not None
    link.pump()
    assert link.completed is None
    assert link.closed.reason is CloseReason.ALERT_RECEIVED
    assert link.closed.alert == AlertDescription.handshake_failure


@pytest.mark.parametrize("group", list(GROUPS), ids=lambda g: g.name)
def test_group_with_openssl_client(group):
    link = openssl_client_vs_ours(our_server(groups=(group,)), openssl_client())
    link.handshake()
    link.assert_established()
    assert server_key_exchange_group_and_scheme(link.from_ours)[0] == group
    assert link.peer.connection.get_group_name() in (GROUPS[group], group.name)
    link.exchange_data()


KEY_CREDENTIALS = {
    "ed25519": (PKI.server_ed25519, SignatureScheme.ed25519),
    "p384": (PKI.server_p384, SignatureScheme.ecdsa_secp384r1_sha384),
}

#: In TLS 1.2 an ECDSA scheme names only the hash (RFC 8422 §5.1.3, RFC 5246
#: §7.4.1.4.1), so OpenSSL may sign with a P-384 key under either.
ECDSA_SCHEMES = {SignatureScheme.ecdsa_secp256r1_sha256, SignatureScheme.ecdsa_secp384r1_sha384}


@pytest.mark.parametrize("mtu", sorted(MTUS))
def test_p384_certificate_with_openssl_server(mtu):
    # Ed25519 is covered with an OpenSSL client only: OpenSSL 4.0 does not
    # serve an Ed25519 certificate over DTLS 1.2 even to itself ("no shared
    # cipher"; the same contexts work over TLS 1.2).
    credential = PKI.server_p384
    link = ours_vs_openssl_server(our_client(), openssl_server(credential, mtu=MTUS[mtu]))
    link.handshake()
    link.assert_established()
    assert link.completed.peer_certificates[0] == credential.cert
    assert server_key_exchange_group_and_scheme(link.from_openssl)[1] in ECDSA_SCHEMES
    link.exchange_data()


def test_p384_certificate_signed_with_sha384_for_openssl_server():
    # Offering only ecdsa_secp384r1_sha384 pins OpenSSL to it.
    link = ours_vs_openssl_server(
        our_client(signature_schemes=(SignatureScheme.ecdsa_secp384r1_sha384,)), openssl_server(PKI.server_p384)
    )
    link.handshake()
    link.assert_established()
    assert server_key_exchange_group_and_scheme(link.from_openssl)[1] == SignatureScheme.ecdsa_secp384r1_sha384
    link.exchange_data()


@pytest.mark.parametrize("mtu", sorted(MTUS))
@pytest.mark.parametrize("key", sorted(KEY_CREDENTIALS))
def test_certificate_key_with_openssl_client(key, mtu):
    credential, scheme = KEY_CREDENTIALS[key]
    link = openssl_client_vs_ours(our_server(credential), openssl_client(mtu=MTUS[mtu]))
    link.handshake()
    link.assert_established()
    assert link.peer.peer_certificate() == credential.cert
    assert server_key_exchange_group_and_scheme(link.from_ours)[1] == scheme
    link.exchange_data()


RSA_SCHEMES = [
    SignatureScheme.rsa_pss_rsae_sha256,
    SignatureScheme.rsa_pss_rsae_sha384,
    SignatureScheme.rsa_pkcs1_sha256,
    SignatureScheme.rsa_pkcs1_sha384,
]


@pytest.mark.parametrize("scheme", RSA_SCHEMES, ids=lambda s: s.name)
def test_rsa_signature_scheme_from_openssl_server(scheme):
    # Our client offers only this scheme, so OpenSSL must sign with it.
    link = ours_vs_openssl_server(
        our_client(signature_schemes=(scheme,), cipher_suites=(CERTIFICATE_SUITES[3],)),
        openssl_server(PKI.server_rsa),
    )
    assert CIPHER_SUITES[CERTIFICATE_SUITES[3]].key_exchange is KeyExchange.ECDHE_RSA
    link.handshake()
    link.assert_established()
    assert server_key_exchange_group_and_scheme(link.from_openssl)[1] == scheme
    link.exchange_data()


@pytest.mark.parametrize("scheme", RSA_SCHEMES, ids=lambda s: s.name)
def test_our_server_signs_with_configured_rsa_scheme_for_openssl_client(scheme):
    """
    Our server is limited to this scheme; OpenSSL offers all of them and
    must verify what we sign. (Regression: the server used to ignore its
    configured signature_schemes and always sign rsa_pss_rsae_sha256.)
    """
    link = openssl_client_vs_ours(our_server(PKI.server_rsa, signature_schemes=(scheme,)), openssl_client())
    link.handshake()
    link.assert_established()
    assert server_key_exchange_group_and_scheme(link.from_ours)[1] == scheme
    link.exchange_data()


# -- client certificates ----------------------------------------------------------------


@pytest.mark.parametrize("mtu", sorted(MTUS))
def test_our_client_certificate_to_openssl_server(mtu):
    link = ours_vs_openssl_server(
        our_client(certificate_chain=PKI.client_ec.chain, private_key=PKI.client_ec.key),
        openssl_server(ca=PKI.ca_cert, verify_peer=True, mtu=MTUS[mtu]),
    )
    link.handshake()
    link.assert_established()
    assert link.peer.peer_certificate() == PKI.client_ec.cert
    assert HandshakeType.certificate_request in {f[0] for f in plaintext_handshake_fragments(link.from_openssl)}
    link.exchange_data()


def test_openssl_server_refuses_our_client_without_certificate():
    link = ours_vs_openssl_server(our_client(), openssl_server(ca=PKI.ca_cert, verify_peer=True))
    link.handshake()
    assert link.openssl_error is not None
    link.pump()
    assert link.closed is not None
    assert link.closed.reason is CloseReason.ALERT_RECEIVED
    assert link.completed is None


@pytest.mark.parametrize("mtu", sorted(MTUS))
def test_openssl_client_certificate_to_our_server(mtu):
    link = openssl_client_vs_ours(
        our_server(client_authentication=ClientAuthentication.REQUIRED, trust_roots=[PKI.ca_cert]),
        openssl_client(certificate=PKI.client_ec.cert, private_key=PKI.client_ec.key, mtu=MTUS[mtu]),
    )
    link.handshake()
    link.assert_established()
    assert link.completed.peer_certificates[0] == PKI.client_ec.cert
    if MTUS[mtu] is None:
        assert HandshakeType.certificate in fragmented_types(link.from_openssl)
    link.exchange_data()


def test_our_server_refuses_openssl_client_without_certificate():
    link = openssl_client_vs_ours(
        our_server(client_authentication=ClientAuthentication.REQUIRED, trust_roots=[PKI.ca_cert]),
        openssl_client(),
    )
    link.handshake()
    assert link.closed.reason is CloseReason.ALERT_SENT
    assert link.closed.alert == AlertDescription.handshake_failure
    assert link.openssl_error is not None


# -- close_notify -----------------------------------------------------------------------


@pytest.mark.parametrize("ours_is_client", [True, False], ids=["our_client", "our_server"])
def test_we_close(ours_is_client):
    link = ours_vs_openssl_server(our_client(), openssl_server()) if ours_is_client else openssl_client_vs_ours(our_server(), openssl_client())
    link.handshake()
    link.assert_established()
    link.conn.close()
    link.pump()
    assert link.peer.closed
    assert link.closed.reason is CloseReason.CLOSE_NOTIFY
    with pytest.raises(ProtocolMisuseError):
        link.conn.send(b"after close")


@pytest.mark.parametrize("ours_is_client", [True, False], ids=["our_client", "our_server"])
def test_openssl_closes(ours_is_client):
    link = ours_vs_openssl_server(our_client(), openssl_server()) if ours_is_client else openssl_client_vs_ours(our_server(), openssl_client())
    link.handshake()
    link.assert_established()
    link.peer.send(b"last words")
    link.peer.close()
    link.pump()
    assert link.received == [b"last words"]
    assert link.closed.reason is CloseReason.CLOSE_NOTIFY
    assert link.closed.clean
    # We answered with our own close_notify, which OpenSSL saw.
    assert link.peer.closed


# -- exporter ---------------------------------------------------------------------------


@pytest.mark.parametrize("suite", [CERTIFICATE_SUITES[0], CERTIFICATE_SUITES[1]], ids=lambda s: s.name)
@pytest.mark.parametrize("ours_is_client", [True, False], ids=["our_client", "our_server"])
def test_exporter_matches_openssl(ours_is_client, suite):
    if ours_is_client:
        link = ours_vs_openssl_server(our_client(cipher_suites=(suite,)), openssl_server())
    else:
        link = openssl_client_vs_ours(our_server(cipher_suites=(suite,)), openssl_client())
    link.handshake()
    link.assert_established()
    assert link.completed.cipher_suite == suite
    for label, context, length in [
        (b"EXTRACTOR-dtls_srtp", None, 60),
        (b"EXPORTER-test", b"", 32),
        (b"EXPORTER-test", b"some context", 32),
        (b"EXPORTER-test", None, 100),
    ]:
        ours = link.conn.export_keying_material(label, context, length)
        theirs = link.peer.export_keying_material(label, length, context)
        assert len(ours) == length
        assert ours == theirs, (label, context)
    # no context and an empty context are different inputs (RFC 5705 §4)
    assert link.conn.export_keying_material(b"EXPORTER-test", None, 32) != link.conn.export_keying_material(
        b"EXPORTER-test", b"", 32
    )


# -- loss and retransmission ------------------------------------------------------------


def _types_in(blob: bytes) -> set[int]:
    return {f[0] for f in plaintext_handshake_fragments([blob])}


def _has_ccs(blob: bytes) -> bool:
    return any(r.content_type == ContentType.change_cipher_spec for r in pull_records(blob)[0])


def test_openssl_server_certificate_fragment_lost():
    """
    OpenSSL (minimum MTU) sends its Certificate in fragments; the first one
    is lost once. Whoever's timer fires first, the flight is eventually
    retransmitted and the handshake completes.
    """
    link = ours_vs_openssl_server(our_client(), openssl_server(mtu=None))
    dropped: list[bytes] = []

    def only_once(index: int, blob: bytes) -> list[bytes]:
        records = split_records(blob)
        out = []
        for record in records:
            frags = plaintext_handshake_fragments([record])
            if not dropped and frags and frags[0][0] == HandshakeType.certificate and frags[0][2] == 0:
                dropped.append(record)
                continue
            out.append(record)
        return out

    link.openssl_filter = only_once
    link.handshake()
    assert dropped
    link.assert_established()
    assert sum(link.timer_fires.values()) >= 1
    link.exchange_data()


def test_openssl_server_final_flight_lost():
    """
    OpenSSL's last flight (NewSessionTicket, CCS, Finished) is lost: our
    client's timer (explicit clock) retransmits its Finished flight, and
    OpenSSL answers the retransmission with its own.
    """
    link = ours_vs_openssl_server(our_client(), openssl_server())
    dropped: list[bytes] = []

    def drop_final(index: int, blob: bytes) -> list[bytes]:
        if _has_ccs(blob) and not dropped:
            dropped.append(blob)
            return []
        return [blob]

    link.openssl_filter = drop_final
    link.handshake()
    assert dropped
    link.assert_established()
    assert link.timer_fires["ours"] >= 1
    assert link.now >= 1.0
    link.exchange_data()


def test_our_client_finished_flight_lost():
    link = ours_vs_openssl_server(our_client(), openssl_server())
    dropped: list[int] = []

    def drop_ours(index: int, datagram: bytes) -> bool:
        if _has_ccs(datagram) and not dropped:
            dropped.append(index)
            return False
        return True

    link.ours_filter = drop_ours
    link.handshake()
    assert dropped
    link.assert_established()
    assert sum(link.timer_fires.values()) >= 1
    link.exchange_data()


def test_our_server_flight_lost_openssl_client_retransmits():
    """
    Our server's first flight (ServerHello .. ServerHelloDone) is lost:
    OpenSSL's timer (real clock) retransmits its ClientHello, or ours
    retransmits the flight; either way the handshake completes.
    """
    link = openssl_client_vs_ours(our_server(), openssl_client())
    dropped: list[int] = []

    def drop_ours(index: int, datagram: bytes) -> bool:
        if HandshakeType.server_hello in _types_in(datagram) and not dropped:
            dropped.append(index)
            return False
        return True

    link.ours_filter = drop_ours
    link.handshake()
    assert dropped
    link.assert_established()
    assert sum(link.timer_fires.values()) >= 1
    link.exchange_data()


def test_openssl_client_finished_flight_lost():
    """
    OpenSSL's Finished flight never reaches our server the first time; our
    server (explicit clock) retransmits its flight, OpenSSL answers by
    retransmitting, and the handshake completes.
    """
    link = openssl_client_vs_ours(our_server(), openssl_client(mtu=None))
    dropped: list[int] = []

    def drop_final(index: int, blob: bytes) -> list[bytes]:
        if _has_ccs(blob) and not dropped:
            dropped.append(index)
            return []
        return [blob]

    link.openssl_filter = drop_final
    link.handshake()
    assert dropped
    link.assert_established()
    assert sum(link.timer_fires.values()) >= 1
    link.exchange_data()


def test_our_server_final_flight_lost():
    """
    Our server's CCS + Finished is lost; OpenSSL's timer retransmits its
    Finished flight and our server, already established, answers it again
    (RFC 6347 §4.2.4).
    """
    link = openssl_client_vs_ours(our_server(), openssl_client())
    dropped: list[int] = []

    def drop_final(index: int, datagram: bytes) -> bool:
        if _has_ccs(datagram) and not dropped:
            dropped.append(index)
            return False
        return True

    link.ours_filter = drop_final
    link.handshake()
    assert dropped
    link.assert_established()
    assert link.timer_fires["openssl"] >= 1
    link.exchange_data()
