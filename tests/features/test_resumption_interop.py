"""
Session resumption (RFC 5246 §7.3 abbreviated handshake; RFC 5077
tickets) through the Twisted layer: our server resuming for
C{openssl s_client -reconnect} and C{gnutls-cli --resume}, and our client
endpoint resuming against C{openssl s_server} and C{gnutls-serv} from its
session store. Each side reports the abbreviated handshake: our
C{transport.resumed}, OpenSSL's C{Reused} lines, GnuTLS's
C{*** This is a resumed session}.
"""

from __future__ import annotations

import pytest
import pytest_twisted

from tests.features.support import connect, deadline, listen, poll, roundTrip
from tests.peers import require_netns, require_peer
from tests.peers.gnutls_cli import GnuTLSClient, GnuTLSServer, priority_for
from tests.peers.openssl_cli import OpenSSLClient, OpenSSLServer
from twisted_dtls.endpoints import clientEndpointFromString

SUITE = "ECDHE-ECDSA-AES128-GCM-SHA256"

#: server keywords -> how the session is found again
SERVER_MODES = {
    "tickets": "sessionTickets=yes:sessionCache=0",
    "sessionIds": "sessionTickets=no:sessionCache=16",
}


def serverString(pem, mode: str) -> str:
    return (f"dtls:0:interface=127.0.0.1:privateKey={pem['server-ec.key']}:certKey={pem['server-ec.pem']}"
            f":{SERVER_MODES[mode]}")


def resumedFlags(factory) -> list[bool]:
    return [protocol.transport.resumed for protocol in factory.protocols]


@pytest.mark.parametrize("mode", list(SERVER_MODES))
@pytest_twisted.ensureDeferred
@deadline(30)
async def test_opensslReconnectResumesWithOurServer(pem, mode):
    """
    C{-reconnect} makes five more connections offering the first one's
    session: all five are abbreviated on both sides.
    """
    require_peer("openssl")
    port, factory = await listen(serverString(pem, mode))
    try:
        extra = ["-no_ticket"] if mode == "sessionIds" else []
        with OpenSSLClient(port.getHost().port, cafile=pem["ca.pem"], cipher=SUITE, reconnect=True, brief=False,
                           extra_args=extra) as client:
            await poll(lambda: len(factory.protocols) == 6, 15, "six connections")
            await client.when(r"(?s)(^Reused, .*){5}", stream="stdout")
            assert client.stdout.count("\nNew, ") == 1
            assert client.stdout.count("\nReused, ") == 5
            client.close_stdin()
        assert resumedFlags(factory) == [False] + [True] * 5
    finally:
        await port.stopListening()


@pytest.mark.parametrize("mode", list(SERVER_MODES))
@pytest_twisted.ensureDeferred
@deadline(30)
async def test_gnutlsResumeWithOurServer(pem, mode):
    require_peer("gnutls-cli")
    port, factory = await listen(serverString(pem, mode))
    try:
        extra = ["--noticket"] if mode == "sessionIds" else []
        with GnuTLSClient(port.getHost().port, cafile=pem["ca.pem"], resume=True, extra_args=extra) as client:
            await client.when(r"^\*\*\* This is a resumed session", stream="stdout")
            await poll(lambda: len(factory.protocols) == 2, 10, "two connections")
            client.close_stdin()
        assert resumedFlags(factory) == [False, True]
    finally:
        await port.stopListening()


async def twoConnections(endpoint, netns=None) -> list:
    transports = []
    for _ in range(2):
        client = await connect(None, endpoint=endpoint, netns=netns)
        assert await roundTrip(client, b"ping\n") in (b"ping\n", b"ping")
        transports.append(client.transport)
        client.transport.loseConnection()
        await client.lost
    return transports


@pytest.mark.parametrize("tickets", [True, False], ids=["tickets", "sessionIds"])
@pytest_twisted.ensureDeferred
@deadline(30)
async def test_ourClientResumesWithOpensslServer(pem, tickets):
    """
    The same endpoint connects twice to one C{s_server}: the second
    handshake is abbreviated, and s_server says C{Reused session-id}.
    """
    require_peer("openssl")
    from twisted.internet import reactor

    extra = [] if tickets else ["-no_ticket"]
    with OpenSSLServer(cert=pem["server-ec.pem"], key=pem["server-ec.key"], cipher=SUITE, naccept=2,
                       brief=False, extra_args=extra) as server:
        endpoint = clientEndpointFromString(
            reactor, f"dtls:127.0.0.1:{server.port}:trustRoots={pem['ca.pem']}:hostname=localhost:timeout=10")
        first = await connect(None, endpoint=endpoint)
        assert not first.transport.resumed
        session = endpoint.sessionStore.get(("127.0.0.1", server.port, "localhost"))
        assert session is not None and bool(session.ticket) == tickets
        first.transport.loseConnection()
        await first.lost
        second = await connect(None, endpoint=endpoint)
        assert second.transport.resumed
        assert second.transport.cipherSuite == "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
        await server.when(r"^Reused session-id$", stream="stdout")
        assert server.stdout.count("Reused session-id") == 1
        second.transport.loseConnection()
        await second.lost


@pytest_twisted.ensureDeferred
@deadline(30)
async def test_ourClientResumesWithGnutlsServer(pem, pki):
    require_peer("gnutls-serv")
    require_netns()
    from twisted.internet import reactor

    with GnuTLSServer(cert=pem["server-ec.pem"], key=pem["server-ec.key"], priority=priority_for(SUITE)) as server:
        endpoint = clientEndpointFromString(
            reactor, f"dtls:127.0.0.1:{server.port}:trustRoots={pem['ca.pem']}:hostname=localhost:timeout=10")
        first, second = await twoConnections(endpoint, netns=server.netns)
        assert (first.resumed, second.resumed) == (False, True)
        # The certificate of the full handshake is still known.
        assert second.getPeerCertificate() == pki.server_ec.cert


@pytest_twisted.ensureDeferred
@deadline(30)
async def test_resumeNoMakesFullHandshakes(pem):
    require_peer("openssl")
    from twisted.internet import reactor

    with OpenSSLServer(cert=pem["server-ec.pem"], key=pem["server-ec.key"], cipher=SUITE, naccept=2,
                       brief=False) as server:
        endpoint = clientEndpointFromString(
            reactor,
            f"dtls:127.0.0.1:{server.port}:trustRoots={pem['ca.pem']}:hostname=localhost:timeout=10:resume=no")
        assert endpoint.sessionStore is None
        for _ in range(2):
            client = await connect(None, endpoint=endpoint)
            assert not client.transport.resumed
            client.transport.loseConnection()
            await client.lost
        await poll(lambda: server.stdout.count("CIPHER is") == 2, 5, "two handshakes")
        assert "Reused session-id" not in server.stdout
