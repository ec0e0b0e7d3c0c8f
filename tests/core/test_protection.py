"""
Tests for twisted_dtls.core.protection.

The expected fragments are computed here independently, straight from the
RFC formulas with the C{cryptography} AEAD primitives:
  - AAD: RFC 5246 §6.2.3.3 with seq_num = epoch || sequence (RFC 6347 §4.1.2.1)
  - GCM/CCM nonce: RFC 5288 §3 / RFC 6655 §3 (4-byte salt || 8-byte explicit)
  - ChaCha20-Poly1305 nonce: RFC 7905 §2 (IV XOR left-padded seq_num)
Interoperability with OpenSSL's record protection is tested in
test_recordlayer.py.
"""

import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305

from twisted_dtls.core.constants import DTLS_1_2, CipherSuite
from twisted_dtls.core.protection import RecordProtection
from twisted_dtls.core.suites import CIPHER_SUITES, AEADAlgorithm

ONE_SUITE_PER_AEAD = {
    AEADAlgorithm.AES_128_GCM: CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    AEADAlgorithm.AES_256_GCM: CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    AEADAlgorithm.CHACHA20_POLY1305: CipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    AEADAlgorithm.AES_128_CCM: CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM,
    AEADAlgorithm.AES_128_CCM_8: CipherSuite.TLS_PSK_WITH_AES_128_CCM_8,
}
SUITES = [CIPHER_SUITES[s] for s in ONE_SUITE_PER_AEAD.values()]
IDS = [info.aead.name for info in SUITES]

EPOCH = 0x0102
SEQ = 0x030405060708
CONTENT_TYPE = 23


def material(info):
    key = bytes(range(1, info.key_length + 1))
    iv = bytes(range(0xA0, 0xA0 + info.fixed_iv_length))
    return key, iv


def expected_fragment(info, key, iv, content_type, version, epoch, seq, plaintext):
    """Independent computation of a sealed fragment from the RFC formulas."""
    seq_num = epoch.to_bytes(2, "big") + seq.to_bytes(6, "big")
    aad = seq_num + bytes([content_type]) + version.to_bytes(2, "big") + len(plaintext).to_bytes(2, "big")
    if info.aead is AEADAlgorithm.CHACHA20_POLY1305:
        nonce = bytes(a ^ b for a, b in zip(iv, bytes(4) + seq_num))
        return ChaCha20Poly1305(key).encrypt(nonce, plaintext, aad)
    if info.aead in (AEADAlgorithm.AES_128_CCM, AEADAlgorithm.AES_128_CCM_8):
        aead = AESCCM(key, tag_length=8 if info.aead is AEADAlgorithm.AES_128_CCM_8 else 16)
    else:
        aead = AESGCM(key)
    return seq_num + aead.encrypt(iv + seq_num, plaintext, aad)


@pytest.mark.parametrize("info", SUITES, ids=IDS)
@pytest.mark.parametrize("plaintext", [b"", b"x", b"hello, record layer", bytes(range(256)) * 8])
def test_seal_matches_rfc_formula(info, plaintext):
    key, iv = material(info)
    protection = RecordProtection(info, key, iv)
    fragment = protection.seal(CONTENT_TYPE, DTLS_1_2, EPOCH, SEQ, plaintext)
    assert fragment == expected_fragment(info, key, iv, CONTENT_TYPE, DTLS_1_2, EPOCH, SEQ, plaintext)
    assert len(fragment) == len(plaintext) + protection.overhead
    assert protection.open(CONTENT_TYPE, DTLS_1_2, EPOCH, SEQ, fragment) == plaintext


@pytest.mark.parametrize(
    "aead, overhead",
    [
        (AEADAlgorithm.AES_128_GCM, 24),
        (AEADAlgorithm.AES_256_GCM, 24),
        (AEADAlgorithm.AES_128_CCM, 24),
        (AEADAlgorithm.AES_128_CCM_8, 16),  # RFC 6655 §3: 8-byte tag
        (AEADAlgorithm.CHACHA20_POLY1305, 16),  # RFC 7905 §2: no explicit nonce
    ],
)
def test_overhead(aead, overhead):
    info = CIPHER_SUITES[ONE_SUITE_PER_AEAD[aead]]
    assert RecordProtection(info, *material(info)).overhead == overhead


def test_gcm_explicit_nonce_is_epoch_and_sequence():
    info = CIPHER_SUITES[CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]
    fragment = RecordProtection(info, *material(info)).seal(22, DTLS_1_2, 1, 7, b"abc")
    assert fragment[:8] == bytes.fromhex("0001000000000007")


@pytest.mark.parametrize("info", [i for i in SUITES if i.record_iv_length], ids=lambda i: i.aead.name)
def test_open_uses_explicit_nonce_from_record(info):
    # RFC 5288 §3 leaves the explicit nonce to the sender (OpenSSL's GCM uses
    # a counter with a random start): the receiver must read it from the record.
    key, iv = material(info)
    explicit = bytes.fromhex("8899aabbccddeeff")
    aad = EPOCH.to_bytes(2, "big") + SEQ.to_bytes(6, "big") + bytes([23]) + DTLS_1_2.to_bytes(2, "big") + (5).to_bytes(2, "big")
    aead = AESGCM(key) if "GCM" in info.aead.name else AESCCM(key, tag_length=info.tag_length)
    fragment = explicit + aead.encrypt(iv + explicit, b"hello", aad)
    assert RecordProtection(info, key, iv).open(23, DTLS_1_2, EPOCH, SEQ, fragment) == b"hello"


def test_chacha_nonce_xor():
    # An IV whose low eight bytes are all ones: the XOR flips every bit of
    # seq_num into the nonce (RFC 7905 §2), the top four bytes stay as is.
    info = CIPHER_SUITES[CipherSuite.TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256]
    key = bytes(32)
    iv = bytes.fromhex("01020304ffffffffffffffff")
    fragment = RecordProtection(info, key, iv).seal(23, DTLS_1_2, 1, 2, b"data")
    nonce = bytes.fromhex("01020304fffefffffffffffd")
    aad = bytes.fromhex("0001000000000002" "17" "fefd" "0004")
    assert ChaCha20Poly1305(key).decrypt(nonce, fragment, aad) == b"data"


@pytest.mark.parametrize("info", SUITES, ids=IDS)
def test_every_bit_flip_rejected(info):
    protection = RecordProtection(info, *material(info))
    fragment = protection.seal(CONTENT_TYPE, DTLS_1_2, EPOCH, SEQ, b"sixteen byte msg")
    for i in range(len(fragment)):
        for bit in (0x01, 0x80):
            tampered = bytearray(fragment)
            tampered[i] ^= bit
            assert protection.open(CONTENT_TYPE, DTLS_1_2, EPOCH, SEQ, bytes(tampered)) is None


@pytest.mark.parametrize("info", SUITES, ids=IDS)
def test_header_fields_are_authenticated(info):
    protection = RecordProtection(info, *material(info))
    fragment = protection.seal(CONTENT_TYPE, DTLS_1_2, EPOCH, SEQ, b"payload")
    assert protection.open(CONTENT_TYPE, DTLS_1_2, EPOCH, SEQ, fragment) == b"payload"
    assert protection.open(CONTENT_TYPE, DTLS_1_2, EPOCH + 1, SEQ, fragment) is None
    assert protection.open(CONTENT_TYPE, DTLS_1_2, EPOCH, SEQ + 1, fragment) is None
    assert protection.open(CONTENT_TYPE, DTLS_1_2, EPOCH, SEQ ^ (1 << 47), fragment) is None
    assert protection.open(22, DTLS_1_2, EPOCH, SEQ, fragment) is None
    assert protection.open(CONTENT_TYPE, 0xFEFF, EPOCH, SEQ, fragment) is None


@pytest.mark.parametrize("info", SUITES, ids=IDS)
def test_truncated_and_extended_fragments_rejected(info):
    protection = RecordProtection(info, *material(info))
    fragment = protection.seal(CONTENT_TYPE, DTLS_1_2, EPOCH, SEQ, b"payload")
    for n in range(len(fragment)):
        assert protection.open(CONTENT_TYPE, DTLS_1_2, EPOCH, SEQ, fragment[:n]) is None
    assert protection.open(CONTENT_TYPE, DTLS_1_2, EPOCH, SEQ, fragment + b"\x00") is None


@pytest.mark.parametrize("info", SUITES, ids=IDS)
def test_other_key_or_iv_rejected(info):
    key, iv = material(info)
    fragment = RecordProtection(info, key, iv).seal(CONTENT_TYPE, DTLS_1_2, EPOCH, SEQ, b"payload")
    other_key = bytes(len(key))
    other_iv = bytes(len(iv))
    assert RecordProtection(info, other_key, iv).open(CONTENT_TYPE, DTLS_1_2, EPOCH, SEQ, fragment) is None
    assert RecordProtection(info, key, other_iv).open(CONTENT_TYPE, DTLS_1_2, EPOCH, SEQ, fragment) is None


@pytest.mark.parametrize("info", SUITES, ids=IDS)
def test_random_fragments_rejected(info):
    protection = RecordProtection(info, *material(info))
    for n in range(0, 64, 3):
        assert protection.open(CONTENT_TYPE, DTLS_1_2, EPOCH, SEQ, os.urandom(n)) is None


def test_bad_material_lengths():
    info = CIPHER_SUITES[CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]
    with pytest.raises(ValueError):
        RecordProtection(info, bytes(32), bytes(4))
    with pytest.raises(ValueError):
        RecordProtection(info, bytes(16), bytes(12))


@pytest.mark.parametrize("info", SUITES, ids=IDS)
def test_release_then_use_again(info):
    """
    After release() the AEAD context is rebuilt on the next record: the
    bytes are the same as without the release, both ways.
    """
    key, iv = material(info)
    kept = RecordProtection(info, key, iv)
    released = RecordProtection(info, key, iv)
    released.release()
    sealed = released.seal(CONTENT_TYPE, DTLS_1_2, EPOCH, SEQ, b"after release")
    assert sealed == kept.seal(CONTENT_TYPE, DTLS_1_2, EPOCH, SEQ, b"after release")
    released.release()
    assert released.open(CONTENT_TYPE, DTLS_1_2, EPOCH, SEQ, sealed) == b"after release"
