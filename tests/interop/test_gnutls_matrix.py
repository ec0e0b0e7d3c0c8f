"""
twisted_dtls against GnuTLS 3.7's C{gnutls-cli --udp} and C{gnutls-serv
--udp --echo}, over real loopback UDP, through the Twisted layer (C{dtls:}
endpoint strings): every certificate suite of the engine, IPv4 and IPv6,
with and without handshake fragmentation, in both roles.

C{gnutls-cli} connects to 127.0.0.1 / ::1 from this namespace.
C{gnutls-serv} cannot be told where to bind, so it runs in a private
network namespace (L{tests.peers.gnutls_cli.GnuTLSServer}); the relay and
our client create their sockets inside it (C{netns.entered()}) and the
reactor serves them from here.

Suite checks: GnuTLS's C{- Description:} (client role of GnuTLS) and our
transport's C{cipherSuite} (both roles). C{gnutls-serv} prints no suite;
it is limited by its priority string to the one suite of the case.
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
    check_gnutls_description,
    our_client_string,
    our_server_string,
    peer_exited,
    server_files,
    with_deadline,
)
from tests.peers import require_netns, require_peer
from tests.peers.gnutls_cli import GnuTLSClient, GnuTLSServer, priority_for

#: gnutls-serv never exits by itself: timeout kills it after this long
#: whatever happens (it is stopped by PID at the end of each case).
CASE_LIFETIME = 45.0

#: GnuTLS's --mtu is the UDP payload; 1400 keeps every handshake message whole.
_LARGE_MTU = 1400


def _peer_mtu(case: Case) -> int:
    return SMALL_DATAGRAM if case.fragmented else _LARGE_MTU


@pytest.mark.parametrize("case", cases())
@pytest_twisted.ensureDeferred
async def test_our_server_with_gnutls_client(pem, case: Case):
    """
    C{serverFromString("dtls:...")} serving an echo protocol;
    C{gnutls-cli --udp} limited to the suite verifies our certificate
    (CA and host name C{localhost}), sends a line, gets it back, and
    closes with close_notify at the end of its input.
    """
    for tool in ("gnutls-cli", "timeout", "stdbuf"):
        require_peer(tool)
    await with_deadline(_server_case(pem, case))


async def _server_case(pem, case: Case) -> None:
    from twisted.internet import reactor

    factory = EchoRecorderFactory()
    port = await serverFromString(reactor, our_server_string(pem, case)).listen(factory)
    relay = client = None
    try:
        relay = UDPRelay(reactor, case.host, port.getHost().port)
        client = GnuTLSClient(
            relay.port, host=case.host, priority=priority_for(case.suite.openssl_name),
            cafile=pem["ca.pem"], verify_hostname="localhost", mtu=_peer_mtu(case),
        )
        check_gnutls_description(await client.when_handshake(timeout=20), case.suite)
        protocol = await factory.connected
        assert protocol.transport.cipherSuite == case.iana_name
        assert protocol.transport.version == "DTLSv1.2"

        line = f"gnutls client to twisted_dtls over {case}"
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
async def test_our_client_with_gnutls_server(pem, case: Case):
    """
    C{clientFromString("dtls:...")}, created inside gnutls-serv's network
    namespace, against C{gnutls-serv --udp --echo} limited to the suite: a
    line goes out, is echoed back (gnutls-serv logs it as received), and our
    close_notify ends the connection cleanly.
    """
    for tool in ("gnutls-serv", "timeout", "stdbuf"):
        require_peer(tool)
    require_netns()
    await with_deadline(_client_case(pem, case))


async def _client_case(pem, case: Case) -> None:
    from twisted.internet import reactor

    cert, key = server_files(pem, case.suite)
    server = GnuTLSServer(
        cert=cert, key=key, priority=priority_for(case.suite.openssl_name), mtu=_peer_mtu(case),
        lifetime=CASE_LIFETIME,
    )
    relay = None
    try:
        # Sockets made here stay in the namespace; an IP literal makes
        # connect() create its socket synchronously, inside the block.
        with server.netns.entered():
            relay = UDPRelay(reactor, case.host, server.port)
            connecting = clientFromString(reactor, our_client_string(pem, case, relay.port)).connect(
                Factory.forProtocol(Collector)
            )
        protocol = await connecting
        assert protocol.transport.cipherSuite == case.iana_name
        assert protocol.transport.version == "DTLSv1.2"

        line = f"twisted_dtls client to gnutls over {case}"
        protocol.transport.write(line.encode() + b"\n")
        await protocol.until(line.encode() + b"\n")
        await server.when(rf"received\[[0-9a-f]+\]: {re.escape(line)}$", timeout=10, stream="stdout")

        protocol.transport.loseConnection()
        reason = await protocol.lost
        assert isinstance(reason, ConnectionDone), reason
        check_fragmentation(relay, case, ours="client")
    finally:
        server.stop()
        if relay is not None:
            await relay.stop()

