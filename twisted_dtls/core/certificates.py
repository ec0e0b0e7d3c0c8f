"""
Checking a peer's certificate chain: path validation and name checks
through C{cryptography.x509.verification} (RFC 5280 with the Web PKI
profile), or SHA-256 pinning of the leaf for self-signed peers.

Failures raise L{AlertError} with the alert RFC 5246 §7.2.2 names for them
and a message that says why (the C{VerificationError} text is kept):

  - no certificate, a certificate that does not parse, a name mismatch, a
    wrong key usage, a bad signature: C{bad_certificate};
  - a certificate outside its validity period: C{certificate_expired};
  - a chain that leads to none of the trust roots (or no trust roots at
    all): C{unknown_ca}.
"""

from __future__ import annotations

import binascii
import datetime
import ipaddress
from typing import Iterable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    Subject,
)

from .constants import AlertDescription
from .errors import AlertError, ConfigurationError

_BAD = AlertDescription.bad_certificate
_EXPIRED = AlertDescription.certificate_expired
_UNKNOWN_CA = AlertDescription.unknown_ca


# -- fingerprints -------------------------------------------------------------

def fingerprint_sha256(cert: x509.Certificate) -> bytes:
    """The SHA-256 digest of the certificate's DER encoding (32 bytes)."""
    return cert.fingerprint(hashes.SHA256())


def format_fingerprint(fingerprint: bytes) -> str:
    """C{b"\\xab\\xcd"} -> C{"AB:CD"}, the way OpenSSL prints fingerprints."""
    return ":".join(f"{b:02X}" for b in fingerprint)


def parse_fingerprint(text: str) -> bytes:
    """
    Parse a SHA-256 fingerprint written as hex, with or without colons
    (either case, surrounding white space ignored).

    @raise ValueError: if it is not 32 bytes of hex.
    """
    cleaned = text.strip()
    if ":" in cleaned:
        parts = cleaned.split(":")
        if any(len(p) != 2 for p in parts):
            raise ValueError(f"malformed fingerprint {text!r}: expected pairs of hex digits between colons")
        cleaned = "".join(parts)
    try:
        value = binascii.unhexlify(cleaned)
    except (binascii.Error, ValueError):
        raise ValueError(f"malformed fingerprint {text!r}: not hex") from None
    if len(value) != 32:
        raise ValueError(f"malformed fingerprint {text!r}: a SHA-256 fingerprint has 32 bytes, not {len(value)}")
    return value


# -- parsing --------------------------------------------------------------------

def parse_certificate_chain(certificates: Sequence[bytes]) -> list[x509.Certificate]:
    """
    Load the DER certificates of a Certificate message (RFC 5246 §7.4.2).

    @raise AlertError: C{bad_certificate} if one does not parse.
    """
    chain = []
    for index, der in enumerate(certificates):
        try:
            chain.append(x509.load_der_x509_certificate(bytes(der)))
        except ValueError as e:
            raise AlertError(f"certificate {index} does not parse: {e}", _BAD) from None
    return chain


def subject_for_name(server_name: str) -> Subject:
    """
    The verification subject for a server name: an L{x509.IPAddress} for an
    IPv4/IPv6 literal (brackets allowed), otherwise an L{x509.DNSName} (a
    trailing dot dropped, an internationalised name converted to its
    A-label form).

    @raise ConfigurationError: if C{server_name} cannot be a host name.
        Whether a DNS name is syntactically valid is decided when the
        verifier is built, in L{verify_server_chain}.
    """
    literal = server_name[1:-1] if server_name.startswith("[") and server_name.endswith("]") else server_name
    try:
        return x509.IPAddress(ipaddress.ip_address(literal))
    except ValueError:
        pass
    name = server_name[:-1] if server_name.endswith(".") else server_name
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError as e:
            raise ConfigurationError(f"server name {server_name!r} is not a valid host name: {e}") from None
    return x509.DNSName(name)


# -- verification --------------------------------------------------------------------

def _eku_validator(purpose: x509.ObjectIdentifier, purpose_name: str):
    def check(policy, cert, eku) -> None:
        # RFC 5280 §4.2.1.12: when present, the EKU must allow this purpose.
        if eku is not None and purpose not in eku and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in eku:
            raise ValueError(f"extended key usage does not include {purpose_name}")

    return check


def _server_chain_only_policy() -> ExtensionPolicy:
    # Chain validation for a server certificate without a name: the client
    # verifier with the EKU check switched from clientAuth to serverAuth.
    return ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _eku_validator(ExtendedKeyUsageOID.SERVER_AUTH, "serverAuth")
    )


def _client_policy() -> ExtensionPolicy:
    # Client certificates commonly carry their identity in the subject alone
    # (device certificates); the Web PKI profile's mandatory SAN is relaxed.
    return (
        ExtensionPolicy.webpki_defaults_ee()
        .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _eku_validator(ExtendedKeyUsageOID.CLIENT_AUTH, "clientAuth"))
        .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
    )


def _utc(now: datetime.datetime) -> datetime.datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=datetime.timezone.utc)


def _describe(cert: x509.Certificate) -> str:
    try:
        return cert.subject.rfc4514_string() or "<empty subject>"
    except ValueError:
        return "<unprintable subject>"


def _pre_checks(
    chain: Sequence[x509.Certificate],
    trust_roots: Sequence[x509.Certificate],
    now: datetime.datetime,
    pinned_sha256: Iterable[bytes],
    role: str,
) -> bool:
    """
    Common first steps; returns True when the leaf is pinned (accept).
    """
    if not chain:
        raise AlertError(f"the {role} sent no certificate", _BAD)
    if pinned_sha256 and fingerprint_sha256(chain[0]) in pinned_sha256:
        # A pin names exactly this certificate; its dates and issuer are the
        # pinning party's business, as with SSH host keys.
        return True
    if not trust_roots:
        detail = "is not pinned and no trust roots are configured" if pinned_sha256 else "cannot be checked: no trust roots are configured"
        raise AlertError(
            f"{role} certificate {_describe(chain[0])} (SHA-256 {format_fingerprint(fingerprint_sha256(chain[0]))}) {detail}",
            _UNKNOWN_CA,
        )
    for cert in chain:
        if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
            raise AlertError(
                f"certificate {_describe(cert)} is valid from {cert.not_valid_before_utc.isoformat()} "
                f"to {cert.not_valid_after_utc.isoformat()}, not at {now.isoformat()}",
                _EXPIRED,
            )
    return False


def _reaches_trust_root(chain: Sequence[x509.Certificate], trust_roots: Sequence[x509.Certificate]) -> bool:
    root_subjects = {root.subject for root in trust_roots}
    root_ders = {fingerprint_sha256(root) for root in trust_roots}
    return any(c.issuer in root_subjects or fingerprint_sha256(c) in root_ders for c in chain)


def _failure(
    error: Exception, chain: Sequence[x509.Certificate], trust_roots: Sequence[x509.Certificate], role: str
) -> AlertError:
    message = f"{role} certificate {_describe(chain[0])} rejected: {error}"
    if "not valid at validation time" in str(error):
        # The presented certificates were checked; this is an expired root.
        return AlertError(message, _EXPIRED)
    if not _reaches_trust_root(chain, trust_roots):
        return AlertError(message, _UNKNOWN_CA)
    return AlertError(message, _BAD)


def verify_server_chain(
    chain: Sequence[x509.Certificate],
    trust_roots: Sequence[x509.Certificate],
    server_name: str | None,
    now: datetime.datetime,
    pinned_sha256: Iterable[bytes] = frozenset(),
) -> None:
    """
    Accept a server's chain (leaf first, as sent) or raise.

    If the leaf's SHA-256 fingerprint is pinned, it is accepted as it is.
    Otherwise the chain must lead to one of C{trust_roots} at time C{now},
    the leaf must allow serverAuth (when it has an EKU) and, when
    C{server_name} is given, its subjectAltName must match it (a DNS name
    or an IP literal, RFC 6125).

    With C{server_name=None} only the chain is validated: any certificate
    the trust roots issued for TLS servers is accepted. Clients that know
    whom they connect to should always pass the name.

    @param now: aware or naive-UTC datetime.
    @raise AlertError: see the module docstring for the descriptions.
    @raise ConfigurationError: if C{server_name} is not a valid name
        (a local error, see L{subject_for_name}).
    """
    now = _utc(now)
    pins = frozenset(pinned_sha256)
    if _pre_checks(chain, trust_roots, now, pins, "server"):
        return
    subject = subject_for_name(server_name) if server_name is not None else None
    leaf, intermediates = chain[0], list(chain[1:])
    store = Store(list(trust_roots))
    builder = PolicyBuilder().store(store).time(now)
    chain_only = builder.extension_policies(
        ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=_server_chain_only_policy()
    ).build_client_verifier()
    try:
        if subject is None:
            chain_only.verify(leaf, intermediates)
        else:
            try:
                server_verifier = builder.build_server_verifier(subject)
            except ValueError as e:
                raise ConfigurationError(f"server name {server_name!r} is not a valid host name: {e}") from None
            server_verifier.verify(leaf, intermediates)
        return
    except ConfigurationError:
        raise
    except Exception as e:  # VerificationError, or anything odd in a peer's certificate
        error = e
    if subject is not None:
        # Tell a name mismatch from a chain problem: does the chain alone pass?
        try:
            chain_only.verify(leaf, intermediates)
        except Exception:
            pass
        else:
            raise AlertError(
                f"server certificate {_describe(leaf)} is not valid for {server_name!r}: {error}", _BAD
            )
    raise _failure(error, chain, trust_roots, "server")


def verify_client_chain(
    chain: Sequence[x509.Certificate],
    trust_roots: Sequence[x509.Certificate],
    now: datetime.datetime,
    pinned_sha256: Iterable[bytes] = frozenset(),
) -> None:
    """
    Accept a client's chain (leaf first, as sent) or raise: pinned leaf, or
    a chain to one of C{trust_roots} whose leaf allows clientAuth (when it
    has an EKU). A subjectAltName is not required.

    @raise AlertError: see the module docstring for the descriptions.
    """
    now = _utc(now)
    pins = frozenset(pinned_sha256)
    if _pre_checks(chain, trust_roots, now, pins, "client"):
        return
    verifier = (
        PolicyBuilder()
        .store(Store(list(trust_roots)))
        .time(now)
        .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=_client_policy())
        .build_client_verifier()
    )
    try:
        verifier.verify(chain[0], list(chain[1:]))
    except Exception as e:  # VerificationError, or anything odd in a peer's certificate
        raise _failure(e, chain, trust_roots, "client") from None
