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

Before step 2, every datagram from an unknown address spends one token of
its source's bucket (L{HelloRateLimiter}): what a source can make the port
parse, MAC and answer before it proves its address is bounded per second.
A cookie-verified ClientHello from the address of an established peer
(RFC 6347 §4.2.8) starts a second connection beside the first; the first is
replaced only when the new handshake completes.

The port never lets an exception escape C{datagramReceived}: Twisted's UDP
port would only log it and carry on, so an error there would be silent.
"""

from __future__ import annotations

import collections
import ipaddress
import os
import socket
from dataclasses import dataclass, field
from typing import Optional, Sequence

from zope.interface import implementer

from twisted.internet import error, udp
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

__all__ = ["DTLSPort", "DTLSPortStatistics", "HelloRateLimiter", "listenDTLS", "DEFAULT_LIMITS", "MAX_UDP_READ"]

#: Read size for the UDP socket: larger than any UDP payload, so nothing is
#: ever truncated by the read itself (Twisted's default is 8192).
MAX_UDP_READ = 65535

#: The port's default limits (see L{DTLSPort}).
DEFAULT_LIMITS = {
    "maxConnections": 10000,
    "maxHandshakes": 1000,
    "handshakeTimeout": 60.0,
    "idleTimeout": 300.0,
    "helloRate": 50.0,
    "helloBurst": 100,
    "maxHelloSources": 4096,
}

# Offsets in a DTLS datagram that starts with a ClientHello record:
# record header (13) + handshake header (12) + client_version (2).
_RECORD_HEADER = 13
_RANDOM_START = _RECORD_HEADER + 12 + 2
_RANDOM_END = _RANDOM_START + 32
_HANDSHAKE_CONTENT_TYPE = 22


def _sourceKey(host: str) -> str:
    """
    The rate-limiting key of a source host: the address itself for IPv4,
    its /64 prefix for IPv6 (one subscriber commonly holds a whole /64, so
    per-address buckets would be free to multiply).
    """
    if ":" not in host:
        return host
    try:
        packed = ipaddress.IPv6Address(host.split("%", 1)[0]).packed
    except ValueError:
        return host
    return packed[:8].hex()


class HelloRateLimiter:
    """
    A token bucket per source host for the work a port does for peers that
    have not proved their address yet (RFC 6347 §4.2.1: parsing a
    ClientHello, computing a cookie, sending a HelloVerifyRequest).

    Each source holds up to C{burst} tokens and gains C{rate} per second;
    every datagram from an unknown address spends one. The table is bounded
    to C{maxSources} buckets: when full, the least recently used bucket is
    forgotten (a forgotten source starts again with a full bucket, which is
    the most a new source gets anyway).

    @ivar rate: tokens per second per source.
    @ivar burst: bucket size.
    @ivar maxSources: buckets kept at once.
    """

    __slots__ = ("rate", "burst", "maxSources", "_buckets")

    def __init__(self, rate: float, burst: int, maxSources: int):
        self.rate = float(rate)
        self.burst = float(burst)
        self.maxSources = int(maxSources)
        self._buckets: collections.OrderedDict[str, list[float]] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, host: str, now: float) -> bool:
        """
        Spend one token of C{host}'s bucket.

        @return: False if the bucket is empty (the datagram should be
            dropped without being looked at).
        """
        key = host if ":" not in host else _sourceKey(host)
        buckets = self._buckets
        bucket = buckets.get(key)
        if bucket is None:
            if len(buckets) >= self.maxSources:
                buckets.popitem(last=False)
            buckets[key] = [self.burst - 1.0, now]
            return True
        buckets.move_to_end(key)
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens < 1.0:
            bucket[0] = tokens
            return False
        bucket[0] = tokens - 1.0
        return True


def _clientRandom(datagram: bytes) -> bytes:
    """
    The client random of a datagram that starts with an epoch-0 ClientHello
    record, or C{b""} if it does not.
    """
    if (
        len(datagram) >= _RANDOM_END
        and datagram[0] == _HANDSHAKE_CONTENT_TYPE
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
        (C{"truncated"}, C{"rate_limited"}, C{"connection_limit"},
        C{"handshake_limit"}, and the reasons of L{examine_first_datagram},
        such as a record that is not a ClientHello).
    @ivar sendErrors: writes the socket refused.
    @ivar helloVerifyRequestsSent: HelloVerifyRequests sent (no state kept).
    @ivar connectionsAccepted: connections created from a verified cookie.
    @ivar handshakesCompleted: handshakes that completed.
    @ivar handshakesFailed: handshakes that failed (alert, timeout, abort).
    @ivar connectionsRefused: completed handshakes whose factory returned None.
    @ivar peerRestarts: connections replaced by a new connection from the
        same address whose handshake completed (RFC 6347 §4.2.8).
    @ivar restartsPending: new handshakes in progress from the address of
        an established connection, which stays until they complete.
    @ivar sourcesTracked: source hosts in the rate limiter's table now
        (bounded by C{maxHelloSources}).
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
    restartsPending: int = 0
    sourcesTracked: int = 0
    connectionsOpen: int = 0
    handshakesInProgress: int = 0


def _address(host: str, port: int):
    if ":" in host:
        return IPv6Address("UDP", host, port)
    return IPv4Address("UDP", host, port)


def _adoptSocket(reactor, protocol, maxPacketSize: int, interface: str, port: int, fileDescriptor: Optional[int]):
    """
    A UDP port on a socket that the reactor adopts: one bound here with
    C{SO_REUSEPORT} set before C{bind} (which C{listenUDP} cannot do), or
    a duplicate of an inherited, already bound one.

    @raise twisted.internet.error.CannotListenError: if the socket cannot be
        had.
    """
    try:
        if fileDescriptor is not None:
            sock = socket.socket(fileno=os.dup(fileDescriptor))
            if sock.type != socket.SOCK_DGRAM or sock.family not in (socket.AF_INET, socket.AF_INET6):
                sock.close()
                raise OSError(f"file descriptor {fileDescriptor} is not a UDP socket")
        else:
            host = interface or "0.0.0.0"
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                sock.bind((host, port))
            except BaseException:
                sock.close()
                raise
    except (OSError, AttributeError) as e:
        # AttributeError: no SO_REUSEPORT on this platform.
        raise error.CannotListenError(interface, port, e) from None
    try:
        sock.setblocking(False)
        return reactor.adoptDatagramPort(sock.fileno(), sock.family, protocol, maxPacketSize)
    finally:
        # The reactor holds its own duplicate.
        sock.close()


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
    @ivar helloLimiter: the L{HelloRateLimiter} every datagram from an
        unknown address passes first.
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
        helloRate: float = DEFAULT_LIMITS["helloRate"],
        helloBurst: int = DEFAULT_LIMITS["helloBurst"],
        maxHelloSources: int = DEFAULT_LIMITS["maxHelloSources"],
        reusePort: bool = False,
        fileDescriptor: Optional[int] = None,
        cookieContext: Optional[CookieContext] = None,
        watchers: Sequence = (),
    ):
        """
        @param reactor: provides C{listenUDP}, C{seconds} and C{callLater}.
        @param port: UDP port number (0 picks a free one; see L{getHost}).
        @param interface: the address to bind: C{""} or C{"0.0.0.0"} for
            every IPv4 address, C{"::"} for every IPv6 one, or one address.
        @param maxPacketSize: the read size; a datagram that fills it is
            taken as truncated and dropped.
        @param cookieSecret: master secret of the HelloVerifyRequest cookies. Ports
            given the same secret accept each other's cookies; None makes a
            random one, rotated by the cookie context.
        @param helloRate: datagrams per second that one source host (an IPv4
            address, an IPv6 /64) may have looked at while it has no
            connection: ClientHellos answered with a HelloVerifyRequest,
            cookie checks, and everything dropped after parsing.
        @param helloBurst: how many such datagrams a source may send at once.
        @param maxHelloSources: source hosts whose buckets are kept.
        @param reusePort: bind with C{SO_REUSEPORT}, so that several
            processes (or ports) listen on one address and port and the
            kernel spreads peers over them by address hash, each peer
            staying on one socket (see C{docs/deployment.md}).
        @param fileDescriptor: listen on this already bound UDP socket
            (inherited from a supervisor, or systemd) instead of binding
            one; C{port} and C{interface} are then ignored. The descriptor
            stays the caller's: the port uses a duplicate.
        @param cookieContext: the L{CookieContext} to use instead of one
            made from C{cookieSecret} and C{cookieLifetime} (a
            L{twisted_dtls.secretfiles.CookieSecretFile}'s, rotated from a
            file).
        @param watchers: objects with C{start()} and C{stop()} run while the
            port listens (L{twisted_dtls.secretfiles.SecretFileWatcher}).
        @raise twisted_dtls.core.errors.ConfigurationError: for a
            configuration a server cannot use.
        @raise ValueError: for a limit that is not positive.
        """
        configuration.validate(is_client=False)
        for name, value in (("maxConnections", maxConnections), ("maxHandshakes", maxHandshakes),
                            ("maxPacketSize", maxPacketSize), ("helloBurst", helloBurst),
                            ("maxHelloSources", maxHelloSources)):
            if int(value) < 1:
                raise ValueError(f"{name} must be at least 1, not {value!r}")
        for name, value in (("handshakeTimeout", handshakeTimeout), ("idleTimeout", idleTimeout)):
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive (or None), not {value!r}")
        if helloRate <= 0:
            raise ValueError(f"helloRate must be positive, not {helloRate!r}")
        self._reactor = reactor
        self._portNumber = port
        self._interface = interface
        self.factory = factory
        self._configuration = configuration
        self._maxPacketSize = maxPacketSize
        self._cookies = cookieContext if cookieContext is not None else CookieContext(cookieSecret, cookieLifetime)
        self._reusePort = bool(reusePort)
        self._fileDescriptor = fileDescriptor
        self._watchers = tuple(watchers)
        self.maxConnections = int(maxConnections)
        self.maxHandshakes = int(maxHandshakes)
        self.handshakeTimeout = handshakeTimeout
        self.idleTimeout = idleTimeout
        self.helloLimiter = HelloRateLimiter(helloRate, helloBurst, maxHelloSources)
        self.stats = DTLSPortStatistics()
        self._connections: dict[tuple, DTLSServerTransport] = {}
        #: address -> the new connection of a peer that restarted, held
        #: beside the established one until its handshake completes
        self._restarts: dict[tuple, DTLSServerTransport] = {}
        self._handshaking: set[DTLSServerTransport] = set()
        self._udp = None
        self._socketSendTo = None
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
        if self._reusePort or self._fileDescriptor is not None:
            self._udp = _adoptSocket(
                self._reactor, _PortProtocol(self), self._maxPacketSize, self._interface, self._portNumber,
                self._fileDescriptor,
            )
        else:
            self._udp = self._reactor.listenUDP(
                self._portNumber, _PortProtocol(self), interface=self._interface, maxPacketSize=self._maxPacketSize
            )
        # Every address the port sends to is one a datagram came from, so
        # udp.Port.write's checks that it is an IP literal of the socket's
        # family (a large share of a small datagram's cost) are already
        # true: send on the socket directly when there is one.
        self._socketSendTo = self._udp.socket.sendto if isinstance(self._udp, udp.Port) else None
        for watcher in self._watchers:
            watcher.start()
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
        for transport in list(self._restarts.values()) + list(self._connections.values()):
            if transport.connected:
                transport.loseConnection()
            else:
                transport.abortConnection()
        for watcher in self._watchers:
            watcher.stop()
        udpPort, self._udp = self._udp, None
        self._socketSendTo = None
        d = maybeDeferred(udpPort.stopListening)
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
        The per-peer transports held now (handshaking and established,
        including the new connection of a peer that restarted).
        """
        return tuple(self._connections.values()) + tuple(self._restarts.values())

    # -- datagrams ---------------------------------------------------------------

    def _datagramReceived(self, datagram: bytes, addr) -> None:
        stats = self.stats
        stats.datagramsReceived += 1
        if len(datagram) >= self._maxPacketSize:
            stats.drops["truncated"] += 1
            return
        # udp.Port gives (host, port) already; anything longer (IPv6 flow
        # and scope) is not part of the peer's identity.
        key = addr if len(addr) == 2 and type(addr) is tuple else (addr[0], addr[1])
        transport = self._connections.get(key)
        if transport is None:
            self._firstDatagram(datagram, key)
            return
        if self._restarts or (datagram and datagram[0] == _HANDSHAKE_CONTENT_TYPE):
            self._knownPeerHandshake(transport, datagram, key)
            return
        transport.datagramReceived(datagram)

    def _knownPeerHandshake(self, transport: DTLSServerTransport, datagram: bytes, key: tuple) -> None:
        """
        A handshake record from a connected address, or any datagram while
        that address has a restart in progress: it may be a new
        ClientHello (RFC 6347 §4.2.8).
        """
        random = _clientRandom(datagram)
        restart = self._restarts.get(key) if self._restarts else None
        if random and random != transport.clientRandom and (restart is None or random != restart.clientRandom):
            if self._newClientHello(transport, datagram, key, random):
                return
        if restart is not None:
            self._restartDatagram(transport, restart, datagram)
            return
        transport.datagramReceived(datagram)

    def _restartDatagram(self, old: DTLSServerTransport, new: DTLSServerTransport, datagram: bytes) -> None:
        """
        A datagram from an address that has an established connection and a
        new handshake in progress (RFC 6347 §4.2.8). Epoch 0 can only be the
        new handshake. A protected record goes to the established
        connection first, and to the new one only if the established one
        could not use it (it failed authentication or was a replay there):
        the new connection's Finished, which it must see.
        """
        if len(datagram) >= 5 and datagram[3] == 0 and datagram[4] == 0:
            new.datagramReceived(datagram)
            return
        connection = old._conn
        before = sum(connection.drops.values())
        old.datagramReceived(datagram)
        if sum(connection.drops.values()) != before and self._restarts.get(old._udpAddress) is new:
            new.datagramReceived(datagram)

    def _firstDatagram(self, datagram: bytes, key: tuple) -> None:
        stats = self.stats
        limiter = self.helloLimiter
        now = self._reactor.seconds()
        allowed = limiter.allow(key[0], now)
        stats.sourcesTracked = len(limiter._buckets)
        if not allowed:
            stats.drops["rate_limited"] += 1
            return
        verdict = examine_first_datagram(datagram, key, self._cookies, now)
        kind = verdict.verdict
        if kind is Verdict.HELLO_VERIFY:
            stats.helloVerifyRequestsSent += 1
            self._sendTo(verdict.reply, key)
        elif kind is Verdict.ACCEPT:
            self._accept(datagram, key, _clientRandom(datagram))
        else:
            stats.drops[verdict.reason or "dropped"] += 1

    def _examine(self, datagram: bytes, key: tuple, now: Optional[float] = None):
        if now is None:
            now = self._reactor.seconds()
        return examine_first_datagram(datagram, key, self._cookies, now)

    def _newClientHello(self, transport: DTLSServerTransport, datagram: bytes, key: tuple, random: bytes) -> bool:
        """
        A ClientHello with a new random from the address of an existing
        connection: the peer may have restarted (RFC 6347 §4.2.8). It goes
        through the cookie exchange (and its rate limit) like any unknown
        peer; once its cookie verifies, a new connection is started beside
        the existing one, which stays until the new handshake completes.

        @return: True if the datagram was handled here, False if it belongs
            to the existing connection.
        """
        if not self.helloLimiter.allow(key[0], self._reactor.seconds()):
            self.stats.drops["rate_limited"] += 1
            return True
        verdict = self._examine(datagram, key)
        if verdict.verdict is Verdict.HELLO_VERIFY:
            self.stats.helloVerifyRequestsSent += 1
            self._sendTo(verdict.reply, key)
            return True
        if verdict.verdict is Verdict.ACCEPT:
            if not transport.connected and not self._restarts.get(key):
                # Still handshaking: nothing established to protect.
                self.stats.peerRestarts += 1
                self._log.info("DTLS peer {peer} restarted its handshake", peer=transport.getPeer())
                transport._peerRestarted()
                self._accept(datagram, key, random)
                return True
            self._log.info("DTLS peer {peer} sent a new ClientHello with a valid cookie; "
                           "handshaking beside the established connection", peer=transport.getPeer())
            self._accept(datagram, key, random, restart=True)
            return True
        return False

    def _accept(self, datagram: bytes, key: tuple, random: bytes, restart: bool = False) -> None:
        stats = self.stats
        if len(self._connections) + len(self._restarts) >= self.maxConnections:
            stats.drops["connection_limit"] += 1
            return
        if len(self._handshaking) >= self.maxHandshakes:
            stats.drops["handshake_limit"] += 1
            return
        connection = DTLSConnection(self._configuration, is_client=False)
        transport = DTLSServerTransport(
            self, connection, _address(key[0], key[1]), self.handshakeTimeout, self.idleTimeout, random, key
        )
        if restart:
            previous = self._restarts.get(key)
            self._restarts[key] = transport
            if previous is not None:
                previous.abortConnection()
        else:
            self._connections[key] = transport
        self._handshaking.add(transport)
        stats.connectionsAccepted += 1
        self._updateCounts()
        transport.datagramReceived(datagram)

    def _updateCounts(self) -> None:
        stats = self.stats
        stats.connectionsOpen = len(self._connections) + len(self._restarts)
        stats.handshakesInProgress = len(self._handshaking)
        stats.restartsPending = len(self._restarts)

    def _sendTo(self, datagram: bytes, key: tuple) -> None:
        send = self._socketSendTo
        if send is None:
            if self._udp is None:
                return
            send = self._udp.write
        try:
            send(datagram, key)
        except (OSError, error.MessageLengthError) as e:
            # ECONNREFUSED (an ICMP error for an earlier datagram), EMSGSIZE,
            # ENOBUFS, EAGAIN: UDP may lose any datagram; DTLS retransmits.
            self.stats.sendErrors += 1
            self._log.debug("DTLS send to {peer} failed: {error}", peer=key, error=e)
            return
        self.stats.datagramsSent += 1

    # -- bookkeeping called by DTLSServerTransport --------------------------------

    def _handshakeFinished(self, transport: DTLSServerTransport) -> None:
        if transport in self._handshaking:
            self._handshaking.discard(transport)
            self.stats.handshakesCompleted += 1
        key = transport._udpAddress
        if self._restarts.get(key) is transport:
            # RFC 6347 §4.2.8: a verified Finished on the new connection;
            # the old association is abandoned now, not before.
            del self._restarts[key]
            old = self._connections.get(key)
            self._connections[key] = transport
            self.stats.peerRestarts += 1
            if old is not None and old is not transport:
                self._log.info("DTLS peer {peer} restarted: new connection established", peer=transport.getPeer())
                old._peerRestarted()
        self._updateCounts()

    def _removeConnection(self, transport: DTLSServerTransport) -> None:
        key = transport._udpAddress
        if self._restarts.get(key) is transport:
            del self._restarts[key]
        elif self._connections.get(key) is transport:
            del self._connections[key]
            restart = self._restarts.pop(key, None)
            if restart is not None:
                # The old connection ended by itself first: the new one
                # simply takes the address.
                self._connections[key] = restart
        if transport in self._handshaking:
            self._handshaking.discard(transport)
            self.stats.handshakesFailed += 1
        self._updateCounts()


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
