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

#: Transcript hashes: name -> an empty hashlib hash to copy (a copy skips
#: the OpenSSL 3 algorithm fetch that constructing one costs).
_EMPTY_HASHES = {"sha256": hashlib.sha256(), "sha384": hashlib.sha384()}


def _builtin_sha2() -> dict:
    """
    CPython's own SHA-256 and SHA-384 (C{_sha2} from 3.12, C{_sha256} and
    C{_sha512} before), by name, with their block sizes; hashlib's OpenSSL
    ones where a build lacks them.

    The PRF hashes a few dozen bytes at a time. Through OpenSSL 3 a hashlib
    hash pays for provider dispatch on every copy and digest (about 0.9 µs
    a digest on the bench machine), where the built-in one copies a struct:
    HMAC for one PRF block costs under half as much. The long transcript
    hash stays with OpenSSL, which is faster per byte.
    """
    try:
        from _sha2 import sha256, sha384  # type: ignore[import-not-found]
    except ImportError:
        try:
            from _sha256 import sha256  # type: ignore[import-not-found]
            from _sha512 import sha384  # type: ignore[import-not-found]
        except ImportError:
            sha256, sha384 = hashlib.sha256, hashlib.sha384
    return {"sha256": (sha256, 64), "sha384": (sha384, 128)}


#: PRF hashes: name -> (constructor, block size).
_PRF_HASHES = _builtin_sha2()


def new_hash(hash_cls: HashArg):
    """
    A running hashlib hash of the PRF hash C{hash_cls} (for the handshake
    transcript): cheaper to feed and copy than a C{cryptography} Hash.
    """
    empty = _EMPTY_HASHES.get(hash_cls.name)
    return empty.copy() if empty is not None else hashlib.new(hash_cls.name)


def _keyed(new, block_size: int, secret: bytes) -> tuple:
    """
    The inner and outer hashes of HMAC(secret, .) (RFC 2104), each fed its
    padded key: every HMAC under C{secret} afterwards is two copies of these.
    """
    if len(secret) > block_size:
        secret = new(secret).digest()  # RFC 2104 §2: long keys are hashed first
    key = secret.ljust(block_size, b"\0")
    return new(key.translate(_IPAD)), new(key.translate(_OPAD))


def _expand(inner, outer, seed: bytes, length: int) -> bytes:
    """
    P_hash (RFC 5246 §5) from keyed hash states (see L{_keyed}): each HMAC
    is two copies of them, where constructing a C{cryptography} HMAC object
    alone (an OpenSSL 3 algorithm fetch) costs as much as the hashing of a
    whole Finished.
    """
    inner_copy = inner.copy
    outer_copy = outer.copy
    out = b""
    a = seed
    while len(out) < length:
        # A(i) = HMAC(secret, A(i-1)); output block = HMAC(secret, A(i) + seed)
        h = inner_copy()
        h.update(a)
        o = outer_copy()
        o.update(h.digest())
        a = o.digest()
        h = inner_copy()
        h.update(a + seed)
        o = outer_copy()
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
    fast = _PRF_HASHES.get(hash_cls.name)
    if fast is not None:
        inner, outer = _keyed(fast[0], fast[1], bytes(secret))
        return _expand(inner, outer, bytes(seed), length)
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


class PRFKey:
    """
    PRF(secret, label, seed) for one secret, keyed once: the key block and
    both Finished messages of a handshake all use the master secret, and
    keying HMAC costs as much as one of those PRF computations.

    @ivar secret: the secret, as given.
    """

    __slots__ = ("secret", "_hash", "_inner", "_outer")

    def __init__(self, hash_cls: HashArg, secret: bytes):
        self.secret = secret
        self._hash = hash_cls
        fast = _PRF_HASHES.get(hash_cls.name)
        if fast is None:
            # Left to p_hash, which handles any hash.
            self._inner = self._outer = None
        else:
            self._inner, self._outer = _keyed(fast[0], fast[1], bytes(secret))

    def __repr__(self) -> str:
        # The secret never reaches logs or tracebacks through repr.
        return "PRFKey(<secret>)"

    def __call__(self, label: bytes, seed: bytes, length: int) -> bytes:
        """
        L{prf} with this key.
        """
        if self._inner is None:
            return prf(self._hash, self.secret, label, seed, length)
        if length < 0:
            raise ValueError(f"negative PRF output length {length}")
        return _expand(self._inner, self._outer, label + seed, length)

    def key_block(self, info: CipherSuiteInfo, client_random: bytes, server_random: bytes) -> tuple:
        """
        L{key_block} with this key as the master secret.

        @return: (client_write_key, server_write_key, client_write_iv,
            server_write_iv).
        """
        key_len = info.key_length
        iv_len = info.fixed_iv_length
        block = self(KEY_EXPANSION, server_random + client_random, 2 * (key_len + iv_len))
        return (
            block[0:key_len],
            block[key_len : 2 * key_len],
            block[2 * key_len : 2 * key_len + iv_len],
            block[2 * key_len + iv_len : 2 * key_len + 2 * iv_len],
        )

    def verify_data(self, label: bytes, handshake_hash: bytes) -> bytes:
        """
        L{verify_data} with this key as the master secret.
        """
        if label not in _FINISHED_LABELS:
            raise ValueError(f"not a Finished label: {label!r}")
        return self(label, handshake_hash, VERIFY_DATA_LENGTH)


_FINISHED_LABELS = (CLIENT_FINISHED, SERVER_FINISHED)


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
    return KeyMaterial(*PRFKey(info.prf_hash, master).key_block(info, client_random, server_random))


def verify_data(hash_cls: HashArg, master: bytes, label: bytes, handshake_hash: bytes) -> bytes:
    """
    Finished.verify_data (RFC 5246 §7.4.9): 12 bytes of
    PRF(master_secret, finished_label, Hash(handshake_messages)).

    @param label: L{CLIENT_FINISHED} or L{SERVER_FINISHED}.
    @raise ValueError: on any other label.
    """
    return PRFKey(hash_cls, master).verify_data(label, handshake_hash)


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
