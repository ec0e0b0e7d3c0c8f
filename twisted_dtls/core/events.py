"""
Events the engine reports to the layer above (L{DTLSConnection.next_event}).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from cryptography import x509

from .constants import AlertDescription


class CloseReason(enum.Enum):
    """
    Why a connection ended.
    """

    #: A close_notify was received (or sent and the peer then went quiet).
    CLOSE_NOTIFY = "close_notify"
    #: The peer sent a fatal alert.
    ALERT_RECEIVED = "alert_received"
    #: We detected a protocol violation and sent a fatal alert.
    ALERT_SENT = "alert_sent"
    #: The handshake ran out of retransmissions.
    TIMEOUT = "timeout"
    #: The local side abandoned the connection without a close_notify.
    ABORTED = "aborted"


@dataclass(frozen=True)
class HandshakeCompleted:
    """
    The handshake finished; application data may flow.

    @ivar cipher_suite: the negotiated L{CipherSuite}.
    @ivar version: the wire version (0xFEFD for DTLS 1.2).
    @ivar peer_certificates: the peer's chain, leaf first (empty for PSK or an
        anonymous client).
    @ivar resumed: whether this was an abbreviated handshake.
    """

    cipher_suite: int
    version: int
    peer_certificates: tuple[x509.Certificate, ...] = ()
    resumed: bool = False
    alpn_protocol: str | None = None
    srtp_profile: int | None = None
    server_name: str | None = None
    psk_identity: bytes | None = None


@dataclass(frozen=True)
class DataReceived:
    """
    One application-data record, whole.
    """

    data: bytes


@dataclass(frozen=True)
class AlertReceived:
    """
    A warning-level alert other than close_notify (for example
    no_renegotiation); the connection carries on.
    """

    description: int


@dataclass(frozen=True)
class ConnectionClosed:
    """
    The connection ended; no further events follow.

    @ivar reason: a L{CloseReason}.
    @ivar alert: the alert sent or received, if any.
    @ivar message: a human-readable explanation.
    """

    reason: CloseReason
    alert: AlertDescription | int | None = None
    message: str = ""
    error: Exception | None = field(default=None, compare=False)

    @property
    def clean(self) -> bool:
        return self.reason is CloseReason.CLOSE_NOTIFY


Event = HandshakeCompleted | DataReceived | AlertReceived | ConnectionClosed
