"""
The client side: one DTLS association over a connected UDP socket.

A connected socket hears only from the server it was connected to (the
kernel filters the rest), and reports ICMP port-unreachable, which turns a
handshake against a closed port into a quick, clear failure.
"""

from __future__ import annotations

from typing import Optional

from twisted.internet import error
from twisted.internet.abstract import isIPv6Address
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from twisted_dtls.core.configuration import DTLSConfiguration
from twisted_dtls.core.connection import DTLSConnection
from twisted_dtls.port import MAX_UDP_READ
from twisted_dtls.transport import DTLSClientTransport

__all__ = ["connectDTLS", "DEFAULT_CONNECT_TIMEOUT"]

#: Seconds a client handshake may take, as Twisted's TCP endpoints default.
DEFAULT_CONNECT_TIMEOUT = 30.0


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
    connection = DTLSConnection(configuration, is_client=True)
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
        onEnded=udpPort.stopListening,
    )
    state["transport"] = transport
    udpProtocol.dtls = transport
    connection.connect(reactor.seconds())
    transport.start()
    return whenConnected
