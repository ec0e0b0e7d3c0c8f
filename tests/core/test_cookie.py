"""
Tests for twisted_dtls.core.cookie (RFC 6347 §4.2.1).
"""

from __future__ import annotations

import hashlib
import hmac
import struct

import pytest

from twisted_dtls.core.cookie import COOKIE_LENGTH, CookieContext, cookie_input

SECRET = bytes(range(32))
ADDRESS = ("127.0.0.1", 40000)
RANDOM = bytes(range(32))
T0 = 28_333_333 * 60 + 1.0  # one second into a 60-second period


def _fields(**changes) -> bytes:
    values = dict(
        client_version=0xFEFD,
        random=RANDOM,
        session_id=b"",
        cipher_suites=[0xC02B, 0xC02F, 0x00FF],
        compression_methods=[0],
    )
    values.update(changes)
    return cookie_input(**values)


def test_cookie_input_encoding():
    # The ClientHello body's own layout from client_version to
    # compression_methods, without the cookie (RFC 6347 §4.2.1 /
    # RFC 5246 §7.4.1.2).
    assert _fields(session_id=b"\xaa\xbb") == (
        bytes.fromhex("fefd") + RANDOM + bytes.fromhex("02aabb" "0006c02bc02f00ff" "0100")
    )


def test_cookie_input_needs_a_32_byte_random():
    with pytest.raises(ValueError, match="32 bytes"):
        _fields(random=b"r" * 31)


def test_cookie_layout_is_documented_construction():
    ctx = CookieContext(SECRET)
    cookie = ctx.make_cookie(_fields(), ADDRESS, T0)
    assert len(cookie) == COOKIE_LENGTH == 20
    period = int(T0 // 60)
    key = hmac.digest(SECRET, b"twisted_dtls cookie" + struct.pack("!q", period), "sha256")
    peer = b"127.0.0.1 40000 "
    mac = hashlib.blake2s(peer + _fields(), digest_size=19, key=key).digest()
    assert cookie == bytes([period & 0xFF]) + mac


def test_round_trip_and_deterministic():
    ctx = CookieContext(SECRET)
    cookie = ctx.make_cookie(_fields(), ADDRESS, T0)
    assert ctx.verify_cookie(cookie, _fields(), ADDRESS, T0)
    assert ctx.verify_cookie(cookie, _fields(), ADDRESS, T0 + 1)
    assert ctx.make_cookie(_fields(), ADDRESS, T0 + 5) == cookie  # same period: a retransmitted HVR matches


@pytest.mark.parametrize("address", [
    ("127.0.0.1", 40001), ("127.0.0.2", 40000), ("::1", 40000), ("localhost", 40000),
])
def test_other_address_or_port_refused(address):
    ctx = CookieContext(SECRET)
    cookie = ctx.make_cookie(_fields(), ADDRESS, T0)
    assert not ctx.verify_cookie(cookie, _fields(), address, T0)


def test_ipv6_flowinfo_and_scope_ignored():
    ctx = CookieContext(SECRET)
    cookie = ctx.make_cookie(_fields(), ("::1", 5684, 0, 0), T0)
    assert ctx.verify_cookie(cookie, _fields(), ("::1", 5684), T0)
    assert ctx.verify_cookie(cookie, _fields(), ("::1", 5684, 7, 1), T0)


def test_every_single_bit_flip_refused():
    ctx = CookieContext(SECRET)
    cookie = ctx.make_cookie(_fields(), ADDRESS, T0)
    for i in range(len(cookie)):
        for bit in range(8):
            tampered = bytearray(cookie)
            tampered[i] ^= 1 << bit
            assert not ctx.verify_cookie(bytes(tampered), _fields(), ADDRESS, T0), (i, bit)


@pytest.mark.parametrize("cut", [0, 1, 19])
def test_truncated_extended_and_empty_refused(cut):
    ctx = CookieContext(SECRET)
    cookie = ctx.make_cookie(_fields(), ADDRESS, T0)
    assert not ctx.verify_cookie(cookie[:cut], _fields(), ADDRESS, T0)
    assert not ctx.verify_cookie(cookie + cookie[:cut + 1], _fields(), ADDRESS, T0)
    assert not ctx.verify_cookie(bytes(255), _fields(), ADDRESS, T0)


def test_previous_period_accepted_older_refused():
    ctx = CookieContext(SECRET, lifetime=60.0)
    cookie = ctx.make_cookie(_fields(), ADDRESS, T0)
    assert ctx.verify_cookie(cookie, _fields(), ADDRESS, T0 + 60)  # next period
    assert ctx.verify_cookie(cookie, _fields(), ADDRESS, T0 + 100)
    assert not ctx.verify_cookie(cookie, _fields(), ADDRESS, T0 + 120)  # two periods later
    assert not ctx.verify_cookie(cookie, _fields(), ADDRESS, T0 + 256 * 60)  # same tag byte, far later
    assert not ctx.verify_cookie(cookie, _fields(), ADDRESS, T0 - 60)  # from the future
    # The cookie changes with the period.
    assert ctx.make_cookie(_fields(), ADDRESS, T0 + 60) != cookie


def test_two_contexts_with_the_same_secret_interoperate():
    a = CookieContext(SECRET)
    b = CookieContext(bytes(SECRET))
    cookie = a.make_cookie(_fields(), ADDRESS, T0)
    assert b.verify_cookie(cookie, _fields(), ADDRESS, T0 + 2)
    assert b.verify_cookie(cookie, _fields(), ADDRESS, T0 + 61)
    assert a.make_cookie(_fields(), ADDRESS, T0) == b.make_cookie(_fields(), ADDRESS, T0)


def test_different_secret_refused():
    a = CookieContext(SECRET)
    b = CookieContext(bytes(32))
    cookie = a.make_cookie(_fields(), ADDRESS, T0)
    assert not b.verify_cookie(cookie, _fields(), ADDRESS, T0)
    c, d = CookieContext(), CookieContext()  # independent random secrets
    assert not d.verify_cookie(c.make_cookie(_fields(), ADDRESS, T0), _fields(), ADDRESS, T0)


@pytest.mark.parametrize("change", [
    dict(client_version=0xFEFF),
    dict(random=bytes(32)),
    dict(random=RANDOM[:-1] + b"\x00"),
    dict(session_id=b"\x01"),
    dict(cipher_suites=[0xC02B, 0xC02F]),
    dict(cipher_suites=[0xC02F, 0xC02B, 0x00FF]),
    dict(compression_methods=[0, 0]),
    dict(compression_methods=[]),
])
def test_changed_client_hello_field_refused(change):
    ctx = CookieContext(SECRET)
    cookie = ctx.make_cookie(_fields(), ADDRESS, T0)
    assert not ctx.verify_cookie(cookie, _fields(**change), ADDRESS, T0)


def test_random_secret_comes_from_injected_source():
    calls = []

    def fake_random(n: int) -> bytes:
        calls.append(n)
        return SECRET[:n]

    ctx = CookieContext(random=fake_random)
    assert calls == [32]
    assert ctx.make_cookie(_fields(), ADDRESS, T0) == CookieContext(SECRET).make_cookie(_fields(), ADDRESS, T0)


def test_rotate_keeps_previous_master_for_one_lifetime():
    ctx = CookieContext(SECRET, lifetime=60.0)
    old = ctx.make_cookie(_fields(), ADDRESS, T0)
    ctx.rotate(T0 + 1)  # new random master
    new = ctx.make_cookie(_fields(), ADDRESS, T0 + 1)
    assert new != old
    assert ctx.verify_cookie(old, _fields(), ADDRESS, T0 + 2)
    assert ctx.verify_cookie(new, _fields(), ADDRESS, T0 + 2)
    assert not CookieContext(SECRET).verify_cookie(new, _fields(), ADDRESS, T0 + 2)
    assert not ctx.verify_cookie(old, _fields(), ADDRESS, T0 + 61)  # previous master expired
    assert ctx.verify_cookie(new, _fields(), ADDRESS, T0 + 61)
    ctx.rotate(T0 + 62)
    assert not ctx.verify_cookie(old, _fields(), ADDRESS, T0 + 63)  # two rotations back


def test_coordinated_rotation_with_explicit_secret():
    a, b = CookieContext(SECRET), CookieContext(SECRET)
    new_secret = b"\x42" * 32
    a.rotate(T0, new_secret)
    b.rotate(T0, new_secret)
    cookie = a.make_cookie(_fields(), ADDRESS, T0 + 1)
    assert b.verify_cookie(cookie, _fields(), ADDRESS, T0 + 1)


@pytest.mark.parametrize("kwargs", [
    dict(secret=b"short"), dict(secret=b""), dict(lifetime=0), dict(lifetime=-1), dict(lifetime=float("nan")),
    dict(lifetime=float("inf")),
])
def test_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        CookieContext(**kwargs)
    with pytest.raises(ValueError):
        CookieContext(SECRET).rotate(T0, b"short")
