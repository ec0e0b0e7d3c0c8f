"""
Tests for twisted_dtls.core.keyexchange.

Known answers: RFC 7748 §6.1 (X25519) and RFC 5903 §8.1 (ECDH on P-256,
whose shared secret is the x-coordinate, as RFC 8422 §5.10 uses it).
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from twisted_dtls.core.constants import AlertDescription, NamedGroup
from twisted_dtls.core.errors import AlertError, IllegalParameter
from twisted_dtls.core.keyexchange import SUPPORTED_GROUPS, KeyShare

H = bytes.fromhex


def _p256(hex_scalar: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int(hex_scalar.replace(" ", ""), 16), ec.SECP256R1())


def test_x25519_rfc7748_vector():
    alice = KeyShare(NamedGroup.x25519, x25519.X25519PrivateKey.from_private_bytes(
        H("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")))
    bob = KeyShare(NamedGroup.x25519, x25519.X25519PrivateKey.from_private_bytes(
        H("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")))
    assert alice.public_bytes == H("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    assert bob.public_bytes == H("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
    shared = H("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
    assert alice.exchange(bob.public_bytes) == shared
    assert bob.exchange(alice.public_bytes) == shared


def test_p256_rfc5903_vector():
    i = KeyShare(NamedGroup.secp256r1, _p256("C88F01F5 10D9AC3F 70A292DA A2316DE5 44E9AAB8 AFE84049 C62A9C57 862D1433"))
    r = KeyShare(NamedGroup.secp256r1, _p256("C6EF9C5D 78AE012A 011164AC B397CE20 88685D8F 06BF9BE0 B283AB46 476BEE53"))
    # RFC 8422 §5.4.1: uncompressed point 04 || X || Y
    assert i.public_bytes == H(
        "04" "DAD0B65394221CF9B051E1FECA5787D098DFE637FC90B9EF945D0C3772581180"
        "5271A0461CDB8252D61F1C456FA3E59AB1F45B33ACCF5F58389E0577B8990BB3"
    )
    shared = H("D6840F6B42F6EDAFD13116E0E12565202FEF8E9ECE7DCE03812464D04B9442DE")
    assert i.exchange(r.public_bytes) == shared
    assert r.exchange(i.public_bytes) == shared


@pytest.mark.parametrize("group, public_length, secret_length", [
    (NamedGroup.x25519, 32, 32), (NamedGroup.secp256r1, 65, 32), (NamedGroup.secp384r1, 97, 48),
])
def test_fresh_shares_agree(group, public_length, secret_length):
    a, b = KeyShare(group), KeyShare(group)
    assert a.group is group
    assert len(a.public_bytes) == public_length
    assert a.public_bytes != b.public_bytes
    secret = a.exchange(b.public_bytes)
    assert len(secret) == secret_length
    assert secret == b.exchange(a.public_bytes)


def test_p384_matches_cryptography():
    key = ec.generate_private_key(ec.SECP384R1())
    peer = ec.generate_private_key(ec.SECP384R1())
    share = KeyShare(NamedGroup.secp384r1, key)
    peer_bytes = peer.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    assert share.exchange(peer_bytes) == peer.exchange(ec.ECDH(), key.public_key())


@pytest.mark.parametrize("group", [NamedGroup.secp521r1, NamedGroup.x448, 0, 0xFFFF])
def test_unsupported_group_is_illegal_parameter(group):
    with pytest.raises(IllegalParameter):
        KeyShare(group)
    assert group not in SUPPORTED_GROUPS


def test_mismatched_private_key():
    with pytest.raises(ValueError):
        KeyShare(NamedGroup.secp384r1, ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(ValueError):
        KeyShare(NamedGroup.x25519, ec.generate_private_key(ec.SECP256R1()))


# RFC 7748 §6.1 / RFC 8422 §5.11: low-order points give an all-zero secret.
LOW_ORDER_X25519 = [
    bytes(32),
    (1).to_bytes(32, "little"),
    H("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    H("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    H("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
]


@pytest.mark.parametrize("peer", LOW_ORDER_X25519)
def test_x25519_low_order_points_rejected(peer):
    with pytest.raises(IllegalParameter) as e:
        KeyShare(NamedGroup.x25519).exchange(peer)
    assert e.value.description == AlertDescription.illegal_parameter


@pytest.mark.parametrize("peer", [b"", bytes(31), bytes(33), b"\x04" + bytes(64)])
def test_x25519_wrong_length(peer):
    with pytest.raises(IllegalParameter):
        KeyShare(NamedGroup.x25519).exchange(peer)


def _bad_points(group: NamedGroup) -> list[bytes]:
    good = KeyShare(group).public_bytes
    size = (len(good) - 1) // 2
    compressed = bytes([2 + (good[-1] & 1)]) + good[1 : 1 + size]
    off_curve = good[:-1] + bytes([good[-1] ^ 1])
    return [
        b"",
        b"\x00",                         # point at infinity
        compressed,                      # RFC 8422 §5.1.2: uncompressed only
        good[:-1],                       # truncated
        good + b"\x00",                  # overlong
        b"\x05" + good[1:],              # unknown format byte
        off_curve,
        b"\x04" + bytes(2 * size),       # (0, 0) is not on the curve
        b"\x04" + b"\xff" * (2 * size),  # coordinates beyond the field
    ]


@pytest.mark.parametrize("group", [NamedGroup.secp256r1, NamedGroup.secp384r1])
def test_nist_bad_points_rejected(group):
    share = KeyShare(group)
    for point in _bad_points(group):
        with pytest.raises(AlertError) as e:
            share.exchange(point)
        assert e.value.description == AlertDescription.illegal_parameter, point.hex()


def test_p256_point_offered_to_p384_rejected():
    with pytest.raises(IllegalParameter):
        KeyShare(NamedGroup.secp384r1).exchange(KeyShare(NamedGroup.secp256r1).public_bytes)
