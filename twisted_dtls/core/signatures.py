"""
Signing and verifying handshake signatures by L{SignatureScheme}
(ServerKeyExchange, RFC 8422 §5.4; CertificateVerify, RFC 5246 §7.4.8),
and choosing a scheme for our key (RFC 5246 §7.4.1.4.1).

Implemented: ECDSA with SHA-256/384/512, RSA PKCS#1 v1.5 and RSA-PSS
(rsaEncryption keys) with SHA-256/384/512, Ed25519 (RFC 8422 §5.1.3).
Not implemented: anything with SHA-1, Ed448, RSA-PSS with RSASSA-PSS keys.

In TLS 1.2 an ECDSA code point names a hash and the algorithm only; the
curve in its name binds in TLS 1.3 alone (RFC 8446 §4.2.3). So
L{verify} accepts, say, C{ecdsa_secp384r1_sha384} from a P-256 key, and
L{sign} may use it, while L{schemes_for_key} lists the matching curve first.
"""

from __future__ import annotations

from typing import Iterable, Sequence, Union

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from .constants import AlertDescription, SignatureScheme
from .errors import AlertError, IllegalParameter

PublicKey = Union[ec.EllipticCurvePublicKey, rsa.RSAPublicKey, ed25519.Ed25519PublicKey]
PrivateKey = Union[ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey]

_S = SignatureScheme

_ECDSA = {
    _S.ecdsa_secp256r1_sha256: hashes.SHA256,
    _S.ecdsa_secp384r1_sha384: hashes.SHA384,
    _S.ecdsa_secp521r1_sha512: hashes.SHA512,
}
_RSA_PKCS1 = {
    _S.rsa_pkcs1_sha256: hashes.SHA256,
    _S.rsa_pkcs1_sha384: hashes.SHA384,
    _S.rsa_pkcs1_sha512: hashes.SHA512,
}
_RSA_PSS = {
    _S.rsa_pss_rsae_sha256: hashes.SHA256,
    _S.rsa_pss_rsae_sha384: hashes.SHA384,
    _S.rsa_pss_rsae_sha512: hashes.SHA512,
}

#: ECDSA algorithm objects are immutable, so each scheme's is built once.
_ECDSA_ALGORITHMS = {scheme: ec.ECDSA(hash_cls()) for scheme, hash_cls in _ECDSA.items()}

#: Every scheme L{sign} and L{verify} implement.
SUPPORTED_SCHEMES: frozenset[SignatureScheme] = frozenset(
    [*_ECDSA, *_RSA_PKCS1, *_RSA_PSS, _S.ed25519]
)

_CURVE_SCHEME = {
    ec.SECP256R1.name: _S.ecdsa_secp256r1_sha256,
    ec.SECP384R1.name: _S.ecdsa_secp384r1_sha384,
    ec.SECP521R1.name: _S.ecdsa_secp521r1_sha512,
}

#: RSA preference: PSS before PKCS#1 v1.5 (as OpenSSL does in TLS 1.2).
_RSA_ORDER = (
    _S.rsa_pss_rsae_sha256,
    _S.rsa_pss_rsae_sha384,
    _S.rsa_pss_rsae_sha512,
    _S.rsa_pkcs1_sha256,
    _S.rsa_pkcs1_sha384,
    _S.rsa_pkcs1_sha512,
)


def _pss(hash_cls: type[hashes.HashAlgorithm]) -> padding.PSS:
    # RFC 8446 §4.2.3: MGF1 with the same hash, salt as long as the digest.
    return padding.PSS(mgf=padding.MGF1(hash_cls()), salt_length=hash_cls.digest_size)


def _public(key) -> object:
    if isinstance(key, x509.Certificate):
        return key.public_key()
    if isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)):
        return key.public_key()
    return key


def schemes_for_key(key) -> list[SignatureScheme]:
    """
    The schemes C{key} can sign (or, for a public key, verify) with, in our
    order of preference.

    @param key: a private key, public key or certificate.
    @return: an empty list for key types we cannot use (DSA, Ed448, ...).
    """
    public = _public(key)
    if isinstance(public, ec.EllipticCurvePublicKey):
        own = _CURVE_SCHEME.get(public.curve.name)
        if own is None:
            return []
        return [own, *(s for s in _ECDSA if s != own)]
    if isinstance(public, rsa.RSAPublicKey):
        modulus_bytes = (public.key_size + 7) // 8
        # RFC 8017 §9.1.1: PSS needs emLen >= hLen + sLen + 2 (sLen = hLen).
        return [
            s
            for s in _RSA_ORDER
            if s not in _RSA_PSS or modulus_bytes >= 2 * _RSA_PSS[s].digest_size + 2
        ]
    if isinstance(public, ed25519.Ed25519PublicKey):
        return [_S.ed25519]
    return []


def choose_scheme(
    key, offered: Sequence[int] | None, ours: Iterable[int] | None = None
) -> SignatureScheme:
    """
    Pick the scheme to sign with: the first of L{schemes_for_key} (limited
    to C{ours} when given) that the peer offered.

    Without a signature_algorithms list from the peer (C{offered} C{None} or
    empty) RFC 5246 §7.4.1.4.1 makes SHA-1 the default. We do not sign with
    SHA-1, so we use the SHA-256 form of the key's algorithm instead
    (C{ecdsa_secp256r1_sha256} or C{rsa_pkcs1_sha256}); Ed25519 requires the
    extension (RFC 8422 §5.1.3) and fails here.

    @param offered: the peer's signature_algorithms (or the
        supported_signature_algorithms of its CertificateRequest).
    @param ours: the schemes we are configured to use
        (L{DTLSConfiguration.signature_schemes}); C{None} allows all.
    @raise AlertError: C{handshake_failure} when nothing fits.
    """
    candidates = schemes_for_key(key)
    if ours is not None:
        allowed = set(ours)
        candidates = [s for s in candidates if s in allowed]
    if not offered:
        public = _public(key)
        if isinstance(public, ec.EllipticCurvePublicKey):
            fallback: SignatureScheme | None = _S.ecdsa_secp256r1_sha256
        elif isinstance(public, rsa.RSAPublicKey):
            fallback = _S.rsa_pkcs1_sha256
        else:
            fallback = None
        if fallback is not None and fallback in candidates:
            return fallback
        raise AlertError(
            "peer sent no signature_algorithms and our key has no default scheme",
            AlertDescription.handshake_failure,
        )
    offered_set = set(offered)
    for scheme in candidates:
        if scheme in offered_set:
            return scheme
    raise AlertError(
        "no signature scheme in common: ours "
        + ", ".join(s.name for s in candidates)
        + "; offered "
        + ", ".join(_scheme_name(s) for s in offered),
        AlertDescription.handshake_failure,
    )


def _scheme_name(value: int) -> str:
    try:
        return SignatureScheme(value).name
    except ValueError:
        return f"0x{value:04x}"


def _check_fits(public, scheme: SignatureScheme) -> None:
    """Raise IllegalParameter unless scheme's algorithm matches the key type."""
    if scheme in _ECDSA:
        ok = isinstance(public, ec.EllipticCurvePublicKey)
    elif scheme in _RSA_PKCS1 or scheme in _RSA_PSS:
        ok = isinstance(public, rsa.RSAPublicKey)
    else:  # ed25519
        ok = isinstance(public, ed25519.Ed25519PublicKey)
    if not ok:
        raise IllegalParameter(f"signature scheme {scheme.name} does not fit a {type(public).__name__}")


def sign(private_key: PrivateKey, scheme: int, data: bytes) -> bytes:
    """
    Sign C{data} with C{scheme}. ECDSA signatures are DER
    C{Ecdsa-Sig-Value} (RFC 8422 §5.4).

    @raise ValueError: if we do not implement C{scheme} or it does not fit
        C{private_key} (local misuse: choose with L{choose_scheme}).
    """
    if scheme in _ECDSA_ALGORITHMS and isinstance(private_key, ec.EllipticCurvePrivateKey):
        # Every ECDHE_ECDSA ServerKeyExchange: the key's type is checked on
        # the key itself, without deriving its public key.
        return private_key.sign(data, _ECDSA_ALGORITHMS[scheme])
    if scheme not in SUPPORTED_SCHEMES:
        raise ValueError(f"unsupported signature scheme {_scheme_name(scheme)}")
    scheme = SignatureScheme(scheme)
    try:
        _check_fits(private_key.public_key(), scheme)
    except IllegalParameter as e:
        raise ValueError(e.message) from None
    if scheme in _RSA_PKCS1:
        return private_key.sign(data, padding.PKCS1v15(), _RSA_PKCS1[scheme]())  # type: ignore[call-arg, union-attr]
    if scheme in _RSA_PSS:
        hash_cls = _RSA_PSS[scheme]
        return private_key.sign(data, _pss(hash_cls), hash_cls())  # type: ignore[call-arg, union-attr]
    return private_key.sign(data)  # type: ignore[call-arg]  # ed25519


def verify(
    public_key, scheme: int, signature: bytes, data: bytes, allowed: Iterable[int] | None = None
) -> None:
    """
    Check a peer's signature. Never raises anything but L{AlertError}.

    @param public_key: the peer's public key (a certificate is accepted).
    @param scheme: the scheme the peer named (peer input).
    @param allowed: the schemes we offered; C{None} leaves that check to the
        caller (RFC 5246 §7.4.1.4.1: the peer must pick one we offered).
    @raise AlertError: C{illegal_parameter} if C{scheme} is unknown, not
        implemented, not in C{allowed}, or of another algorithm than the
        key; C{decrypt_error} if the signature does not verify
        (RFC 5246 §7.2.2).
    """
    if scheme not in SUPPORTED_SCHEMES:
        raise IllegalParameter(f"unsupported signature scheme {_scheme_name(scheme)}")
    scheme = SignatureScheme(scheme)
    if allowed is not None and scheme not in set(allowed):
        raise IllegalParameter(f"signature scheme {scheme.name} was not offered")
    public = _public(public_key)
    _check_fits(public, scheme)
    try:
        if scheme in _ECDSA:
            public.verify(signature, data, ec.ECDSA(_ECDSA[scheme]()))  # type: ignore[union-attr, call-arg]
        elif scheme in _RSA_PKCS1:
            public.verify(signature, data, padding.PKCS1v15(), _RSA_PKCS1[scheme]())  # type: ignore[union-attr, call-arg]
        elif scheme in _RSA_PSS:
            hash_cls = _RSA_PSS[scheme]
            public.verify(signature, data, _pss(hash_cls), hash_cls())  # type: ignore[union-attr, call-arg]
        else:
            public.verify(signature, data)  # type: ignore[union-attr, call-arg]
    except (InvalidSignature, ValueError, TypeError):
        raise AlertError(f"bad {scheme.name} signature", AlertDescription.decrypt_error) from None
