"""
Stateless HelloVerifyRequest cookies (RFC 6347 §4.2.1).

A cookie is C{period tag (1 byte) || BLAKE2s-152(key=K_p, peer || hello)}
(20 bytes, as long as OpenSSL's):

  - C{p = floor(now / lifetime)} numbers the current period, and the tag
    is its low byte;
  - C{K_p = HMAC-SHA256(master, "twisted_dtls cookie" || int64 p)} is the
    key of that period, derived from the master secret, so keys rotate by
    themselves every C{lifetime} seconds and every context holding the same
    master secret (another port, another process) derives the same keys
    with no coordination beyond the clock;
  - C{peer} is the host and port of the client, C{hello} the ClientHello
    fields that must not change between the two ClientHellos
    (L{cookie_input}).

The MAC is keyed BLAKE2s (RFC 7693 §2.5: keyed BLAKE2 is a MAC), with a
19-byte output: one C call where HMAC-SHA256 through OpenSSL costs four
times as much, and it runs for every cookie-less ClientHello, the one
piece of work an unverified source can make a server repeat at will.

A cookie verifies during the period that issued it and the next one, so it
lives between C{lifetime} and C{2 * lifetime} seconds; older (or future)
cookies are refused.

L{CookieContext.rotate} replaces the master secret itself (a new random
one by default) for deployments that want to forget old secrets; the
previous master keeps verifying for one more C{lifetime}.
"""

from __future__ import annotations

import hmac
import math
import os
import struct
from hashlib import blake2s
from typing import Callable, Sequence

#: Total cookie length: 1 tag byte + 19 bytes of HMAC.
COOKIE_LENGTH = 20
_MAC_LENGTH = COOKIE_LENGTH - 1
_KEY_LABEL = b"twisted_dtls cookie"
_MIN_SECRET_LENGTH = 16
_KEY_CACHE_SIZE = 8
#: The ClientHello random's size (RFC 5246 §7.4.1.2).
RANDOM_SIZE = 32


def cookie_input(
    client_version: int,
    random: bytes,
    session_id: bytes,
    cipher_suites: Sequence[int],
    compression_methods: Sequence[int],
) -> bytes:
    """
    The ClientHello fields a cookie binds (RFC 6347 §4.2.1: the second
    ClientHello must repeat them), encoded as on the wire, which is also
    how the listener slices them out of a ClientHello without decoding it:
    C{client_version || random || session_id<0..32> ||
    cipher_suites<2..2^16-2> || compression_methods<1..2^8-1>}.

    Extensions are left out on purpose: RFC 6347 does not require a client
    to repeat them byte for byte.

    @raise ValueError: if C{random} is not 32 bytes (the one field without
        a length on the wire).
    """
    if len(random) != RANDOM_SIZE:
        raise ValueError(f"a ClientHello random is {RANDOM_SIZE} bytes, not {len(random)}")
    return b"".join(
        (
            struct.pack("!H", client_version),
            random,
            struct.pack("!B", len(session_id)),
            session_id,
            struct.pack(f"!H{len(cipher_suites)}H", 2 * len(cipher_suites), *cipher_suites),
            struct.pack(f"!B{len(compression_methods)}B", len(compression_methods), *compression_methods),
        )
    )


def _peer(address: tuple) -> bytes:
    # Only host and port: IPv6 flowinfo and scope id are not the peer's
    # identity. A host never contains a space and a port is only digits,
    # so no two peers encode alike.
    return b"%s %d " % (str(address[0]).encode("utf-8", "surrogateescape"), int(address[1]) & 0xFFFF)


def _keyed_mac(key: bytes, client_hello_fields: bytes, address: tuple) -> bytes:
    return blake2s(_peer(address) + client_hello_fields, digest_size=_MAC_LENGTH, key=key).digest()


class CookieContext:
    """
    Makes and checks cookies for one server (or several sharing a secret).

    @ivar lifetime: length of one key period in seconds.
    """

    def __init__(
        self,
        secret: bytes | None = None,
        lifetime: float = 60.0,
        random: Callable[[int], bytes] = os.urandom,
    ):
        """
        @param secret: the master secret (at least 16 bytes); give every
            port that must accept the others' cookies the same one. A random
            32-byte secret is drawn from C{random} when C{None}.
        @param lifetime: seconds per key period (> 0).
        @param random: source of random bytes for generated secrets.
        @raise ValueError: on a short secret or a non-positive lifetime.
        """
        if not lifetime > 0 or math.isinf(lifetime):
            raise ValueError(f"cookie lifetime must be a positive number of seconds, not {lifetime!r}")
        self.lifetime = float(lifetime)
        self._random = random
        self._master = self._check_secret(secret)
        self._previous: bytes | None = None
        self._previous_until = -math.inf
        self._keys: dict[tuple[bytes, int], bytes] = {}
        #: make_cookie's period, master, tag byte and key, kept between calls
        self._issuing_period: int | None = None
        self._issuing_master: bytes | None = None
        self._issuing_tag = b""
        self._issuing_key = b""

    def __repr__(self) -> str:
        return f"CookieContext(lifetime={self.lifetime})"

    def _check_secret(self, secret: bytes | None) -> bytes:
        if secret is None:
            return self._random(32)
        secret = bytes(secret)
        if len(secret) < _MIN_SECRET_LENGTH:
            raise ValueError(f"cookie secret must be at least {_MIN_SECRET_LENGTH} bytes")
        return secret

    def rotate(self, now: float, secret: bytes | None = None) -> None:
        """
        Replace the master secret: with C{secret}, or a new random one.
        Cookies made under the old master keep verifying until
        C{now + lifetime}; the one before it is forgotten.
        """
        new = self._check_secret(secret)
        self._previous = self._master
        self._previous_until = now + self.lifetime
        self._master = new
        self._keys.clear()

    def _period(self, now: float) -> int:
        return math.floor(now / self.lifetime)

    def _key(self, master: bytes, period: int) -> bytes:
        key = self._keys.get((master, period))
        if key is None:
            if len(self._keys) >= _KEY_CACHE_SIZE:
                self._keys.clear()
            key = hmac.digest(master, _KEY_LABEL + struct.pack("!q", period), "sha256")
            self._keys[(master, period)] = key
        return key

    def _mac(self, master: bytes, period: int, client_hello_fields: bytes, address: tuple) -> bytes:
        return _keyed_mac(self._key(master, period), client_hello_fields, address)

    def make_cookie(self, client_hello_fields: bytes, address: tuple, now: float) -> bytes:
        """
        The cookie for a HelloVerifyRequest.

        @param client_hello_fields: L{cookie_input} of the ClientHello.
        @param address: the client's C{(host, port, ...)}.
        @param now: the current time, on a clock shared by every context
            holding the same secret (wall-clock seconds).
        """
        period = self._period(now)
        master = self._master
        if period != self._issuing_period or master is not self._issuing_master:
            # Every cookie-less ClientHello lands here: the tag and key of
            # the current period are worked out once per period.
            self._issuing_period = period
            self._issuing_master = master
            self._issuing_tag = bytes((period & 0xFF,))
            self._issuing_key = self._key(master, period)
        return self._issuing_tag + _keyed_mac(self._issuing_key, client_hello_fields, address)

    def verify_cookie(self, cookie: bytes, client_hello_fields: bytes, address: tuple, now: float) -> bool:
        """
        Whether C{cookie} was made by a context with our secret for this
        peer and these ClientHello fields, in this period or the previous
        one. Never raises on any C{cookie}.
        """
        if len(cookie) != COOKIE_LENGTH:
            return False
        current = self._period(now)
        tag = cookie[0]
        mac = bytes(cookie[1:])
        masters = [self._master]
        if self._previous is not None and now < self._previous_until:
            masters.append(self._previous)
        for period in (current, current - 1):
            if period & 0xFF != tag:
                continue
            for master in masters:
                if hmac.compare_digest(mac, self._mac(master, period, client_hello_fields, address)):
                    return True
        return False
