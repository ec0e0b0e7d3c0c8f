"""
The stateless first-datagram path (RFC 6347 §4.2.1): HelloVerifyRequest
built from the ClientHello alone, and cookie checks.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.certs import make_pki
from twisted_dtls.core.buffer import Buffer
from twisted_dtls.core.configuration import DTLSConfiguration
from twisted_dtls.core.connection import DTLSConnection
from twisted_dtls.core.constants import ContentType, HandshakeType
from twisted_dtls.core.cookie import CookieContext
from twisted_dtls.core.listener import Verdict, examine_first_datagram
from twisted_dtls.core.messages import pull_client_hello, pull_hello_verify_request
from twisted_dtls.core.records import pull_records

PKI = make_pki()
ADDRESS = ("127.0.0.5", 5684)
CAPTURES = Path(__file__).parent.parent / "data" / "captures"


def client_hello(cookie_reply: bytes | None = None, now: float = 0.0) -> tuple[DTLSConnection, bytes]:
    conn = DTLSConnection(DTLSConfiguration(trust_roots=[PKI.ca_cert], server_name="localhost"), is_client=True)
    conn.connect(now)
    (datagram,) = conn.datagrams_to_send(now)
    return conn, datagram


def answer(conn: DTLSConnection, reply: bytes, now: float = 0.0) -> bytes:
    conn.receive_datagram(reply, now)
    (datagram,) = conn.datagrams_to_send(now)
    return datagram


def test_hello_verify_request_reuses_sequence_numbers():
    cookies = CookieContext(secret=b"s" * 32)
    conn, hello = client_hello()
    result = examine_first_datagram(hello, ADDRESS, cookies, 0.0)
    assert result.verdict is Verdict.HELLO_VERIFY
    (ch,), _ = pull_records(hello)
    (hvr,), _ = pull_records(result.reply)
    assert hvr.content_type == ContentType.handshake
    assert hvr.sequence_number == ch.sequence_number
    assert hvr.epoch == 0
    assert hvr.version == 0xFEFF
    assert hvr.fragment[0] == HandshakeType.hello_verify_request
    assert hvr.fragment[4:6] == ch.fragment[4:6]
    message = pull_hello_verify_request(Buffer(hvr.fragment[12:]))
    assert message.server_version == 0xFEFF
    assert 1 <= len(message.cookie) <= 32
    assert len(result.reply) <= len(hello)


def test_client_answers_with_cookie_same_random_next_message_seq():
    cookies = CookieContext(secret=b"s" * 32)
    conn, hello = client_hello()
    reply = examine_first_datagram(hello, ADDRESS, cookies, 0.0).reply
    second = answer(conn, reply)
    (first_record,), _ = pull_records(hello)
    (second_record,), _ = pull_records(second)
    first_msg = pull_client_hello(Buffer(first_record.fragment[12:]))
    second_msg = pull_client_hello(Buffer(second_record.fragment[12:]))
    assert second_msg.random == first_msg.random
    assert second_msg.cookie and not first_msg.cookie
    assert int.from_bytes(second_record.fragment[4:6], "big") == 1
    assert second_record.sequence_number > first_record.sequence_number
    assert examine_first_datagram(second, ADDRESS, cookies, 0.5).verdict is Verdict.ACCEPT


def _cookie_hello(cookies: CookieContext, now: float = 0.0) -> bytes:
    conn, hello = client_hello()
    reply = examine_first_datagram(hello, ADDRESS, cookies, now).reply
    return answer(conn, reply)


def test_cookie_for_another_address_or_port_is_refused():
    cookies = CookieContext(secret=b"s" * 32)
    second = _cookie_hello(cookies)
    assert examine_first_datagram(second, ("127.0.0.6", 5684), cookies, 0.0).verdict is Verdict.HELLO_VERIFY
    assert examine_first_datagram(second, ("127.0.0.5", 5685), cookies, 0.0).verdict is Verdict.HELLO_VERIFY
    assert examine_first_datagram(second, ADDRESS, cookies, 0.0).verdict is Verdict.ACCEPT


def test_tampered_cookie_is_refused():
    cookies = CookieContext(secret=b"s" * 32)
    second = _cookie_hello(cookies)
    (record,), _ = pull_records(second)
    hello = pull_client_hello(Buffer(record.fragment[12:]))
    # offset of the cookie in the datagram: record header, handshake header,
    # version, random, session id
    start = 13 + 12 + 2 + 32 + 1 + len(hello.session_id) + 1
    for i in range(len(hello.cookie)):
        tampered = bytearray(second)
        tampered[start + i] ^= 0x01
        result = examine_first_datagram(bytes(tampered), ADDRESS, cookies, 0.0)
        assert result.verdict is Verdict.HELLO_VERIFY


def test_expired_cookie_is_refused():
    cookies = CookieContext(secret=b"s" * 32, lifetime=60.0)
    second = _cookie_hello(cookies, now=0.0)
    assert examine_first_datagram(second, ADDRESS, cookies, 30.0).verdict is Verdict.ACCEPT
    assert examine_first_datagram(second, ADDRESS, cookies, 1000.0).verdict is Verdict.HELLO_VERIFY


def test_other_secret_refuses_same_secret_accepts():
    second = _cookie_hello(CookieContext(secret=b"s" * 32))
    assert examine_first_datagram(second, ADDRESS, CookieContext(secret=b"s" * 32), 0.0).verdict is Verdict.ACCEPT
    assert examine_first_datagram(second, ADDRESS, CookieContext(secret=b"t" * 32), 0.0).verdict is Verdict.HELLO_VERIFY


@pytest.mark.parametrize(
    "datagram, reason",
    [
        (b"", "not_a_record"),
        (b"\x17\xfe\xfd" + bytes(8) + b"\x00\x01x", "not_handshake"),
        (b"\x16\xfe\xfd\x00\x01" + bytes(6) + b"\x00\x01x", "not_epoch_0"),
        (b"\x16\x03\x03" + bytes(8) + b"\x00\x01x", "bad_version"),
        (b"\x16\xfe\xfd" + bytes(8) + b"\x00\x02\x01\x00", "truncated_handshake"),
    ],
)
def test_non_client_hello_is_dropped(datagram, reason):
    result = examine_first_datagram(datagram, ADDRESS, CookieContext(), 0.0)
    assert result.verdict is Verdict.DROP
    assert result.reason == reason


def test_every_truncation_of_a_client_hello_is_dropped_without_reply():
    conn, hello = client_hello()
    cookies = CookieContext()
    for n in range(len(hello)):
        result = examine_first_datagram(hello[:n], ADDRESS, cookies, 0.0)
        assert result.verdict is Verdict.DROP
        assert result.reply is None


def test_fragmented_client_hello_is_dropped():
    conn, hello = client_hello()
    (record,), _ = pull_records(hello)
    frag = bytearray(record.fragment)
    frag[9:12] = (len(frag) - 12 - 1).to_bytes(3, "big")
    from twisted_dtls.core.records import push_record

    datagram = push_record(22, 0xFEFD, 0, 0, bytes(frag[:-1]))
    assert examine_first_datagram(datagram, ADDRESS, CookieContext(), 0.0).reason == "fragmented_client_hello"


def _duplicate_first_extension(datagram: bytes) -> bytes:
    """
    The same ClientHello with its first extension's type written over the
    second's: malformed (RFC 5246 §7.4.1.4), lengths all unchanged.
    """
    (record,), _ = pull_records(datagram)
    message = pull_client_hello(Buffer(record.fragment[12:]))
    body = bytearray(record.fragment)
    # The extensions block is the message's tail; find it from its length.
    block = sum(4 + len(data) for _, data in message.extensions)
    first = len(body) - block
    second = first + 4 + int.from_bytes(body[first + 2 : first + 4], "big")
    body[second : second + 2] = body[first : first + 2]
    from twisted_dtls.core.records import push_record

    return push_record(22, record.version, 0, record.sequence_number, bytes(body))


def test_extensions_are_checked_once_a_cookie_is_offered():
    """
    A cookie-less ClientHello is answered after only the fields the cookie
    binds are checked (nothing is kept, and the reply is smaller than it);
    the same malformation with a cookie is dropped before any connection
    exists, where a well-formed one is accepted.
    """
    cookies = CookieContext(secret=b"s" * 32)
    conn, hello = client_hello()
    bad = _duplicate_first_extension(hello)
    result = examine_first_datagram(bad, ADDRESS, cookies, 0.0)
    assert result.verdict is Verdict.HELLO_VERIFY
    assert len(result.reply) <= len(bad)
    second = answer(conn, result.reply)
    assert examine_first_datagram(second, ADDRESS, cookies, 0.0).verdict is Verdict.ACCEPT
    refused = examine_first_datagram(_duplicate_first_extension(second), ADDRESS, cookies, 0.0)
    assert refused.verdict is Verdict.DROP
    assert refused.reason == "malformed_client_hello"
