"""
L{DTLSPort}: a DTLS server on one UDP socket.

For each datagram (RFC 6347 §4.2.1, §4.2.8):

  1. the sender's address names an existing connection: the datagram is
     that connection's;
  2. otherwise it may only be a ClientHello: anything else is dropped with a
     counted reason, and nothing is allocated;
  3. a ClientHello without a valid cookie is answered with a
     HelloVerifyRequest built from it alone: no per-peer object, no timer;
  4. a ClientHello with a valid cookie creates the per-peer connection,
     within the port's limits.

The port never lets an exception escape C{datagramReceived}: Twisted's UDP
port would only log it and carry on, so an error there would be silent.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Optional

from zope.interface import implementer

from twisted.internet import error
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from twisted_dtls.core.configuration import DTLSConfiguration
from twisted_dtls.core.connection import DTLSConnection
from twisted_dtls.core.cookie import CookieContext
from twisted_dtls.core.listener import Verdict, examine_first_datagram
from twisted_dtls.transport import DTLSServerTransport

__all__ = ["DTLSPort", "DTLSPortStatistics", "listenDTLS", "DEFAULT_LIMITS", "MAX_UDP_READ"]

#: Read size for the UDP socket: larger than any UDP payload, so nothing is
#: ever truncated by the read itself (Twisted's default is 8192).
MAX_UDP_READ = 65535

#: The port's default limits (see L{DTLSPort}).
DEFAULT_LIMITS = {
    "maxConnections": 10000,
    "maxHandshakes": 1000,
    "handshakeTimeout": 60.0,
    "idleTimeout": 300.0,
}

# Offsets in a DTLS datagram that starts with a ClientHello record:
# record header (13) + handshake header (12) + client_version (2).
_RECORD_HEADER = 13
_RANDOM_START = _RECORD_HEADER + 12 + 2
_RANDOM_END = _RANDOM_START + 32


def _clientRandom(datagram: bytes) -> bytes:
    """
    The client random of a datagram that starts with an epoch-0 ClientHello
    record, or C{b""} if it does not.
    """
    if (
        len(datagram) >= _RANDOM_END
        and datagram[0] == 22  # handshake
        and datagram[3] == 0
        and datagram[4] == 0  # epoch 0
        and datagram[_RECORD_HEADER] == 1  # client_hello
    ):
        return datagram[_RANDOM_START:_RANDOM_END]
    return b""


@dataclass
class DTLSPortStatistics:
    """
    Counters of a L{DTLSPort}, readable at any time.

    @ivar datagramsReceived: every datagram read from the socket.
    @ivar datagramsSent: every datagram written to it.
    @ivar drops: datagrams dropped before reaching a connection, by reason
        (C{"truncated"}, C{"connection_limit"}, C{"handshake_limit"}, and the
        reasons of L{examine_first_datagram}, such as a bad cookie or a record
        that is not a ClientHello).
    @ivar sendErrors: writes the socket refused.
    @ivar helloVerifyRequestsSent: HelloVerifyRequests sent (no state kept).
    @ivar connectionsAccepted: connections created from a verified cookie.
    @ivar handshakesCompleted: handshakes that completed.
    @ivar handshakesFailed: handshakes that failed (alert, timeout, abort).
    @ivar connectionsRefused: completed handshakes whose factory returned None.
    @ivar peerRestarts: connections replaced by a new, cookie-verified
        ClientHello from the same address (RFC 6347 §4.2.8).
    @ivar connectionsOpen: connections held now (handshaking or established).
    @ivar handshakesInProgress: connections held now whose handshake has not
        completed.
    """

    datagramsReceived: int = 0
    datagramsSent: int = 0
    drops: collections.Counter = field(default_factory=collections.Counter)
    sendErrors: int = 0
    helloVerifyRequestsSent: int = 0
    connectionsAccepted: int = 0
    handshakesCompleted: int = 0
    handshakesFailed: int = 0
    connectionsRefused: int = 0
    peerRestarts: int = 0
    connectionsOpen: int = 0
    handshakesInProgress: int = 0


def _address(host: str, port: int):
    if ":" in host:
        return IPv6Address("UDP", host, port)
    return IPv4Address("UDP", host, port)


class _PortProtocol(DatagramProtocol):
    """
    The UDP side of a L{DTLSPort}; the one place where reading and the
    never-raise rule meet.
    """

    noisy = False
    _log = Logger()

    def __init__(self, port: "DTLSPort"):
        self._port = port

    def datagramReceived(self, datagram: bytes, addr) -> None:
        try:
            self._port._datagramReceived(datagram, addr)
        except Exception:
            # A bug, never peer input: make it loud, but do not let udp.Port
            # see it.
            self._log.failure("Internal error in DTLSPort handling a datagram from {peer}", peer=addr)


@implementer(IListeningPort)
class DTLSPort:
    """
    A DTLS server listening on one UDP socket.

    @ivar factory: builds one protocol per peer whose handshake completed,
        with C{buildProtocol(peerAddress)}; returning None refuses the peer
        (it gets a close_notify and its connection is forgotten).
    @ivar stats: the port's L{DTLSPortStatistics}.
    @ivar maxConnections: connections held at once (handshaking plus
        established); a cookie-verified ClientHello beyond it is dropped
        (counted as C{connection_limit}), so the client retries later.
    @ivar maxHandshakes: connections whose handshake is in progress at once;
        beyond it, C{handshake_limit}.
    @ivar handshakeTimeout: seconds from the cookie-verified ClientHello to a
        completed handshake, or the connection is dropped (None: only the
        engine's retransmission budget applies).
    @ivar idleTimeout: seconds without a datagram from an established peer
        before it is sent a close_notify and forgotten (None: never).
    """

    _log = Logger()

    def __init__(
        self,
        reactor,
        port: int,
        factory,
        configuration: DTLSConfiguration,
        interface: str = "",
        maxPacketSize: int = MAX_UDP_READ,
        cookieSecret: Optional[bytes] = None,
        cookieLifetime: float = 60.0,
        maxConnections: int = DEFAULT_LIMITS["maxConnections"],
        maxHandshakes: int = DEFAULT_LIMITS["maxHandshakes"],
        handshakeTimeout: Optional[float] = DEFAULT_LIMITS["handshakeTimeout"],
        idleTimeout: Optional[float] = DEFAULT_LIMITS["idleTimeout"],
    ):
        """
        @param reactor: provides C{listenUDP}, C{seconds} and C{callLater}.
        @param port: UDP port number (0 picks a free one; see L{getHost}).
        @param interface: the address to bind: C{""} or C{"0.0.0.0"} for
            every IPv4 address, C{"::"} for every IPv6 one, or one address.
        @param maxPacketSize: the read size; a datagram that fills it is
            taken as truncated and dropped.
        @param cookieSecret: HMAC key for HelloVerifyRequest cookies. Ports
            given the same secret accept each other's cookies; None makes a
            random one, rotated by the cookie context.
        @raise twisted_dtls.core.errors.ConfigurationError: for a
            configuration a server cannot use.
        @raise ValueError: for a limit that is not positive.
        """
        configuration.validate(is_client=False)
        for name, value in (("maxConnections", maxConnections), ("maxHandshakes", maxHandshakes),
                            ("maxPacketSize", maxPacketSize)):
            if int(value) < 1:
                raise ValueError(f"{name} must be at least 1, not {value!r}")
        for name, value in (("handshakeTimeout", handshakeTimeout), ("idleTimeout", idleTimeout)):
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive (or None), not {value!r}")
        self._reactor = reactor
        self._portNumber = port
        self._interface = interface
        self.factory = factory
        self._configuration = configuration
        self._maxPacketSize = maxPacketSize
        self._cookies = CookieContext(cookieSecret, cookieLifetime)
        self.maxConnections = int(maxConnections)
        self.maxHandshakes = int(maxHandshakes)
        self.handshakeTimeout = handshakeTimeout
        self.idleTimeout = idleTimeout
        self.stats = DTLSPortStatistics()
        self._connections: dict[tuple, DTLSServerTransport] = {}
        self._handshaking: set[DTLSServerTransport] = set()
        self._udp = None
        self._hostAddress = None

    def __repr__(self) -> str:
        where = self._hostAddress if self._hostAddress is not None else f"port {self._portNumber} (not listening)"
        return f"<DTLSPort {where}>"

    # -- IListeningPort --------------------------------------------------------

    def startListening(self) -> None:
        """
        Bind the UDP socket and start the factory.

        @raise twisted.internet.error.CannotListenError: if binding fails.
        """
        self._udp = self._reactor.listenUDP(
            self._portNumber, _PortProtocol(self), interface=self._interface, maxPacketSize=self._maxPacketSize
        )
        host = self._udp.getHost()
        self._hostAddress = _address(host.host, host.port)
        self.factory.doStart()
        self._log.info("DTLS port listening on {host}:{port}", host=host.host, port=host.port)

    def stopListening(self) -> Deferred:
        """
        Send close_notify to every established peer, drop every handshake in
        progress, then close the socket and stop the factory.
        """
        if self._udp is None:
            return succeed(None)
        for transport in list(self._connections.values()):
            if transport.connected:
                transport.loseConnection()
            else:
                transport.abortConnection()
        udp, self._udp = self._udp, None
        d = maybeDeferred(udp.stopListening)
        d.addCallback(lambda _: self.factory.doStop())
        return d

    loseConnection = stopListening

    def getHost(self):
        """
        The bound address, as an L{IPv4Address} or L{IPv6Address} of type
        C{"UDP"}.
        """
        return self._hostAddress

    @property
    def configuration(self) -> DTLSConfiguration:
        """
        The configuration every connection of this port uses.
        """
        return self._configuration

    @property
    def connections(self) -> tuple:
        """
        The per-peer transports held now (handshaking and established).
        """
        return tuple(self._connections.values())

    # -- datagrams ---------------------------------------------------------------

    def _datagramReceived(self, datagram: bytes, addr) -> None:
        stats = self.stats
        stats.datagramsReceived += 1
        if len(datagram) >= self._maxPacketSize:
            stats.drops["truncated"] += 1
            return
        key = (addr[0], addr[1])
        transport = self._connections.get(key)
        if transport is not None:
            random = _clientRandom(datagram)
            if random and random != transport.clientRandom and self._newClientHello(transport, datagram, key, random):
                return
            transport.datagramReceived(datagram)
            return
        self._firstDatagram(datagram, key)

    def _examine(self, datagram: bytes, key: tuple):
        return examine_first_datagram(datagram, key, self._cookies, self._reactor.seconds())

    def _firstDatagram(self, datagram: bytes, key: tuple) -> None:
        verdict = self._examine(datagram, key)
        if verdict.verdict is Verdict.HELLO_VERIFY:
            self.stats.helloVerifyRequestsSent += 1
            self._sendTo(verdict.reply, key)
        elif verdict.verdict is Verdict.ACCEPT:
            self._accept(datagram, key, _clientRandom(datagram))
        else:
            self.stats.drops[verdict.reason or "dropped"] += 1

    def _newClientHello(self, transport: DTLSServerTransport, datagram: bytes, key: tuple, random: bytes) -> bool:
        """
        A ClientHello with a new random from the address of an existing
        connection: the peer may have restarted (RFC 6347 §4.2.8). The old
        connection stays until the new ClientHello proves the address with a
        cookie.

        @return: True if the datagram was handled here, False if it belongs
            to the existing connection.
        """
        verdict = self._examine(datagram, key)
        if verdict.verdict is Verdict.HELLO_VERIFY:
            self.stats.helloVerifyRequestsSent += 1
            self._sendTo(verdict.reply, key)
            return True
        if verdict.verdict is Verdict.ACCEPT:
            self.stats.peerRestarts += 1
            self._log.info("DTLS peer {peer} restarted with a new ClientHello", peer=transport.getPeer())
            transport._peerRestarted()
            self._accept(datagram, key, random)
            return True
        return False

    def _accept(self, datagram: bytes, key: tuple, random: bytes) -> None:
        stats = self.stats
        if len(self._connections) >= self.maxConnections:
            stats.drops["connection_limit"] += 1
            return
        if len(self._handshaking) >= self.maxHandshakes:
            stats.drops["handshake_limit"] += 1
            return
        connection = DTLSConnection(self._configuration, is_client=False)
        transport = DTLSServerTransport(
            self, connection, _address(key[0], key[1]), self.handshakeTimeout, self.idleTimeout, random
        )
        self._connections[key] = transport
        self._handshaking.add(transport)
        stats.connectionsAccepted += 1
        stats.connectionsOpen = len(self._connections)
        stats.handshakesInProgress = len(self._handshaking)
        transport.datagramReceived(datagram)

    def _sendTo(self, datagram: bytes, key: tuple) -> None:
        if self._udp is None:
            return
        try:
            self._udp.write(datagram, key)
        except (OSError, error.MessageLengthError) as e:
            self.stats.sendErrors += 1
            self._log.debug("DTLS send to {peer} failed: {error}", peer=key, error=e)
            return
        self.stats.datagramsSent += 1

    # -- bookkeeping called by DTLSServerTransport --------------------------------

    def _handshakeFinished(self, transport: DTLSServerTransport) -> None:
        if transport in self._handshaking:
            self._handshaking.discard(transport)
            self.stats.handshakesCompleted += 1
            self.stats.handshakesInProgress = len(self._handshaking)

    def _removeConnection(self, transport: DTLSServerTransport) -> None:
        key = transport._udpAddress
        if self._connections.get(key) is transport:
            del self._connections[key]
        if transport in self._handshaking:
            self._handshaking.discard(transport)
            self.stats.handshakesFailed += 1
        self.stats.connectionsOpen = len(self._connections)
        self.stats.handshakesInProgress = len(self._handshaking)


def listenDTLS(reactor, port: int, factory, configuration: DTLSConfiguration, interface: str = "", **kwargs) -> DTLSPort:
    """
    Create a L{DTLSPort} and start listening, as C{reactor.listenSSL} does
    for TLS.

    @param kwargs: the limits and options of L{DTLSPort}.
    @return: the listening L{DTLSPort}.
    """
    p = DTLSPort(reactor, port, factory, configuration, interface=interface, **kwargs)
    p.startListening()
    return p
