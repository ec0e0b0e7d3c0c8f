"""
C{reusePort} and C{fileDescriptor} on L{DTLSPort} and the C{dtls:} server
endpoint, on the real reactor and real loopback sockets. The clients run
in a thread (L{LoadClient} blocks) while the reactor serves.
"""

from __future__ import annotations

import socket

import pytest
import pytest_twisted
from twisted.internet import error
from twisted.internet.threads import deferToThread

from tests.certs import make_pki, write_pem_files
from tests.scaling.loadclient import LoadClient, loopbackSources
from twisted_dtls.core.configuration import DTLSConfiguration
from twisted_dtls.endpoints import serverEndpointFromString
from twisted_dtls.port import DTLSPort
from twisted_dtls.tap import EchoFactory


@pytest.fixture(scope="module")
def pem(tmp_path_factory):
    return write_pem_files(make_pki(), tmp_path_factory.mktemp("pem"))


def _description(pem, port, extra=""):
    return (f"dtls:{port}:interface=127.0.0.1:privateKey={pem['server-ec.key']}:certKey={pem['server-ec.pem']}"
            + extra)


def _clientConfiguration():
    return DTLSConfiguration(trust_roots=(make_pki().ca_cert,), server_name="localhost", initial_timeout=0.5)


def _handshakeAndEcho(port: int, count: int) -> list[str]:
    with LoadClient(("127.0.0.1", port), _clientConfiguration(), loopbackSources(count, first=30)) as load:
        load.handshake(deadline=30)
        load.echo("hello", rehandshakeAfter=None, deadline=15)
        return [client.local for client in load.clients]


@pytest_twisted.ensureDeferred
async def test_reusePortSharesOnePortBetweenTwoPorts(pem):
    """
    Two ports bound to one address and port with reusePort=yes: the kernel
    spreads 40 peers over both, and every peer completes and echoes.
    """
    from twisted.internet import reactor

    first = await serverEndpointFromString(reactor, _description(pem, 0, ":reusePort=yes")).listen(EchoFactory())
    number = first.getHost().port
    second = None
    try:
        second = await serverEndpointFromString(
            reactor, _description(pem, number, ":reusePort=yes")
        ).listen(EchoFactory())
        assert second.getHost().port == number
        peers = await deferToThread(_handshakeAndEcho, number, 40)
        assert len(peers) == 40
        assert first.stats.handshakesCompleted + second.stats.handshakesCompleted == 40
        assert first.stats.handshakesCompleted > 0 and second.stats.handshakesCompleted > 0
    finally:
        await first.stopListening()
        if second is not None:
            await second.stopListening()


@pytest_twisted.ensureDeferred
async def test_reusePortNeedsEverySocketToAskForIt(pem):
    """
    A port bound without reusePort keeps its port to itself: a reusePort
    port cannot join it (the kernel wants SO_REUSEPORT on every member).
    """
    from twisted.internet import reactor

    first = await serverEndpointFromString(reactor, _description(pem, 0)).listen(EchoFactory())
    try:
        number = first.getHost().port
        with pytest.raises(error.CannotListenError, match="Address already in use"):
            await serverEndpointFromString(reactor, _description(pem, number, ":reusePort=yes")).listen(EchoFactory())
    finally:
        await first.stopListening()


@pytest_twisted.ensureDeferred
async def test_fileDescriptorListensOnAnInheritedSocket(pem):
    """
    fileDescriptor=N serves on a socket bound by someone else (a
    supervisor); the caller's descriptor stays open and usable.
    """
    from twisted.internet import reactor

    inherited = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    inherited.bind(("127.0.0.1", 0))
    number = inherited.getsockname()[1]
    try:
        port = await serverEndpointFromString(
            reactor, _description(pem, 9, f":fileDescriptor={inherited.fileno()}")
        ).listen(EchoFactory())
        try:
            assert port.getHost().port == number and port.getHost().host == "127.0.0.1"
            await deferToThread(_handshakeAndEcho, number, 3)
            assert port.stats.handshakesCompleted == 3
        finally:
            await port.stopListening()
        assert inherited.getsockname()[1] == number  # still ours, still open
    finally:
        inherited.close()


def test_fileDescriptorThatIsNotUDP(pem):
    from twisted.internet import reactor

    from twisted_dtls.credentials import loadServerCredentials

    credentials = loadServerCredentials(pem["server-ec.key"], pem["server-ec.pem"])
    configuration = DTLSConfiguration(certificate_chain=credentials.chain, private_key=credentials.privateKey)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        port = DTLSPort(reactor, 0, EchoFactory(), configuration, fileDescriptor=tcp.fileno())
        with pytest.raises(error.CannotListenError, match="not a UDP socket"):
            port.startListening()
    port = DTLSPort(reactor, 0, EchoFactory(), configuration, fileDescriptor=99999)
    with pytest.raises(error.CannotListenError):
        port.startListening()


@pytest.mark.parametrize(
    "extra, message",
    [(":reusePort=maybe", "must be yes or no"), (":fileDescriptor=-1", "out of range"),
     (":fileDescriptor=x", "not an integer")],
)
def test_endpointKeywordErrors(pem, extra, message):
    from twisted.internet import reactor

    with pytest.raises(ValueError, match=message):
        serverEndpointFromString(reactor, _description(pem, 0, extra))
