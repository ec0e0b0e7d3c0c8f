"""
What a server does with a datagram from a peer it holds no state for
(RFC 6347 §4.2.1): the stateless cookie exchange.

Only a complete, unfragmented ClientHello in a single epoch-0 record is
considered. Without a valid cookie it is answered with a HelloVerifyRequest
built from the ClientHello alone: the reply reuses the ClientHello's record
sequence number and C{message_seq}, carries version 0xFEFF (errata 4103),
and is never larger than the datagram that caused it. Nothing is kept, no
signature is made and no timer is set. With a valid cookie the caller may
create a connection and feed it the same datagram.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from .constants import (
    DTLS_1_0,
    DTLS_1_2,
    HANDSHAKE_HEADER_SIZE,
    MAX_CIPHERTEXT,
    RECORD_HEADER_SIZE,
    ContentType,
    HandshakeType,
)
from .cookie import CookieContext, cookie_input  # noqa: F401 (cookie_input: the fields bound, see _cookie_fields)
from .records import KNOWN_CONTENT_TYPES


class Verdict(enum.Enum):
    #: Not a ClientHello we may act on; see L{FirstDatagram.reason}.
    DROP = "drop"
    #: Answer with L{FirstDatagram.reply} and forget the datagram.
    HELLO_VERIFY = "hello_verify"
    #: The cookie verified: create a connection and give it this datagram.
    ACCEPT = "accept"


@dataclass(frozen=True, slots=True)
class FirstDatagram:
    verdict: Verdict
    reply: bytes | None = None
    reason: str | None = None


_ACCEPTED_RECORD_VERSIONS = (DTLS_1_0, DTLS_1_2)


def _drop(reason: str) -> FirstDatagram:
    return FirstDatagram(Verdict.DROP, None, reason)


# The verdicts are immutable: build the constant ones once.
_ACCEPT = FirstDatagram(Verdict.ACCEPT)
_DROP_NOT_A_RECORD = _drop("not_a_record")
_DROP_NOT_HANDSHAKE = _drop("not_handshake")
_DROP_NOT_EPOCH_0 = _drop("not_epoch_0")
_DROP_BAD_VERSION = _drop("bad_version")
_DROP_TRUNCATED_HANDSHAKE = _drop("truncated_handshake")
_DROP_NOT_CLIENT_HELLO = _drop("not_client_hello")
_DROP_FRAGMENTED = _drop("fragmented_client_hello")
_DROP_MALFORMED = _drop("malformed_client_hello")
_DROP_AMPLIFICATION = _drop("amplification")

_RECORD_HEADER = struct.Struct(">BHQH")
#: handshake header (type, uint24 length, message_seq, uint24 offset,
#: uint24 fragment_length) followed by the HelloVerifyRequest's version and
#: cookie length; the uint24s as a byte and a uint16.
_HVR_HEADER = struct.Struct(">BBHHBHBHHB")
_RANDOM_SIZE = 32
_RANDOM_LENGTH_BYTE = bytes((_RANDOM_SIZE,))
_MAX_SESSION_ID_SIZE = 32


def _cookie_fields(fragment: bytes) -> tuple[bytes, bytes, int] | None:
    """
    Lean parse of an unfragmented ClientHello message (handshake header
    included) for the cookie exchange only (RFC 6347 §4.2.1).

    Only the fields the cookie binds are located; they are sliced out of
    the wire bytes, never decoded into lists. The rest of the message is
    checked for framing alone (the extensions block's length, and each
    extension's header and length, and no type twice), so that what the
    full parser would reject as malformed is dropped here too. What the
    extensions contain is checked by the full parse in the connection,
    once the cookie verified.

    @return: C{(cookie_input, cookie, message_seq)}, or None if malformed.
        C{cookie_input} equals L{cookie_input} of the decoded fields.
    """
    end = len(fragment)
    # client_version (2) + random (32) follow the 12-byte handshake header.
    pos = HANDSHAKE_HEADER_SIZE + 2 + _RANDOM_SIZE
    if pos + 1 > end:
        return None
    session_id_length = fragment[pos]
    if session_id_length > _MAX_SESSION_ID_SIZE:
        return None
    session_start = pos
    pos += 1 + session_id_length
    if pos + 1 > end:
        return None
    cookie_length = fragment[pos]
    cookie_start = pos + 1
    pos = cookie_start + cookie_length
    suites_start = pos
    if pos + 2 > end:
        return None
    suites_length = (fragment[pos] << 8) | fragment[pos + 1]
    # <2..2^16-2> uint16s: even and not empty.
    if suites_length == 0 or suites_length & 1:
        return None
    pos += 2 + suites_length
    if pos + 1 > end:
        return None
    compression_length = fragment[pos]
    if compression_length == 0:
        return None
    pos += 1 + compression_length
    if pos > end:
        return None
    fields_end = pos
    # RFC 5246 §7.4.1.2: the extensions block may be absent altogether.
    if pos != end:
        if pos + 2 > end:
            return None
        block_end = pos + 2 + ((fragment[pos] << 8) | fragment[pos + 1])
        if block_end != end:
            return None
        pos += 2
        # Each extension's header and length must fit the block exactly.
        types = []
        while pos < end:
            if pos + 4 > end:
                return None
            types.append(fragment[pos : pos + 2])
            pos += 4 + ((fragment[pos + 2] << 8) | fragment[pos + 3])
        # RFC 5246 §7.4.1.4: no extension type twice.
        if pos != end or len(set(types)) != len(types):
            return None
    # cookie_input(): version, random (with its length), session_id,
    # cipher_suites and compression_methods as on the wire.
    fields = b"".join(
        (
            fragment[HANDSHAKE_HEADER_SIZE : HANDSHAKE_HEADER_SIZE + 2],
            _RANDOM_LENGTH_BYTE,
            fragment[HANDSHAKE_HEADER_SIZE + 2 : session_start],
            fragment[session_start : cookie_start - 1],
            fragment[suites_start:fields_end],
        )
    )
    return fields, fragment[cookie_start : cookie_start + cookie_length], (fragment[4] << 8) | fragment[5]


def examine_first_datagram(datagram: bytes, address: tuple, cookies: CookieContext, now: float) -> FirstDatagram:
    """
    Decide what to do with a datagram from an unknown peer. Never raises on
    any input.

    Only the first record is looked at; the rest of the datagram is left to
    the connection, if one is created.

    @param address: the peer's (host, port, ...) as the socket reported it.
    """
    end = len(datagram)
    if end < RECORD_HEADER_SIZE:
        return _DROP_NOT_A_RECORD
    content_type, version, sequence, length = _RECORD_HEADER.unpack_from(datagram)
    if content_type not in KNOWN_CONTENT_TYPES or length > MAX_CIPHERTEXT or RECORD_HEADER_SIZE + length > end:
        return _DROP_NOT_A_RECORD
    if content_type != ContentType.handshake:
        return _DROP_NOT_HANDSHAKE
    if sequence >> 48:
        return _DROP_NOT_EPOCH_0
    if version not in _ACCEPTED_RECORD_VERSIONS:
        return _DROP_BAD_VERSION
    fragment = datagram[RECORD_HEADER_SIZE : RECORD_HEADER_SIZE + length]
    if length < HANDSHAKE_HEADER_SIZE:
        return _DROP_TRUNCATED_HANDSHAKE
    if fragment[0] != HandshakeType.client_hello:
        return _DROP_NOT_CLIENT_HELLO
    message_length = int.from_bytes(fragment[1:4], "big")
    offset = int.from_bytes(fragment[6:9], "big")
    fragment_length = int.from_bytes(fragment[9:12], "big")
    # A ClientHello fragmented across records is possible in principle, but
    # reassembling it would need state for an unverified peer.
    if offset != 0 or fragment_length != message_length or length != HANDSHAKE_HEADER_SIZE + message_length:
        return _DROP_FRAGMENTED
    parsed = _cookie_fields(fragment)
    if parsed is None:
        return _DROP_MALFORMED
    fields, offered, message_seq = parsed
    if offered and cookies.verify_cookie(offered, fields, address, now):
        return _ACCEPT
    cookie = cookies.make_cookie(fields, address, now)
    # HelloVerifyRequest {server_version 0xFEFF, opaque cookie<0..2^8-1>}
    # in an unfragmented handshake message, in a record that reuses the
    # ClientHello's sequence number (RFC 6347 §4.2.1).
    body_length = 3 + len(cookie)
    reply = b"".join(
        (
            _RECORD_HEADER.pack(
                ContentType.handshake, DTLS_1_0, sequence, HANDSHAKE_HEADER_SIZE + body_length
            ),
            _HVR_HEADER.pack(
                HandshakeType.hello_verify_request, body_length >> 16, body_length & 0xFFFF, message_seq,
                0, 0, body_length >> 16, body_length & 0xFFFF, DTLS_1_0, len(cookie),
            ),
            cookie,
        )
    )
    if len(reply) > end:
        # Never amplify (RFC 6347 §4.2.1).
        return _DROP_AMPLIFICATION
    return FirstDatagram(Verdict.HELLO_VERIFY, reply)
