"""
The errors of the protocol engine, one home each.

  - L{AlertError} and its subclasses: the peer broke the protocol. Raised
    inside the engine, turned into a fatal alert to the peer and a failed
    connection; never escapes L{DTLSConnection.receive_datagram}.
  - L{DecodeError}: bytes that do not parse. At the record layer the record is
    dropped silently (RFC 6347 §4.1.2.7); inside a handshake message it is a
    C{decode_error} alert.
  - L{ProtocolMisuseError} / L{ConfigurationError}: the local caller did
    something wrong; raised to the caller at once.
"""

from __future__ import annotations

from .constants import AlertDescription


class DTLSError(Exception):
    """
    Base class of every error raised by twisted_dtls.
    """


class AlertError(DTLSError):
    """
    A protocol violation that is answered with a fatal alert.

    @ivar description: the alert description to send (RFC 5246 §7.2).
    """

    default_description = AlertDescription.handshake_failure

    def __init__(self, message: str = "", description: AlertDescription | None = None):
        if description is None:
            description = self.default_description
        self.description = AlertDescription(description)
        self.message = message or self.description.name
        super().__init__(f"{self.description.name}: {self.message}")


class DecodeError(AlertError):
    """
    Bytes that are truncated, overlong or otherwise impossible to parse.
    """

    default_description = AlertDescription.decode_error


class UnexpectedMessage(AlertError):
    """
    A message arrived that the state machine does not allow here.
    """

    default_description = AlertDescription.unexpected_message


class IllegalParameter(AlertError):
    """
    A message parsed, but holds a value the protocol forbids here.
    """

    default_description = AlertDescription.illegal_parameter


class PeerAlert(DTLSError):
    """
    The peer sent us a fatal alert.

    @ivar description: the alert it sent.
    """

    def __init__(self, description: int):
        try:
            self.description = AlertDescription(description)
            name = self.description.name
        except ValueError:
            self.description = description  # type: ignore[assignment]
            name = f"alert {description}"
        super().__init__(f"peer sent fatal alert {name}")


class HandshakeTimeout(DTLSError):
    """
    The handshake did not complete within the retransmission budget.
    """


class ProtocolMisuseError(DTLSError):
    """
    The local caller used the connection wrongly (for example, sending before
    the handshake or after closing).
    """


class ConfigurationError(DTLSError, ValueError):
    """
    A configuration value is missing, inconsistent or out of range.
    """
