"""
Handshake fragmentation and reassembly (RFC 6347 §4.2.3).

Outgoing: a flight of handshake messages (and ChangeCipherSpec) is cut into
fragments and packed into datagrams no larger than the configured maximum.

Incoming: fragments arrive in any order, duplicated or overlapping; they are
reassembled into whole messages delivered strictly in C{message_seq} order.
Every byte held is bounded: a message whose declared length exceeds the
maximum is refused before anything is allocated, the bytes held across all
messages are capped, and only a small window of future messages is kept.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Iterable

from .constants import HANDSHAKE_HEADER_SIZE, MAX_PLAINTEXT, RECORD_HEADER_SIZE, ContentType
from .messages import HandshakeFragment, push_handshake_fragment  # noqa: F401 (re-exported)

# The 12-byte handshake header (RFC 6347 §4.2.2): msg_type and the uint24
# length, message_seq, then the uint24 fragment_offset split as 2 + 1 bytes
# so that its low byte and the uint24 fragment_length share a uint32.
_HEADER = struct.Struct(">IHHI")
#: L{handshake_header} as a struct, for the per-message paths that pack an
#: unfragmented header (offset 0, fragment_length = length) themselves:
#: C{pack((msg_type << 24) | length, message_seq, 0, length)}.
HANDSHAKE_HEADER = _HEADER


def handshake_header(msg_type: int, length: int, message_seq: int, offset: int, fragment_length: int) -> bytes:
    """
    The 12-byte DTLS handshake header (RFC 6347 §4.2.2), as
    L{push_handshake_fragment} writes it.
    """
    return _HEADER.pack(
        (msg_type << 24) | length, message_seq, offset >> 8, ((offset & 0xFF) << 24) | fragment_length
    )


@dataclass(slots=True)
class FlightItem:
    """
    One element of a flight: a handshake message, or a ChangeCipherSpec.

    @ivar epoch: the write epoch the item is sent in.
    @ivar header: the message's unfragmented handshake header when already
        built (L{Handshake.message} builds it for the transcript), so that
        sending the message whole does not build it again; empty otherwise.
    """

    epoch: int
    content_type: int
    msg_type: int = 0
    message_seq: int = 0
    body: bytes = b""
    header: bytes = b""


class _PartialMessage:
    __slots__ = ("msg_type", "length", "data", "ranges", "received")

    def __init__(self, msg_type: int, length: int, whole: bytes | None = None):
        """
        @param whole: the complete body, when the first fragment is the
            whole message (as nearly every one is): it is kept as it is
            rather than copied into a buffer. Later fragments of the message
            find every byte held, and never write into it.
        """
        self.msg_type = msg_type
        self.length = length
        if whole is None:
            self.data: bytes | bytearray = bytearray(length)
            #: merged, sorted [start, end) ranges received so far
            self.ranges: list[list[int]] = []
            self.received = 0
        else:
            self.data = whole
            self.ranges = [[0, length]]
            self.received = length


class Reassembler:
    """
    Bounded reassembly of incoming handshake fragments into in-order messages.

    @ivar next_seq: the C{message_seq} of the next message to deliver.
    """

    __slots__ = ("next_seq", "_max_message", "_max_bytes", "_max_future", "_partial", "_held", "drops")

    def __init__(self, max_message_size: int, max_total_bytes: int, max_future_messages: int):
        self.next_seq = 0
        self._max_message = max_message_size
        self._max_bytes = max_total_bytes
        self._max_future = max_future_messages
        self._partial: dict[int, _PartialMessage] = {}
        self._held = 0
        self.drops: dict[str, int] = {}

    def _drop(self, reason: str) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + 1

    def add(self, fragment: HandshakeFragment) -> bool:
        """
        Take one fragment.

        @return: C{True} if the fragment belongs to a message already
            delivered (the peer is retransmitting), C{False} otherwise.
        """
        seq = fragment.message_seq
        if seq < self.next_seq:
            return True
        if seq >= self.next_seq + self._max_future:
            self._drop("future_message")
            return False
        length = fragment.length
        offset = fragment.fragment_offset
        body = fragment.body
        if length > self._max_message:
            self._drop("message_too_large")
            return False
        if offset + len(body) > length:
            self._drop("fragment_overrun")
            return False
        partial = self._partial.get(seq)
        if partial is None:
            # Room for a nearer message is made by evicting the farthest
            # ones: forged fragments of future messages must not be able to
            # crowd out the message the handshake is waiting for.
            while self._held + length > self._max_bytes:
                farthest = max(self._partial, default=-1)
                if farthest <= seq:
                    self._drop("reassembly_full")
                    return False
                self._held -= self._partial.pop(farthest).length
                self._drop("reassembly_evicted")
            self._held += length
            if offset == 0 and len(body) == length and type(body) is bytes:
                self._partial[seq] = _PartialMessage(fragment.msg_type, length, body)
                return False
            partial = _PartialMessage(fragment.msg_type, length)
            self._partial[seq] = partial
        elif partial.msg_type != fragment.msg_type or partial.length != length:
            # Fragments disagree about the message: one side is forged. The
            # latest claim replaces the earlier one, so a single blind
            # injection cannot block the real message, which the peer keeps
            # retransmitting.
            self._drop("fragment_mismatch")
            del self._partial[seq]
            self._held -= partial.length
            return self.add(fragment)
        _fill(partial, offset, body)
        return False

    def take_whole(self, fragment: HandshakeFragment) -> tuple[int, int, bytes] | None:
        """
        L{add} then L{pop} for the fragment nearly every one is: the whole
        of the message due next, arriving while nothing else is held. It is
        delivered as it is, with no L{_PartialMessage} in between.

        @return: C{(msg_type, message_seq, body)} as L{pop} would return it;
            C{None} when the fragment is anything else, and then nothing
            was done: the caller goes through L{add} and L{pop}.
        """
        seq = fragment.message_seq
        body = fragment.body
        length = fragment.length
        if (
            seq != self.next_seq
            or self._partial
            or fragment.fragment_offset
            or len(body) != length
            or type(body) is not bytes
            # add()'s limits: with nothing held, these are all it checks.
            or length > self._max_message
            or length > self._max_bytes
            or self._max_future < 1
        ):
            return None
        self.next_seq = seq + 1
        return fragment.msg_type, seq, body

    def pop(self) -> tuple[int, int, bytes] | None:
        """
        @return: C{(msg_type, message_seq, body)} of the next complete message
            in order, or C{None}.
        """
        partial = self._partial.get(self.next_seq)
        if partial is None or partial.received < partial.length:
            return None
        del self._partial[self.next_seq]
        self._held -= partial.length
        seq = self.next_seq
        self.next_seq += 1
        return partial.msg_type, seq, bytes(partial.data)

    def clear(self) -> None:
        self._partial.clear()
        self._held = 0

    @property
    def held_bytes(self) -> int:
        return self._held


def _fill(partial: _PartialMessage, offset: int, body: bytes) -> None:
    """
    Copy the parts of C{body} (at C{offset}) that are not yet held.
    """
    end = offset + len(body)
    if end == offset:
        return
    ranges = partial.ranges
    cursor = offset
    for start, stop in ranges:
        if stop <= cursor:
            continue
        if start >= end:
            break
        if start > cursor:
            partial.data[cursor:start] = body[cursor - offset : start - offset]
        cursor = max(cursor, stop)
        if cursor >= end:
            break
    if cursor < end:
        partial.data[cursor:end] = body[cursor - offset :]
    # merge [offset, end) into the sorted range list
    merged: list[list[int]] = []
    new = [offset, end]
    placed = False
    for r in ranges:
        if r[1] < new[0]:
            merged.append(r)
        elif r[0] > new[1]:
            if not placed:
                merged.append(new)
                placed = True
            merged.append(r)
        else:
            new = [min(new[0], r[0]), max(new[1], r[1])]
    if not placed:
        merged.append(new)
    partial.ranges = merged
    partial.received = sum(e - s for s, e in merged)


def pack_flight(
    items: Iterable[FlightItem],
    seal,
    max_datagram_size: int,
    overhead_for_epoch,
    max_record_plaintext: int = MAX_PLAINTEXT,
) -> list[bytes]:
    """
    Cut a flight into records and pack the records into datagrams.

    @param seal: C{seal(content_type, payload, epoch) -> bytes}, producing one
        whole record (this consumes a record sequence number, so each
        transmission of a flight gets fresh sequence numbers, RFC 6347
        §4.2.4).
    @param overhead_for_epoch: C{f(epoch) -> int}, the bytes protection adds
        to a record in that epoch.
    @param max_record_plaintext: the peer's record size limit (RFC 8449):
        no record's plaintext exceeds it.
    @return: the datagrams, each at most C{max_datagram_size} bytes.
    """
    datagrams: list[bytes] = []
    current = bytearray()
    handshake = ContentType.handshake
    # Protection does not change within a flight: one lookup per epoch.
    overheads: dict[int, int] = {}
    for item in items:
        epoch = item.epoch
        record_overhead = overheads.get(epoch)
        if record_overhead is None:
            record_overhead = overheads[epoch] = RECORD_HEADER_SIZE + overhead_for_epoch(epoch)
        body = item.body
        if item.content_type != handshake:
            if max_datagram_size - len(current) < record_overhead + len(body):
                datagrams.append(bytes(current))
                current = bytearray()
            current += seal(item.content_type, body, epoch)
            continue
        length = len(body)
        # What one record in the rest of this datagram can carry.
        space = min(max_datagram_size - len(current) - record_overhead, max_record_plaintext) - HANDSHAKE_HEADER_SIZE
        if space >= length and space > 0:
            # The whole message fits, as nearly every one does: one record.
            header = item.header or handshake_header(item.msg_type, length, item.message_seq, 0, length)
            current += seal(handshake, header + body, epoch)
            continue
        offset = 0
        # What one record in an empty datagram can carry of this message.
        full = min(max_datagram_size - record_overhead, max_record_plaintext) - HANDSHAKE_HEADER_SIZE
        while True:
            space = min(max_datagram_size - len(current) - record_overhead, max_record_plaintext) - HANDSHAKE_HEADER_SIZE
            remaining = length - offset
            # A message that fits a datagram of its own is never split just
            # to fill the current one; a large one may start in the gap, but
            # not as a sliver.
            if current and space < remaining and (remaining <= full or space < 64):
                datagrams.append(bytes(current))
                current = bytearray()
                continue
            if space <= 0:
                if current:
                    datagrams.append(bytes(current))
                    current = bytearray()
                    continue
                space = 1
            chunk = min(space, remaining)
            header = handshake_header(item.msg_type, length, item.message_seq, offset, chunk)
            piece = body if chunk == length else body[offset : offset + chunk]
            current += seal(handshake, header + piece, epoch)
            offset += chunk
            if offset >= length:
                break
    if current:
        datagrams.append(bytes(current))
    return datagrams
