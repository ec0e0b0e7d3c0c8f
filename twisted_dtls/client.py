"""
The client side: one DTLS association over a connected UDP socket.

A connected socket hears only from the server it was connected to (the
kernel filters the rest), and reports ICMP port-unreachable, which turns a
handshake against a closed port into a quick, clear failure.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Callable, Hashable, Optional

from twisted.internet import error
from twisted.internet.abstract import isIPv6Address
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from twisted_dtls.core.configuration import DTLSConfiguration
from twisted_dtls.core.connection import DTLSConnection
from twisted_dtls.core.events import CloseReason
from twisted_dtls.core.sessions import Session
from twisted_dtls.port import MAX_UDP_READ
from twisted_dtls.transport import DTLSClientTransport

__all__ = ["connectDTLS", "DEFAULT_CONNECT_TIMEOUT", "ClientSessionStore", "sessionKey"]

#: Seconds a client handshake may take, as Twisted's TCP endpoints default.
DEFAULT_CONNECT_TIMEOUT = 30.0


def sessionKey(host: str, port: int, configuration: DTLSConfiguration) -> tuple:
    """
    What a client session is filed under: the server's address and the
    name we ask it for (SNI), so that a session is only offered back to
    the server, and the virtual host, that issued it.
    """
    return (host.lower(), port, (configuration.server_name or "").lower())


class ClientSessionStore:
    """
    The sessions a client keeps for resumption (RFC 5246 §7.3, RFC 5077),
    one per server, bounded: the least recently used goes first.

    A session is only as trustworthy as the configuration of the handshake
    that made it (a resumed handshake checks no certificate), so share one
    store only between connections with the same configuration;
    L{DTLSClientEndpoint<twisted_dtls.endpoints.DTLSClientEndpoint>} keeps
    one of its own.

    @ivar maxEntries: sessions kept at most.
    @ivar lifetime: seconds a session is offered after its full handshake,
        unless the server's ticket lifetime hint is shorter.
    """

    def __init__(self, maxEntries: int = 100, lifetime: float = 7200.0,
                 clock: Callable[[], float] = time.time):
        """
        @param clock: wall-clock seconds, the time base of L{Session.created}.
        """
        if maxEntries < 1 or not lifetime > 0:
            raise ValueError("ClientSessionStore needs maxEntries >= 1 and a positive lifetime")
        self.maxEntries = maxEntries
        self.lifetime = lifetime
        self._clock = clock
        self._sessions: OrderedDict[Hashable, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def _expires(self, session: Session) -> float:
        lifetime = self.lifetime
        if session.ticket and session.lifetime > 0:
            lifetime = min(lifetime, session.lifetime)
        return session.created + lifetime

    def get(self, key: Hashable) -> Optional[Session]:
        """
        The session to offer to the server filed under C{key}, or None.
        """
        session = self._sessions.get(key)
        if session is None:
            return None
        if not self._clock() < self._expires(session):
            del self._sessions[key]
            return None
        self._sessions.move_to_end(key)
        return session

    def put(self, key: Hashable, session: Optional[Session]) -> None:
        """
        Keep C{session} for C{key} (a None session, when the server offered
        no way to resume, forgets what was kept).
        """
        if session is None:
            self._sessions.pop(key, None)
            return
        self._sessions[key] = session
        self._sessions.move_to_end(key)
        while len(self._sessions) > self.maxEntries:
            self._sessions.popitem(last=False)

    def remove(self, key: Hashable, session: Optional[Session] = None) -> None:
        """
        Forget the session for C{key} (only if it is C{session}, when
        given: a newer connection may have replaced it).
        """
        if session is None or self._sessions.get(key) is session:
            self._sessions.pop(key, None)


def _address(host: str, port: int):
    if ":" in host:
        return IPv6Address("UDP", host, port)
    return IPv4Address("UDP", host, port)


class _ClientDatagramProtocol(DatagramProtocol):
    """
    Hands what the connected UDP socket reads to the DTLS transport, and
    never lets an exception reach the UDP port.
    """

    noisy = False
    _log = Logger()
    dtls: Optional[DTLSClientTransport] = None

    def datagramReceived(self, datagram: bytes, addr) -> None:
        try:
            if self.dtls is None or len(datagram) >= MAX_UDP_READ:
                return
            self.dtls.datagramReceived(datagram)
        except Exception:
            self._log.failure("Internal error in the DTLS client handling a datagram from {peer}", peer=addr)

    def connectionRefused(self) -> None:
        try:
            if self.dtls is not None:
                self.dtls.connectionRefused()
        except Exception:
            self._log.failure("Internal error in the DTLS client handling ICMP port unreachable")

    def stopProtocol(self) -> None:
        # The epoll reactor closes a connected UDP socket on an ICMP error
        # (it sees EPOLLERR without data) instead of calling
        # connectionRefused: the socket is gone either way.
        try:
            if self.dtls is not None:
                self.dtls.socketClosed()
        except Exception:
            self._log.failure("Internal error in the DTLS client handling its socket closing")


def connectDTLS(
    reactor,
    host: str,
    port: int,
    factory,
    configuration: DTLSConfiguration,
    bindAddress: Optional[tuple[str, int]] = None,
    timeout: Optional[float] = DEFAULT_CONNECT_TIMEOUT,
    idleTimeout: Optional[float] = None,
    sessionStore: Optional[ClientSessionStore] = None,
) -> Deferred:
    """
    Connect to a DTLS server.

    @param host: the server's IP address (an IPv4 or IPv6 literal; resolve
        names first, as L{DTLSClientEndpoint<twisted_dtls.endpoints.DTLSClientEndpoint>}
        does).
    @param factory: C{buildProtocol(serverAddress)} is called once the
        handshake completes; returning None abandons the connection.
    @param configuration: the client configuration; its C{server_name} is
        sent in SNI (unless it is an IP address) and checked against the
        server's certificate.
    @param bindAddress: local C{(host, port)} to bind, or None for any.
    @param timeout: seconds for the handshake, or None for only the engine's
        retransmission budget.
    @param idleTimeout: seconds without a datagram from the server before
        the connection is closed, or None.
    @param sessionStore: where sessions for resumption are kept: the
        session filed under this server (L{sessionKey}) is offered, and the
        session of a completed handshake is filed there; one that ends with
        a fatal alert (or a resumption that fails) is forgotten (RFC 5246
        §7.2.2). None: no resumption.
    @return: a L{Deferred} firing with the connected protocol once the
        handshake completed and C{connectionMade} ran, or failing with
        L{DTLSHandshakeError<twisted_dtls.transport.DTLSHandshakeError>}
        (including L{DTLSHandshakeTimeout<twisted_dtls.transport.DTLSHandshakeTimeout>}),
        C{ConnectionRefusedError}, or C{ConnectingCancelledError} when
        cancelled.
    @raise twisted_dtls.core.errors.ConfigurationError: for a configuration
        a client cannot use.
    """
    configuration.validate(is_client=True)
    if bindAddress is None:
        bindAddress = ("::" if isIPv6Address(host) else "", 0)
    peer = _address(host, port)
    udpProtocol = _ClientDatagramProtocol()
    udpPort = reactor.listenUDP(bindAddress[1], udpProtocol, interface=bindAddress[0], maxPacketSize=MAX_UDP_READ)
    try:
        udpPort.connect(host, port)
    except BaseException:
        udpPort.stopListening()
        raise
    local = udpPort.getHost()
    state: dict = {}

    def cancel(d: Deferred) -> None:
        transport = state.get("transport")
        if transport is not None:
            transport._endLocally(error.ConnectingCancelledError(peer), polite=False)

    whenConnected: Deferred = Deferred(cancel)
    key = sessionKey(host, port, configuration)
    offered = sessionStore.get(key) if sessionStore is not None else None
    connection = DTLSConnection(configuration, is_client=True, session=offered)

    def established() -> None:
        if sessionStore is not None:
            state["session"] = connection.session
            sessionStore.put(key, connection.session)

    def ended() -> None:
        udpPort.stopListening()
        if sessionStore is None:
            return
        event = transport.closeEvent
        fatal = event is not None and event.reason in (CloseReason.ALERT_SENT, CloseReason.ALERT_RECEIVED)
        session = state.get("session", offered)
        if fatal and session is not None:
            # RFC 5246 §7.2.2: not to be resumed after a fatal alert.
            sessionStore.remove(key, session)

    transport = DTLSClientTransport(
        reactor,
        connection,
        udpPort,
        _address(local.host, local.port),
        peer,
        factory,
        timeout,
        idleTimeout,
        whenConnected,
        onEnded=ended,
        onEstablished=established,
    )
    state["transport"] = transport
    udpProtocol.dtls = transport
    connection.connect(reactor.seconds())
    transport.start()
    return whenConnected
