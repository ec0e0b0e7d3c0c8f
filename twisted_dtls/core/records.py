"""
The DTLS record header codec and the splitting of one UDP payload into
records (RFC 6347 §4.1).

Every record starts with a 13-byte header::

    ContentType type;            uint8
    ProtocolVersion version;     uint16
    uint16 epoch;
    uint48 sequence_number;
    uint16 length;
    opaque fragment[length];

A datagram may carry several records back to back (RFC 6347 §4.1.1).
Nothing here raises on peer input: a malformed record ends the parse and
the reason is returned, because RFC 6347 §4.1.2.7 asks for invalid records
to be dropped silently rather than answered with an alert.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .constants import MAX_CIPHERTEXT, RECORD_HEADER_SIZE, ContentType

# The 16-bit epoch and 48-bit sequence number are read as one 64-bit value:
# it is the seq_num of RFC 6347 §4.1.2.1 (epoch || sequence_number) anyway.
_HEADER = struct.Struct(">BHQH")
#: The record header as one struct: type, version, epoch || sequence_number
#: (64 bits), length; for the record layer's single-record fast path.
HEADER_STRUCT = _HEADER
_SEQUENCE_MASK = (1 << 48) - 1

#: Content types accepted by L{pull_records} (RFC 5246 §6.2.1).
KNOWN_CONTENT_TYPES = frozenset(
    (
        ContentType.change_cipher_spec,
        ContentType.alert,
        ContentType.handshake,
        ContentType.application_data,
    )
)

#: Reasons L{pull_records} may return for stopping early.
REASON_TRUNCATED_HEADER = "truncated_header"
REASON_TRUNCATED_FRAGMENT = "truncated_fragment"
REASON_UNKNOWN_CONTENT_TYPE = "unknown_content_type"
REASON_CID_UNSUPPORTED = "cid_unsupported"
REASON_TOO_LONG = "too_long"


@dataclass(slots=True)
class Record:
    """
    One record as it appeared on the wire.

    @ivar fragment: the record body, plaintext or ciphertext as received.
    """

    content_type: int
    version: int
    epoch: int
    sequence_number: int
    fragment: bytes


def pull_records(datagram: bytes) -> tuple[list[Record], str | None]:
    """
    Split one UDP payload into records.

    Parsing stops at the first malformed record; the records before it are
    still returned, the rest of the datagram is discarded (its boundaries
    can no longer be trusted).

    @param datagram: one UDP payload.
    @return: C{(records, reason)}; C{reason} is C{None} when the whole
        datagram parsed, otherwise one of C{"truncated_header"},
        C{"truncated_fragment"}, C{"unknown_content_type"},
        C{"cid_unsupported"} (RFC 9146 C{tls12_cid}, not implemented) or
        C{"too_long"} (length above 2^14 + 2048, RFC 5246 §6.2.3).
        Never raises.
    """
    records: list[Record] = []
    pos = 0
    end = len(datagram)
    unpack = _HEADER.unpack_from
    known = KNOWN_CONTENT_TYPES
    while pos < end:
        if end - pos < RECORD_HEADER_SIZE:
            return records, REASON_TRUNCATED_HEADER
        content_type, version, seq_num, length = unpack(datagram, pos)
        if content_type not in known:
            if content_type == ContentType.tls12_cid:
                return records, REASON_CID_UNSUPPORTED
            return records, REASON_UNKNOWN_CONTENT_TYPE
        if length > MAX_CIPHERTEXT:
            return records, REASON_TOO_LONG
        start = pos + RECORD_HEADER_SIZE
        pos = start + length
        if pos > end:
            return records, REASON_TRUNCATED_FRAGMENT
        records.append(
            Record(content_type, version, seq_num >> 48, seq_num & _SEQUENCE_MASK, datagram[start:pos])
        )
    return records, None


def push_record(content_type: int, version: int, epoch: int, sequence_number: int, fragment: bytes) -> bytes:
    """
    Encode one record: header followed by C{fragment}.

    @raise ValueError: a field does not fit its wire width (local misuse).
    """
    if not 0 <= epoch <= 0xFFFF:
        raise ValueError(f"epoch {epoch} does not fit 16 bits")
    if not 0 <= sequence_number <= _SEQUENCE_MASK:
        raise ValueError(f"sequence number {sequence_number} does not fit 48 bits")
    if len(fragment) > 0xFFFF:
        raise ValueError(f"record fragment of {len(fragment)} bytes does not fit a 16-bit length")
    return _HEADER.pack(content_type, version, (epoch << 48) | sequence_number, len(fragment)) + fragment
