"""
An in-process OpenSSL DTLS 1.2 peer over memory BIOs (pyOpenSSL).

pyOpenSSL uses the OpenSSL bundled with the C{cryptography} wheel, a newer
OpenSSL than the C{openssl} command line, and needs no sockets: bytes go
in with L{OpenSSLMemoryPeer.receive} and come out of
L{OpenSSLMemoryPeer.datagrams}, so a test decides about every loss,
duplication or reordering.

Datagram boundaries: a memory BIO is a byte stream. Everything OpenSSL
wrote since the last call (a whole flight, several records) comes out of one
C{bio_read()}, so L{OpenSSLMemoryPeer.datagrams} returns one blob per
C{bio_read()}: the faithful thing, since OpenSSL's own datagram boundaries
are lost. A blob is a sequence of whole DTLS records, which a DTLS stack
must accept as one datagram; L{split_records} cuts it into single records
for a test that wants to drop or reorder them one by one.

MTU: with C{mtu=None} OpenSSL cannot query a memory BIO for an MTU and uses
its minimum: Certificate, ServerKeyExchange and even Finished come in
several fragments (good for reassembly tests). An C{int} sets
C{OP_NO_QUERY_MTU} and C{set_ciphertext_mtu(mtu)}.

CCM8 suites need C{:@SECLEVEL=0} in the cipher string (added here when the
cipher names CCM8). pyOpenSSL has no PSK API.
"""

from __future__ import annotations

import hmac
import os
import struct
from typing import Iterable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from OpenSSL import SSL, crypto

__all__ = ["OpenSSLMemoryPeer", "split_records", "DTLS1_2_VERSION"]

DTLS1_2_VERSION = 0xFEFD
_RECORD_HEADER = 13


def split_records(blob: bytes) -> list[bytes]:
    """
    Cut a run of DTLS records into single records (RFC 6347 §4.1: 13-byte
    header whose last two bytes are the fragment length).

    A truncated last record is returned as it is.
    """
    records = []
    offset = 0
    while offset < len(blob):
        if len(blob) - offset < _RECORD_HEADER:
            records.append(blob[offset:])
            break
        (length,) = struct.unpack_from("!H", blob, offset + 11)
        end = offset + _RECORD_HEADER + length
        records.append(blob[offset:end])
        offset = end
    return records


class OpenSSLMemoryPeer:
    """
    One DTLS 1.2 endpoint of OpenSSL, driven by hand.

    A client queues its ClientHello when constructed. A server with cookie
    exchange answers ClientHellos without a valid cookie with a
    HelloVerifyRequest (C{DTLSv1_listen}) and starts the handshake with the
    first one that has it.

    @ivar connection: the L{OpenSSL.SSL.Connection} (for anything not
        wrapped here).
    @ivar closed: a close_notify arrived.
    """

    def __init__(
        self,
        role: str = "server",
        *,
        cipher: str | None = None,
        certificate: x509.Certificate | None = None,
        private_key: CertificateIssuerPrivateKeyTypes | None = None,
        chain: Sequence[x509.Certificate] = (),
        ca: x509.Certificate | Iterable[x509.Certificate] | None = None,
        verify_peer: bool | None = None,
        server_name: str | None = None,
        mtu: int | None = None,
        cookie_exchange: bool = True,
        alpn: Sequence[bytes] | None = None,
        srtp: bytes | None = None,
        options: int = 0,
    ) -> None:
        """
        @param role: C{"server"} or C{"client"}.
        @param cipher: an OpenSSL cipher string (e.g.
            C{"ECDHE-ECDSA-AES128-GCM-SHA256"}); default OpenSSL's.
        @param certificate: own certificate (with C{private_key}), plus
            intermediate C{chain}.
        @param ca: trust roots for verifying the peer.
        @param verify_peer: client: verify the server (default: when C{ca}
            is given); server: require a client certificate (default: no).
        @param server_name: client: SNI to send.
        @param mtu: C{None}: OpenSSL's minimum MTU (fragmenting); an int: the
            ciphertext MTU (UDP payload size).
        @param cookie_exchange: server: HelloVerifyRequest first.
        @param alpn: protocols to offer (client) or accept, first match in
            the server's order (server).
        @param srtp: C{use_srtp} profiles, e.g. C{b"SRTP_AES128_CM_SHA1_80"}.
        @param options: extra C{SSL.OP_*} flags (e.g. C{SSL.OP_NO_TICKET}).
        """
        if role not in ("server", "client"):
            raise ValueError(f"role must be 'server' or 'client', not {role!r}")
        self.role = role
        self.closed = False
        self._handshake_done = False
        self._listening = role == "server" and cookie_exchange
        self._received: list[bytes] = []
        self._pending: list[bytes] = []
        self._cookie_secret = os.urandom(32)

        ctx = SSL.Context(SSL.DTLS_METHOD)
        ctx.set_min_proto_version(DTLS1_2_VERSION)
        ctx.set_max_proto_version(DTLS1_2_VERSION)
        if cipher:
            if "CCM8" in cipher and "@SECLEVEL" not in cipher:
                cipher += ":@SECLEVEL=0"
            ctx.set_cipher_list(cipher.encode())
        if certificate is not None:
            ctx.use_certificate(certificate)
            for extra in chain:
                ctx.add_extra_chain_cert(crypto.X509.from_cryptography(extra))
        if private_key is not None:
            ctx.use_privatekey(private_key)
        if ca is not None:
            store = ctx.get_cert_store()
            for root in [ca] if isinstance(ca, x509.Certificate) else ca:
                store.add_cert(crypto.X509.from_cryptography(root))
        if verify_peer is None:
            verify_peer = role == "client" and ca is not None
        if verify_peer:
            mode = SSL.VERIFY_PEER
            if role == "server":
                mode |= SSL.VERIFY_FAIL_IF_NO_PEER_CERT
            ctx.set_verify(mode)
        if mtu is not None:
            options |= SSL.OP_NO_QUERY_MTU
        if options:
            ctx.set_options(options)
        if srtp:
            ctx.set_tlsext_use_srtp(srtp)
        if alpn:
            if role == "client":
                ctx.set_alpn_protos(list(alpn))
            else:
                accepted = list(alpn)

                def select(conn, offered):
                    for proto in accepted:
                        if proto in offered:
                            return proto
                    return SSL.NO_OVERLAPPING_PROTOCOLS

                ctx.set_alpn_select_callback(select)
        if role == "server" and cookie_exchange:
            ctx.set_cookie_generate_callback(self._make_cookie)
            ctx.set_cookie_verify_callback(self._check_cookie)

        conn = SSL.Connection(ctx, None)
        if mtu is not None:
            conn.set_ciphertext_mtu(mtu)
        if role == "client":
            if server_name:
                conn.set_tlsext_host_name(server_name.encode())
            conn.set_connect_state()
        else:
            conn.set_accept_state()
        self.connection = conn
        if role == "client":
            self._advance()

    # A memory BIO has no peer address, so the cookie binds only to this
    # peer's secret; that is enough for the exchange to take place.
    def _make_cookie(self, conn: SSL.Connection) -> bytes:
        return hmac.digest(self._cookie_secret, b"cookie", "sha256")[:20]

    def _check_cookie(self, conn: SSL.Connection, cookie: bytes) -> bool:
        return hmac.compare_digest(cookie, self._make_cookie(conn))

    # -- moving bytes -------------------------------------------------------

    def _flush(self) -> None:
        while True:
            try:
                blob = self.connection.bio_read(65536)
            except SSL.WantReadError:
                return
            if not blob:
                return
            self._pending.append(blob)

    def _advance(self) -> None:
        conn = self.connection
        try:
            if self._listening:
                try:
                    conn.DTLSv1_listen()
                except SSL.WantReadError:
                    return
                self._listening = False
            if not self._handshake_done:
                try:
                    conn.do_handshake()
                except SSL.WantReadError:
                    return
                self._handshake_done = True
            while True:
                try:
                    data = conn.recv(65536)
                except SSL.WantReadError:
                    return
                except SSL.ZeroReturnError:
                    self.closed = True
                    return
                self._received.append(data)
        finally:
            # Also on SSL.Error: the alert OpenSSL queued must reach the peer.
            self._flush()

    def receive(self, datagram: bytes) -> None:
        """
        Hand OpenSSL one datagram and let it make progress (handshake,
        application data, close_notify).

        @raise OpenSSL.SSL.Error: a fatal error; any alert it produced is
            already in L{datagrams}.
        """
        if datagram:
            self.connection.bio_write(datagram)
        self._advance()

    def datagrams(self) -> list[bytes]:
        """
        Everything OpenSSL wants to send, one blob per C{bio_read()} (see
        the module docstring), and forget it.
        """
        self._flush()
        out, self._pending = self._pending, []
        return out

    # -- timers ---------------------------------------------------------

    def get_timeout(self) -> float | None:
        """Seconds until OpenSSL wants L{handle_timeout}, or C{None}."""
        return self.connection.DTLSv1_get_timeout()

    def handle_timeout(self) -> bool:
        """
        Tell OpenSSL its timer fired (retransmission); the result is in
        L{datagrams}.

        @return: whether OpenSSL did anything.
        """
        try:
            return bool(self.connection.DTLSv1_handle_timeout())
        finally:
            self._flush()

    # -- application ----------------------------------------------------

    @property
    def handshake_done(self) -> bool:
        return self._handshake_done

    def send(self, data: bytes) -> None:
        """Send C{data} as one application-data record (see L{datagrams})."""
        if not self._handshake_done:
            raise ValueError("handshake not done")
        try:
            self.connection.send(data)
        finally:
            self._flush()

    def recv(self) -> list[bytes]:
        """Application data received so far, one item per record; cleared."""
        out, self._received = self._received, []
        return out

    def close(self) -> None:
        """Send close_notify."""
        try:
            self.connection.shutdown()
        except SSL.Error:
            pass
        finally:
            self._flush()

    def cipher_name(self) -> str | None:
        """The negotiated suite's OpenSSL name."""
        return self.connection.get_cipher_name()

    def alpn_selected(self) -> bytes:
        return self.connection.get_alpn_proto_negotiated()

    def srtp_profile(self) -> bytes:
        return self.connection.get_selected_srtp_profile()

    def peer_certificate(self) -> x509.Certificate | None:
        return self.connection.get_peer_certificate(as_cryptography=True)

    def export_keying_material(self, label: bytes, length: int, context: bytes | None = None) -> bytes:
        return self.connection.export_keying_material(label, length, context)


def pump(a: OpenSSLMemoryPeer, b: OpenSSLMemoryPeer, rounds: int = 20) -> None:
    """
    Move every pending datagram between C{a} and C{b} until both are quiet
    (or C{rounds} exchanges passed).
    """
    for _ in range(rounds):
        moved = False
        for src, dst in ((a, b), (b, a)):
            for blob in src.datagrams():
                moved = True
                dst.receive(blob)
        if not moved:
            return


__all__ += ["pump"]
