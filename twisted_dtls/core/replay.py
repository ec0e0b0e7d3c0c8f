"""
The anti-replay sliding window of RFC 6347 §4.1.2.6.

The window is checked before a record is decrypted (cheap rejection of
duplicates) and updated only after the record authenticated, so a forged
record with a huge sequence number cannot slide the window forward and make
genuine records look stale.
"""

from __future__ import annotations


# Shared by every default-sized window rather than one big int each.
_MASK_64 = (1 << 64) - 1


class ReplayWindow:
    """
    A window of C{size} sequence numbers ending at the highest one received.

    Bit C{i} of the bitmask stands for sequence number C{highest - i}.

    The record layer's single-record path reads C{_highest} and updates
    C{_bitmap}/C{_highest} itself for the next record in order (the same
    update as L{mark}), saving two calls on every application record.
    """

    __slots__ = ("size", "_highest", "_bitmap", "_mask")

    def __init__(self, size: int = 64):
        if size < 1:
            raise ValueError("replay window size must be at least 1")
        self.size = size
        self._highest = -1
        self._bitmap = 0
        self._mask = _MASK_64 if size == 64 else (1 << size) - 1

    def is_acceptable(self, sequence_number: int) -> bool:
        """
        @return: C{False} if C{sequence_number} was already marked or lies
            left of the window; C{True} otherwise (anything newer than the
            highest marked number is acceptable).
        """
        highest = self._highest
        if sequence_number > highest:
            return True
        offset = highest - sequence_number
        if offset >= self.size:
            return False
        return not (self._bitmap >> offset) & 1

    def mark(self, sequence_number: int) -> None:
        """
        Record C{sequence_number} as received; call only once the record has
        authenticated.
        """
        highest = self._highest
        if sequence_number == highest + 1:
            # In order: the common case, one shift.
            self._bitmap = ((self._bitmap << 1) | 1) & self._mask
            self._highest = sequence_number
        elif sequence_number > highest:
            shift = sequence_number - highest
            # A large jump empties the window; shifting by it would build a
            # huge integer for nothing.
            if shift >= self.size:
                self._bitmap = 1
            else:
                self._bitmap = ((self._bitmap << shift) | 1) & self._mask
            self._highest = sequence_number
        else:
            offset = highest - sequence_number
            if offset < self.size:
                self._bitmap |= 1 << offset
