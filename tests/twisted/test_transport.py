"""
The per-peer transport as a protocol sees it, on both ends, over the
in-memory network.
"""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from zope.interface.verify import verifyObject

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectingCancelledError, ConnectionAborted, ConnectionDone, ConnectionRefusedError
from twisted.internet.interfaces import ITransport

from tests.certs import self_signed
from tests.twisted.recording import Outcome, RecordingFactory, clientConfiguration, connect, listen
from twisted_dtls.client import connectDTLS
from twisted_dtls.core.configuration import DTLSConfiguration
from twisted_dtls.core.connection import DTLSConnection
from twisted_dtls.core.constants import AlertDescription, CipherSuite
from twisted_dtls.core.events import CloseReason
from twisted_dtls.transport import (
    DTLSClientTransport,
    DTLSHandshakeError,
    DTLSHandshakeTimeout,
    IDTLSTransport,
    RecordTooLargeError,
)


def established(network, pki, serverFactory=None, **clientOptions):
    serverFactory = serverFactory or RecordingFactory()
    port = listen(network, pki, serverFactory)
    clientFactory, outcome = connect(network, pki, port, **clientOptions)
    network.flush()
    assert outcome.result is not None, outcome.failure
    return port, outcome.result, serverFactory.protocols[0]


def test_interfaces(network, pki):
    port, client, server = established(network, pki)
    for protocol in (client, server):
        assert verifyObject(ITransport, protocol.transport)
        assert verifyObject(IDTLSTransport, protocol.transport)


def test_addresses(network, pki):
    port, client, server = established(network, pki)
    assert client.transport.getPeer() == IPv4Address("UDP", "127.0.0.1", 4433)
    assert server.transport.getHost() == IPv4Address("UDP", "127.0.0.1", 4433)
    assert server.transport.getPeer() == client.transport.getHost()
    assert client.transport.getHost().type == "UDP"


def test_negotiatedParameters(network, pki):
    port, client, server = established(network, pki)
    for transport in (client.transport, server.transport):
        assert transport.cipherSuite == CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256.name
        assert transport.version == "DTLSv1.2"
        assert transport.negotiatedProtocol is None
    assert client.transport.getPeerCertificate() == pki.server_ec.chain[0]
    assert client.transport.getPeerCertificates()[0] == pki.server_ec.chain[0]
    # No client authentication: the server sees no certificate.
    assert server.transport.getPeerCertificate() is None
    # Both ends export the same keying material (RFC 5705).
    label = b"EXTRACTOR-dtls_srtp"
    assert client.transport.exportKeyingMaterial(label, None, 32) == server.transport.exportKeyingMaterial(label, None, 32)


def test_handshakeListenerOrder(network, pki):
    port, client, server = established(network, pki)
    assert client.calls == ["connectionMade", "handshakeCompleted"]
    assert server.calls == ["connectionMade", "handshakeCompleted"]


def test_eachWriteIsOneRecord(network, pki):
    port, client, server = established(network, pki)
    before = len(network.sent)
    client.transport.write(b"one")
    client.transport.write(b"two")
    client.transport.writeSequence([b"th", b"r", b"ee"])
    client.transport.write(b"")
    network.flush()
    assert server.received == [b"one", b"two", b"three"]
    assert len(network.sent) - before == 3


def test_writeLimit(network, pki):
    port, client, server = established(network, pki, configuration=clientConfiguration(pki, max_datagram_size=500))
    limit = client.transport.maxWriteSize
    # 13-byte header, 8-byte explicit nonce and 16-byte tag (AES-GCM).
    assert limit == 500 - 13 - 8 - 16
    client.transport.write(b"x" * limit)
    network.flush()
    assert server.received == [b"x" * limit]
    assert max(len(d.data) for d in network.sent[-1:]) == 500
    with pytest.raises(RecordTooLargeError, match=f"{limit}-byte limit"):
        client.transport.write(b"x" * (limit + 1))
    with pytest.raises(RecordTooLargeError):
        client.transport.writeSequence([b"x" * limit, b"y"])
    with pytest.raises(TypeError):
        client.transport.write("text")


def test_closeNotifyFromClient(network, pki):
    port, client, server = established(network, pki)
    client.transport.loseConnection()
    client.transport.loseConnection()
    network.flush()
    assert len(client.lost) == 1 and client.lost[0].check(ConnectionDone)
    assert len(server.lost) == 1 and server.lost[0].check(ConnectionDone)
    assert client.transport.disconnected and not client.transport.connected
    # Writes after loseConnection are discarded, as on TCP.
    client.transport.write(b"late")
    network.flush()
    assert server.received == []
    assert port.stats.connectionsOpen == 0


def test_closeNotifyFromServerInsideDataReceived(network, pki):
    """
    loseConnection from inside dataReceived: the reply written before it
    still goes out, then the close_notify, then connectionLost — once.
    """

    class Replier(RecordingFactory):
        def buildProtocol(self, addr):
            protocol = super().buildProtocol(addr)

            def dataReceived(data, protocol=protocol):
                protocol.received.append(data)
                protocol.transport.write(b"bye")
                protocol.transport.loseConnection()

            protocol.dataReceived = dataReceived
            return protocol

    port, client, server = established(network, pki, Replier())
    client.transport.write(b"hello")
    network.flush()
    assert client.received == [b"bye"]
    assert client.lost[0].check(ConnectionDone) and len(client.lost) == 1
    assert server.lost[0].check(ConnectionDone) and len(server.lost) == 1


def test_abortConnection(network, pki):
    port, client, server = established(network, pki)
    before = len(network.sent)
    server.transport.abortConnection()
    network.flush()
    assert len(network.sent) == before  # no alert at all
    assert len(server.lost) == 1 and server.lost[0].check(ConnectionAborted)
    assert client.lost == []
    assert port.stats.connectionsOpen == 0


def test_recordsAfterServerForgotAreDropped(network, pki):
    """
    A client that sends its application data after the server forgot it
    (abort): the peer's records are dropped silently — no state, no alert
    — and the client notices only through its own idle timeout.
    """
    port, client, server = established(network, pki)
    server.transport.abortConnection()
    client.transport.write(b"anyone?")
    network.flush()
    assert port.stats.drops["not_handshake"] == 1
    assert client.lost == []


def test_untrustedCertificate(network, pki):
    stranger = self_signed("localhost")
    serverFactory = RecordingFactory()
    port = listen(network, pki, serverFactory,
                  configuration=DTLSConfiguration(certificate_chain=tuple(stranger.chain), private_key=stranger.key))
    clientFactory, outcome = connect(network, pki, port)
    network.flush()
    failure = outcome.failure
    assert failure is not None and failure.check(DTLSHandshakeError)
    assert failure.value.closeReason is CloseReason.ALERT_SENT
    assert failure.value.alert in (AlertDescription.unknown_ca, AlertDescription.bad_certificate)
    assert "DTLS handshake failed" in failure.getErrorMessage()
    assert clientFactory.addresses == [] and serverFactory.addresses == []
    assert port.stats.handshakesFailed == 1


def test_pinnedSelfSignedCertificate(network, pki):
    stranger = self_signed("localhost")
    port = listen(network, pki, configuration=DTLSConfiguration(certificate_chain=tuple(stranger.chain),
                                                                private_key=stranger.key))
    pin = hashlib.sha256(stranger.cert.public_bytes(serialization.Encoding.DER)).digest()
    clientFactory, outcome = connect(network, pki, port,
                                     configuration=DTLSConfiguration(pinned_sha256=frozenset([pin])))
    network.flush()
    assert outcome.result is not None
    assert outcome.result.transport.getPeerCertificate() == stranger.cert


def test_nameMismatch(network, pki):
    port = listen(network, pki)
    clientFactory, outcome = connect(network, pki, port,
                                     configuration=clientConfiguration(pki, server_name="www.example.com"))
    network.flush()
    assert outcome.failure.check(DTLSHandshakeError)
    assert outcome.failure.value.alert is not None


def test_noSharedCipherSuite(network, pki):
    port = listen(network, pki)  # ECDSA certificate
    clientFactory, outcome = connect(network, pki, port, configuration=clientConfiguration(
        pki, cipher_suites=(CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,)))
    network.flush()
    failure = outcome.failure
    assert failure.check(DTLSHandshakeError)
    assert failure.value.closeReason is CloseReason.ALERT_RECEIVED
    assert failure.value.alert == AlertDescription.handshake_failure
    assert "handshake_failure" in failure.getErrorMessage()


def test_handshakeTimeoutWithNobodyAnswering(network, pki):
    # The server's address is bound but the port never answers.
    network.dropIf = lambda datagram: datagram.destination == ("127.0.0.1", 4433)
    port = listen(network, pki)
    clientFactory, outcome = connect(network, pki, port, timeout=10.0)
    network.run(10.1, step=0.5)
    assert outcome.failure.check(DTLSHandshakeTimeout)
    # The client retransmitted through the reactor with a doubling timeout:
    # at 0, 1, 3 and 7 seconds.
    assert len(network.dropped) == 4
    assert network.reactor.getDelayedCalls() == []


def test_connectionRefused(network, pki):
    factory = RecordingFactory()
    d = connectDTLS(network.reactor, "127.0.0.1", 9, factory, clientConfiguration(pki))
    outcome = Outcome(d)
    network.flush()
    assert outcome.failure.check(ConnectionRefusedError)
    assert network.reactor.getDelayedCalls() == []


def test_cancelConnect(network, pki):
    port = listen(network, pki)
    factory = RecordingFactory()
    d = connectDTLS(network.reactor, "127.0.0.1", 4433, factory, clientConfiguration(pki))
    outcome = Outcome(d)
    d.cancel()
    assert outcome.failure.check(ConnectingCancelledError)
    network.flush()
    assert factory.addresses == []
    assert network.reactor.getDelayedCalls() == []


def test_writesBeforeHandshakeAreQueued(network, pki):
    """
    Writes made on a client transport before its handshake completes are
    sent, in order, right after it does (before connectionMade's writes).
    """
    port = listen(network, pki)
    udp = network.reactor.listenUDP(0, _Sink(), interface="127.0.0.1")
    udp.connect("127.0.0.1", 4433)
    factory = RecordingFactory()
    from twisted.internet.defer import Deferred

    whenConnected = Deferred()
    connection = DTLSConnection(clientConfiguration(pki), is_client=True)
    transport = DTLSClientTransport(network.reactor, connection, udp, udp.getHost(),
                                    IPv4Address("UDP", "127.0.0.1", 4433), factory, None, None, whenConnected)
    udp.protocol.dtls = transport
    connection.connect(network.reactor.seconds())
    transport.start()
    transport.write(b"early 1")
    transport.writeSequence([b"early", b" 2"])
    network.flush()
    server = port.factory.protocols[0]
    assert server.received == [b"early 1", b"early 2"]
    assert factory.protocols[0].calls == ["connectionMade", "handshakeCompleted", "dataReceived", "dataReceived"]


class _Sink:
    """
    A minimal datagram protocol that hands datagrams to a DTLS transport.
    """

    dtls = None

    def makeConnection(self, transport):
        self.transport = transport

    def datagramReceived(self, data, addr):
        self.dtls.datagramReceived(data)

    def doStop(self):
        pass


def test_exceptionInDataReceivedAbortsAndIsLogged(network, pki, logged_errors):
    class Broken(RecordingFactory):
        def buildProtocol(self, addr):
            protocol = super().buildProtocol(addr)

            def dataReceived(data):
                raise RuntimeError("application bug")

            protocol.dataReceived = dataReceived
            return protocol

    port, client, server = established(network, pki, Broken())
    client.transport.write(b"boom")
    network.flush()
    assert server.lost[0].check(ConnectionAborted)
    assert len(logged_errors.events) == 1
    assert logged_errors.events[0]["log_failure"].check(RuntimeError)
    logged_errors.clear()
    assert port.stats.connectionsOpen == 0


class ScriptedEngine:
    """
    Stands in for DTLSConnection: emits the events a test queues, so the
    Twisted layer's mapping of each outcome can be checked directly.
    """

    max_send_size = 1000

    def __init__(self):
        self.events = []
        self.sent = []
        self.closed = False

    def receive_datagram(self, data, now):
        pass

    def receive_application_datagram(self, data, now):
        # As DTLSConnection: anything not an application record is handled
        # as receive_datagram handles it, and the events tell.
        self.receive_datagram(data, now)
        return None

    @property
    def is_closed(self):
        return self.closed

    def seal_application_datagram(self, data):
        self.sent.append(data)
        return None

    def datagrams_to_send(self, now):
        return []

    def get_timer(self):
        return None

    def handle_timer(self, now):
        pass

    def next_event(self):
        return self.events.pop(0) if self.events else None

    def send(self, data):
        self.sent.append(data)

    def close(self):
        self.closed = True

    def abort(self):
        self.closed = True


def scriptedTransport(network, factory, whenConnected):
    from twisted_dtls.core.events import HandshakeCompleted

    engine = ScriptedEngine()
    udp = network.reactor.listenUDP(0, _Sink(), interface="127.0.0.1")
    transport = DTLSClientTransport(network.reactor, engine, udp, udp.getHost(),
                                    IPv4Address("UDP", "127.0.0.1", 9), factory, None, None, whenConnected)
    engine.events.append(HandshakeCompleted(cipher_suite=0xC02B, version=0xFEFD, alpn_protocol="coap"))
    transport.datagramReceived(b"")
    return engine, transport


def test_fatalAlertAfterHandshakeIsConnectionLost(network):
    from twisted.internet.defer import Deferred

    from twisted_dtls.core.events import ConnectionClosed
    from twisted_dtls.transport import DTLSConnectionLost

    factory = RecordingFactory()
    engine, transport = scriptedTransport(network, factory, Deferred())
    protocol = factory.protocols[0]
    assert transport.negotiatedProtocol == b"coap"
    engine.events.append(ConnectionClosed(CloseReason.ALERT_RECEIVED, AlertDescription.decrypt_error, "peer sent fatal alert decrypt_error"))
    transport.datagramReceived(b"")
    assert len(protocol.lost) == 1
    failure = protocol.lost[0]
    assert failure.check(DTLSConnectionLost)
    assert failure.value.alert == AlertDescription.decrypt_error
    assert failure.value.closeReason is CloseReason.ALERT_RECEIVED
    assert "peer sent fatal alert decrypt_error" in failure.getErrorMessage()


def test_socketClosedByReactorAfterHandshake(network):
    """
    The epoll reactor closes a connected UDP socket on an ICMP error; an
    established connection then ends with ConnectionLost, once.
    """
    from twisted.internet.defer import Deferred

    from twisted_dtls.transport import DTLSConnectionLost

    factory = RecordingFactory()
    engine, transport = scriptedTransport(network, factory, Deferred())
    transport.socketClosed()
    transport.socketClosed()
    protocol = factory.protocols[0]
    assert len(protocol.lost) == 1 and protocol.lost[0].check(DTLSConnectionLost)
    assert "ICMP" in protocol.lost[0].getErrorMessage()
