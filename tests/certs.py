"""
Test PKI generated with C{cryptography}: one P-256 CA, server certificates
for P-256, P-384, RSA-2048 and Ed25519 (SAN C{localhost}, C{127.0.0.1},
C{::1}) and one P-256 client certificate.

Generation costs an RSA key, so L{make_pki} builds the PKI once per process
and hands out the same object afterwards; treat it as read-only.

    pki = make_pki()
    pki.server_ec.chain, pki.server_ec.key, pki.ca_cert
    paths = write_pem_files(pki, tmp_path)   # {'ca.pem': ..., 'server-ec.pem': ..., ...}
    cred = self_signed("peer.example")       # a fresh self-signed leaf
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import os
from dataclasses import dataclass, field
from typing import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "Credential",
    "PKI",
    "DEFAULT_SAN",
    "make_pki",
    "write_pem_files",
    "self_signed",
    "make_ca",
    "issue",
]

#: Names every server certificate is valid for.
DEFAULT_SAN: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class Credential:
    """
    A certificate chain (leaf first, without the root) and the leaf's key.
    """

    chain: list[x509.Certificate]
    key: object

    @property
    def cert(self) -> x509.Certificate:
        """The leaf certificate."""
        return self.chain[0]

    def chain_pem(self) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


@dataclass(frozen=True)
class PKI:
    """
    @ivar ca_cert: the root (P-256, self-signed).
    @ivar intermediate: an intermediate CA under the root (P-256).
    @ivar server_ec_via_intermediate: a P-256 server leaf issued by
        C{intermediate}; its chain is C{[leaf, intermediate]}.
    """

    ca_cert: x509.Certificate
    ca_key: ec.EllipticCurvePrivateKey
    server_ec: Credential
    server_p384: Credential
    server_rsa: Credential
    server_ed25519: Credential
    client_ec: Credential
    intermediate: Credential
    server_ec_via_intermediate: Credential
    trust_roots: list[x509.Certificate] = field(default_factory=list)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "twisted_dtls tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _general_names(names: Sequence[str]) -> list[x509.GeneralName]:
    result: list[x509.GeneralName] = []
    for name in names:
        try:
            result.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            result.append(x509.DNSName(name))
    return result


def _validity(not_before, not_after):
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    if not_before is None:
        not_before = now - datetime.timedelta(days=1)
    if not_after is None:
        not_after = now + datetime.timedelta(days=365)
    return not_before, not_after


def _sign_hash(issuer_key):
    if isinstance(issuer_key, ed25519.Ed25519PrivateKey):
        return None
    return hashes.SHA256()


def make_ca(
    common_name: str = "twisted_dtls test CA",
    key=None,
    issuer: Credential | None = None,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> Credential:
    """
    A CA certificate: self-signed root when C{issuer} is C{None}, otherwise
    an intermediate signed by C{issuer}.
    """
    if key is None:
        key = ec.generate_private_key(ec.SECP256R1())
    not_before, not_after = _validity(not_before, not_after)
    subject = _name(common_name)
    issuer_name = subject if issuer is None else issuer.cert.subject
    issuer_key = key if issuer is None else issuer.key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    cert = builder.sign(issuer_key, _sign_hash(issuer_key))
    intermediates = issuer.chain if issuer is not None and _is_intermediate(issuer.cert) else []
    return Credential(chain=[cert, *intermediates], key=key)


def issue(
    issuer: Credential,
    common_name: str,
    key=None,
    san: Sequence[str] = DEFAULT_SAN,
    client: bool = False,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> Credential:
    """
    An end-entity certificate signed by C{issuer}, for TLS servers (EKU
    serverAuth) or, with C{client=True}, for TLS clients (EKU clientAuth).
    The returned chain is the leaf followed by C{issuer}'s chain minus the
    root.
    """
    if key is None:
        key = ec.generate_private_key(ec.SECP256R1())
    not_before, not_after = _validity(not_before, not_after)
    is_rsa = isinstance(key, rsa.RSAPrivateKey)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=is_rsa,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(_general_names(san)), critical=False)
    cert = builder.sign(issuer.key, _sign_hash(issuer.key))
    # issuer.chain[-1] is the root when issuer is a root; intermediates stay.
    intermediates = issuer.chain if _is_intermediate(issuer.cert) else []
    return Credential(chain=[cert, *intermediates], key=key)


def _is_intermediate(cert: x509.Certificate) -> bool:
    return cert.issuer != cert.subject


def self_signed(
    name: str = "localhost",
    key=None,
    san: Sequence[str] | None = None,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> Credential:
    """
    A fresh self-signed end-entity certificate (P-256 unless C{key} is
    given) with C{name} as common name and SAN (C{san} overrides the SAN),
    as used with fingerprint pinning.
    """
    if key is None:
        key = ec.generate_private_key(ec.SECP256R1())
    not_before, not_after = _validity(not_before, not_after)
    subject = _name(name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(_general_names(san if san is not None else [name])), critical=False)
        .sign(key, _sign_hash(key))
    )
    return Credential(chain=[cert], key=key)


@functools.lru_cache(maxsize=None)
def make_pki() -> PKI:
    """
    The shared test PKI, generated on first use and cached for the process.
    """
    ca = make_ca()
    intermediate = make_ca("twisted_dtls test intermediate", issuer=ca)
    return PKI(
        ca_cert=ca.cert,
        ca_key=ca.key,  # type: ignore[arg-type]
        server_ec=issue(ca, "localhost"),
        server_p384=issue(ca, "localhost", key=ec.generate_private_key(ec.SECP384R1())),
        server_rsa=issue(ca, "localhost", key=rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        server_ed25519=issue(ca, "localhost", key=ed25519.Ed25519PrivateKey.generate()),
        client_ec=issue(ca, "client1", san=("client1.example",), client=True),
        intermediate=intermediate,
        server_ec_via_intermediate=issue(intermediate, "localhost"),
        trust_roots=[ca.cert],
    )


#: file stem -> PKI attribute, in the names of INTEROP.md
_FILES = {
    "server-ec": "server_ec",
    "server-p384": "server_p384",
    "server-rsa": "server_rsa",
    "server-ed25519": "server_ed25519",
    "client-ec": "client_ec",
    "server-ec-intermediate": "server_ec_via_intermediate",
}


def write_pem_files(pki: PKI, directory: str | os.PathLike[str]) -> dict[str, str]:
    """
    Write the PKI as PEM files into C{directory}.

    Certificate files hold the leaf followed by its intermediates; key
    files are unencrypted PKCS#8.

    @return: file name -> absolute path (as C{str}), for C{ca.pem},
        C{ca.key}, and C{NAME.pem} / C{NAME.key} for each NAME of
        C{server-ec}, C{server-p384}, C{server-rsa}, C{server-ed25519},
        C{client-ec} and C{server-ec-intermediate}; C{'ca'} is an alias of
        C{ca.pem}.
    """
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    contents: dict[str, bytes] = {
        "ca.pem": pki.ca_cert.public_bytes(serialization.Encoding.PEM),
        "ca.key": Credential([pki.ca_cert], pki.ca_key).key_pem(),
    }
    for stem, attribute in _FILES.items():
        credential: Credential = getattr(pki, attribute)
        contents[f"{stem}.pem"] = credential.chain_pem()
        contents[f"{stem}.key"] = credential.key_pem()
    paths: dict[str, str] = {}
    for file_name, data in contents.items():
        path = os.path.abspath(os.path.join(directory, file_name))
        with open(path, "wb") as f:
            f.write(data)
        paths[file_name] = path
    paths["ca"] = paths["ca.pem"]
    return paths
