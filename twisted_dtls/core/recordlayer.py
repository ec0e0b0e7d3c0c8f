"""
The DTLS record layer: epochs, sequence numbers, replay protection, the
queue of records that arrive before their epoch's keys, and counted drops.

Invalid records are dropped silently and counted by reason
(RFC 6347 §4.1.2.7): DTLS must survive garbage on the wire without tearing
the association down.
"""

from __future__ import annotations

from dataclasses import dataclass

from .constants import DTLS_1_0, DTLS_1_2, MAX_PLAINTEXT, MAX_SEQUENCE_NUMBER, RECORD_HEADER_SIZE
from .protection import RecordProtection
from .records import HEADER_STRUCT, KNOWN_CONTENT_TYPES, Record, pull_records
from .replay import ReplayWindow

_ACCEPTED_VERSIONS = frozenset((DTLS_1_2, DTLS_1_0))
#: ContentType.application_data as a plain int, for the per-record path
_APPLICATION_DATA = 23
_unpack_header = HEADER_STRUCT.unpack_from
_pack_header = HEADER_STRUCT.pack


class DropCounts(dict):
    """
    Reason -> count, where a reason never seen counts 0 (so
    C{drops[reason] += 1} just works), as with C{collections.Counter}.

    A plain C{dict} subclass because every connection builds one:
    C{Counter()} runs its Python C{__init__} and C{update}, which cost more
    than everything else a record layer sets up.
    """

    __slots__ = ()

    def __missing__(self, key: str) -> int:
        return 0


@dataclass(slots=True)
class OpenedRecord:
    """
    A record that passed version, epoch, replay and authentication checks.

    @ivar data: the plaintext.
    """

    content_type: int
    epoch: int
    sequence_number: int
    data: bytes


class _ReadState:
    """
    @ivar window: the replay window; C{None} for an unprotected epoch, where
        anyone can forge any sequence number, so a window could only be
        pushed forward by an attacker to make the real handshake look
        replayed (duplicates there are harmless: the handshake discards
        repeated messages by message_seq).
    """

    __slots__ = ("protection", "window")

    def __init__(self, protection: RecordProtection | None):
        self.protection = protection
        self.window = None if protection is None else ReplayWindow()


class _WriteState:
    __slots__ = ("protection", "next_sequence_number")

    def __init__(self, protection: RecordProtection | None):
        self.protection = protection
        self.next_sequence_number = 0


class RecordLayer:
    """
    Record protection state of one association, both directions.

    Two read epochs are live: the current one and the one before it, because
    after switching keys we can still receive the peer's retransmitted
    handshake records of the old epoch (RFC 6347 §4.1 allows keeping old
    keying material for a while; the handshake layer decides what to do with
    such records). Two write epochs are live for the same reason in the other
    direction: a flight spanning ChangeCipherSpec is retransmitted with its
    original epochs (RFC 6347 §4.2.4 / §4.1).

    Every established connection holds one of these, so the two live epochs
    of each direction are plain slots rather than dictionaries: an idle
    connection's footprint is mostly this object.

    @ivar read_epoch: the current read epoch.
    @ivar write_epoch: the current write epoch (default for L{seal}).
    @ivar version: the version written in record headers.
    @ivar drops: reason -> number of dropped records. Reasons:
        C{"bad_version"}, C{"unknown_epoch"}, C{"replayed"}, C{"bad_tag"},
        C{"too_long"} (plaintext above 2^14, RFC 5246 §6.2.1, or a length
        field above 2^14 + 2048), C{"queue_full"}, and the framing reasons
        of L{pull_records} (C{"truncated_header"}, C{"truncated_fragment"},
        C{"unknown_content_type"}, C{"cid_unsupported"}; counted once per
        datagram, for the unparsable remainder).
    @ivar auth_failures: number of records that failed authentication (for
        an AEAD usage limit).
    @ivar max_pending_records: bound of the next-epoch queue.
    """

    __slots__ = (
        "read_epoch",
        "write_epoch",
        "version",
        "drops",
        "auth_failures",
        "max_pending_records",
        "_read",
        "_previous_read",
        "_previous_read_epoch",
        "_write",
        "_previous_write",
        "_previous_write_epoch",
        "_pending",
        "_queued_now",
        "switch_failures",
    )

    def __init__(self, max_pending_records: int = 16):
        self.read_epoch = 0
        self.write_epoch = 0
        self.version = DTLS_1_2
        self.drops: DropCounts = DropCounts()
        self.auth_failures = 0
        self.max_pending_records = max_pending_records
        self._read = _ReadState(None)
        self._previous_read: _ReadState | None = None
        self._previous_read_epoch = -1
        self._write = _WriteState(None)
        self._previous_write: _WriteState | None = None
        self._previous_write_epoch = -1
        #: next-epoch records; None (not an empty list) when there are none
        self._pending: list[Record] | None = None
        #: records queued for the next epoch by the current open_datagram
        self._queued_now = 0
        #: of the records opened by the last install_read, how many that
        #: came in the same datagram as the call before it failed
        #: authentication (the peer's own records under keys that differ)
        self.switch_failures = 0

    # -- writing -------------------------------------------------------------

    def install_write(self, epoch: int, protection: RecordProtection | None) -> None:
        """
        Make C{epoch} the write epoch, starting at sequence number 0. The
        previous write epoch stays usable through C{seal(..., epoch=old)};
        older ones are forgotten.

        @raise ValueError: C{epoch} is not above the current write epoch
            (reusing an epoch would reuse AEAD nonces) or exceeds 16 bits.
        """
        if not self.write_epoch < epoch <= 0xFFFF:
            raise ValueError(f"new write epoch {epoch} must be above {self.write_epoch} and fit 16 bits")
        self._previous_write, self._previous_write_epoch = self._write, self.write_epoch
        self._write = _WriteState(protection)
        self.write_epoch = epoch

    def discard_previous_write_epoch(self) -> None:
        """
        Forget the keys of the previous write epoch once no flight needs
        them any more.
        """
        self._previous_write, self._previous_write_epoch = None, -1

    def set_next_write_sequence(self, epoch: int, sequence_number: int) -> None:
        """
        Continue C{epoch} at C{sequence_number}: a server created from a
        cookie-bearing ClientHello sends above the sequence number of the
        stateless HelloVerifyRequest (RFC 6347 §4.2.1).

        @raise ValueError: C{epoch} is not a live write epoch, or the number
            would move backwards (reuse of a sequence number, and of an AEAD
            nonce) or beyond 48 bits.
        """
        state = self._write_state(epoch)
        if not state.next_sequence_number <= sequence_number <= MAX_SEQUENCE_NUMBER + 1:
            raise ValueError(
                f"next sequence number {sequence_number} must be within "
                f"{state.next_sequence_number}..{MAX_SEQUENCE_NUMBER + 1}"
            )
        state.next_sequence_number = sequence_number

    def seal(self, content_type: int, payload: bytes, epoch: int | None = None) -> bytes:
        """
        Build one record (header and fragment) with the next sequence number
        of C{epoch}.

        @param epoch: a live write epoch; defaults to L{write_epoch}.
        @raise ValueError: C{payload} is larger than 2^14 bytes
            (RFC 5246 §6.2.1), C{epoch} is not live, or the epoch's 48-bit
            sequence number space is used up (RFC 6347 §4.1: a new epoch
            is needed; wrapping would reuse AEAD nonces).
        """
        if epoch is None or epoch == self.write_epoch:
            epoch = self.write_epoch
            state = self._write
        else:
            state = self._write_state(epoch)
        if len(payload) > MAX_PLAINTEXT:
            raise ValueError(f"record payload of {len(payload)} bytes exceeds {MAX_PLAINTEXT}")
        sequence_number = state.next_sequence_number
        if sequence_number > MAX_SEQUENCE_NUMBER:
            raise ValueError(f"sequence numbers of epoch {epoch} exhausted")
        state.next_sequence_number = sequence_number + 1
        protection = state.protection
        if protection is None:
            # What push_record builds, without its range checks: the epoch
            # fits 16 bits (install_write checks), the sequence number 48
            # (checked above) and the payload 2^14 bytes (checked above).
            # Every record of a server's first flight comes this way.
            return _pack_header(content_type, self.version, (epoch << 48) | sequence_number, len(payload)) + payload
        return protection.seal_record(content_type, self.version, epoch, sequence_number, payload)

    def max_payload(self, datagram_size: int, epoch: int | None = None) -> int:
        """
        @return: the largest plaintext that fits one record of C{epoch}
            (default L{write_epoch}) in a datagram of C{datagram_size} bytes:
            C{datagram_size - 13 - overhead}, limited to 0..2^14.
        @raise ValueError: C{epoch} is not live.
        """
        state = self._write if epoch is None else self._write_state(epoch)
        protection = state.protection
        size = datagram_size - RECORD_HEADER_SIZE - (0 if protection is None else protection.overhead)
        if size <= 0:
            return 0
        return MAX_PLAINTEXT if size > MAX_PLAINTEXT else size

    def overhead(self, epoch: int | None = None) -> int:
        """
        @return: the bytes protection adds to a record of write epoch
            C{epoch} (default L{write_epoch}), header excluded.
        """
        state = self._write if epoch is None or epoch == self.write_epoch else self._write_state(epoch)
        protection = state.protection
        return 0 if protection is None else protection.overhead

    def _write_state(self, epoch: int) -> _WriteState:
        if epoch == self.write_epoch:
            return self._write
        if epoch == self._previous_write_epoch and self._previous_write is not None:
            return self._previous_write
        live = sorted(e for e in (self._previous_write_epoch, self.write_epoch) if e >= 0)
        raise ValueError(f"epoch {epoch} is not a live write epoch (live: {live})")

    def release_ciphers(self) -> None:
        """
        Let an idle association drop its AEAD contexts (see
        L{RecordProtection.release}); each is rebuilt when a record next
        needs it. For a caller that knows the association is quiet, such as
        a transport's idle timer.
        """
        for state in (self._read, self._previous_read, self._write, self._previous_write):
            if state is not None and state.protection is not None:
                state.protection.release()

    # -- reading -------------------------------------------------------------

    def _read_state(self, epoch: int) -> _ReadState | None:
        if epoch == self.read_epoch:
            return self._read
        if epoch == self._previous_read_epoch and epoch >= 0:
            return self._previous_read
        return None

    def install_read(self, epoch: int, protection: RecordProtection | None) -> list[OpenedRecord]:
        """
        Make C{epoch} the read epoch. The previous read epoch stays live;
        older ones are forgotten.

        @return: the queued records of C{epoch} that now open, in arrival
            order. Queued records of other epochs are dropped
            (C{"unknown_epoch"}); queued records that fail the checks are
            dropped with their reason.
        @raise ValueError: C{epoch} is not above the current read epoch or
            exceeds 16 bits.
        """
        if not self.read_epoch < epoch <= 0xFFFF:
            raise ValueError(f"new read epoch {epoch} must be above {self.read_epoch} and fit 16 bits")
        state = _ReadState(protection)
        self._previous_read, self._previous_read_epoch = self._read, self.read_epoch
        self._read = state
        self.read_epoch = epoch
        pending, self._pending = self._pending or [], None
        opened: list[OpenedRecord] = []
        same_datagram_from = len(pending) - self._queued_now
        self.switch_failures = 0
        for index, record in enumerate(pending):
            if record.epoch != epoch:
                self.drops["unknown_epoch"] += 1
                continue
            failures = self.auth_failures
            result = self._open(state, record)
            if result is not None:
                opened.append(result)
            elif index >= same_datagram_from and self.auth_failures != failures:
                self.switch_failures += 1
        self._queued_now = 0
        return opened

    def discard_previous_read_epoch(self) -> None:
        """
        Stop accepting records of the previous read epoch (for instance
        once the handshake is over and its retransmissions no longer
        matter).
        """
        self._previous_read, self._previous_read_epoch = None, -1

    def _open_whole(
        self, protection: RecordProtection, window: ReplayWindow, content_type: int, version: int, seq_num: int, datagram: bytes
    ) -> bytes | None:
        """
        Replay-check, authenticate and decrypt a datagram that is one whole
        record of the current, protected read epoch (its header already
        checked): the plaintext, or None, counted, if it is dropped.
        """
        sequence_number = seq_num & MAX_SEQUENCE_NUMBER
        # RFC 6347 §4.1.2.6: check before decrypting, mark only after.
        # The next record in order (nearly every record) needs no window
        # lookup; anything else asks the window.
        in_order = sequence_number == window._highest + 1
        if not in_order and not window.is_acceptable(sequence_number):
            self.drops["replayed"] += 1
            return None
        data = protection.open_record(content_type, version, seq_num, datagram)
        if data is None:
            self.auth_failures += 1
            self.drops["bad_tag"] += 1
            return None
        if in_order:
            window._bitmap = ((window._bitmap << 1) | 1) & window._mask
            window._highest = sequence_number
        else:
            window.mark(sequence_number)
        return data

    def open_application_datagram(self, datagram: bytes) -> bytes | list[OpenedRecord]:
        """
        L{open_datagram} for the datagram an established association
        receives nearly always, one application-data record of the current
        read epoch: its plaintext is returned as it is, with no
        L{OpenedRecord} or list around it.

        @return: the plaintext (C{bytes}); or, for any other datagram, what
            L{open_datagram} returns for it (a list, empty if nothing
            opened; a dropped application record counts as usual).
        """
        end = len(datagram)
        if end > RECORD_HEADER_SIZE and datagram[0] == _APPLICATION_DATA:
            _, version, seq_num, length = _unpack_header(datagram, 0)
            state = self._read
            window = state.window
            if (
                length + RECORD_HEADER_SIZE == end
                and seq_num >> 48 == self.read_epoch
                and window is not None
                and version in _ACCEPTED_VERSIONS
                and length <= MAX_PLAINTEXT
            ):
                self._queued_now = 0
                data = self._open_whole(state.protection, window, _APPLICATION_DATA, version, seq_num, datagram)
                return [] if data is None else data
        return self.open_datagram(datagram)

    def open_datagram(self, datagram: bytes) -> list[OpenedRecord]:
        """
        Open every valid record of one UDP payload.

        Records of the current or previous read epoch are replay-checked,
        authenticated and returned; records of the next epoch are queued
        (bounded by L{max_pending_records}) until L{install_read}; anything
        else is dropped and counted in L{drops}. Never raises.
        """
        self._queued_now = 0
        # Fast path: one whole record of the current, protected read epoch,
        # which is what every application datagram is. Anything else takes
        # the general path below, which applies every check in order.
        end = len(datagram)
        if end > RECORD_HEADER_SIZE:
            content_type, version, seq_num, length = _unpack_header(datagram, 0)
            state = self._read
            if (
                length + RECORD_HEADER_SIZE == end
                and seq_num >> 48 == self.read_epoch
                and content_type in KNOWN_CONTENT_TYPES
                and version in _ACCEPTED_VERSIONS
                # a fragment this short cannot hide a plaintext over 2^14
                and length <= MAX_PLAINTEXT
            ):
                sequence_number = seq_num & MAX_SEQUENCE_NUMBER
                window = state.window
                if window is None:
                    # Unprotected (epoch 0, see _ReadState): the record is
                    # taken as it is, as the general path below would. This
                    # is the ClientHello that starts a server connection.
                    return [OpenedRecord(content_type, self.read_epoch, sequence_number, datagram[RECORD_HEADER_SIZE:])]
                data = self._open_whole(state.protection, window, content_type, version, seq_num, datagram)
                return [] if data is None else [OpenedRecord(content_type, self.read_epoch, sequence_number, data)]
        records, reason = pull_records(datagram)
        opened: list[OpenedRecord] = []
        for record in records:
            if record.version not in _ACCEPTED_VERSIONS:
                self.drops["bad_version"] += 1
                continue
            epoch = record.epoch
            state = self._read_state(epoch)
            if state is not None:
                if state.protection is None and len(record.fragment) <= MAX_PLAINTEXT:
                    # L{_open} of an unprotected epoch, written out: every
                    # record of a handshake's first flights comes this way.
                    opened.append(OpenedRecord(record.content_type, epoch, record.sequence_number, record.fragment))
                    continue
                result = self._open(state, record)
                if result is not None:
                    opened.append(result)
            elif epoch == self.read_epoch + 1:
                # RFC 6347 §4.1: records of the next epoch may overtake the
                # ChangeCipherSpec/Finished that enables their keys.
                if self._pending is None:
                    self._pending = []
                if len(self._pending) >= self.max_pending_records:
                    # Keep the newest: the peer's real records come last,
                    # right before its ChangeCipherSpec; junk that filled
                    # the queue earlier must not crowd them out.
                    self._pending.pop(0)
                    self._queued_now = min(self._queued_now, len(self._pending))
                    self.drops["queue_full"] += 1
                self._pending.append(record)
                self._queued_now += 1
            else:
                self.drops["unknown_epoch"] += 1
        if reason is not None:
            self.drops[reason] += 1
        return opened

    def _open(self, state: _ReadState, record: Record) -> OpenedRecord | None:
        sequence_number = record.sequence_number
        protection = state.protection
        if protection is None:
            # Epoch 0 is unauthenticated: no replay window (see _ReadState).
            data = record.fragment
            if len(data) > MAX_PLAINTEXT:
                self.drops["too_long"] += 1
                return None
            return OpenedRecord(record.content_type, record.epoch, sequence_number, data)
        window = state.window
        # RFC 6347 §4.1.2.6: check before decrypting, mark only after.
        if not window.is_acceptable(sequence_number):
            self.drops["replayed"] += 1
            return None
        data = protection.open(record.content_type, record.version, record.epoch, sequence_number, record.fragment)
        if data is None:
            self.auth_failures += 1
            self.drops["bad_tag"] += 1
            return None
        if len(data) > MAX_PLAINTEXT:
            # RFC 5246 §6.2.1 makes this record_overflow; DTLS drops instead.
            self.drops["too_long"] += 1
            return None
        window.mark(sequence_number)
        return OpenedRecord(record.content_type, record.epoch, sequence_number, data)
