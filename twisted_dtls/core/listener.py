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
from typing import NamedTuple

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
from .messages import split_extension_block
from .records import KNOWN_CONTENT_TYPES


class Verdict(enum.Enum):
    #: Not a ClientHello we may act on; see L{FirstDatagram.reason}.
    DROP = "drop"
    #: Answer with L{FirstDatagram.reply} and forget the datagram.
    HELLO_VERIFY = "hello_verify"
    #: The cookie verified: create a connection and give it this datagram.
    ACCEPT = "accept"


class FirstDatagram(NamedTuple):
    # A named tuple rather than a frozen dataclass: one is built for every
    # HelloVerifyRequest, and a frozen dataclass's __init__ costs several
    # times as much.
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
#: the handshake header with its uint24s as a byte and a uint16: type,
#: length, message_seq, fragment_offset, fragment_length
_HANDSHAKE_HEADER = struct.Struct(">BBHHBHBH")
#: that header followed by the HelloVerifyRequest's version and cookie length
_HVR_HEADER = struct.Struct(">BBHHBHBHHB")
_RANDOM_SIZE = 32
_MAX_SESSION_ID_SIZE = 32
#: where the session_id's length byte sits in a ClientHello message:
#: after the handshake header, client_version and random
_SESSION_ID_AT = HANDSHAKE_HEADER_SIZE + 2 + _RANDOM_SIZE

# Plain ints: these are compared for every datagram from an unknown
# address, where enum members cost more than the comparisons themselves.
_HANDSHAKE = int(ContentType.handshake)
_CLIENT_HELLO = int(HandshakeType.client_hello)
_HELLO_VERIFY_REQUEST = int(HandshakeType.hello_verify_request)
_KNOWN_CONTENT_TYPES = frozenset(int(t) for t in KNOWN_CONTENT_TYPES)


def _cookie_fields(fragment: bytes) -> tuple[bytes, bytes, int] | None:
    """
    Lean parse of an unfragmented ClientHello message (handshake header
    included) for the cookie exchange only (RFC 6347 §4.2.1).

    Only the fields the cookie binds are located, checked for framing and
    sliced out of the wire bytes, never decoded into lists; they are
    L{cookie_input}'s encoding as they stand. The extensions are looked at
    only when a cookie is offered (L{split_extension_block}), before any
    state is created: a HelloVerifyRequest to a malformed ClientHello costs
    nothing that a well-formed one does not.

    @return: C{(cookie_input, cookie, end of compression_methods)}, or None
        if malformed.
    """
    end = len(fragment)
    pos = _SESSION_ID_AT
    if pos >= end:
        return None
    session_id_length = fragment[pos]
    if session_id_length > _MAX_SESSION_ID_SIZE:
        return None
    cookie_at = pos + 1 + session_id_length
    if cookie_at >= end:
        return None
    suites_at = cookie_at + 1 + fragment[cookie_at]
    if suites_at + 2 > end:
        return None
    suites_length = (fragment[suites_at] << 8) | fragment[suites_at + 1]
    # <2..2^16-2> uint16s: even and not empty.
    if suites_length == 0 or suites_length & 1:
        return None
    pos = suites_at + 2 + suites_length
    if pos >= end:
        return None
    compression_length = fragment[pos]
    if compression_length == 0:
        return None
    pos += 1 + compression_length
    if pos > end:
        return None
    return (
        fragment[HANDSHAKE_HEADER_SIZE:cookie_at] + fragment[suites_at:pos],
        fragment[cookie_at + 1 : suites_at],
        pos,
    )


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
    if content_type not in _KNOWN_CONTENT_TYPES or length > MAX_CIPHERTEXT or RECORD_HEADER_SIZE + length > end:
        return _DROP_NOT_A_RECORD
    if content_type != _HANDSHAKE:
        return _DROP_NOT_HANDSHAKE
    if sequence >> 48:
        return _DROP_NOT_EPOCH_0
    if version not in _ACCEPTED_RECORD_VERSIONS:
        return _DROP_BAD_VERSION
    if length < HANDSHAKE_HEADER_SIZE:
        return _DROP_TRUNCATED_HANDSHAKE
    kind, length_high, length_low, message_seq, offset_high, offset_low, fragment_high, fragment_low = (
        _HANDSHAKE_HEADER.unpack_from(datagram, RECORD_HEADER_SIZE)
    )
    if kind != _CLIENT_HELLO:
        return _DROP_NOT_CLIENT_HELLO
    message_length = (length_high << 16) | length_low
    # A ClientHello fragmented across records is possible in principle, but
    # reassembling it would need state for an unverified peer.
    if (
        offset_high
        or offset_low
        or fragment_high != length_high
        or fragment_low != length_low
        or length != HANDSHAKE_HEADER_SIZE + message_length
    ):
        return _DROP_FRAGMENTED
    fragment = datagram[RECORD_HEADER_SIZE : RECORD_HEADER_SIZE + length]
    parsed = _cookie_fields(fragment)
    if parsed is None:
        return _DROP_MALFORMED
    fields, offered, fields_end = parsed
    if offered:
        if split_extension_block(fragment, fields_end, len(fragment)) is None:
            return _DROP_MALFORMED
        if cookies.verify_cookie(offered, fields, address, now):
            return _ACCEPT
    cookie = cookies.make_cookie(fields, address, now)
    # HelloVerifyRequest {server_version 0xFEFF, opaque cookie<0..2^8-1>}
    # in an unfragmented handshake message, in a record that reuses the
    # ClientHello's sequence number (RFC 6347 §4.2.1).
    body_length = 3 + len(cookie)
    reply = (
        _RECORD_HEADER.pack(_HANDSHAKE, DTLS_1_0, sequence, HANDSHAKE_HEADER_SIZE + body_length)
        + _HVR_HEADER.pack(
            _HELLO_VERIFY_REQUEST, 0, body_length, message_seq, 0, 0, 0, body_length, DTLS_1_0, len(cookie),
        )
        + cookie
    )
    if len(reply) > end:
        # Never amplify (RFC 6347 §4.2.1).
        return _DROP_AMPLIFICATION
    return FirstDatagram(Verdict.HELLO_VERIFY, reply)
