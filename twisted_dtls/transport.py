"""
The per-peer DTLS transport that an ordinary Twisted protocol talks to.

One L{DTLSConnection<twisted_dtls.core.connection.DTLSConnection>} engine,
driven by the reactor: every input (a datagram, a timer, a write) is followed
by one pump that sends what the engine queued, re-arms the single timer and
delivers the engine's events to the protocol.

The protocol is built only when the handshake completes, so a handshake that
fails never reaches the application. Each C{write} is one DTLS record in one
datagram; each received record arrives in one C{dataReceived} call.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from zope.interface import Attribute, implementer

from twisted.internet import error
from twisted.internet.interfaces import IHandshakeListener, ITransport
from twisted.logger import Logger
from twisted.python.failure import Failure

from twisted_dtls.core.constants import AlertDescription, CipherSuite, SRTPProtectionProfile
from twisted_dtls.core.errors import ProtocolMisuseError
from twisted_dtls.core.events import (
    AlertReceived,
    CloseReason,
    ConnectionClosed,
    DataReceived,
    HandshakeCompleted,
)

__all__ = [
    "IDTLSTransport",
    "DTLSConnectionLost",
    "DTLSIdleTimeout",
    "DTLSHandshakeError",
    "DTLSHandshakeTimeout",
    "DTLSPeerRefused",
    "RecordTooLargeError",
]


class IDTLSTransport(ITransport):
    """
    A transport for one DTLS association with one peer.
    """

    cipherSuite: Optional[str] = Attribute(
        "The negotiated cipher suite's IANA name (C{TLS_ECDHE_...}), or None before the handshake."
    )
    version: Optional[str] = Attribute('The negotiated protocol version (C{"DTLSv1.2"}), or None before the handshake.')
    negotiatedProtocol: Optional[bytes] = Attribute(
        "The protocol selected by ALPN as bytes, or None if none was negotiated (as Twisted's INegotiated)."
    )
    maxWriteSize: int = Attribute("The largest C{write} that fits one record in one datagram.")
    srtpProfile: Optional[int] = Attribute(
        "The use_srtp protection profile negotiated (RFC 5764), an L{SRTPProtectionProfile} "
        "(an int with a C{.name}), or None."
    )
    pskIdentity: Optional[bytes] = Attribute("The PSK identity the client used (PSK suites), or None.")
    serverName: Optional[str] = Attribute("The host name the client sent in SNI (RFC 6066), or None.")
    resumed: bool = Attribute("Whether the handshake was abbreviated: an earlier session was resumed.")

    def exportKeyingMaterial(label: bytes, context: Optional[bytes], length: int) -> bytes:
        """
        RFC 5705 keying material exporter (for example DTLS-SRTP keys,
        RFC 5764 §4.2, label C{EXTRACTOR-dtls_srtp}, no context).
        """

    def abortConnection() -> None:
        """
        Close at once, without a close_notify.
        """

    def getPeerCertificate() -> Any:
        """
        The peer's leaf certificate as a L{cryptography.x509.Certificate}, or
        None (PSK, or a client that sent none).
        """

    def getPeerCertificates() -> Any:
        """
        The peer's whole chain as sent, leaf first (a tuple).
        """


class DTLSConnectionLost(error.ConnectionLost):
    """
    An established DTLS connection ended without a close_notify exchange.

    @ivar closeReason: the engine's L{CloseReason}, or None for a local cause.
    @ivar alert: the fatal alert sent or received, if any.
    """

    def __init__(self, message: str, closeReason: Optional[CloseReason] = None, alert: Any = None):
        super().__init__(message)
        self.closeReason = closeReason
        self.alert = alert


class DTLSIdleTimeout(DTLSConnectionLost):
    """
    Nothing arrived from the peer for the idle timeout; we sent a
    close_notify and forgot the connection.
    """


class DTLSHandshakeError(error.ConnectError):
    """
    The handshake failed; the connection never reached the application.

    @ivar closeReason: the engine's L{CloseReason}, or None for a local cause.
    @ivar alert: the alert that ended it (sent by us: our verdict on the
        peer, for example C{bad_certificate}; received: the peer's verdict).
    """

    MESSAGE = "DTLS handshake failed"

    def __init__(self, message: str, closeReason: Optional[CloseReason] = None, alert: Any = None):
        super().__init__(string=message)
        self.closeReason = closeReason
        self.alert = alert


class DTLSHandshakeTimeout(DTLSHandshakeError, error.TimeoutError):
    """
    The handshake did not complete in time.
    """

    MESSAGE = "DTLS handshake timed out"


class DTLSPeerRefused(DTLSHandshakeError):
    """
    The handshake completed but the local factory refused the peer
    (C{buildProtocol} returned None).
    """

    MESSAGE = "DTLS peer refused by the local factory"


class RecordTooLargeError(ValueError):
    """
    A C{write} is larger than one record in one datagram can carry.
    """


def _alertName(alert: Any) -> str:
    if alert is None:
        return ""
    try:
        return AlertDescription(alert).name
    except ValueError:
        return f"alert {alert}"


def _suiteName(suite: int) -> str:
    try:
        return CipherSuite(suite).name
    except ValueError:
        return f"0x{suite:04x}"


def _versionName(version: int) -> str:
    return {0xFEFD: "DTLSv1.2", 0xFEFF: "DTLSv1.0"}.get(version, f"0x{version:04x}")


def describeClose(event: ConnectionClosed) -> str:
    """
    A one-line human explanation of why a connection ended.
    """
    alert = _alertName(event.alert)
    parts = {
        CloseReason.CLOSE_NOTIFY: "closed with close_notify",
        CloseReason.ALERT_RECEIVED: f"peer sent fatal alert {alert}",
        CloseReason.ALERT_SENT: f"we sent fatal alert {alert}",
        CloseReason.TIMEOUT: "handshake retransmissions exhausted",
        CloseReason.ABORTED: "aborted",
    }
    text = parts.get(event.reason, str(event.reason))
    if event.message and event.message not in text:
        text = f"{text}: {event.message}"
    return text


class _Pending:
    """
    Marker for the reactor-side state of a transport.
    """

    HANDSHAKING = "handshaking"
    CONNECTED = "connected"
    CLOSED = "closed"


@implementer(IDTLSTransport)
class DTLSTransport:
    """
    Drives one DTLS engine from the reactor and presents it to a protocol
    as an L{ITransport}. L{DTLSServerTransport} and L{DTLSClientTransport}
    supply where datagrams go and what happens at the edges of its life.

    @ivar protocol: the application protocol, once the handshake completed.
    @ivar connected: true while the application may use the transport.
    @ivar disconnecting: true after L{loseConnection}.
    @ivar disconnected: true once L{connectionLost} has been delivered (or the
        handshake failed).
    """

    _log = Logger()

    #: Seconds without a datagram from the peer after which an established
    #: connection lets its engine drop the AEAD contexts (rebuilt when the
    #: next record needs them), and whether they are dropped as soon as the
    #: handshake completes, until the first record; None keeps them for the
    #: connection's life.
    cipherReleaseAfter: Optional[float] = None

    # Many of these are held at once: no per-instance dict unless an
    # application adds attributes of its own.
    __slots__ = (
        "_reactor",
        "_conn",
        "_hostAddress",
        "_peerAddress",
        "_handshakeTimeout",
        "_idleTimeout",
        "_started",
        "_lastReceived",
        "_state",
        "_timer",
        "_timerDeadline",
        "_pumping",
        "_pumpAgain",
        "_queuedWrites",
        "_localCause",
        "_negotiated",
        "_finishPending",
        "_wasConnected",
        "_endEvent",
        "_ciphersReleased",
        "protocol",
        "connected",
        "disconnecting",
        "disconnected",
        "__dict__",
        "__weakref__",
    )

    def __init__(
        self,
        reactor,
        connection,
        hostAddress,
        peerAddress,
        handshakeTimeout: Optional[float] = None,
        idleTimeout: Optional[float] = None,
    ):
        self._reactor = reactor
        self._conn = connection
        self._hostAddress = hostAddress
        self._peerAddress = peerAddress
        self._handshakeTimeout = handshakeTimeout
        self._idleTimeout = idleTimeout
        now = reactor.seconds()
        self._started = now
        self._lastReceived = now
        self._state = _Pending.HANDSHAKING
        self._timer = None
        self._timerDeadline: Optional[float] = None
        self._pumping = False
        self._pumpAgain = False
        #: writes made before the handshake completed; None when there are none
        self._queuedWrites: Optional[list[bytes]] = None
        self._ciphersReleased = False
        self._localCause: Optional[Exception] = None
        self._negotiated: Optional[HandshakeCompleted] = None
        self._finishPending = False
        self._wasConnected = False
        self._endEvent: Optional[ConnectionClosed] = None
        self.protocol = None
        self.connected = False
        self.disconnecting = False
        self.disconnected = False

    # -- hooks for subclasses -------------------------------------------------

    def _sendDatagram(self, datagram: bytes) -> None:
        raise NotImplementedError()

    def _buildProtocol(self):
        raise NotImplementedError()

    def _handshakeSucceeded(self) -> None:
        """
        Called after the protocol is connected.
        """

    def _handshakeFailed(self, reason: Failure) -> None:
        """
        Called instead of any protocol callback when the handshake fails.
        """

    def _forget(self) -> None:
        """
        Called once when the connection has ended, to release it.
        """

    # -- input from the owner -------------------------------------------------

    def datagramReceived(self, datagram: bytes) -> None:
        """
        Feed one UDP payload from the peer to the engine.
        """
        state = self._state
        if state is _Pending.CLOSED:
            return
        now = self._reactor.seconds()
        self._lastReceived = now
        if state is _Pending.CONNECTED and not self._ciphersReleased and not self._pumping:
            # The common case, an application record, bypasses the pump:
            # it changes no timer (the idle deadline only moves later, and
            # the armed timer re-arms itself when it fires early) and sends
            # nothing that the protocol's own writes do not send at once.
            try:
                data = self._conn.receive_application_datagram(datagram, now)
            except Exception:
                self._internalError("receive_datagram")
                return
            if data is not None:
                # _deliver, written out: connected, so there is a protocol.
                try:
                    self.protocol.dataReceived(data)
                except Exception:
                    self._protocolFailed()
                return
        else:
            self._ciphersReleased = False
            try:
                self._conn.receive_datagram(datagram, now)
            except Exception:
                self._internalError("receive_datagram")
                return
        self._pump(now)

    def start(self) -> None:
        """
        Send whatever the engine has queued (a client's first flight, a
        server's reply to the ClientHello it was created from).
        """
        self._pump()

    # -- the pump -------------------------------------------------------------

    def _pump(self, now: Optional[float] = None) -> None:
        if self._pumping:
            self._pumpAgain = True
            return
        self._pumping = True
        conn = self._conn
        try:
            if now is None:
                now = self._reactor.seconds()
            while True:
                self._pumpAgain = False
                datagrams = conn.datagrams_to_send(now)
                for datagram in datagrams:
                    self._sendDatagram(datagram)
                event = conn.next_event()
                if event is not None:
                    if type(event) is DataReceived:
                        self._deliver(event.data)
                    else:
                        self._handleEvent(event)
                    # What the handler queued (an echo's reply) goes out on
                    # the next turn.
                    continue
                # Sending touches no engine state, so nothing new can be
                # queued now unless something called in while we pumped.
                if not self._pumpAgain:
                    break
        except Exception:
            self._pumping = False
            self._internalError("pump")
            return
        self._pumping = False
        if self._finishPending:
            self._finishPending = False
            self._finish()
            return
        self._rearm()

    def _rearm(self) -> None:
        state = self._state
        if state is _Pending.CLOSED:
            self._cancelTimer()
            return
        deadline = self._conn.get_timer()
        if state is _Pending.CONNECTED:
            if self._idleTimeout is not None:
                idle = self._lastReceived + self._idleTimeout
                if deadline is None or idle < deadline:
                    deadline = idle
            release = self.cipherReleaseAfter
            if release is not None and not self._ciphersReleased:
                release += self._lastReceived
                if deadline is None or release < deadline:
                    deadline = release
        elif self._handshakeTimeout is not None:
            limit = self._started + self._handshakeTimeout
            if deadline is None or limit < deadline:
                deadline = limit
        if deadline is None:
            self._cancelTimer()
            return
        timer = self._timer
        if timer is not None and timer.active():
            # An earlier wake-up is harmless (the timer re-arms itself), so
            # only move the call when the new deadline comes sooner; this keeps
            # the idle deadline, which moves on every datagram, cheap.
            if self._timerDeadline is not None and self._timerDeadline <= deadline:
                return
            timer.cancel()
        self._timerDeadline = deadline
        self._timer = self._reactor.callLater(max(0.0, deadline - self._reactor.seconds()), self._timerFired)

    def _cancelTimer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self._timerDeadline = None

    def _timerFired(self) -> None:
        scheduled = self._timerDeadline
        self._timer = None
        self._timerDeadline = None
        if self._state == _Pending.CLOSED:
            return
        now = self._reactor.seconds()
        if scheduled is not None and scheduled > now:
            # Floating-point rounding can fire a hair early.
            now = scheduled
        if (
            self._state == _Pending.HANDSHAKING
            and self._handshakeTimeout is not None
            and now >= self._started + self._handshakeTimeout
        ):
            self._endLocally(
                DTLSHandshakeTimeout(f"no completed handshake within {self._handshakeTimeout:g} s"), polite=False
            )
            return
        if (
            self._state == _Pending.CONNECTED
            and self._idleTimeout is not None
            and now >= self._lastReceived + self._idleTimeout
        ):
            self._endLocally(
                DTLSIdleTimeout(f"nothing received from the peer for {self._idleTimeout:g} s"), polite=True
            )
            return
        release = self.cipherReleaseAfter
        if (
            self._state == _Pending.CONNECTED
            and release is not None
            and not self._ciphersReleased
            and now >= self._lastReceived + release
        ):
            # A quiet association: its AEAD contexts are most of what it
            # costs in memory, and the next record rebuilds them.
            self._ciphersReleased = True
            try:
                self._conn.release_ciphers()
            except Exception:
                self._internalError("release_ciphers")
                return
        engine = self._conn.get_timer()
        if engine is not None and now >= engine:
            try:
                self._conn.handle_timer(now)
            except Exception:
                self._internalError("handle_timer")
                return
        self._pump()

    # -- events ---------------------------------------------------------------

    def _deliver(self, data: bytes) -> None:
        protocol = self.protocol
        if self._state is _Pending.CONNECTED and protocol is not None:
            try:
                protocol.dataReceived(data)
            except Exception:
                self._protocolFailed()

    def _protocolFailed(self) -> None:
        """
        The protocol's C{dataReceived} raised: log it, abort the connection.
        """
        self._log.failure(
            "Unhandled error in {protocol}.dataReceived; aborting the connection to {peer}",
            protocol=self.protocol,
            peer=self._peerAddress,
        )
        self.abortConnection()

    def _handleEvent(self, event) -> None:
        if isinstance(event, DataReceived):
            self._deliver(event.data)
        elif isinstance(event, HandshakeCompleted):
            self._handshakeCompleted(event)
        elif isinstance(event, ConnectionClosed):
            self._connectionEnded(event)
        elif isinstance(event, AlertReceived):
            self._log.info(
                "DTLS warning alert {alert} from {peer}", alert=_alertName(event.description), peer=self._peerAddress
            )

    def _handshakeCompleted(self, event: HandshakeCompleted) -> None:
        if self._state != _Pending.HANDSHAKING:
            return
        self._negotiated = event
        try:
            protocol = self._buildProtocol()
        except Exception:
            self._log.failure("Unhandled error building a protocol for {peer}", peer=self._peerAddress)
            protocol = None
        if protocol is None:
            self._log.info("DTLS peer {peer} refused by the factory", peer=self._peerAddress)
            self._endLocally(
                DTLSPeerRefused("the factory's buildProtocol returned None"),
                polite=True,
                alert=AlertDescription.access_denied,
            )
            return
        self._state = _Pending.CONNECTED
        self.protocol = protocol
        self.connected = True
        queued, self._queuedWrites = self._queuedWrites or (), None
        try:
            for data in queued:
                self._sendRecord(data)
            protocol.makeConnection(self)
        except Exception:
            self._log.failure("Unhandled error in {protocol}.connectionMade; aborting", protocol=protocol)
            self.abortConnection()
            return
        if self._state == _Pending.CONNECTED and IHandshakeListener.providedBy(protocol):
            protocol.handshakeCompleted()
        if self._state == _Pending.CONNECTED:
            self._handshakeSucceeded()

    def _connectionEnded(self, event: Optional[ConnectionClosed]) -> None:
        """
        The connection is over. Delivery of the outcome (C{connectionLost} or
        the handshake failure) waits until the current pump has sent what
        the engine still queued, such as our close_notify or fatal alert.
        """
        if self._state == _Pending.CLOSED:
            return
        self._wasConnected = self._state == _Pending.CONNECTED
        self._state = _Pending.CLOSED
        self._endEvent = event
        self.connected = False
        self._queuedWrites = None
        self._cancelTimer()
        if self._pumping:
            self._finishPending = True
            return
        self._finish()

    def _finish(self) -> None:
        if self.disconnected:
            return
        self.disconnected = True
        reason = self._failureFor(self._endEvent, self._wasConnected)
        try:
            self._forget()
        except Exception:
            self._log.failure("Error releasing the DTLS connection to {peer}", peer=self._peerAddress)
        if self._wasConnected:
            protocol = self.protocol
            try:
                protocol.connectionLost(reason)
            except Exception:
                self._log.failure("Unhandled error in {protocol}.connectionLost", protocol=protocol)
        else:
            self._handshakeFailed(reason)

    def _failureFor(self, event: Optional[ConnectionClosed], wasConnected: bool) -> Failure:
        cause = self._localCause
        if cause is not None:
            if not wasConnected and isinstance(cause, DTLSConnectionLost):
                cause = DTLSHandshakeError(str(cause))
            return Failure(cause)
        if event is None or event.clean:
            return Failure(error.ConnectionDone("DTLS close_notify"))
        text = describeClose(event)
        if not wasConnected:
            if event.reason is CloseReason.TIMEOUT:
                return Failure(DTLSHandshakeTimeout(text, event.reason, event.alert))
            return Failure(DTLSHandshakeError(text, event.reason, event.alert))
        return Failure(DTLSConnectionLost(text, event.reason, event.alert))

    def _endLocally(self, cause: Exception, polite: bool, alert: Optional[AlertDescription] = None) -> None:
        """
        End the connection for a local reason: with a close_notify (or the
        fatal C{alert}) to the peer if C{polite}, silently otherwise. The
        protocol sees C{cause}.
        """
        if self._state == _Pending.CLOSED:
            return
        self._localCause = cause
        try:
            if polite:
                self._conn.close(alert)
            else:
                self._conn.abort()
        except Exception:
            self._internalError("close")
            return
        self._pump()
        self._connectionEnded(None)

    def _internalError(self, where: str) -> None:
        """
        The engine raised where its contract says it never does: log it
        loudly, and drop the connection rather than let the error reach the
        UDP port.
        """
        self._log.failure("Internal error in DTLS engine ({where}) for {peer}", where=where, peer=self._peerAddress)
        try:
            self._conn.abort()
        except Exception:
            pass
        self._localCause = DTLSConnectionLost(f"internal error in {where}")
        self._pumping = False
        self._finishPending = False
        if self._state != _Pending.CLOSED:
            self._connectionEnded(None)
        elif not self.disconnected:
            self._finish()

    # -- ITransport -----------------------------------------------------------

    @property
    def maxWriteSize(self) -> int:
        return self._conn.max_send_size

    def _tooLarge(self, data: bytes) -> RecordTooLargeError:
        return RecordTooLargeError(
            f"a DTLS write of {len(data)} bytes exceeds the {self._conn.max_send_size}-byte limit of one record "
            f"in one datagram (maxWriteSize, from maxDatagramSize and the cipher suite); split the data"
        )

    def _sendRecord(self, data: bytes) -> None:
        conn = self._conn
        if len(data) > conn.max_send_size:
            raise self._tooLarge(data)
        # The limit was just checked: the engine need not check it again.
        conn.send_unchecked(data)

    def write(self, data: bytes) -> None:
        """
        Send C{data} as one application-data record in one datagram. Writes
        made before the handshake completes are queued and sent, in order,
        as soon as it does; writes after L{loseConnection} are discarded.

        @raise RecordTooLargeError: if C{data} is longer than L{maxWriteSize}.
        @raise TypeError: if C{data} is not bytes.
        """
        if type(data) is not bytes:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError(f"DTLS write takes bytes, not {type(data).__name__}")
            # Our own copy: the caller may change a mutable buffer later.
            data = bytes(data)
        state = self._state
        if state is _Pending.CLOSED or self.disconnecting or not data:
            return
        if state is _Pending.HANDSHAKING:
            if self._queuedWrites is None:
                self._queuedWrites = []
            self._queuedWrites.append(data)
            return
        conn = self._conn
        if len(data) > conn.max_send_size:
            raise self._tooLarge(data)
        try:
            datagram = conn.seal_application_datagram(data)
        except ProtocolMisuseError:
            # Closed by the peer in the datagram being delivered: the
            # connection's end is reported when the running pump gets to it.
            return
        if datagram is not None:
            self._sendDatagram(datagram)
            return
        # Queued behind datagrams the engine still holds: the pump sends
        # them in order.
        if self._pumping:
            self._pumpAgain = True
            return
        self._pump()

    def writeSequence(self, data) -> None:
        """
        Send the concatenation of C{data} as one record.
        """
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        """
        Send close_notify and end the connection; the protocol gets
        C{connectionLost(ConnectionDone)}. Before the handshake completes this
        abandons the handshake.
        """
        if self._state == _Pending.CLOSED or self.disconnecting:
            return
        self.disconnecting = True
        if self._state == _Pending.HANDSHAKING:
            self._endLocally(DTLSHandshakeError("abandoned by loseConnection before the handshake completed"), polite=False)
            return
        try:
            self._conn.close()
        except Exception:
            self._internalError("close")
            return
        # DTLS has no half-close worth waiting for: once our close_notify is
        # out, the connection is over whether or not the peer answers.
        self._pump()
        self._connectionEnded(None)

    def abortConnection(self) -> None:
        """
        End the connection at once without a close_notify; the protocol gets
        C{connectionLost(ConnectionAborted)}.
        """
        if self._state == _Pending.CLOSED:
            return
        self.disconnecting = True
        self._endLocally(error.ConnectionAborted(), polite=False)

    def getPeer(self):
        return self._peerAddress

    def getHost(self):
        return self._hostAddress

    # -- negotiated parameters -------------------------------------------------

    @property
    def cipherSuite(self) -> Optional[str]:
        return None if self._negotiated is None else _suiteName(self._negotiated.cipher_suite)

    @property
    def version(self) -> Optional[str]:
        return None if self._negotiated is None else _versionName(self._negotiated.version)

    @property
    def negotiatedProtocol(self) -> Optional[bytes]:
        if self._negotiated is None or self._negotiated.alpn_protocol is None:
            return None
        alpn = self._negotiated.alpn_protocol
        return alpn.encode("ascii", "replace") if isinstance(alpn, str) else bytes(alpn)

    @property
    def handshakeParameters(self) -> Optional[HandshakeCompleted]:
        """
        The engine's L{HandshakeCompleted} event, with everything negotiated
        (SRTP profile, SNI, PSK identity, resumption).
        """
        return self._negotiated

    @property
    def srtpProfile(self) -> Optional[int]:
        if self._negotiated is None or self._negotiated.srtp_profile is None:
            return None
        profile = self._negotiated.srtp_profile
        try:
            return SRTPProtectionProfile(profile)
        except ValueError:
            return profile

    @property
    def pskIdentity(self) -> Optional[bytes]:
        return None if self._negotiated is None else self._negotiated.psk_identity

    @property
    def serverName(self) -> Optional[str]:
        return None if self._negotiated is None else self._negotiated.server_name

    @property
    def resumed(self) -> bool:
        return self._negotiated is not None and self._negotiated.resumed

    @property
    def closeEvent(self) -> Optional[ConnectionClosed]:
        """
        The engine's L{ConnectionClosed} that ended the connection, or None
        (still open, or ended for a local reason).
        """
        return self._endEvent

    def getPeerCertificate(self):
        certificates = self.getPeerCertificates()
        return certificates[0] if certificates else None

    def getPeerCertificates(self):
        return () if self._negotiated is None else tuple(self._negotiated.peer_certificates)

    def exportKeyingMaterial(self, label: bytes, context: Optional[bytes], length: int) -> bytes:
        """
        RFC 5705 keying material exporter (for example DTLS-SRTP keys,
        RFC 5764 §4.2: label C{b"EXTRACTOR-dtls_srtp"}, context None).

        @param context: C{None} for no context (different from C{b""}).
        @raise twisted_dtls.core.errors.ProtocolMisuseError: before the
            handshake completed.
        """
        return self._conn.export_keying_material(label, context, length)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._peerAddress} {self._state}>"


class DTLSServerTransport(DTLSTransport):
    """
    One accepted peer of a L{DTLSPort<twisted_dtls.port.DTLSPort>}.
    """

    __slots__ = ("_port", "_udpAddress", "clientRandom")

    #: A server may hold many quiet peers; their AEAD contexts are most of
    #: what each costs in memory.
    cipherReleaseAfter: Optional[float] = 30.0

    def __init__(self, port, connection, peerAddress, handshakeTimeout, idleTimeout, clientRandom: bytes = b"",
                 udpAddress: Optional[tuple] = None):
        """
        @param udpAddress: the peer's C{(host, port)} as the port keys it
            (shared rather than built again), or None to derive it.
        """
        super().__init__(port._reactor, connection, port.getHost(), peerAddress, handshakeTimeout, idleTimeout)
        self._port = port
        self._udpAddress = udpAddress if udpAddress is not None else (peerAddress.host, peerAddress.port)
        #: The random of the ClientHello that created this connection: a
        #: later ClientHello with another random from the same address is a
        #: peer restart (RFC 6347 §4.2.8), the same random is a duplicate.
        self.clientRandom = clientRandom

    def _sendDatagram(self, datagram: bytes) -> None:
        self._port._sendTo(datagram, self._udpAddress)

    def _buildProtocol(self):
        return self._port.factory.buildProtocol(self._peerAddress)

    def _handshakeSucceeded(self) -> None:
        pass

    def _handshakeCompleted(self, event: HandshakeCompleted) -> None:
        if self._state == _Pending.HANDSHAKING:
            self._port._handshakeFinished(self)
        super()._handshakeCompleted(event)
        if self._state is _Pending.CONNECTED and self.cipherReleaseAfter is not None:
            # The contexts were made for the Finished messages; a peer may
            # stay quiet long after. Rebuilding them for its first record
            # costs about as much as one record, holding them ~5 KiB a peer.
            self._ciphersReleased = True
            self._conn.release_ciphers()

    def _handshakeFailed(self, reason: Failure) -> None:
        if reason.check(DTLSPeerRefused):
            self._port.stats.connectionsRefused += 1
        self._log.debug("DTLS handshake with {peer} failed: {reason}", peer=self._peerAddress, reason=reason.value)

    def _peerRestarted(self) -> None:
        """
        The peer proved, with a cookie, a new ClientHello from this
        connection's address: this connection is gone (RFC 6347 §4.2.8).
        """
        self._endLocally(
            DTLSConnectionLost("the peer restarted: a new ClientHello came from its address (RFC 6347 section 4.2.8)"),
            polite=False,
        )

    def _forget(self) -> None:
        self._port._removeConnection(self)


class DTLSClientTransport(DTLSTransport):
    """
    The client end of one DTLS association over a connected UDP socket
    (see L{twisted_dtls.client}).

    @ivar whenConnected: fires with the protocol after the handshake
        completes and C{connectionMade} ran, or fails with a
        L{DTLSHandshakeError} (or C{ConnectionRefusedError}).
    """

    __slots__ = ("_udpPort", "_factory", "_whenConnected", "_onEnded", "_onEstablished", "_socketGone")

    def __init__(self, reactor, connection, udpPort, hostAddress, peerAddress, factory, handshakeTimeout, idleTimeout,
                 whenConnected, onEnded: Optional[Callable[[], None]] = None,
                 onEstablished: Optional[Callable[[], None]] = None):
        """
        @param onEnded: called once when the connection is over, unless
            the socket went away first.
        @param onEstablished: called once when the handshake completes,
            before the protocol is built (to keep the session for
            resumption).
        """
        super().__init__(reactor, connection, hostAddress, peerAddress, handshakeTimeout, idleTimeout)
        self._udpPort = udpPort
        self._factory = factory
        self._whenConnected = whenConnected
        self._onEnded = onEnded
        self._onEstablished = onEstablished
        self._socketGone = False

    def _handshakeCompleted(self, event: HandshakeCompleted) -> None:
        if self._state == _Pending.HANDSHAKING and self._onEstablished is not None:
            hook, self._onEstablished = self._onEstablished, None
            try:
                hook()
            except Exception:
                self._log.failure("Error in the DTLS client's handshake hook for {peer}", peer=self._peerAddress)
        super()._handshakeCompleted(event)

    def _sendDatagram(self, datagram: bytes) -> None:
        if self._socketGone:
            return
        try:
            self._udpPort.write(datagram)
        except OSError as e:
            # A connected UDP socket reports ICMP errors on send too.
            self._log.info("DTLS send to {peer} failed: {error}", peer=self._peerAddress, error=e)

    def _buildProtocol(self):
        return self._factory.buildProtocol(self._peerAddress)

    def _handshakeSucceeded(self) -> None:
        d, self._whenConnected = self._whenConnected, None
        if d is not None:
            d.callback(self.protocol)

    def _handshakeFailed(self, reason: Failure) -> None:
        d, self._whenConnected = self._whenConnected, None
        if d is not None:
            d.errback(reason)

    def connectionRefused(self) -> None:
        """
        The UDP socket got an ICMP port unreachable: during the handshake
        that is a failure (nothing listens there); afterwards it is only
        logged, as UDP paths come and go.
        """
        if self._state == _Pending.HANDSHAKING:
            self._endLocally(self._refusedError(), polite=False)
        else:
            self._log.info("ICMP port unreachable from {peer}", peer=self._peerAddress)

    def _refusedError(self):
        return error.ConnectionRefusedError(
            f"nothing is listening at {_hostPort(self._peerAddress)} (ICMP port unreachable)"
        )

    def socketClosed(self) -> None:
        """
        The UDP socket was closed under us (by the reactor, after an ICMP
        error): the association cannot go on.
        """
        if self._state == _Pending.CLOSED:
            return
        self._socketGone = True
        if self._state == _Pending.HANDSHAKING:
            cause = self._refusedError()
        else:
            cause = DTLSConnectionLost(f"the UDP socket to {_hostPort(self._peerAddress)} was closed (ICMP error)")
        self._endLocally(cause, polite=False)

    def _forget(self) -> None:
        if self._onEnded is not None and not self._socketGone:
            self._onEnded()


def _hostPort(address) -> str:
    host = getattr(address, "host", "?")
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{getattr(address, 'port', '?')}"
