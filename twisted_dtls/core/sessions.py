"""
Resumable sessions (RFC 5246 §7.3 abbreviated handshake): what a session
keeps, a bounded server-side session cache, and RFC 5077 session tickets
sealed with a rotating key that several servers can share.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .buffer import Buffer
from .errors import ConfigurationError, DecodeError


@dataclass(frozen=True)
class Session:
    """
    What an abbreviated handshake needs from an earlier full one.

    @ivar session_id: the server-assigned id (empty when only a ticket
        names the session).
    @ivar created: wall-clock time of the full handshake (seconds).
    @ivar ticket: client side: the RFC 5077 ticket to present.
    """

    session_id: bytes
    cipher_suite: int
    master_secret: bytes = field(repr=False)
    extended_master_secret: bool
    created: float
    peer_certificates: tuple[bytes, ...] = ()
    alpn_protocol: str | None = None
    server_name: str | None = None
    ticket: bytes = field(default=b"", repr=False)
    lifetime: float = 0.0

    def with_ticket(self, ticket: bytes, lifetime: float) -> "Session":
        return replace(self, ticket=ticket, lifetime=lifetime)


_STATE_VERSION = 1


def encode_session(session: Session) -> bytes:
    buf = Buffer()
    buf.push_uint8(_STATE_VERSION)
    buf.push_uint16(session.cipher_suite)
    buf.push_uint8(1 if session.extended_master_secret else 0)
    buf.push_opaque(1, session.master_secret)
    buf.push_uint48(int(session.created))
    alpn = (session.alpn_protocol or "").encode("latin-1", "replace")
    buf.push_opaque(1, alpn if len(alpn) < 256 else b"")
    # The name came from SNI, which is ASCII (RFC 6066 §3); a name that
    # would not fit the field is simply not remembered.
    name = (session.server_name or "").encode("ascii", "replace")
    buf.push_opaque(1, name if len(name) < 256 else b"")
    with buf.push_block(3):
        for der in session.peer_certificates:
            buf.push_opaque(3, der)
    return buf.output


def decode_session(data: bytes, session_id: bytes = b"") -> Session:
    buf = Buffer(data)
    if buf.pull_uint8() != _STATE_VERSION:
        raise DecodeError("unknown session state version")
    suite = buf.pull_uint16()
    ems = buf.pull_uint8() == 1
    master = buf.pull_opaque(1)
    created = float(buf.pull_uint48())
    alpn = buf.pull_opaque(1).decode("latin-1") or None
    name = buf.pull_opaque(1).decode("latin-1") or None
    certs = buf.pull_vector(3)
    chain = []
    while not certs.eof():
        chain.append(certs.pull_opaque(3))
    buf.expect_eof()
    return Session(session_id, suite, master, ems, created, tuple(chain), alpn, name)


class SessionCache:
    """
    A bounded server-side session cache: least recently used entries go
    first, and entries older than C{lifetime} are refused.
    """

    def __init__(self, max_entries: int = 10_000, lifetime: float = 7200.0):
        if max_entries < 1 or lifetime <= 0:
            raise ConfigurationError("SessionCache needs max_entries >= 1 and a positive lifetime")
        self.max_entries = max_entries
        self.lifetime = lifetime
        self._entries: OrderedDict[bytes, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, session: Session) -> None:
        if not session.session_id:
            return
        self._entries[session.session_id] = session
        self._entries.move_to_end(session.session_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def get(self, session_id: bytes, now: float) -> Session | None:
        session = self._entries.get(session_id)
        if session is None:
            return None
        if not session.created <= now < session.created + self.lifetime:
            del self._entries[session_id]
            return None
        self._entries.move_to_end(session_id)
        return session

    def remove(self, session_id: bytes) -> None:
        self._entries.pop(session_id, None)


class TicketKeys:
    """
    Seals session state into RFC 5077 tickets (§4 recommends this shape:
    key name, IV, encrypted state, authentication).

    Keys are derived from secrets, so servers given the same secret accept
    each other's tickets. L{rotate} makes a new secret current; tickets
    sealed under the previous one are still accepted until the next
    rotation.

    Ticket layout: key_name (16) || nonce (12) || AES-256-GCM(state),
    with the key name as additional data.
    """

    def __init__(
        self,
        secret: bytes | None = None,
        lifetime: float = 7200.0,
        random: Callable[[int], bytes] = os.urandom,
    ):
        if lifetime <= 0:
            raise ConfigurationError("ticket lifetime must be positive")
        self.lifetime = lifetime
        self._random = random
        self._keys: list[tuple[bytes, AESGCM]] = []
        self.rotate(secret)

    @staticmethod
    def _derive(secret: bytes) -> tuple[bytes, AESGCM]:
        if len(secret) < 16:
            raise ConfigurationError("a ticket secret needs at least 16 bytes")
        name = hmac.new(secret, b"twisted_dtls ticket key name", hashlib.sha256).digest()[:16]
        key = hmac.new(secret, b"twisted_dtls ticket key", hashlib.sha256).digest()
        return name, AESGCM(key)

    def rotate(self, secret: bytes | None = None) -> None:
        """
        Make C{secret} (or a fresh random one) current; keep the previous.
        """
        current = self._derive(secret if secret is not None else self._random(32))
        self._keys = [current] + self._keys[:1]

    def seal(self, session: Session) -> bytes:
        name, aead = self._keys[0]
        nonce = self._random(12)
        return name + nonce + aead.encrypt(nonce, encode_session(session), name)

    def open(self, ticket: bytes, session_id: bytes, now: float) -> Session | None:
        """
        @return: the session, or C{None} for a forged, foreign, damaged or
            expired ticket (the caller then runs a full handshake,
            RFC 5077 §3.4).
        """
        if len(ticket) < 16 + 12 + 16:
            return None
        name, nonce, sealed = ticket[:16], ticket[16:28], ticket[28:]
        for key_name, aead in self._keys:
            if hmac.compare_digest(name, key_name):
                try:
                    state = aead.decrypt(nonce, sealed, name)
                    session = decode_session(state, session_id)
                except (InvalidTag, DecodeError, UnicodeDecodeError):
                    return None
                if not session.created <= now < session.created + self.lifetime:
                    return None
                return session
        return None
