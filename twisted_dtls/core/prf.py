"""
The TLS 1.2 pseudo-random function and everything derived from it: the
(extended) master secret, the key block, Finished C{verify_data}, the
keying-material exporter and the PSK premaster secret.

Hash arguments are C{cryptography} hash classes (C{hashes.SHA256}), as in
L{CipherSuiteInfo.prf_hash}; an instance is accepted too.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Union

from cryptography.hazmat.primitives import hashes, hmac

from .suites import CipherSuiteInfo

HashArg = Union[type[hashes.HashAlgorithm], hashes.HashAlgorithm]

#: RFC 5246 §7.4.9
CLIENT_FINISHED = b"client finished"
SERVER_FINISHED = b"server finished"
#: RFC 5246 §8.1
MASTER_SECRET = b"master secret"
#: RFC 7627 §4
EXTENDED_MASTER_SECRET = b"extended master secret"
#: RFC 5246 §6.3
KEY_EXPANSION = b"key expansion"

#: Length of the master secret (RFC 5246 §8.1).
MASTER_SECRET_LENGTH = 48
#: Length of Finished.verify_data for every suite we implement (RFC 5246 §7.4.9).
VERIFY_DATA_LENGTH = 12

# RFC 5705 §4 lets an exporter label be anything registered for the purpose;
# a label that TLS itself feeds into the PRF would hand out values the
# handshake uses (e.g. a Finished MAC or key block), so those are refused.
_RESERVED_EXPORTER_LABELS = frozenset(
    {CLIENT_FINISHED, SERVER_FINISHED, MASTER_SECRET, EXTENDED_MASTER_SECRET, KEY_EXPANSION}
)


def _hash(hash_cls: HashArg) -> hashes.HashAlgorithm:
    return hash_cls() if isinstance(hash_cls, type) else hash_cls


# HMAC (RFC 2104) pads: the key, zero-padded to the hash's block size, is
# XORed with these bytes before the inner and outer hash respectively.
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))

#: PRF hashes computed with hashlib: name -> (constructor, block size).
_HASHLIB = {"sha256": (hashlib.sha256, 64), "sha384": (hashlib.sha384, 128)}


def new_hash(hash_cls: HashArg):
    """
    A running hashlib hash of the PRF hash C{hash_cls} (for the handshake
    transcript): cheaper to feed and copy than a C{cryptography} Hash.
    """
    fast = _HASHLIB.get(hash_cls.name)
    return fast[0]() if fast is not None else hashlib.new(hash_cls.name)


def _p_hash_hashlib(new, block_size: int, secret: bytes, seed: bytes, length: int) -> bytes:
    """
    P_hash with HMAC written out over hashlib: the inner and outer hashes
    are keyed once, and every HMAC afterwards is two copies of those
    states. That is a third of the cost of C{cryptography}'s HMAC objects,
    whose construction alone (an OpenSSL 3 algorithm fetch) costs as much
    as the hashing of a whole Finished.
    """
    if len(secret) > block_size:
        secret = new(secret).digest()  # RFC 2104 §2: long keys are hashed first
    key = secret.ljust(block_size, b"\0")
    inner = new(key.translate(_IPAD))
    outer = new(key.translate(_OPAD))
    out = b""
    a = seed
    while len(out) < length:
        # A(i) = HMAC(secret, A(i-1)); output block = HMAC(secret, A(i) + seed)
        h = inner.copy()
        h.update(a)
        o = outer.copy()
        o.update(h.digest())
        a = o.digest()
        h = inner.copy()
        h.update(a)
        h.update(seed)
        o = outer.copy()
        o.update(h.digest())
        out += o.digest()
    return out[:length]


def p_hash(hash_cls: HashArg, secret: bytes, seed: bytes, length: int) -> bytes:
    """
    P_hash of RFC 5246 §5: HMAC iterated until C{length} bytes exist.

    @raise ValueError: if C{length} is negative.
    """
    if length < 0:
        raise ValueError(f"negative PRF output length {length}")
    fast = _HASHLIB.get(hash_cls.name)
    if fast is not None:
        return _p_hash_hashlib(fast[0], fast[1], bytes(secret), bytes(seed), length)
    # Any other hash: keying HMAC once and copying it avoids re-deriving
    # the padded key per block.
    keyed = hmac.HMAC(secret, _hash(hash_cls))
    out = bytearray()
    a = seed
    while len(out) < length:
        h = keyed.copy()
        h.update(a)
        a = h.finalize()  # A(i) = HMAC(secret, A(i-1))
        h = keyed.copy()
        h.update(a + seed)
        out += h.finalize()
    return bytes(out[:length])


def prf(hash_cls: HashArg, secret: bytes, label: bytes, seed: bytes, length: int) -> bytes:
    """
    PRF(secret, label, seed) = P_<hash>(secret, label + seed), RFC 5246 §5.
    """
    return p_hash(hash_cls, secret, label + seed, length)


def master_secret(hash_cls: HashArg, pre_master: bytes, client_random: bytes, server_random: bytes) -> bytes:
    """
    The 48-byte master secret without the extended master secret extension
    (RFC 5246 §8.1).
    """
    return prf(hash_cls, pre_master, MASTER_SECRET, client_random + server_random, MASTER_SECRET_LENGTH)


def extended_master_secret(hash_cls: HashArg, pre_master: bytes, session_hash: bytes) -> bytes:
    """
    The 48-byte master secret bound to the handshake (RFC 7627 §4).

    @param session_hash: the PRF hash of the handshake messages from
        ClientHello up to and including ClientKeyExchange (RFC 7627 §3).
    """
    return prf(hash_cls, pre_master, EXTENDED_MASTER_SECRET, session_hash, MASTER_SECRET_LENGTH)


@dataclass(frozen=True)
class KeyMaterial:
    """
    The key block split for an AEAD suite (RFC 5246 §6.3); AEAD suites have
    no MAC keys (RFC 5246 §6.2.3.3).

    @ivar client_write_iv: the implicit part of the client's nonce
        (C{fixed_iv_length} bytes: a 4-byte salt for GCM/CCM, a 12-byte IV
        for ChaCha20-Poly1305).
    """

    client_write_key: bytes
    server_write_key: bytes
    client_write_iv: bytes
    server_write_iv: bytes

    def __repr__(self) -> str:
        # Keys never reach logs or tracebacks through repr.
        return "KeyMaterial(<secret>)"


def key_block(info: CipherSuiteInfo, master: bytes, client_random: bytes, server_random: bytes) -> KeyMaterial:
    """
    Expand the master secret into the write keys and IVs of both sides
    (RFC 5246 §6.3; note the seed is server_random + client_random).
    """
    key_len = info.key_length
    iv_len = info.fixed_iv_length
    block = prf(info.prf_hash, master, KEY_EXPANSION, server_random + client_random, 2 * (key_len + iv_len))
    return KeyMaterial(
        client_write_key=block[0:key_len],
        server_write_key=block[key_len : 2 * key_len],
        client_write_iv=block[2 * key_len : 2 * key_len + iv_len],
        server_write_iv=block[2 * key_len + iv_len : 2 * key_len + 2 * iv_len],
    )


def verify_data(hash_cls: HashArg, master: bytes, label: bytes, handshake_hash: bytes) -> bytes:
    """
    Finished.verify_data (RFC 5246 §7.4.9): 12 bytes of
    PRF(master_secret, finished_label, Hash(handshake_messages)).

    @param label: L{CLIENT_FINISHED} or L{SERVER_FINISHED}.
    @raise ValueError: on any other label.
    """
    if label not in (CLIENT_FINISHED, SERVER_FINISHED):
        raise ValueError(f"not a Finished label: {label!r}")
    return prf(hash_cls, master, label, handshake_hash, VERIFY_DATA_LENGTH)


def export_keying_material(
    hash_cls: HashArg,
    master: bytes,
    client_random: bytes,
    server_random: bytes,
    label: bytes,
    context: bytes | None,
    length: int,
) -> bytes:
    """
    The keying-material exporter of RFC 5705 §4.

    C{context=None} and C{context=b""} differ: RFC 5705 §4 only appends the
    context (with its 16-bit length) when one is provided.

    @param label: ASCII bytes; a C{str} is encoded as ASCII.
    @raise ValueError: for a label that TLS itself uses with the PRF, a
        context of 2**16 bytes or more, or a negative length.
    """
    if isinstance(label, str):
        label = label.encode("ascii")
    if label in _RESERVED_EXPORTER_LABELS:
        raise ValueError(f"exporter label {label!r} is reserved by TLS (RFC 5705 §4)")
    seed = client_random + server_random
    if context is not None:
        if len(context) > 0xFFFF:
            raise ValueError("exporter context must be shorter than 2**16 bytes (RFC 5705 §4)")
        seed += struct.pack("!H", len(context)) + context
    return prf(hash_cls, master, label, seed, length)


def psk_premaster(psk: bytes, other_secret: bytes | None = None) -> bytes:
    """
    The premaster secret of the PSK suites:
    C{uint16 len + other_secret + uint16 len + psk} (RFC 4279 §2).

    @param other_secret: C{None} for plain PSK, where it is as many zero
        bytes as the PSK is long (RFC 4279 §2); the ECDH shared secret for
        ECDHE_PSK (RFC 5489 §2).
    @raise ValueError: if either part is 2**16 bytes or longer.
    """
    if other_secret is None:
        other_secret = bytes(len(psk))
    if len(psk) > 0xFFFF or len(other_secret) > 0xFFFF:
        raise ValueError("PSK and other_secret must be shorter than 2**16 bytes")
    return struct.pack("!H", len(other_secret)) + other_secret + struct.pack("!H", len(psk)) + psk
