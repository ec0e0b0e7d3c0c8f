"""
One C{dtls:} server, real clients again and again: a server negotiates a
ClientHello offer it has already seen with the same configuration only
once and answers the repeats from what it chose then
(L{twisted_dtls.core.server}). C{gnutls-cli --udp} and C{openssl s_client
-dtls1_2}, each limited to a suite of its own, connect in turn: every
connection gets its client's suite and echoes a line, and the repeated
offers were not negotiated again.
"""

from __future__ import annotations

import re

import pytest_twisted

from twisted.internet import defer
from twisted.internet.endpoints import serverFromString
from twisted.internet.protocol import Factory, Protocol

from tests.interop.support import Case, our_server_string, peer_exited, with_deadline
from tests.peers import require_peer
from tests.peers.gnutls_cli import GnuTLSClient, priority_for
from tests.peers.openssl_cli import OpenSSLClient
from twisted_dtls.core import server as server_module
from twisted_dtls.core.constants import CipherSuite
from twisted_dtls.core.suites import CIPHER_SUITES

_GCM = CIPHER_SUITES[CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]
_CHACHA = CIPHER_SUITES[CipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256]
#: (peer, suite) in connection order: each kind of client comes back.
_ROUNDS = [("gnutls", _GCM), ("openssl", _CHACHA), ("gnutls", _GCM), ("openssl", _CHACHA), ("gnutls", _GCM)]


class _Echo(Protocol):
    def connectionMade(self) -> None:
        self.received: list[bytes] = []
        self.factory.connections.put(self)

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)
        self.transport.write(data)


class _EchoFactory(Factory):
    protocol = _Echo

    def __init__(self) -> None:
        self.connections: defer.DeferredQueue = defer.DeferredQueue()


@pytest_twisted.ensureDeferred
async def test_repeated_offers_from_gnutls_and_openssl(pem, monkeypatch):
    for tool in ("gnutls-cli", "openssl", "timeout", "stdbuf"):
        require_peer(tool)
    parsed = []
    parse = server_module.parse_client_hello
    monkeypatch.setattr(server_module, "parse_client_hello", lambda body: parsed.append(body) or parse(body))
    await with_deadline(_rounds(pem, parsed), seconds=120)


async def _rounds(pem, parsed: list) -> None:
    from twisted.internet import reactor

    factory = _EchoFactory()
    description = our_server_string(pem, Case(_GCM, "ipv4", "whole"))
    port = await serverFromString(reactor, description).listen(factory)
    try:
        for index, (peer, suite) in enumerate(_ROUNDS):
            await _one_client(pem, factory, port.getHost().port, peer, suite, index)
    finally:
        await port.stopListening()
    # Two kinds of client, five handshakes: each client's offer (the same
    # bytes from one run of it to the next, the random, session id and
    # cookie aside) negotiated in full once. Both ask for a ticket with an
    # empty session_ticket extension, which the endpoint's default
    # configuration (tickets and a session cache on) answers.
    assert len(parsed) == 2, len(parsed)


async def _one_client(pem, factory: _EchoFactory, port: int, peer: str, suite, index: int) -> None:
    if peer == "gnutls":
        client = GnuTLSClient(
            port, host="127.0.0.1", priority=priority_for(suite.openssl_name), cafile=pem["ca.pem"],
            verify_hostname="localhost", mtu=1400,
        )
    else:
        client = OpenSSLClient(
            port, host="127.0.0.1", cipher=suite.openssl_name, cafile=pem["ca.pem"], mtu=1400,
            extra_args=["-verify_hostname", "localhost"],
        )
    try:
        await client.when_handshake(timeout=20)
        protocol = await factory.connections.get()
        assert protocol.transport.cipherSuite == suite.suite.name
        line = f"{peer} client, round {index}"
        client.send_line(line)
        await client.when(f"^{re.escape(line)}$", timeout=10, stream="stdout")
        assert protocol.received == [line.encode() + b"\n"]
        client.close_stdin()
        assert await peer_exited(client) == 0, client.describe()
    finally:
        client.stop()
