"""
AEAD record protection for one epoch and one direction.

  - Additional data (RFC 5246 §6.2.3.3, with DTLS's 64-bit seq_num =
    epoch || sequence_number, RFC 6347 §4.1.2.1)::

        seq_num(8) || type(1) || version(2) || plaintext length(2)

  - AES-GCM (RFC 5288 §3) and AES-CCM (RFC 6655 §3, RFC 7251 §2): nonce =
    4-byte implicit salt || 8-byte explicit nonce; the explicit part is sent
    in front of the ciphertext. We use seq_num as the explicit nonce (the
    choice RFC 5288 §3 suggests), which makes it unique per key.
  - ChaCha20-Poly1305 (RFC 7905 §2): nonce = 12-byte IV XOR
    (0^4 || seq_num), nothing explicit on the wire.
"""

from __future__ import annotations

import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305

from .suites import AEADAlgorithm, CipherSuiteInfo

_AAD = struct.Struct(">QBHH")
# The record header (RFC 6347 §4.1) with epoch || sequence_number as one
# 64-bit field, as in records.py.
_HEADER = struct.Struct(">BHQH")
# For GCM/CCM: the header followed by the explicit nonce (= seq_num), and
# salt || seq_num || type || version || length, whose first 12 bytes are
# the nonce and last 13 the AAD.
_HEADER_EXPLICIT = struct.Struct(">BHQHQ")
_NONCE_AAD = struct.Struct(">4sQBHH")
_RECORD_HEADER_SIZE = _HEADER.size


def _make_aead(info: CipherSuiteInfo, key: bytes):
    aead = info.aead
    if aead in (AEADAlgorithm.AES_128_GCM, AEADAlgorithm.AES_256_GCM):
        return AESGCM(key)
    if aead is AEADAlgorithm.CHACHA20_POLY1305:
        return ChaCha20Poly1305(key)
    if aead in (AEADAlgorithm.AES_128_CCM, AEADAlgorithm.AES_128_CCM_8):
        return AESCCM(key, tag_length=info.tag_length)
    raise ValueError(f"unsupported AEAD {aead}")


class RecordProtection:
    """
    Seals and opens record fragments with one key.

    One instance serves one epoch in one direction; the AEAD object is built
    once here because its construction costs more than sealing a small
    record.

    @ivar info: the cipher suite.
    @ivar overhead: bytes a sealed fragment adds to its plaintext (explicit
        nonce + tag).
    """

    __slots__ = ("info", "overhead", "_key", "_aead", "_salt", "_iv", "_explicit_length", "_tag_length")

    def __init__(self, info: CipherSuiteInfo, key: bytes, fixed_iv: bytes):
        """
        @param key: the write key from the key block (RFC 5246 §6.3).
        @param fixed_iv: the write IV from the key block: the 4-byte salt for
            GCM/CCM, the 12-byte IV for ChaCha20-Poly1305.
        @raise ValueError: C{key} or C{fixed_iv} has the wrong length.
        """
        if len(key) != info.key_length:
            raise ValueError(f"{info.suite.name} needs a {info.key_length}-byte key, got {len(key)}")
        if len(fixed_iv) != info.fixed_iv_length:
            raise ValueError(f"{info.suite.name} needs a {info.fixed_iv_length}-byte IV, got {len(fixed_iv)}")
        self.info = info
        self.overhead = info.record_iv_length + info.tag_length
        self._key = bytes(key)
        self._aead = _make_aead(info, self._key)
        self._explicit_length = info.record_iv_length
        self._tag_length = info.tag_length
        if self._explicit_length:
            self._salt = bytes(fixed_iv)
            self._iv = 0
        else:
            self._salt = b""
            self._iv = int.from_bytes(fixed_iv, "big")

    def _cipher(self):
        # Only reached after release(): an AEAD object is always true.
        aead = self._aead
        if aead is None:
            aead = self._aead = _make_aead(self.info, self._key)
        return aead

    def release(self) -> None:
        """
        Drop the AEAD context until the next record needs it. With
        C{cryptography} 50 an C{AESGCM} object holds about 2.4 KiB of C
        memory, most of what an idle association costs; building it again
        costs one context construction on the next record.
        """
        self._aead = None

    def seal(self, content_type: int, version: int, epoch: int, sequence_number: int, plaintext: bytes) -> bytes:
        """
        Protect one record body.

        @return: the record fragment (explicit nonce, if any, then ciphertext
            and tag).
        """
        seq_num = (epoch << 48) | sequence_number
        aad = _AAD.pack(seq_num, content_type, version, len(plaintext))
        if self._explicit_length:
            # The explicit nonce is seq_num, which is also the AAD's prefix.
            explicit = aad[:8]
            return explicit + (self._aead or self._cipher()).encrypt(self._salt + explicit, plaintext, aad)
        # RFC 7905 §2: the 64-bit seq_num is left-padded to 96 bits and XORed.
        return (self._aead or self._cipher()).encrypt((self._iv ^ seq_num).to_bytes(12, "big"), plaintext, aad)

    def seal_record(
        self, content_type: int, version: int, epoch: int, sequence_number: int, plaintext: bytes
    ) -> bytes:
        """
        Protect one record body and put the record header in front: the
        same bytes as C{push_record(..., seal(...))}, built in one step
        because this is the per-record path of every application write.

        @param plaintext: at most 2^14 bytes (the caller checks), so the
            fragment length always fits its 16-bit field.
        @return: the whole record.
        """
        seq_num = (epoch << 48) | sequence_number
        length = len(plaintext)
        if self._explicit_length:
            # salt || seq_num is the nonce, seq_num || type || version ||
            # length the AAD: one pack gives both, overlapping.
            parts = _NONCE_AAD.pack(self._salt, seq_num, content_type, version, length)
            return _HEADER_EXPLICIT.pack(
                content_type, version, seq_num, length + self.overhead, seq_num
            ) + (self._aead or self._cipher()).encrypt(parts[:12], plaintext, parts[4:])
        aad = _AAD.pack(seq_num, content_type, version, length)
        header = _HEADER.pack(content_type, version, seq_num, length + self.overhead)
        return header + (self._aead or self._cipher()).encrypt((self._iv ^ seq_num).to_bytes(12, "big"), plaintext, aad)

    def open_record(self, content_type: int, version: int, seq_num: int, record: bytes) -> bytes | None:
        """
        L{open} for a whole record, header included, whose header the caller
        has already parsed: the record layer's path for a datagram holding
        one record, which saves copying the fragment out first.

        @param seq_num: epoch || sequence_number as one 64-bit number.
        @return: the plaintext, or C{None}; never raises on peer input.
        """
        explicit_length = self._explicit_length
        plaintext_length = len(record) - _RECORD_HEADER_SIZE - self.overhead
        if plaintext_length < 0:
            return None
        aad = _AAD.pack(seq_num, content_type, version, plaintext_length)
        try:
            if explicit_length:
                start = _RECORD_HEADER_SIZE + explicit_length
                return (self._aead or self._cipher()).decrypt(self._salt + record[_RECORD_HEADER_SIZE:start], record[start:], aad)
            return (self._aead or self._cipher()).decrypt((self._iv ^ seq_num).to_bytes(12, "big"), record[_RECORD_HEADER_SIZE:], aad)
        except InvalidTag:
            return None

    def open(self, content_type: int, version: int, epoch: int, sequence_number: int, fragment: bytes) -> bytes | None:
        """
        Authenticate and decrypt one record body.

        The explicit nonce is taken from the fragment as sent (RFC 5288 §3
        leaves its choice to the sender); epoch and sequence number still
        enter the additional data, so a record moved to another position
        fails authentication.

        @param fragment: C{bytes} or any buffer (a C{memoryview} into the
            datagram saves a copy).
        @return: the plaintext, or C{None} if the fragment is too short or
            does not authenticate. Never raises on peer input.
        """
        explicit_length = self._explicit_length
        plaintext_length = len(fragment) - explicit_length - self._tag_length
        if plaintext_length < 0:
            return None
        seq_num = (epoch << 48) | sequence_number
        aad = _AAD.pack(seq_num, content_type, version, plaintext_length)
        try:
            if explicit_length:
                return (self._aead or self._cipher()).decrypt(self._salt + fragment[:explicit_length], fragment[explicit_length:], aad)
            return (self._aead or self._cipher()).decrypt((self._iv ^ seq_num).to_bytes(12, "big"), fragment, aad)
        except InvalidTag:
            return None
