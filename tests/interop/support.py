"""
What every interop case shares: the suites under test (read from the
engine's table, so a suite added there joins the matrix), the protocols run
on our side, endpoint strings, fragmentation checks and the deadline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from twisted.internet import defer
from twisted.internet.protocol import Factory, Protocol

from tests.interop.relay import TO_CLIENT, TO_SERVER, UDPRelay
from tests.peers.process import PeerProcess, poll_deferred
from twisted_dtls.core.suites import AEADAlgorithm, CIPHER_SUITES, CipherSuiteInfo, KeyExchange

__all__ = [
    "CERT_SUITES", "FAMILIES", "FRAGMENTATION", "SMALL_DATAGRAM", "DEFAULT_DATAGRAM", "CASE_DEADLINE",
    "Case", "cases", "server_files", "our_server_string", "our_client_string",
    "EchoRecorderFactory", "Collector", "with_deadline", "peer_exited",
    "check_fragmentation", "check_gnutls_description",
]

#: Every certificate suite of the engine (issue 3: the whole matrix).
CERT_SUITES: list[CipherSuiteInfo] = sorted(
    (info for info in CIPHER_SUITES.values() if info.key_exchange.uses_certificates),
    key=lambda info: info.openssl_name,
)

#: Loopback address per family.
FAMILIES = {"ipv4": "127.0.0.1", "ipv6": "::1"}

#: C{whole}: the peer's MTU and our maxDatagramSize leave room for every
#: handshake message; C{fragmented}: both sides at 256 bytes (OpenSSL
#: C{-mtu 256}, which counts IP+UDP; GnuTLS C{--mtu 256};
#: C{maxDatagramSize=256} here), so certificates travel in pieces.
FRAGMENTATION = ("whole", "fragmented")
SMALL_DATAGRAM = 256
#: maxDatagramSize when none is given (docs/endpoints.md).
DEFAULT_DATAGRAM = 1200
#: RFC 5246 §7.4: HandshakeType certificate.
_CERTIFICATE = 11

#: Seconds one case may take, peers included, before it fails.
CASE_DEADLINE = 30.0

#: GnuTLS's name of each AEAD, as printed at the end of its C{- Description:}.
_GNUTLS_CIPHER = {
    AEADAlgorithm.AES_128_GCM: "AES-128-GCM",
    AEADAlgorithm.AES_256_GCM: "AES-256-GCM",
    AEADAlgorithm.CHACHA20_POLY1305: "CHACHA20-POLY1305",
    AEADAlgorithm.AES_128_CCM: "AES-128-CCM",
    AEADAlgorithm.AES_128_CCM_8: "AES-128-CCM-8",
}


@dataclass(frozen=True)
class Case:
    suite: CipherSuiteInfo
    family: str
    fragmentation: str

    @property
    def host(self) -> str:
        return FAMILIES[self.family]

    @property
    def fragmented(self) -> bool:
        return self.fragmentation == "fragmented"

    @property
    def iana_name(self) -> str:
        return self.suite.suite.name

    def __str__(self) -> str:
        return f"{self.suite.openssl_name}-{self.family}-{self.fragmentation}"


def cases() -> list:
    """Every suite x family x fragmentation, as pytest params."""
    import pytest

    return [
        pytest.param(Case(suite, family, frag), id=str(Case(suite, family, frag)))
        for suite in CERT_SUITES
        for family in FAMILIES
        for frag in FRAGMENTATION
    ]


def server_files(pem: dict[str, str], suite: CipherSuiteInfo) -> tuple[str, str]:
    """(certificate, key) PEM paths for a server offering C{suite}."""
    stem = "server-ec" if suite.key_exchange is KeyExchange.ECDHE_ECDSA else "server-rsa"
    return pem[f"{stem}.pem"], pem[f"{stem}.key"]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


def _all_suites() -> str:
    return ",".join(info.openssl_name for info in CERT_SUITES)


def our_server_string(pem: dict[str, str], case: Case) -> str:
    """
    A C{dtls:} server string on a free port of the case's loopback address,
    offering every certificate suite: the peer's single suite decides, so
    our selection (including skipping suites the certificate cannot sign
    for) is what is tested.
    """
    cert, key = server_files(pem, case.suite)
    description = (
        f"dtls:0:interface={_escape(case.host)}:privateKey={_escape(key)}:certKey={_escape(cert)}"
        f":ciphers={_all_suites()}"
    )
    if case.fragmented:
        description += f":maxDatagramSize={SMALL_DATAGRAM}"
    return description


def our_client_string(pem: dict[str, str], case: Case, port: int) -> str:
    """
    A C{dtls:} client string to C{port} on the case's loopback address,
    offering every certificate suite and verifying the server's certificate
    (chain to the test CA, IP address in its SAN).
    """
    description = (
        f"dtls:{_escape(case.host)}:{port}:trustRoots={_escape(pem['ca.pem'])}"
        f":ciphers={_all_suites()}:timeout={CASE_DEADLINE - 5:g}"
    )
    if case.fragmented:
        description += f":maxDatagramSize={SMALL_DATAGRAM}"
    return description


class _EchoRecorder(Protocol):
    """Echoes each record and remembers what happened."""

    def connectionMade(self) -> None:
        self.received: list[bytes] = []
        self.factory.protocols.append(self)
        if not self.factory.connected.called:
            self.factory.connected.callback(self)

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)
        self.transport.write(data)

    def connectionLost(self, reason) -> None:
        if not self.factory.lost.called:
            self.factory.lost.callback(reason.value)


class EchoRecorderFactory(Factory):
    """
    Our server side: an echo protocol like C{twisted.protocols.wire.Echo}
    that also records.

    @ivar connected: fires with the first protocol after its handshake.
    @ivar lost: fires with the first connection's C{connectionLost} reason.
    """

    protocol = _EchoRecorder

    def __init__(self) -> None:
        self.protocols: list[_EchoRecorder] = []
        self.connected: defer.Deferred = defer.Deferred()
        self.lost: defer.Deferred = defer.Deferred()


class Collector(Protocol):
    """Our client side: collects what arrives; L{until} waits for bytes."""

    def __init__(self) -> None:
        self.buffer = b""
        self.lost: defer.Deferred = defer.Deferred()
        self._waiting: list[tuple[bytes, defer.Deferred]] = []

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        still = []
        for needle, d in self._waiting:
            if needle in self.buffer:
                d.callback(needle)
            else:
                still.append((needle, d))
        self._waiting = still

    def until(self, needle: bytes) -> defer.Deferred:
        d: defer.Deferred = defer.Deferred()
        if needle in self.buffer:
            d.callback(needle)
        else:
            self._waiting.append((needle, d))
        return d

    def connectionLost(self, reason) -> None:
        self.lost.callback(reason.value)


def with_deadline(coroutine, seconds: float = CASE_DEADLINE) -> defer.Deferred:
    """
    Run C{coroutine} on the reactor; cancel it (its C{finally} blocks stop
    the peers) if it is not done within C{seconds}.
    """
    from twisted.internet import reactor

    return defer.ensureDeferred(coroutine).addTimeout(seconds, reactor)


def peer_exited(peer: PeerProcess, timeout: float = 10.0) -> defer.Deferred:
    """A Deferred firing with the peer's exit status once it has exited."""
    return poll_deferred(
        lambda: peer.process.poll() is not None,
        timeout,
        lambda: f"still running after {timeout} s\n{peer.describe()}",
    ).addCallback(lambda _: peer.process.poll())


def check_fragmentation(relay: UDPRelay, case: Case, ours: str) -> None:
    """
    What the relay saw matches the case.

      - whole: the Certificate travelled in one record, and our datagrams
        stayed within the default maxDatagramSize. (Smaller messages may
        still be split to fill a datagram: RFC 6347 §4.2.3 allows it, and
        OpenSSL and twisted_dtls both do it when a flight overflows one
        datagram.)
      - fragmented: no datagram either way exceeded 256 bytes, and the
        server's Certificate came in pieces covering it from start to end,
        which the client had to reassemble.

    @param ours: C{"server"} or C{"client"}: which side is twisted_dtls.
    """
    ours_way = TO_CLIENT if ours == "server" else TO_SERVER
    assert relay.fragments(TO_SERVER), "no cleartext handshake seen from the client"
    assert relay.fragments(TO_CLIENT), "no cleartext handshake seen from the server"
    certificate = [f for f in relay.fragments(TO_CLIENT) if f.msg_type == _CERTIFICATE]
    assert certificate, "no Certificate from the server"
    if not case.fragmented:
        assert all(not f.partial for f in certificate), f"Certificate fragmented: {certificate}"
        sizes = relay.sizes(ours_way)
        assert max(sizes) <= DEFAULT_DATAGRAM, f"our datagrams {sizes} exceed {DEFAULT_DATAGRAM}"
        return
    for way in (TO_SERVER, TO_CLIENT):
        sizes = relay.sizes(way)
        assert max(sizes) <= SMALL_DATAGRAM, f"{way}: datagrams {sizes} exceed {SMALL_DATAGRAM}"
    pieces = [f for f in certificate if f.partial]
    assert pieces, (
        f"server ({'twisted_dtls' if ours == 'server' else 'peer'}) did not fragment its Certificate"
    )
    length = pieces[0].length
    covered = sorted((f.fragment_offset, f.fragment_offset + f.fragment_length) for f in pieces)
    end = 0
    for start, stop in covered:
        assert start <= end, f"gap in Certificate fragments: {covered}"
        end = max(end, stop)
    assert end == length, f"Certificate fragments {covered} do not reach its length {length}"


def check_gnutls_description(description: str, suite: CipherSuiteInfo) -> None:
    """
    GnuTLS's C{- Description:} names the suite: DTLS 1.2 with X.509, ECDHE,
    a signature of the suite's kind, and its AEAD, e.g.
    C{(DTLS1.2-X.509)-(ECDHE-SECP256R1)-(ECDSA-SHA256)-(AES-128-GCM)}.
    """
    parts = re.findall(r"\(([^)]*)\)", description)
    assert len(parts) == 4, description
    version, kx, signature, cipher = parts
    assert version == "DTLS1.2-X.509", description
    assert kx.startswith("ECDHE-"), description
    kind = "ECDSA" if suite.key_exchange is KeyExchange.ECDHE_ECDSA else "RSA"
    assert signature.startswith(kind), description
    assert cipher == _GNUTLS_CIPHER[suite.aead], description
