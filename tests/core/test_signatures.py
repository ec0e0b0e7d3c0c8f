"""
Tests for twisted_dtls.core.signatures.

Interoperability: signatures made by the OpenSSL 3.0 command line
(C{openssl dgst -sign}, C{openssl pkeyutl -sign -rawin}) verify with ours and
ours verify with it. Ed25519 known answer: RFC 8032 §7.1, TEST 1.
"""

from __future__ import annotations

import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from tests.certs import make_pki
from twisted_dtls.core.constants import AlertDescription, SignatureScheme as S
from twisted_dtls.core.errors import AlertError
from twisted_dtls.core.signatures import SUPPORTED_SCHEMES, choose_scheme, schemes_for_key, sign, verify

DATA = b"client_random + server_random + ServerECDHParams"


def _key_for(scheme: S):
    pki = make_pki()
    if scheme.name.startswith("ecdsa_secp384"):
        return pki.server_p384.key
    if scheme.name.startswith("ecdsa"):
        return pki.server_ec.key
    if scheme.name.startswith("rsa"):
        return pki.server_rsa.key
    return pki.server_ed25519.key


def test_supported_schemes():
    assert SUPPORTED_SCHEMES == {
        S.ecdsa_secp256r1_sha256, S.ecdsa_secp384r1_sha384, S.ecdsa_secp521r1_sha512,
        S.rsa_pkcs1_sha256, S.rsa_pkcs1_sha384, S.rsa_pkcs1_sha512,
        S.rsa_pss_rsae_sha256, S.rsa_pss_rsae_sha384, S.rsa_pss_rsae_sha512, S.ed25519,
    }


@pytest.mark.parametrize("scheme", sorted(SUPPORTED_SCHEMES))
def test_round_trip_and_tamper(scheme):
    key = _key_for(scheme)
    signature = sign(key, scheme, DATA)
    verify(key.public_key(), scheme, signature, DATA)
    verify(key.public_key(), int(scheme), signature, DATA, allowed=[int(scheme)])
    with pytest.raises(AlertError) as e:
        verify(key.public_key(), scheme, signature, DATA + b"!")
    assert e.value.description == AlertDescription.decrypt_error
    flipped = bytearray(signature)
    flipped[len(flipped) // 2] ^= 0x01
    with pytest.raises(AlertError) as e:
        verify(key.public_key(), scheme, bytes(flipped), DATA)
    assert e.value.description == AlertDescription.decrypt_error
    for junk in (b"", b"\x00", b"\x30\x06\x02\x01\x01\x02\x01\x01", signature + b"\x00", signature[:-1]):
        with pytest.raises(AlertError) as e:
            verify(key.public_key(), scheme, junk, DATA)
        assert e.value.description == AlertDescription.decrypt_error


def test_verify_accepts_certificate():
    pki = make_pki()
    signature = sign(pki.server_ec.key, S.ecdsa_secp256r1_sha256, DATA)
    verify(pki.server_ec.cert, S.ecdsa_secp256r1_sha256, signature, DATA)


def test_wrong_key_is_decrypt_error():
    pki = make_pki()
    signature = sign(pki.server_ec.key, S.ecdsa_secp256r1_sha256, DATA)
    with pytest.raises(AlertError) as e:
        verify(pki.client_ec.key.public_key(), S.ecdsa_secp256r1_sha256, signature, DATA)
    assert e.value.description == AlertDescription.decrypt_error


def test_pss_and_pkcs1_not_interchangeable():
    key = make_pki().server_rsa.key
    signature = sign(key, S.rsa_pkcs1_sha256, DATA)
    with pytest.raises(AlertError) as e:
        verify(key.public_key(), S.rsa_pss_rsae_sha256, signature, DATA)
    assert e.value.description == AlertDescription.decrypt_error


def test_ecdsa_hash_is_part_of_the_scheme():
    key = make_pki().server_ec.key
    signature = sign(key, S.ecdsa_secp256r1_sha256, DATA)
    with pytest.raises(AlertError) as e:
        verify(key.public_key(), S.ecdsa_secp384r1_sha384, signature, DATA)
    assert e.value.description == AlertDescription.decrypt_error


def test_ecdsa_curve_not_bound_in_tls12():
    # A P-256 key signing with SHA-384 under the ecdsa_secp384r1_sha384 code point.
    key = make_pki().server_ec.key
    signature = sign(key, S.ecdsa_secp384r1_sha384, DATA)
    verify(key.public_key(), S.ecdsa_secp384r1_sha384, signature, DATA)


@pytest.mark.parametrize("scheme, key_attr", [
    (S.ecdsa_secp256r1_sha256, "server_rsa"),
    (S.rsa_pss_rsae_sha256, "server_ec"),
    (S.rsa_pkcs1_sha256, "server_ed25519"),
    (S.ed25519, "server_ec"),
])
def test_scheme_key_mismatch(scheme, key_attr):
    key = getattr(make_pki(), key_attr).key
    with pytest.raises(AlertError) as e:
        verify(key.public_key(), scheme, b"\x00" * 64, DATA)
    assert e.value.description == AlertDescription.illegal_parameter
    with pytest.raises(ValueError):
        sign(key, scheme, DATA)


@pytest.mark.parametrize("scheme", [S.rsa_pkcs1_sha1, S.ecdsa_sha1, S.ed448, S.rsa_pss_pss_sha256, 0x0000, 0xFFFF])
def test_unsupported_scheme(scheme):
    key = make_pki().server_ec.key
    with pytest.raises(AlertError) as e:
        verify(key.public_key(), scheme, b"sig", DATA)
    assert e.value.description == AlertDescription.illegal_parameter
    with pytest.raises(ValueError):
        sign(key, scheme, DATA)


def test_scheme_not_offered():
    key = make_pki().server_ec.key
    signature = sign(key, S.ecdsa_secp256r1_sha256, DATA)
    with pytest.raises(AlertError) as e:
        verify(key.public_key(), S.ecdsa_secp256r1_sha256, signature, DATA, allowed=[S.ecdsa_secp384r1_sha384])
    assert e.value.description == AlertDescription.illegal_parameter


def test_ed25519_rfc8032_test1():
    key = ed25519.Ed25519PrivateKey.from_private_bytes(
        bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    )
    expected = bytes.fromhex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46b"
        "d25bf5f0595bbe24655141438e7a100b"
    )
    assert sign(key, S.ed25519, b"") == expected
    verify(key.public_key(), S.ed25519, expected, b"")


# -- OpenSSL CLI cross-checks -------------------------------------------------------

_DGST = {
    S.ecdsa_secp256r1_sha256: ["-sha256"],
    S.ecdsa_secp384r1_sha384: ["-sha384"],
    S.rsa_pkcs1_sha256: ["-sha256"],
    S.rsa_pkcs1_sha512: ["-sha512"],
    S.rsa_pss_rsae_sha256: ["-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"],
    S.rsa_pss_rsae_sha384: ["-sha384", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"],
}


def _pem_files(tmp_path, key):
    priv = tmp_path / "key.pem"
    pub = tmp_path / "pub.pem"
    priv.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    pub.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    data = tmp_path / "data"
    data.write_bytes(DATA)
    return priv, pub, data


def _openssl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["timeout", "20", "openssl", *args], capture_output=True)


@pytest.mark.parametrize("scheme", sorted(_DGST))
def test_openssl_signature_verifies_with_ours_and_back(tmp_path, scheme):
    key = _key_for(scheme)
    priv, pub, data = _pem_files(tmp_path, key)
    theirs = _openssl("dgst", *_DGST[scheme], "-sign", str(priv), str(data))
    assert theirs.returncode == 0, theirs.stderr
    verify(key.public_key(), scheme, theirs.stdout, DATA)

    sig = tmp_path / "sig"
    sig.write_bytes(sign(key, scheme, DATA))
    checked = _openssl("dgst", *_DGST[scheme], "-verify", str(pub), "-signature", str(sig), str(data))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_openssl_ed25519(tmp_path):
    key = make_pki().server_ed25519.key
    priv, pub, data = _pem_files(tmp_path, key)
    theirs = _openssl("pkeyutl", "-sign", "-rawin", "-inkey", str(priv), "-in", str(data))
    assert theirs.returncode == 0, theirs.stderr
    assert theirs.stdout == sign(key, S.ed25519, DATA)  # Ed25519 is deterministic
    verify(key.public_key(), S.ed25519, theirs.stdout, DATA)


# -- scheme choice --------------------------------------------------------------------

def test_schemes_for_key():
    pki = make_pki()
    assert schemes_for_key(pki.server_ec.key) == [
        S.ecdsa_secp256r1_sha256, S.ecdsa_secp384r1_sha384, S.ecdsa_secp521r1_sha512]
    assert schemes_for_key(pki.server_p384.key.public_key())[0] == S.ecdsa_secp384r1_sha384
    assert schemes_for_key(pki.server_rsa.cert) == [
        S.rsa_pss_rsae_sha256, S.rsa_pss_rsae_sha384, S.rsa_pss_rsae_sha512,
        S.rsa_pkcs1_sha256, S.rsa_pkcs1_sha384, S.rsa_pkcs1_sha512]
    assert schemes_for_key(pki.server_ed25519.key) == [S.ed25519]
    assert schemes_for_key(ed448.Ed448PrivateKey.generate()) == []
    assert schemes_for_key(ec.generate_private_key(ec.SECP256K1())) == []


def test_small_rsa_key_skips_pss_sha512():
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    assert S.rsa_pss_rsae_sha512 not in schemes_for_key(key)
    assert S.rsa_pss_rsae_sha384 in schemes_for_key(key)


def test_choose_scheme():
    pki = make_pki()
    offered = [S.rsa_pkcs1_sha256, S.ecdsa_secp384r1_sha384, S.ecdsa_secp256r1_sha256, 0x1234]
    assert choose_scheme(pki.server_ec.key, offered) == S.ecdsa_secp256r1_sha256
    assert choose_scheme(pki.server_p384.key, offered) == S.ecdsa_secp384r1_sha384
    assert choose_scheme(pki.server_ec.key, [S.ecdsa_secp521r1_sha512]) == S.ecdsa_secp521r1_sha512
    assert choose_scheme(pki.server_rsa.key, offered) == S.rsa_pkcs1_sha256
    assert choose_scheme(pki.server_rsa.key, [S.rsa_pkcs1_sha384, S.rsa_pss_rsae_sha384]) == S.rsa_pss_rsae_sha384
    assert choose_scheme(pki.server_ed25519.key, [S.ed25519]) == S.ed25519
    assert choose_scheme(
        pki.server_rsa.key, [S.rsa_pss_rsae_sha256, S.rsa_pkcs1_sha256], ours=[S.rsa_pkcs1_sha256]
    ) == S.rsa_pkcs1_sha256


@pytest.mark.parametrize("key_attr, offered", [
    ("server_ec", [S.rsa_pkcs1_sha256]),
    ("server_rsa", [S.ecdsa_secp256r1_sha256, S.rsa_pkcs1_sha1]),
    ("server_ed25519", [S.ecdsa_secp256r1_sha256]),
])
def test_choose_scheme_nothing_in_common(key_attr, offered):
    with pytest.raises(AlertError) as e:
        choose_scheme(getattr(make_pki(), key_attr).key, offered)
    assert e.value.description == AlertDescription.handshake_failure


def test_choose_scheme_without_peer_list():
    pki = make_pki()
    assert choose_scheme(pki.server_ec.key, None) == S.ecdsa_secp256r1_sha256
    assert choose_scheme(pki.server_rsa.key, []) == S.rsa_pkcs1_sha256
    with pytest.raises(AlertError) as e:
        choose_scheme(pki.server_ed25519.key, None)
    assert e.value.description == AlertDescription.handshake_failure
    with pytest.raises(AlertError):
        choose_scheme(pki.server_rsa.key, None, ours=[S.rsa_pss_rsae_sha256])


def test_choose_scheme_unusable_key():
    key = dsa.generate_private_key(key_size=1024)
    with pytest.raises(AlertError):
        choose_scheme(key, [S.ecdsa_secp256r1_sha256])
