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
from dataclasses import dataclass

from .buffer import Buffer
from .constants import DTLS_1_0, DTLS_1_2, HANDSHAKE_HEADER_SIZE, ContentType, HandshakeType
from .cookie import CookieContext, cookie_input
from .errors import DecodeError
from .messages import HelloVerifyRequest, encode_handshake, pull_client_hello, push_hello_verify_request
from .records import pull_records, push_record


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


def examine_first_datagram(datagram: bytes, address: tuple, cookies: CookieContext, now: float) -> FirstDatagram:
    """
    Decide what to do with a datagram from an unknown peer. Never raises on
    any input.

    @param address: the peer's (host, port, ...) as the socket reported it.
    """
    records, _ = pull_records(datagram)
    if not records:
        return _drop("not_a_record")
    record = records[0]
    if record.content_type != ContentType.handshake:
        return _drop("not_handshake")
    if record.epoch != 0:
        return _drop("not_epoch_0")
    if record.version not in _ACCEPTED_RECORD_VERSIONS:
        return _drop("bad_version")
    fragment = record.fragment
    if len(fragment) < HANDSHAKE_HEADER_SIZE:
        return _drop("truncated_handshake")
    if fragment[0] != HandshakeType.client_hello:
        return _drop("not_client_hello")
    length = int.from_bytes(fragment[1:4], "big")
    message_seq = int.from_bytes(fragment[4:6], "big")
    offset = int.from_bytes(fragment[6:9], "big")
    fragment_length = int.from_bytes(fragment[9:12], "big")
    # A ClientHello fragmented across records is possible in principle, but
    # reassembling it would need state for an unverified peer.
    if offset != 0 or fragment_length != length or len(fragment) != HANDSHAKE_HEADER_SIZE + length:
        return _drop("fragmented_client_hello")
    try:
        hello = pull_client_hello(Buffer(fragment, HANDSHAKE_HEADER_SIZE))
    except DecodeError:
        return _drop("malformed_client_hello")
    fields = cookie_input(hello.client_version, hello.random, hello.session_id, hello.cipher_suites, hello.compression_methods)
    if hello.cookie and cookies.verify_cookie(hello.cookie, fields, address, now):
        return FirstDatagram(Verdict.ACCEPT)
    cookie = cookies.make_cookie(fields, address, now)
    buf = Buffer()
    push_hello_verify_request(buf, HelloVerifyRequest(DTLS_1_0, cookie))
    handshake = encode_handshake(HandshakeType.hello_verify_request, message_seq, buf.output)
    reply = push_record(ContentType.handshake, DTLS_1_0, 0, record.sequence_number, handshake)
    if len(reply) > len(datagram):
        # Never amplify (RFC 6347 §4.2.1).
        return _drop("amplification")
    return FirstDatagram(Verdict.HELLO_VERIFY, reply)
