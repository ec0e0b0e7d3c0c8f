"""
Tests for twisted_dtls.core.certificates, over the PKI of tests/certs.py.
Fingerprints are cross-checked with C{openssl x509 -fingerprint -sha256}.
"""

from __future__ import annotations

import datetime
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.certs import Credential, issue, make_ca, make_pki, self_signed
from twisted_dtls.core.certificates import (
    fingerprint_sha256,
    format_fingerprint,
    parse_certificate_chain,
    parse_fingerprint,
    subject_for_name,
    verify_client_chain,
    verify_server_chain,
)
from twisted_dtls.core.constants import AlertDescription as A
from twisted_dtls.core.errors import AlertError, ConfigurationError

NOW = datetime.datetime.now(datetime.timezone.utc)
DAY = datetime.timedelta(days=1)


def _root() -> Credential:
    pki = make_pki()
    return Credential([pki.ca_cert], pki.ca_key)


def _server_fails(chain, name, description, roots=None, pins=frozenset(), now=NOW) -> AlertError:
    with pytest.raises(AlertError) as e:
        verify_server_chain(chain, make_pki().trust_roots if roots is None else roots, name, now, pins)
    assert e.value.description == description, e.value.message
    return e.value


# -- server chains ----------------------------------------------------------------

@pytest.mark.parametrize("attr", ["server_ec", "server_p384", "server_rsa", "server_ed25519"])
@pytest.mark.parametrize("name", ["localhost", "LocalHost", "localhost.", "127.0.0.1", "::1", "[::1]", None])
def test_server_chain_accepted(attr, name):
    pki = make_pki()
    verify_server_chain(getattr(pki, attr).chain, pki.trust_roots, name, NOW, frozenset())


def test_server_chain_with_intermediate():
    pki = make_pki()
    chain = pki.server_ec_via_intermediate.chain
    assert len(chain) == 2
    verify_server_chain(chain, pki.trust_roots, "localhost", NOW, frozenset())
    # Without the intermediate nothing leads to the root.
    _server_fails(chain[:1], "localhost", A.unknown_ca)


def test_naive_now_is_utc():
    pki = make_pki()
    verify_server_chain(pki.server_ec.chain, pki.trust_roots, "localhost", NOW.replace(tzinfo=None), frozenset())


@pytest.mark.parametrize("name", ["example.com", "127.0.0.2", "::2", "localhost.example"])
def test_name_mismatch_is_bad_certificate(name):
    error = _server_fails(make_pki().server_ec.chain, name, A.bad_certificate)
    assert "subjectAltName" in error.message
    assert repr(name) in error.message


def test_expired_and_not_yet_valid():
    root = _root()
    expired = issue(root, "localhost", not_before=NOW - 10 * DAY, not_after=NOW - DAY)
    error = _server_fails(expired.chain, "localhost", A.certificate_expired)
    assert "valid from" in error.message
    future = issue(root, "localhost", not_before=NOW + DAY, not_after=NOW + 10 * DAY)
    _server_fails(future.chain, "localhost", A.certificate_expired)
    # The same certificate judged at another time.
    _server_fails(make_pki().server_ec.chain, "localhost", A.certificate_expired, now=NOW + 400 * DAY)


def test_expired_root():
    old_root = make_ca("old root", not_before=NOW - 10 * DAY, not_after=NOW - DAY)
    leaf = issue(old_root, "localhost", not_before=NOW - 2 * DAY, not_after=NOW + DAY)
    _server_fails(leaf.chain, "localhost", A.certificate_expired, roots=[old_root.cert])


def test_unknown_ca():
    other = make_ca("some other CA")
    error = _server_fails(issue(other, "localhost").chain, "localhost", A.unknown_ca)
    assert "localhost" in error.message
    _server_fails(self_signed("localhost").chain, "localhost", A.unknown_ca)
    _server_fails(make_pki().server_ec.chain, None, A.unknown_ca, roots=[other.cert])


def test_no_trust_roots_and_no_pin():
    _server_fails(make_pki().server_ec.chain, "localhost", A.unknown_ca, roots=[])
    other_pin = frozenset([bytes(32)])
    error = _server_fails(make_pki().server_ec.chain, "localhost", A.unknown_ca, roots=[], pins=other_pin)
    assert "not pinned" in error.message


def test_empty_chain():
    _server_fails([], "localhost", A.bad_certificate)


def test_forged_signature_is_bad_certificate():
    # Same issuer name as the real CA, signed by another key.
    pki = make_pki()
    impostor = Credential([pki.ca_cert], ec.generate_private_key(ec.SECP256R1()))
    forged = issue(impostor, "localhost")
    _server_fails(forged.chain, "localhost", A.bad_certificate)
    _server_fails(forged.chain, None, A.bad_certificate)


def test_wrong_kind_of_certificate_for_a_server():
    pki = make_pki()
    # clientAuth-only EKU, with or without a name
    _server_fails(pki.client_ec.chain, None, A.bad_certificate)
    _server_fails(pki.client_ec.chain, "client1.example", A.bad_certificate)
    # a CA certificate as leaf
    _server_fails([pki.ca_cert], "localhost", A.bad_certificate)


def test_pinned_leaf_accepted_without_chain():
    cred = self_signed("anything")
    pin = frozenset([fingerprint_sha256(cred.cert)])
    verify_server_chain(cred.chain, [], "localhost", NOW, pin)
    verify_server_chain(cred.chain, make_pki().trust_roots, None, NOW, pin)
    # a pin is exact: dates and names are not checked
    expired = self_signed("old", not_before=NOW - 10 * DAY, not_after=NOW - DAY)
    verify_server_chain(expired.chain, [], "localhost", NOW, frozenset([fingerprint_sha256(expired.cert)]))


def test_pin_of_another_certificate_falls_back_to_chain():
    pki = make_pki()
    pin = frozenset([fingerprint_sha256(pki.server_rsa.cert)])
    verify_server_chain(pki.server_ec.chain, pki.trust_roots, "localhost", NOW, pin)
    _server_fails(self_signed("x").chain, "localhost", A.unknown_ca, pins=pin)


def test_invalid_server_name_is_configuration_error():
    with pytest.raises(ConfigurationError):
        verify_server_chain(make_pki().server_ec.chain, make_pki().trust_roots, "foo bar", NOW, frozenset())


def test_subject_for_name():
    assert subject_for_name("127.0.0.1") == x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))
    assert subject_for_name("[::1]") == x509.IPAddress(__import__("ipaddress").ip_address("::1"))
    assert subject_for_name("example.com.") == x509.DNSName("example.com")
    assert subject_for_name("bücher.example") == x509.DNSName("xn--bcher-kva.example")


# -- client chains ----------------------------------------------------------------------

def test_client_chain_accepted():
    pki = make_pki()
    verify_client_chain(pki.client_ec.chain, pki.trust_roots, NOW, frozenset())
    no_san = issue(_root(), "device-42", san=(), client=True)
    verify_client_chain(no_san.chain, pki.trust_roots, NOW, frozenset())


def _client_fails(chain, description, roots=None, pins=frozenset(), now=NOW):
    with pytest.raises(AlertError) as e:
        verify_client_chain(chain, make_pki().trust_roots if roots is None else roots, now, pins)
    assert e.value.description == description, e.value.message
    return e.value


def test_client_chain_failures():
    pki = make_pki()
    _client_fails([], A.bad_certificate)
    _client_fails(pki.server_ec.chain, A.bad_certificate)  # serverAuth-only EKU
    _client_fails(issue(make_ca("other"), "c", client=True).chain, A.unknown_ca)
    _client_fails(pki.client_ec.chain, A.certificate_expired, now=NOW + 400 * DAY)
    _client_fails(pki.client_ec.chain, A.unknown_ca, roots=[])
    cred = self_signed("client")
    verify_client_chain(cred.chain, [], NOW, frozenset([fingerprint_sha256(cred.cert)]))


# -- parsing and fingerprints -------------------------------------------------------------

def test_parse_certificate_chain():
    pki = make_pki()
    ders = [c.public_bytes(serialization.Encoding.DER) for c in pki.server_ec_via_intermediate.chain]
    assert parse_certificate_chain(ders) == pki.server_ec_via_intermediate.chain
    for bad in (b"", b"\x30\x03\x02\x01\x01", ders[0][:-1], b"garbage"):
        with pytest.raises(AlertError) as e:
            parse_certificate_chain([ders[0], bad])
        assert e.value.description == A.bad_certificate


def test_fingerprint_matches_openssl(tmp_path):
    cert = make_pki().server_ec.cert
    path = tmp_path / "cert.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out = subprocess.run(
        ["timeout", "20", "openssl", "x509", "-in", str(path), "-noout", "-fingerprint", "-sha256"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    # "sha256 Fingerprint=AB:CD:..." (OpenSSL 3.0)
    theirs = out.split("=", 1)[1]
    assert format_fingerprint(fingerprint_sha256(cert)) == theirs
    assert parse_fingerprint(theirs) == fingerprint_sha256(cert)


def test_format_and_parse_fingerprint():
    value = bytes(range(32))
    text = format_fingerprint(value)
    assert text.startswith("00:01:02:") and text.endswith(":1F") and len(text) == 95
    assert parse_fingerprint(text) == value
    assert parse_fingerprint(text.lower()) == value
    assert parse_fingerprint(value.hex()) == value
    assert parse_fingerprint("  " + value.hex().upper() + "\n") == value


@pytest.mark.parametrize("text", [
    "", "zz" * 32, "00" * 31, "00" * 33, "0" * 63, "00:" * 31 + "0", "000:" + "00:" * 30 + "00",
    "00::" + "00:" * 30 + "00", "00-" * 31 + "00", "0x" + "00" * 31,
])
def test_parse_fingerprint_rejects(text):
    with pytest.raises(ValueError):
        parse_fingerprint(text)
