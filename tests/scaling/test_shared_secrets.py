"""
Cookies and tickets issued by one server are accepted by another that
reads the same secret file (issue 7: every process and host accepts the
others' cookies and tickets), before and across a rotation.

Cookies are checked at the L{DTLSPort} level, on the in-memory network:
port A answers the first ClientHello with a HelloVerifyRequest, and the
ClientHello carrying A's cookie goes to port B. Tickets are checked at the
engine level, with C{ticket_keys} from L{TicketKeyFile}.
"""

from __future__ import annotations

import pytest

from tests.certs import make_pki, write_pem_files
from tests.core.pairnet import PairNetwork
from tests.core.test_pair import client_config, server_config
from tests.twisted.memorynet import MemoryNetwork
from twisted_dtls.core.configuration import DTLSConfiguration
from twisted_dtls.core.connection import DTLSConnection
from twisted_dtls.core.events import HandshakeCompleted
from twisted_dtls.endpoints import serverEndpointFromString
from twisted_dtls.secretfiles import TicketKeyFile, writeSecretFile
from twisted_dtls.tap import EchoFactory

CLIENT = ("127.0.0.9", 40000)
A = ("127.0.0.1", 4433)
B = ("127.0.0.1", 4434)


@pytest.fixture(scope="module")
def pem(tmp_path_factory):
    return write_pem_files(make_pki(), tmp_path_factory.mktemp("pem"))


def _listen(network, pem, port, cookieFile):
    description = (
        f"dtls:{port}:interface=127.0.0.1:privateKey={pem['server-ec.key']}:certKey={pem['server-ec.pem']}"
        f":cookieSecretFile={cookieFile}"
    )
    endpoint = serverEndpointFromString(network.reactor, description)
    ports = []
    endpoint.listen(EchoFactory()).addCallback(ports.append)
    return ports[0]


class _Client:
    """
    A client engine whose datagrams are injected from L{CLIENT}.
    """

    def __init__(self, network: MemoryNetwork, address=CLIENT):
        self.network = network
        self.address = address
        self.connection = DTLSConnection(
            DTLSConfiguration(trust_roots=(make_pki().ca_cert,), server_name="localhost"), is_client=True
        )
        self._seen = 0
        self.connection.connect(network.reactor.seconds())

    def sendTo(self, destination) -> None:
        for datagram in self.connection.datagrams_to_send(self.network.reactor.seconds()):
            self.network.inject(self.address, destination, datagram)
        self.network.flush()
        replies = self.network.to(self.address)[self._seen:]
        self._seen += len(replies)
        for reply in replies:
            self.connection.receive_datagram(reply.data, self.network.reactor.seconds())

    def established(self) -> bool:
        while (event := self.connection.next_event()) is not None:
            if isinstance(event, HandshakeCompleted):
                return True
        return self.connection.is_established


def _cookieFromAThenB(network, a, b, between=None) -> _Client:
    client = _Client(network)
    client.sendTo(A)
    assert a.stats.helloVerifyRequestsSent == 1 and a.stats.connectionsAccepted == 0
    if between is not None:
        between()
    for _ in range(6):
        client.sendTo(B)
        if client.established():
            break
    return client


def test_cookieFromOnePortAcceptedByAnother(tmp_path, pem):
    network = MemoryNetwork()
    network.reactor.advance(1_000_000)
    secret = tmp_path / "cookie"
    writeSecretFile(str(secret))
    a = _listen(network, pem, A[1], secret)
    b = _listen(network, pem, B[1], secret)
    client = _cookieFromAThenB(network, a, b)
    assert b.stats.helloVerifyRequestsSent == 0
    assert b.stats.connectionsAccepted == 1 and b.stats.handshakesCompleted == 1
    assert client.connection.is_established
    a.stopListening()
    b.stopListening()
    network.flush()
    # The ports stopped their secret-file watchers with them.
    assert not [c for c in network.reactor.getDelayedCalls() if "SecretFile" in repr(c)]


def test_cookieFromAnotherSecretIsRefused(tmp_path, pem):
    network = MemoryNetwork()
    network.reactor.advance(1_000_000)
    writeSecretFile(str(tmp_path / "one"))
    writeSecretFile(str(tmp_path / "two"))
    _listen(network, pem, A[1], tmp_path / "one")
    b = _listen(network, pem, B[1], tmp_path / "two")
    client = _Client(network)
    client.sendTo(A)
    client.sendTo(B)
    # B does not know A's cookie: it asks for its own.
    assert b.stats.connectionsAccepted == 0
    assert b.stats.helloVerifyRequestsSent + sum(b.stats.drops.values()) >= 1


def test_cookieSurvivesRotationOfTheFile(tmp_path, pem):
    """
    A cookie issued by A, then the file changes and both ports re-read it:
    B still accepts the cookie (the previous secret stays valid for one
    cookie lifetime), and then a cookie made under the new secret.
    """
    network = MemoryNetwork()
    network.reactor.advance(1_000_000)
    secret = tmp_path / "cookie"
    writeSecretFile(str(secret))
    a = _listen(network, pem, A[1], secret)
    b = _listen(network, pem, B[1], secret)

    def rotate():
        writeSecretFile(str(secret))
        network.advance(10.0)  # the watchers' period

    client = _cookieFromAThenB(network, a, b, between=rotate)
    assert client.connection.is_established and b.stats.connectionsAccepted == 1

    second = _Client(network, ("127.0.0.10", 40000))
    second.sendTo(A)
    assert a.stats.helloVerifyRequestsSent == 2
    for _ in range(6):
        second.sendTo(B)
        if second.established():
            break
    assert b.stats.helloVerifyRequestsSent == 0 and b.stats.connectionsAccepted == 2


def _ticketServers(tmp_path, clock, names):
    return {name: TicketKeyFile(str(tmp_path / file), clock) for name, file in names.items()}


def test_ticketFromOneServerResumesOnAnother(tmp_path):
    from twisted.internet.task import Clock

    writeSecretFile(str(tmp_path / "ticket"))
    writeSecretFile(str(tmp_path / "other"))
    clock = Clock()
    files = _ticketServers(tmp_path, clock, {"a": "ticket", "b": "ticket", "c": "other"})

    first = PairNetwork(client_config(), server_config(ticket_keys=files["a"].keys))
    first.handshake()
    session = first.client.connection.session
    assert session.ticket and not first.client.completed.resumed

    def resume(keys, offered):
        net = PairNetwork(client_config(), server_config(ticket_keys=keys))
        net.client.connection = DTLSConnection(client_config(), True, session=offered)
        net.handshake()
        return net

    other = resume(files["b"].keys, session)
    assert other.client.completed.resumed and other.server.completed.resumed
    stranger = resume(files["c"].keys, session)
    assert not stranger.client.completed.resumed  # full handshake instead

    # Rotation: the file changes, both servers re-read it. The old ticket
    # still resumes; so does one sealed under the new key.
    writeSecretFile(str(tmp_path / "ticket"))
    assert files["a"].check() and files["b"].check()
    assert resume(files["b"].keys, session).client.completed.resumed
    fresh = PairNetwork(client_config(), server_config(ticket_keys=files["a"].keys))
    fresh.handshake()
    assert resume(files["b"].keys, fresh.client.connection.session).client.completed.resumed
