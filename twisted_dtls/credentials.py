"""
Loading keys and certificates from PEM files, and making a throwaway
self-signed certificate.

Everything here is plain C{cryptography}: the results go straight into a
L{twisted_dtls.core.configuration.DTLSConfiguration}.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import ssl
import warnings
from dataclasses import dataclass
from typing import Optional, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = [
    "ServerCredentials",
    "loadPrivateKey",
    "loadCertificates",
    "loadTrustRoots",
    "loadServerCredentials",
    "systemTrustRoots",
    "generateSelfSigned",
    "fingerprintSHA256",
    "parseFingerprint",
]


@dataclass(frozen=True)
class ServerCredentials:
    """
    What a server presents: its chain and the key of the leaf.

    @ivar chain: certificates, leaf first.
    @ivar privateKey: the private key matching C{chain[0]}.
    """

    chain: tuple[x509.Certificate, ...]
    privateKey: object

    @property
    def fingerprint(self) -> str:
        """
        The SHA-256 fingerprint of the leaf, as lowercase hex.
        """
        return fingerprintSHA256(self.chain[0])


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise ValueError(f"cannot read {what} {path!r}: {e.strerror or e}") from None


def loadPrivateKey(path: str, password: Optional[bytes] = None):
    """
    Load the first private key in a PEM file (which may also hold
    certificates, as Twisted's C{ssl:} endpoint allows).

    @raise ValueError: if the file is unreadable or holds no usable key.
    """
    data = _read(path, "private key file")
    try:
        return serialization.load_pem_private_key(data, password=password)
    except (ValueError, TypeError) as e:
        raise ValueError(f"no usable PEM private key in {path!r}: {e}") from None


def loadCertificates(path: str) -> list[x509.Certificate]:
    """
    Load every certificate of a PEM file, in file order.

    @raise ValueError: if the file is unreadable or holds no certificate.
    """
    data = _read(path, "certificate file")
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        certificates = []
    if not certificates:
        raise ValueError(f"no PEM certificate in {path!r}")
    return certificates


def loadTrustRoots(path: str) -> list[x509.Certificate]:
    """
    Load CA certificates from a PEM file or from every PEM file of a
    directory (files that hold no certificate, such as a README, are
    skipped; a directory with none at all is an error).

    @raise ValueError: if nothing usable is found.
    """
    if os.path.isdir(path):
        roots: list[x509.Certificate] = []
        for name in sorted(os.listdir(path)):
            full = os.path.join(path, name)
            if not os.path.isfile(full):
                continue
            try:
                with open(full, "rb") as f:
                    roots.extend(x509.load_pem_x509_certificates(f.read()))
            except (OSError, ValueError):
                continue
        if not roots:
            raise ValueError(f"no PEM certificate in directory {path!r}")
        return roots
    return loadCertificates(path)


def systemTrustRoots() -> list[x509.Certificate]:
    """
    The operating system's CA bundle, as found by L{ssl.get_default_verify_paths}.

    @raise ValueError: if the system has none.
    """
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile, paths.capath, paths.openssl_capath):
        if not candidate or not os.path.exists(candidate):
            continue
        files = [candidate]
        if os.path.isdir(candidate):
            files = [os.path.join(candidate, n) for n in sorted(os.listdir(candidate))]
        roots = []
        for name in files:
            try:
                with open(name, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            roots.extend(_lenientCertificates(data))
        if roots:
            return roots
    raise ValueError("no system CA certificates found; give trustRoots= or fingerprint=")


def _lenientCertificates(data: bytes) -> list[x509.Certificate]:
    """
    Every certificate of a PEM bundle that C{cryptography} accepts; a
    system bundle may hold a few it rejects or warns about (a non-positive
    serial number), which are skipped rather than failing the whole store.
    """
    marker = b"-----END CERTIFICATE-----"
    certificates = []
    for block in data.split(marker)[:-1]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                certificates.append(x509.load_pem_x509_certificate(block + marker))
            except ValueError:
                continue
    return certificates


def _publicBytes(key) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def loadServerCredentials(
    privateKey: str, certKey: Optional[str] = None, extraCertChain: Optional[str] = None
) -> ServerCredentials:
    """
    Load a server's key and chain the way Twisted's C{ssl:} endpoint names
    them: C{certKey} defaults to the C{privateKey} file (one PEM holding
    both), C{extraCertChain} holds intermediates.

    @raise ValueError: on unreadable files, or a key that does not match the
        certificate.
    """
    key = loadPrivateKey(privateKey)
    certificates = loadCertificates(certKey or privateKey)
    leaf = certificates[0]
    if _publicBytes(leaf.public_key()) != _publicBytes(key.public_key()):
        raise ValueError(f"the private key in {privateKey!r} does not match the certificate in {certKey or privateKey!r}")
    chain = list(certificates)
    if extraCertChain:
        chain.extend(loadCertificates(extraCertChain))
    return ServerCredentials(tuple(chain), key)


def generateSelfSigned(
    commonName: str = "localhost",
    names: Sequence[str] = ("localhost", "127.0.0.1", "::1"),
    days: int = 30,
    now: Optional[datetime.datetime] = None,
) -> ServerCredentials:
    """
    Make a fresh P-256 key and a self-signed certificate for it, valid for
    the given DNS names and IP addresses.

    Meant for demonstrations (C{twistd dtls-echo}) and tests: clients reach
    it by pinning its L{fingerprint<fingerprintSHA256>}.
    """
    if now is None:
        now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, commonName)])
    alternative: list[x509.GeneralName] = []
    for name in names:
        try:
            alternative.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternative.append(x509.DNSName(name))
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
    )
    if alternative:
        builder = builder.add_extension(x509.SubjectAlternativeName(alternative), critical=False)
    certificate = builder.sign(key, hashes.SHA256())
    return ServerCredentials((certificate,), key)


def fingerprintSHA256(certificate: x509.Certificate) -> str:
    """
    The SHA-256 of the certificate's DER encoding, as lowercase hex without
    separators (so it needs no escaping in an endpoint string).
    """
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def parseFingerprint(text: str) -> bytes:
    """
    Parse a SHA-256 fingerprint written as hex, with or without C{:} or
    spaces between the bytes (as C{openssl x509 -fingerprint} prints it).

    @raise ValueError: if it is not 32 bytes of hex.
    """
    cleaned = "".join(ch for ch in text if ch not in ": \t")
    if cleaned.lower().startswith("sha256="):
        cleaned = cleaned[len("sha256="):]
    try:
        digest = bytes.fromhex(cleaned)
    except ValueError:
        raise ValueError(f"fingerprint {text!r} is not hex") from None
    if len(digest) != 32:
        raise ValueError(f"fingerprint {text!r} is {len(digest)} bytes; a SHA-256 fingerprint is 32")
    return digest
