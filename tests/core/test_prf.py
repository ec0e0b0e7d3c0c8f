"""
Known-answer tests for twisted_dtls.core.prf.

Sources of the expected values:
  - PRF vectors: "TLS 1.2 PRF test vectors" posted to the IETF TLS mailing
    list (the SHA-256 and SHA-384 cases); both re-derived with
    C{openssl kdf ... TLS1-PRF} (OpenSSL 3.0), see L{test_openssl_cli_agrees}.
  - master secret / extended master secret / key block / verify_data /
    exporter vectors: produced with C{openssl kdf -kdfopt digest:H
    -kdfopt hexsecret:S -kdfopt hexseed:LABEL||SEED TLS1-PRF} from the fixed
    inputs below (OpenSSL 3.0, Debian 12).
  - exporter against a live OpenSSL DTLS 1.2 handshake through pyOpenSSL.
"""

from __future__ import annotations

import hashlib
import subprocess

import pytest
from cryptography.hazmat.primitives import hashes
from OpenSSL import SSL

from tests.certs import make_pki
from twisted_dtls.core import prf as prf_module
from twisted_dtls.core.constants import CipherSuite
from twisted_dtls.core.prf import (
    CLIENT_FINISHED,
    SERVER_FINISHED,
    export_keying_material,
    extended_master_secret,
    key_block,
    master_secret,
    prf,
    psk_premaster,
    verify_data,
)
from twisted_dtls.core.suites import CIPHER_SUITES

PRE_MASTER = bytes(range(48))
CLIENT_RANDOM = bytes(range(0x20, 0x40))
SERVER_RANDOM = bytes(range(0x40, 0x60))
SESSION_HASH_32 = bytes(range(0x60, 0x80))
SESSION_HASH_48 = bytes(range(0x60, 0x90))
MASTER = bytes(range(0x80, 0xB0))

H = bytes.fromhex


@pytest.fixture(autouse=True, params=["builtin", "hashlib"])
def sha2_backend(request, monkeypatch):
    """
    Every known answer holds with either SHA-2 the PRF can run on:
    CPython's built-in one (used where the build has it) and hashlib's
    OpenSSL one (the fallback).
    """
    if request.param == "hashlib":
        monkeypatch.setattr(
            prf_module, "_PRF_HASHES", {"sha256": (hashlib.sha256, 64), "sha384": (hashlib.sha384, 128)}
        )
    return request.param


# -- PRF --------------------------------------------------------------------

IETF_SHA256 = (
    H("9bbe436ba940f017b17652849a71db35"),
    H("a0ba9f936cda311827a6f796ffd5198c"),
    H(
        "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e14baf9af"
        "0fa022f7077def17abfd3797c0564bab4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff70187347b66"
    ),
)
IETF_SHA384 = (
    H("b80b733d6ceefcdc71566ea48e5567df"),
    H("cd665cf6a8447dd6ff8b27555edb7465"),
    H(
        "7b0c18e9ced410ed1804f2cfa34a336a1c14dffb4900bb5fd7942107e81c83cde9ca0faa60be9fe34f82b1233c9146a0"
        "e534cb400fed2700884f9dc236f80edd8bfa961144c9e8d792eca722a7b32fc3d416d473ebc2c5fd4abfdad05d9184259b"
        "5bf8cd4d90fa0d31e2dec479e4f1a26066f2eea9a69236a3e52655c9e9aee691c8f3a26854308d5eaa3be85e0990703d73e56f"
    ),
)


@pytest.mark.parametrize("hash_cls, vector", [(hashes.SHA256, IETF_SHA256), (hashes.SHA384, IETF_SHA384)])
def test_prf_ietf_vectors(hash_cls, vector):
    secret, seed, expected = vector
    assert prf(hash_cls, secret, b"test label", seed, len(expected)) == expected


def test_prf_prefixes_agree_and_instances_work():
    secret, seed, expected = IETF_SHA256
    for length in (0, 1, 31, 32, 33, 64, 99):
        assert prf(hashes.SHA256(), secret, b"test label", seed, length) == expected[:length]


def test_prf_negative_length():
    with pytest.raises(ValueError):
        prf(hashes.SHA256, b"k", b"l", b"s", -1)


@pytest.mark.parametrize("digest, hash_cls", [("SHA256", hashes.SHA256), ("SHA384", hashes.SHA384)])
def test_openssl_cli_agrees(digest, hash_cls):
    secret = H("00112233445566778899aabbccddeeff")
    seed = H("0123456789")
    out = subprocess.run(
        [
            "timeout", "20", "openssl", "kdf", "-keylen", "77", "-kdfopt", f"digest:{digest}",
            "-kdfopt", f"hexsecret:{secret.hex()}", "-kdfopt", f"hexseed:{(b'some label' + seed).hex()}",
            "TLS1-PRF",
        ],
        check=True, capture_output=True, text=True,
    ).stdout
    assert prf(hash_cls, secret, b"some label", seed, 77) == H(out.strip().replace(":", ""))


# -- master secrets -----------------------------------------------------------

def test_master_secret():
    assert master_secret(hashes.SHA256, PRE_MASTER, CLIENT_RANDOM, SERVER_RANDOM) == H(
        "cf8d72bb4fda026122dba8aaed446b085151157dbbd04d5be31ab43379174edfd454d4852e1a89a94d12aa004561baff"
    )
    assert master_secret(hashes.SHA384, PRE_MASTER, CLIENT_RANDOM, SERVER_RANDOM) == H(
        "be4132c269fefab1f9aacea277ec5e9d1f40e0b434cc8cea7142062d992a0742714e8a5ccc2b6329a757892d958d1453"
    )


def test_extended_master_secret():
    assert extended_master_secret(hashes.SHA256, PRE_MASTER, SESSION_HASH_32) == H(
        "126f7f5ca74a0ee6d36213580c197693b9f50bf12309f250e48abf622c04219cc470be1522bfdc71840afecf068eab0b"
    )
    assert extended_master_secret(hashes.SHA384, PRE_MASTER, SESSION_HASH_48) == H(
        "90bd413398a183624fe15f22b8d32e06a2babd8e2e07e891c92d7e3e2bff5949361097a3d6aa5b2a9117fa7f1c774adc"
    )


# -- key block ------------------------------------------------------------------

def test_key_block_aes128_gcm():
    km = key_block(
        CIPHER_SUITES[CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256], MASTER, CLIENT_RANDOM, SERVER_RANDOM
    )
    block = H("716d6465cd59179dcde7a1497ae0cebca2db1cc78f778fdb092510ea92b61569568d30958b11e9b5")
    assert (km.client_write_key, km.server_write_key, km.client_write_iv, km.server_write_iv) == (
        block[0:16], block[16:32], block[32:36], block[36:40],
    )


def test_key_block_chacha20():
    km = key_block(
        CIPHER_SUITES[CipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256], MASTER, CLIENT_RANDOM, SERVER_RANDOM
    )
    block = H(
        "716d6465cd59179dcde7a1497ae0cebca2db1cc78f778fdb092510ea92b61569568d30958b11e9b55bdf8bd642420b48"
        "364cc713200741f6e5a4653ccfccc50ee32f0a62602ba3d3e10e2cc536aff37e608d8aa44a756370"
    )
    assert (km.client_write_key, km.server_write_key, km.client_write_iv, km.server_write_iv) == (
        block[0:32], block[32:64], block[64:76], block[76:88],
    )


def test_key_block_aes256_gcm_sha384():
    km = key_block(
        CIPHER_SUITES[CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384], MASTER, CLIENT_RANDOM, SERVER_RANDOM
    )
    block = H(
        "ecb7493e0cb2235d37e6581eb4030cd8894fd681dc64ddf5a6e99954016d3b9df50a7111de79fcf32f45df93147889b5"
        "b5b0349f0110d474418313a94176f3af8060e8e3a794d8a2"
    )
    assert (km.client_write_key, km.server_write_key, km.client_write_iv, km.server_write_iv) == (
        block[0:32], block[32:64], block[64:68], block[68:72],
    )
    assert "ecb7" not in repr(km)


# -- Finished -------------------------------------------------------------------

def test_verify_data():
    assert verify_data(hashes.SHA256, MASTER, CLIENT_FINISHED, SESSION_HASH_32) == H("7700d435ce9a4d17881bff95")
    assert verify_data(hashes.SHA384, MASTER, SERVER_FINISHED, SESSION_HASH_48) == H("87b5232c79f3f2558b24ca6e")


def test_verify_data_rejects_other_labels():
    with pytest.raises(ValueError):
        verify_data(hashes.SHA256, MASTER, b"key expansion", SESSION_HASH_32)


# -- exporter ---------------------------------------------------------------------

def test_exporter_vectors():
    label = b"EXPERIMENTAL test"
    args = (hashes.SHA256, MASTER, CLIENT_RANDOM, SERVER_RANDOM, label)
    assert export_keying_material(*args, None, 20) == H("e4a3181f55abcfac5861746fddcc54ddbcbeabcd")
    assert export_keying_material(*args, b"ccx", 20) == H("9c1444c17904bcab638e2993392f18197caa4e67")
    # RFC 5705 §4: an empty context is not the same as no context.
    assert export_keying_material(*args, b"", 20) == H("2719af0d2059124ed0de8b0aa68d2ceee8750165")
    assert export_keying_material(hashes.SHA256, MASTER, CLIENT_RANDOM, SERVER_RANDOM, "EXPERIMENTAL test", None, 20) == H(
        "e4a3181f55abcfac5861746fddcc54ddbcbeabcd"
    )


@pytest.mark.parametrize(
    "label", [b"client finished", b"server finished", b"master secret", b"extended master secret", b"key expansion"]
)
def test_exporter_rejects_tls_labels(label):
    with pytest.raises(ValueError):
        export_keying_material(hashes.SHA256, MASTER, CLIENT_RANDOM, SERVER_RANDOM, label, None, 16)


def test_exporter_rejects_huge_context():
    with pytest.raises(ValueError):
        export_keying_material(hashes.SHA256, MASTER, CLIENT_RANDOM, SERVER_RANDOM, b"EXPERIMENTAL x", bytes(65536), 16)


def _openssl_context(server: bool, cipher: str) -> SSL.Context:
    ctx = SSL.Context(SSL.DTLS_METHOD)
    ctx.set_min_proto_version(0xFEFD)
    ctx.set_max_proto_version(0xFEFD)
    ctx.set_cipher_list(cipher.encode())
    ctx.set_options(SSL.OP_NO_QUERY_MTU)
    if server:
        pki = make_pki()
        cred = pki.server_ec if "ECDSA" in cipher else pki.server_rsa
        ctx.use_certificate(cred.cert)
        ctx.use_privatekey(cred.key)
    return ctx


def _openssl_pair(cipher: str) -> tuple[SSL.Connection, SSL.Connection]:
    """A DTLS 1.2 handshake between two pyOpenSSL ends over memory BIOs."""
    server = SSL.Connection(_openssl_context(True, cipher))
    server.set_accept_state()
    client = SSL.Connection(_openssl_context(False, cipher))
    client.set_connect_state()
    done = {id(server): False, id(client): False}
    for conn in (server, client):
        conn.set_ciphertext_mtu(1400)
    for _ in range(20):
        for a, b in ((client, server), (server, client)):
            if not done[id(a)]:
                try:
                    a.do_handshake()
                    done[id(a)] = True
                except SSL.WantReadError:
                    pass
            try:
                while True:
                    b.bio_write(a.bio_read(65536))
            except SSL.WantReadError:
                pass
        if all(done.values()):
            break
    assert all(done.values()), "pyOpenSSL handshake did not complete"
    return client, server


@pytest.mark.parametrize(
    "cipher, hash_cls",
    [("ECDHE-ECDSA-AES128-GCM-SHA256", hashes.SHA256), ("ECDHE-RSA-AES256-GCM-SHA384", hashes.SHA384)],
)
def test_exporter_matches_openssl(cipher, hash_cls):
    client, server = _openssl_pair(cipher)
    assert client.get_cipher_name() == cipher
    master = client.master_key()
    randoms = (client.client_random(), client.server_random())
    for label, context, length in [
        (b"EXPERIMENTAL twisted_dtls", None, 32),
        (b"EXPERIMENTAL twisted_dtls", b"", 32),
        (b"EXTRACTOR-dtls_srtp", None, 60),
        (b"EXPERIMENTAL twisted_dtls", b"some context", 100),
    ]:
        ours = export_keying_material(hash_cls, master, *randoms, label, context, length)
        assert ours == client.export_keying_material(label, length, context)
        assert ours == server.export_keying_material(label, length, context)


# -- PSK ---------------------------------------------------------------------------

def test_psk_premaster_plain():
    # RFC 4279 §2: uint16(N) || N zero bytes || uint16(N) || psk
    psk = H("000102030405060708090a0b0c0d0e0f")
    assert psk_premaster(psk) == H("0010") + bytes(16) + H("0010") + psk


def test_psk_premaster_ecdhe():
    # RFC 5489 §2: other_secret is the ECDH shared secret
    psk = b"\x01\x02\x03"
    shared = bytes(range(32))
    assert psk_premaster(psk, shared) == H("0020") + shared + H("0003") + psk


def test_psk_premaster_too_long():
    with pytest.raises(ValueError):
        psk_premaster(bytes(65536))
