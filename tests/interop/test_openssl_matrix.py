"""
twisted_dtls against OpenSSL 3.0's C{s_client} and C{s_server}, over real
loopback UDP, through the Twisted layer (C{dtls:} endpoint strings): every
certificate suite of the engine, IPv4 and IPv6, with and without handshake
fragmentation, in both roles.

Each case: the handshake completes with the suite OpenSSL was limited to,
as both sides report it; a line goes each way; the client closes with
close_notify and both sides see a clean end. A recording relay between the
two shows the fragmentation (L{tests.interop.support.check_fragmentation}).
"""

from __future__ import annotations

import re

import pytest
import pytest_twisted

from twisted.internet.endpoints import clientFromString, serverFromString
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory

from tests.interop.relay import UDPRelay
from tests.interop.support import (
    SMALL_DATAGRAM,
    Case,
    Collector,
    EchoRecorderFactory,
    cases,
    check_fragmentation,
    our_client_string,
    our_server_string,
    peer_exited,
    server_files,
    with_deadline,
)
from tests.peers import require_peer
from tests.peers.openssl_cli import OpenSSLClient, OpenSSLServer

#: OpenSSL's -mtu counts IP and UDP headers; 1500 keeps every handshake
#: message whole (s_server would otherwise fall back to 228-byte datagrams).
_LARGE_MTU = 1500


def _peer_mtu(case: Case) -> int:
    return SMALL_DATAGRAM if case.fragmented else _LARGE_MTU


@pytest.fixture(autouse=True)
def _openssl():
    for tool in ("openssl", "timeout", "stdbuf"):
        require_peer(tool)


@pytest.mark.parametrize("case", cases())
@pytest_twisted.ensureDeferred
async def test_our_server_with_openssl_client(pem, case: Case):
    """
    C{serverFromString("dtls:...")} serving an echo protocol;
    C{openssl s_client -dtls1_2 -cipher SUITE} sends a line, gets it back,
    and closes.
    """
    await with_deadline(_server_case(pem, case))


async def _server_case(pem, case: Case) -> None:
    from twisted.internet import reactor

    factory = EchoRecorderFactory()
    port = await serverFromString(reactor, our_server_string(pem, case)).listen(factory)
    relay = client = None
    try:
        relay = UDPRelay(reactor, case.host, port.getHost().port)
        client = OpenSSLClient(
            relay.port, host=case.host, cipher=case.suite.openssl_name, cafile=pem["ca.pem"],
            mtu=_peer_mtu(case), extra_args=["-verify_hostname", "localhost"],
        )
        assert await client.when_handshake(timeout=20) == case.suite.openssl_name
        protocol = await factory.connected
        assert protocol.transport.cipherSuite == case.iana_name
        assert protocol.transport.version == "DTLSv1.2"

        line = f"openssl client to twisted_dtls over {case}"
        client.send_line(line)
        await client.when(f"^{re.escape(line)}$", timeout=10, stream="stdout")
        assert protocol.received == [line.encode() + b"\n"]

        client.close_stdin()
        reason = await factory.lost
        assert isinstance(reason, ConnectionDone), reason
        assert await peer_exited(client) == 0, client.describe()
        assert len(factory.protocols) == 1
        check_fragmentation(relay, case, ours="server")
    finally:
        if client is not None:
            client.stop()
        if relay is not None:
            await relay.stop()
        await port.stopListening()


@pytest.mark.parametrize("case", cases())
@pytest_twisted.ensureDeferred
async def test_our_client_with_openssl_server(pem, case: Case):
    """
    C{clientFromString("dtls:...")} against C{openssl s_server -dtls1_2
    -cipher SUITE}: a line each way, then our close_notify ends s_server
    (C{-naccept 1}) with status 0.
    """
    await with_deadline(_client_case(pem, case))


async def _client_case(pem, case: Case) -> None:
    from twisted.internet import reactor

    cert, key = server_files(pem, case.suite)
    server = OpenSSLServer(
        cert=cert, key=key, cipher=case.suite.openssl_name, ipv6=case.family == "ipv6",
        mtu=_peer_mtu(case),
    )
    relay = None
    try:
        relay = UDPRelay(reactor, case.host, server.port)
        endpoint = clientFromString(reactor, our_client_string(pem, case, relay.port))
        protocol = await endpoint.connect(Factory.forProtocol(Collector))
        assert protocol.transport.cipherSuite == case.iana_name
        assert protocol.transport.version == "DTLSv1.2"
        assert await server.when_handshake(timeout=10) == case.suite.openssl_name

        line = f"twisted_dtls client to openssl over {case}"
        protocol.transport.write(line.encode() + b"\n")
        await server.when(f"^{re.escape(line)}$", timeout=10, stream="stdout")
        reply = f"openssl server to twisted_dtls over {case}"
        server.send_line(reply)
        await protocol.until(reply.encode() + b"\n")

        protocol.transport.loseConnection()
        reason = await protocol.lost
        assert isinstance(reason, ConnectionDone), reason
        assert await peer_exited(server) == 0, server.describe()
        check_fragmentation(relay, case, ours="client")
    finally:
        server.stop()
        if relay is not None:
            await relay.stop()

