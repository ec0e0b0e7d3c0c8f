"""
DTLSPort on the in-memory network with a simulated clock: the stateless
cookie exchange, demultiplexing, limits, timeouts and counters.
"""

from __future__ import annotations

import os

import pytest
from zope.interface.verify import verifyObject

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IListeningPort

from tests.twisted.recording import RecordingFactory, clientConfiguration, connect, listen
from twisted_dtls.core.configuration import DTLSConfiguration
from twisted_dtls.core.connection import DTLSConnection
from twisted_dtls.core.constants import ContentType, HandshakeType
from twisted_dtls.core.records import pull_records
from twisted_dtls.port import DEFAULT_LIMITS, DTLSPort
from twisted_dtls.transport import DTLSConnectionLost, DTLSHandshakeTimeout, DTLSIdleTimeout


def clientHello(random: bytes = b"") -> bytes:
    """
    A real first ClientHello (no cookie) from the engine.
    """
    configuration = DTLSConfiguration(verify_peer=False)
    if random:
        configuration.random = lambda n: random[:n] if n == 32 else os.urandom(n)
    connection = DTLSConnection(configuration, is_client=True)
    connection.connect(0.0)
    (datagram,) = connection.datagrams_to_send(0.0)
    return datagram


def withRecordSequence(datagram: bytes, sequence: int) -> bytes:
    # Epoch-0 records are unprotected: the header's 48-bit sequence number
    # (bytes 5..10, RFC 6347 §4.1) can be rewritten freely.
    return datagram[:5] + sequence.to_bytes(6, "big") + datagram[11:]


def handshakeInfo(datagram: bytes):
    """
    (record sequence number, handshake type, message_seq) of the first
    record of a datagram.
    """
    records, _ = pull_records(datagram)
    record = records[0]
    body = record.fragment
    return record.content_type, record.sequence_number, body[0], int.from_bytes(body[4:6], "big")


def test_verifyObject(network, pki):
    port = listen(network, pki)
    assert verifyObject(IListeningPort, port)


def test_getHostIPv4AndIPv6(network, pki):
    v4 = listen(network, pki, port=0, interface="127.0.0.1")
    v6 = listen(network, pki, port=0, interface="::1")
    assert isinstance(v4.getHost(), IPv4Address) and v4.getHost().type == "UDP"
    assert v4.getHost().host == "127.0.0.1" and v4.getHost().port > 0
    assert v6.getHost() == IPv6Address("UDP", "::1", v6.getHost().port)


def test_defaultLimits(network, pki):
    port = listen(network, pki)
    assert (port.maxConnections, port.maxHandshakes, port.handshakeTimeout, port.idleTimeout) == (
        10000, 1000, 60.0, 300.0
    )
    assert DEFAULT_LIMITS == {"maxConnections": 10000, "maxHandshakes": 1000, "handshakeTimeout": 60.0,
                              "idleTimeout": 300.0, "helloRate": 50.0, "helloBurst": 100,
                              "maxHelloSources": 4096}
    assert (port.helloLimiter.rate, port.helloLimiter.burst, port.helloLimiter.maxSources) == (50.0, 100, 4096)


def test_invalidLimits(network, pki):
    factory = RecordingFactory()
    with pytest.raises(ValueError, match="maxConnections"):
        DTLSPort(network.reactor, 0, factory, listen(network, pki, port=0).configuration, maxConnections=0)
    with pytest.raises(ValueError, match="idleTimeout"):
        DTLSPort(network.reactor, 0, factory, listen(network, pki, port=0).configuration, idleTimeout=-1)


def test_handshakeThroughCookieAndCounters(network, pki):
    serverFactory = RecordingFactory(echo=True)
    port = listen(network, pki, serverFactory)
    assert serverFactory.started == 1
    clientFactory, outcome = connect(network, pki, port)
    network.flush()
    assert outcome.result is clientFactory.protocols[0]
    client = outcome.result
    client.transport.write(b"ping")
    network.flush()
    assert client.received == [b"ping"]
    stats = port.stats
    assert stats.helloVerifyRequestsSent == 1
    assert stats.connectionsAccepted == 1
    assert stats.handshakesCompleted == 1
    assert stats.handshakesFailed == 0
    assert stats.connectionsOpen == 1
    assert stats.handshakesInProgress == 0
    assert stats.datagramsReceived == len(network.to(("127.0.0.1", 4433)))
    assert stats.datagramsSent == len([d for d in network.sent if d.source == ("127.0.0.1", 4433)])
    assert not stats.drops
    # The server's protocol was built for the client's address.
    host = client.transport.getHost()
    assert serverFactory.addresses == [IPv4Address("UDP", "127.0.0.1", host.port)]


def test_retransmissionThroughTheReactor(network, pki):
    """
    The server's first flight is lost; the client's timer, run by the
    reactor, retransmits its ClientHello after the initial timeout (1 s) and
    the handshake completes.
    """
    port = listen(network, pki)
    lost = []

    def dropFirstServerFlight(datagram):
        records, _ = pull_records(datagram.data)
        if datagram.source == ("127.0.0.1", 4433) and records[0].fragment[0] == HandshakeType.server_hello and not lost:
            lost.append(datagram)
            return True
        return False

    network.dropIf = dropFirstServerFlight
    clientFactory, outcome = connect(network, pki, port)
    network.flush()
    assert lost and not outcome.done
    network.advance(0.9)
    assert not outcome.done
    helloCount = len([d for d in network.to(("127.0.0.1", 4433))])
    network.advance(0.2)
    assert len(network.to(("127.0.0.1", 4433))) > helloCount
    assert outcome.result is not None
    assert port.stats.handshakesCompleted == 1
    assert port.stats.connectionsAccepted == 1


def test_handshakeTimeout(network, pki):
    """
    A client that goes silent after its cookie was accepted is dropped after
    handshakeTimeout; the client's own timeout fails its connect().
    """
    serverFactory = RecordingFactory()
    port = listen(network, pki, serverFactory, handshakeTimeout=5.0)

    def silenceClientAfterAccept(datagram):
        return datagram.destination == ("127.0.0.1", 4433) and port.stats.connectionsAccepted >= 1

    network.dropIf = silenceClientAfterAccept
    clientFactory, outcome = connect(network, pki, port, timeout=3.0)
    network.flush()
    assert port.stats.connectionsAccepted == 1
    assert port.stats.handshakesInProgress == 1
    network.run(3.0)
    assert outcome.failure is not None and outcome.failure.check(DTLSHandshakeTimeout)
    assert "3 s" in outcome.failure.getErrorMessage()
    assert port.stats.connectionsOpen == 1
    network.run(2.1)
    assert port.stats.connectionsOpen == 0
    assert port.stats.handshakesInProgress == 0
    assert port.stats.handshakesFailed == 1
    assert serverFactory.addresses == [] and clientFactory.addresses == []
    assert network.reactor.getDelayedCalls() == []


def test_idleTimeout(network, pki):
    serverFactory = RecordingFactory()
    port = listen(network, pki, serverFactory, idleTimeout=10.0)
    clientFactory, outcome = connect(network, pki, port)
    network.flush()
    client = outcome.result
    network.run(9.0, step=1.0)
    client.transport.write(b"still here")
    network.flush()
    network.run(9.0, step=1.0)
    server = serverFactory.protocols[0]
    assert server.received == [b"still here"] and server.lost == []
    network.run(1.5)
    assert len(server.lost) == 1 and server.lost[0].check(DTLSIdleTimeout)
    # The server said goodbye with close_notify.
    assert len(client.lost) == 1 and client.lost[0].check(ConnectionDone)
    assert port.stats.connectionsOpen == 0
    assert network.reactor.getDelayedCalls() == []


def test_connectionLimit(network, pki):
    port = listen(network, pki, maxConnections=1)
    first, firstOutcome = connect(network, pki, port)
    network.flush()
    second, secondOutcome = connect(network, pki, port, timeout=5.0)
    network.flush()
    assert firstOutcome.result is not None
    assert not secondOutcome.done
    assert port.stats.drops["connection_limit"] == 1
    assert port.stats.connectionsOpen == 1
    network.run(5.2)
    assert secondOutcome.failure.check(DTLSHandshakeTimeout)
    assert port.stats.connectionsAccepted == 1


def test_handshakeLimit(network, pki):
    """
    With maxHandshakes=1, a second cookie-verified ClientHello waits while
    another handshake is in progress, and gets in once that one timed out.
    """
    port = listen(network, pki, maxHandshakes=1, handshakeTimeout=2.0)
    stalled, stalledOutcome = connect(network, pki, port, timeout=None, bindAddress=("127.0.0.2", 0))

    def stall(datagram):
        return datagram.source[0] == "127.0.0.2" and port.stats.connectionsAccepted >= 1

    network.dropIf = stall
    network.flush()
    assert port.stats.handshakesInProgress == 1
    waiting, waitingOutcome = connect(network, pki, port, bindAddress=("127.0.0.3", 0))
    network.flush()
    assert port.stats.drops["handshake_limit"] == 1
    assert not waitingOutcome.done
    network.run(4.0)
    assert waitingOutcome.result is not None
    assert port.stats.handshakesFailed == 1
    assert port.stats.handshakesCompleted == 1
    assert not stalledOutcome.done


def test_peerRestartFromSameAddress(network, pki):
    """
    A client that restarts from the same address and port with a new
    ClientHello replaces its old connection once its cookie verifies
    (RFC 6347 §4.2.8); until then the old connection stays.
    """
    serverFactory = RecordingFactory(echo=True)
    port = listen(network, pki, serverFactory)
    first, firstOutcome = connect(network, pki, port, bindAddress=("127.0.0.5", 5555))
    network.flush()
    assert firstOutcome.result is not None
    # The first client dies without a word: its socket disappears.
    network.crash("127.0.0.5", 5555)
    second, secondOutcome = connect(network, pki, port, bindAddress=("127.0.0.5", 5555))
    network.deliverOne()  # new ClientHello -> HelloVerifyRequest
    assert port.stats.helloVerifyRequestsSent == 2
    assert serverFactory.protocols[0].lost == []
    network.flush()
    assert secondOutcome.result is not None
    old, new = serverFactory.protocols
    assert len(old.lost) == 1 and old.lost[0].check(DTLSConnectionLost)
    assert "restarted" in old.lost[0].getErrorMessage()
    assert new.lost == []
    assert port.stats.peerRestarts == 1
    assert port.stats.connectionsOpen == 1
    secondOutcome.result.transport.write(b"again")
    network.flush()
    assert secondOutcome.result.received == [b"again"]


def test_duplicateClientHelloDoesNotRestart(network, pki):
    """
    A late duplicate of the cookie ClientHello that created a connection
    (same random) is not a restart.
    """
    port = listen(network, pki)
    clientFactory, outcome = connect(network, pki, port)
    network.flush()
    cookieHello = [d for d in network.to(("127.0.0.1", 4433))][1]
    network.inject(cookieHello.source, cookieHello.destination, cookieHello.data)
    network.flush()
    assert port.stats.peerRestarts == 0
    assert port.stats.connectionsOpen == 1
    assert clientFactory.protocols[0].lost == []


def test_floodOfClientHellosKeepsNoState(network, pki):
    """
    3000 ClientHellos without a cookie from many addresses: each gets exactly
    one HelloVerifyRequest whose record sequence number and message_seq are
    the ClientHello's (RFC 6347 §4.2.1), and the port keeps nothing — no
    connection, no timer — while a real client completes a handshake in the
    middle.
    """
    port = listen(network, pki)
    server = ("127.0.0.1", 4433)
    hellos = [clientHello() for _ in range(4)]
    sources = []
    for i in range(3000):
        source = (f"127.0.{1 + i // 250}.{1 + i % 250}", 20000 + i)
        sequence = (i * 7919) % 5000
        network.inject(source, server, withRecordSequence(hellos[i % 4], sequence))
        sources.append((source, sequence))
        if i == 1500:
            clientFactory, outcome = connect(network, pki, port, bindAddress=("127.0.0.1", 0))
    network.flush()
    assert outcome.result is not None
    assert port.stats.connectionsOpen == 1
    assert port.stats.connectionsAccepted == 1
    assert port.stats.helloVerifyRequestsSent == 3001
    replies: dict = {}
    for datagram in network.sent:
        if datagram.source == server:
            replies.setdefault(datagram.destination, []).append(datagram.data)
    for source, sequence in sources:
        (reply,) = replies[source]
        contentType, recordSequence, messageType, messageSeq = handshakeInfo(reply)
        assert (contentType, messageType) == (ContentType.handshake, HandshakeType.hello_verify_request)
        assert recordSequence == sequence
        assert messageSeq == 0
    # Only the real client's connection holds a timer (its idle timeout).
    assert len(network.reactor.getDelayedCalls()) == 1
    outcome.result.transport.loseConnection()
    network.flush()
    assert port.stats.connectionsOpen == 0
    assert network.reactor.getDelayedCalls() == []


def test_garbageIsDroppedAndCounted(network, pki):
    port = listen(network, pki)
    server = ("127.0.0.1", 4433)
    hello = clientHello()
    samples = {
        b"": "not_a_record",
        b"\x17\xfe\xfd" + b"\x00" * 10: None,
        os.urandom(200): None,
        hello[:40]: None,
        b"\x17\xfe\xfd\x00\x01" + b"\x00" * 6 + b"\x00\x05hello": "not_handshake",
        bytes([22]) + hello[1:13] + bytes([2]) + hello[14:]: "not_client_hello",
    }
    for i, data in enumerate(samples):
        network.inject(("127.0.0.9", 1000 + i), server, data)
    network.flush()
    stats = port.stats
    assert stats.connectionsOpen == 0 and stats.helloVerifyRequestsSent == 0
    assert sum(stats.drops.values()) == len(samples)
    for data, reason in samples.items():
        if reason is not None:
            assert stats.drops[reason] >= 1, (reason, stats.drops)
    assert [d for d in network.sent if d.source == server] == []


def test_truncatedDatagramIsDropped(network, pki):
    port = listen(network, pki, maxPacketSize=100)
    hello = clientHello()
    assert len(hello) > 100
    network.inject(("127.0.0.9", 1000), ("127.0.0.1", 4433), hello)
    network.flush()
    assert port.stats.drops["truncated"] == 1
    assert port.stats.helloVerifyRequestsSent == 0


def test_sharedCookieSecret(network, pki):
    """
    Two ports given the same cookie secret accept each other's cookies: a
    client answered by one port gets its connection from the other without a
    second HelloVerifyRequest. Without the secret the second port asks again.
    """
    secret = b"s" * 32
    for shared, expectedVerifies in ((secret, 0), (None, 1)):
        network.__init__()
        first = listen(network, pki, cookieSecret=secret)
        clientFactory, outcome = connect(network, pki, first)
        network.deliverOne()  # ClientHello -> first port's HelloVerifyRequest
        network.deliverOne()  # HelloVerifyRequest -> client's second ClientHello
        first.stopListening()
        second = listen(network, pki, cookieSecret=shared)
        network.flush()
        assert outcome.result is not None
        assert first.stats.helloVerifyRequestsSent == 1
        assert second.stats.helloVerifyRequestsSent == expectedVerifies
        assert second.stats.connectionsAccepted == 1


def test_stopListeningClosesConnections(network, pki):
    serverFactory = RecordingFactory()
    port = listen(network, pki, serverFactory)
    clientFactory, outcome = connect(network, pki, port)
    network.flush()
    d = port.stopListening()
    network.flush()
    results = []
    d.addCallback(results.append)
    assert results == [None]
    assert serverFactory.protocols[0].lost[0].check(ConnectionDone)
    assert outcome.result.lost[0].check(ConnectionDone)
    assert serverFactory.stopped == 1
    assert not network.isBound("127.0.0.1", 4433)
    assert network.reactor.getDelayedCalls() == []


def test_factoryRefusesPeer(network, pki):
    """
    A factory returning None refuses the peer after the handshake: the
    peer is sent a fatal access_denied alert and nothing is kept.
    """
    port = listen(network, pki, RecordingFactory(refuse=True))
    clientFactory, outcome = connect(network, pki, port)
    network.flush()
    assert port.stats.connectionsRefused == 1
    assert port.stats.handshakesCompleted == 1
    assert port.stats.connectionsOpen == 0
    client = outcome.result
    assert client.calls == ["connectionMade", "handshakeCompleted", "connectionLost"]
    from twisted_dtls.core.constants import AlertDescription
    from twisted_dtls.transport import DTLSConnectionLost

    assert client.lost[0].check(DTLSConnectionLost)
    assert client.lost[0].value.alert == AlertDescription.access_denied


def test_clientConfigurationMismatchCountsFailedHandshake(network, pki):
    serverFactory = RecordingFactory()
    port = listen(network, pki, serverFactory)
    clientFactory, outcome = connect(network, pki, port, configuration=clientConfiguration(pki, server_name="other.example"))
    network.flush()
    assert outcome.failure is not None
    assert port.stats.handshakesFailed == 1
    assert port.stats.connectionsOpen == 0
    assert serverFactory.addresses == []


def test_memoryNetworkClaimsItsInterfaces(network):
    from twisted.internet.interfaces import IReactorUDP, IUDPTransport

    from twisted.internet.protocol import DatagramProtocol

    assert verifyObject(IReactorUDP, network.reactor)
    assert verifyObject(IUDPTransport, network.reactor.listenUDP(0, DatagramProtocol()))
