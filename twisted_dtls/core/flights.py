"""
The flight retransmission timer (RFC 6347 §4.2.4, §4.2.4.1).

The timer starts at C{initial} seconds when a flight is sent, doubles on each
retransmission up to C{maximum}, and gives up after C{max_retransmissions}
retransmissions, when the handshake fails (a bounded total: with the
defaults 1, 2, 4, 8, 16, 32 and a final 60 s wait, about two minutes).
"""

from __future__ import annotations

from .errors import HandshakeTimeout


class RetransmitTimer:
    """
    @ivar deadline: when the current flight must be retransmitted, or
        C{None} when no flight awaits an answer.
    @ivar retransmissions: retransmissions of the current flight so far.
    """

    __slots__ = ("initial", "maximum", "max_retransmissions", "deadline", "timeout", "retransmissions")

    def __init__(self, initial: float = 1.0, maximum: float = 60.0, max_retransmissions: int = 6):
        self.initial = initial
        self.maximum = maximum
        self.max_retransmissions = max_retransmissions
        self.deadline: float | None = None
        self.timeout = initial
        self.retransmissions = 0

    def start(self, now: float) -> None:
        """
        A new flight was sent: restart from the initial timeout.
        """
        self.timeout = self.initial
        self.retransmissions = 0
        self.deadline = now + self.timeout

    def stop(self) -> None:
        self.deadline = None

    def expired(self, now: float) -> bool:
        return self.deadline is not None and now >= self.deadline

    def back_off(self, now: float) -> None:
        """
        The timer fired: double the timeout for the retransmission about to
        be sent.

        @raise HandshakeTimeout: when the retransmission budget is spent.
        """
        if self.retransmissions >= self.max_retransmissions:
            self.deadline = None
            raise HandshakeTimeout(
                f"no answer after {self.retransmissions} retransmissions"
            )
        self.retransmissions += 1
        self.timeout = min(self.timeout * 2, self.maximum)
        self.deadline = now + self.timeout
