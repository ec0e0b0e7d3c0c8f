"""
Loading keys and certificates from PEM files, pre-shared keys and per-name
(SNI) certificates from files, writing key logs, and making a throwaway
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
import threading
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
    "parseHexKey",
    "loadPSKFile",
    "loadPSKKey",
    "loadSNIDirectory",
    "KeyLogFile",
    "keyLogFromEnvironment",
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


def parseHexKey(text: str, what: str = "PSK") -> bytes:
    """
    Parse a pre-shared key written in hex (as C{openssl -psk} and GnuTLS's
    C{psk.passwd} write it; an optional C{0x} prefix is accepted).

    @raise ValueError: if it is not hex or is empty.
    """
    cleaned = text.strip()
    if cleaned[:2].lower() == "0x":
        cleaned = cleaned[2:]
    try:
        key = bytes.fromhex(cleaned)
    except ValueError:
        raise ValueError(f"{what} is not hex") from None
    if not key:
        raise ValueError(f"{what} is empty")
    return key


def _pskLines(path: str) -> list[str]:
    data = _read(path, "PSK file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"PSK file {path!r} is not text") from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def loadPSKFile(path: str) -> dict[bytes, bytes]:
    """
    Load a server's pre-shared keys from a file of C{identity:hexkey}
    lines, the format of GnuTLS's C{psk.passwd} (C{psktool} writes it).
    Blank lines and lines starting with C{#} are skipped. The identity is
    everything before the last C{:}.

    @return: identity (UTF-8 bytes) -> key.
    @raise ValueError: unreadable file, a malformed line (its number is
        named, never its key), a repeated identity, or no entry at all.
    """
    keys: dict[bytes, bytes] = {}
    for number, line in enumerate(_pskLines(path), 1):
        identity, sep, hexKey = line.rpartition(":")
        if not sep or not identity:
            raise ValueError(f"PSK file {path!r}: entry {number} is not identity:hexkey")
        key = parseHexKey(hexKey, f"the key of entry {number} in PSK file {path!r}")
        name = identity.encode("utf-8")
        if name in keys:
            raise ValueError(f"PSK file {path!r}: identity {identity!r} appears twice")
        keys[name] = key
    if not keys:
        raise ValueError(f"PSK file {path!r} holds no identity:hexkey entry")
    return keys


def loadPSKKey(path: str, identity: Optional[bytes] = None) -> tuple[Optional[bytes], bytes]:
    """
    Load a client's pre-shared key: a file holding only the key in hex, or
    a server-style file of C{identity:hexkey} lines (then the line of
    C{identity} is used, or the first line when no identity is given).

    @return: (the identity read from the file, or C{None} for a bare key;
        the key).
    @raise ValueError: unreadable file, no key, or no line for C{identity}.
    """
    lines = _pskLines(path)
    if len(lines) == 1 and ":" not in lines[0]:
        return None, parseHexKey(lines[0], f"the key in PSK file {path!r}")
    keys = loadPSKFile(path)
    if identity is None:
        name = next(iter(keys))
        return name, keys[name]
    if identity not in keys:
        raise ValueError(f"PSK file {path!r} has no key for identity {identity.decode('utf-8', 'replace')!r}")
    return identity, keys[identity]


#: File-name stems in an SNI directory that stand for a wildcard label
#: (C{*} is legal in a file name but awkward in a shell).
_WILDCARD_PREFIXES = ("*.", "_.")


def loadSNIDirectory(path: str) -> dict[str, tuple[tuple[x509.Certificate, ...], object]]:
    """
    Load per-name server certificates for SNI (RFC 6066 §3) from a
    directory: for each host name C{NAME}, C{NAME.pem} holds the chain
    (leaf first) and C{NAME.key} its private key (or C{NAME.pem} holds
    both). A stem starting with C{_.} (or C{*.}) is the wildcard
    C{*.rest}. Other files are ignored.

    @return: lower-case host name -> (chain, key), the shape of
        L{DTLSConfiguration.sni_credentials<twisted_dtls.core.configuration.DTLSConfiguration>}.
    @raise ValueError: unreadable directory, a key not matching its
        certificate, or no pair at all.
    """
    try:
        names = sorted(os.listdir(path))
    except OSError as e:
        raise ValueError(f"cannot read sniDir {path!r}: {e.strerror or e}") from None
    credentials: dict[str, tuple[tuple[x509.Certificate, ...], object]] = {}
    for fileName in names:
        if not fileName.endswith(".pem"):
            continue
        stem = fileName[: -len(".pem")]
        full = os.path.join(path, fileName)
        keyFile = os.path.join(path, stem + ".key")
        if not os.path.isfile(full):
            continue
        hasKey = os.path.isfile(keyFile)
        if not hasKey and b"PRIVATE KEY-----" not in _read(full, "certificate file"):
            continue
        loaded = loadServerCredentials(keyFile if hasKey else full, full)
        host = stem.lower().rstrip(".")
        for prefix in _WILDCARD_PREFIXES:
            if host.startswith(prefix):
                host = "*." + host[len(prefix):]
        credentials[host] = (loaded.chain, loaded.privateKey)
    if not credentials:
        raise ValueError(f"sniDir {path!r} holds no NAME.pem with NAME.key")
    return credentials


class KeyLogFile:
    """
    Appends NSS key-log lines (C{CLIENT_RANDOM <random> <master secret>})
    to a file, the format Wireshark and C{SSLKEYLOGFILE} use: a callable
    for L{DTLSConfiguration.keylog<twisted_dtls.core.configuration.DTLSConfiguration>}.

    Each line is appended and flushed at once, with the file opened only
    for that write, so several processes and ports may share one file and
    no descriptor stays open. The file is created readable by its owner
    only, as it holds secrets.

    @ivar path: the file.
    """

    _lock = threading.Lock()

    def __init__(self, path: str):
        self.path = os.fspath(path)

    def __call__(self, line: str) -> None:
        data = (line.rstrip("\n") + "\n").encode("ascii")
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeyLogFile) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    def __repr__(self) -> str:
        return f"KeyLogFile({self.path!r})"


def keyLogFromEnvironment(environ=None) -> Optional[KeyLogFile]:
    """
    A L{KeyLogFile} for the C{SSLKEYLOGFILE} environment variable (as
    browsers, OpenSSL-based tools and GnuTLS honour it), or C{None} when it
    is unset or empty.
    """
    path = (os.environ if environ is None else environ).get("SSLKEYLOGFILE", "")
    return KeyLogFile(path) if path else None
