"""
The one table of cipher suites this engine implements.

Key exchange, record protection (AEAD) and PRF hash for each suite
(RFC 5289, RFC 7905, RFC 7251, RFC 6655, RFC 5487, RFC 5489).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes

from .constants import CipherSuite


class KeyExchange(enum.Enum):
    ECDHE_ECDSA = "ECDHE_ECDSA"
    ECDHE_RSA = "ECDHE_RSA"
    PSK = "PSK"
    ECDHE_PSK = "ECDHE_PSK"

    @property
    def uses_certificates(self) -> bool:
        return self in (KeyExchange.ECDHE_ECDSA, KeyExchange.ECDHE_RSA)

    @property
    def uses_ecdhe(self) -> bool:
        return self is not KeyExchange.PSK

    @property
    def uses_psk(self) -> bool:
        return self in (KeyExchange.PSK, KeyExchange.ECDHE_PSK)


class AEADAlgorithm(enum.Enum):
    AES_128_GCM = "AES_128_GCM"
    AES_256_GCM = "AES_256_GCM"
    CHACHA20_POLY1305 = "CHACHA20_POLY1305"
    AES_128_CCM = "AES_128_CCM"
    AES_128_CCM_8 = "AES_128_CCM_8"


@dataclass(frozen=True)
class CipherSuiteInfo:
    """
    @ivar fixed_iv_length: implicit IV bytes from the key block (4 for GCM and
        CCM, RFC 5288 §3 / RFC 6655 §3; 12 for ChaCha20-Poly1305, RFC 7905 §2).
    @ivar record_iv_length: explicit nonce bytes carried in each record.
    """

    suite: CipherSuite
    key_exchange: KeyExchange
    aead: AEADAlgorithm
    key_length: int
    fixed_iv_length: int
    record_iv_length: int
    tag_length: int
    prf_hash: type[hashes.HashAlgorithm]
    openssl_name: str

    @property
    def overhead(self) -> int:
        """Bytes a sealed record adds to its plaintext."""
        return self.record_iv_length + self.tag_length


def _s(suite, kx, aead, key_length, fixed_iv, record_iv, tag, prf, name) -> CipherSuiteInfo:
    return CipherSuiteInfo(CipherSuite[suite], kx, aead, key_length, fixed_iv, record_iv, tag, prf, name)


_K = KeyExchange
_A = AEADAlgorithm
_SHA256 = hashes.SHA256
_SHA384 = hashes.SHA384

CIPHER_SUITES: dict[int, CipherSuiteInfo] = {
    info.suite: info
    for info in (
        _s("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", _K.ECDHE_ECDSA, _A.AES_128_GCM, 16, 4, 8, 16, _SHA256, "ECDHE-ECDSA-AES128-GCM-SHA256"),
        _s("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", _K.ECDHE_ECDSA, _A.AES_256_GCM, 32, 4, 8, 16, _SHA384, "ECDHE-ECDSA-AES256-GCM-SHA384"),
        _s("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", _K.ECDHE_ECDSA, _A.CHACHA20_POLY1305, 32, 12, 0, 16, _SHA256, "ECDHE-ECDSA-CHACHA20-POLY1305"),
        _s("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", _K.ECDHE_RSA, _A.AES_128_GCM, 16, 4, 8, 16, _SHA256, "ECDHE-RSA-AES128-GCM-SHA256"),
        _s("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", _K.ECDHE_RSA, _A.AES_256_GCM, 32, 4, 8, 16, _SHA384, "ECDHE-RSA-AES256-GCM-SHA384"),
        _s("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", _K.ECDHE_RSA, _A.CHACHA20_POLY1305, 32, 12, 0, 16, _SHA256, "ECDHE-RSA-CHACHA20-POLY1305"),
        _s("TLS_ECDHE_ECDSA_WITH_AES_128_CCM", _K.ECDHE_ECDSA, _A.AES_128_CCM, 16, 4, 8, 16, _SHA256, "ECDHE-ECDSA-AES128-CCM"),
        _s("TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8", _K.ECDHE_ECDSA, _A.AES_128_CCM_8, 16, 4, 8, 8, _SHA256, "ECDHE-ECDSA-AES128-CCM8"),
        _s("TLS_PSK_WITH_AES_128_CCM", _K.PSK, _A.AES_128_CCM, 16, 4, 8, 16, _SHA256, "PSK-AES128-CCM"),
        _s("TLS_PSK_WITH_AES_128_CCM_8", _K.PSK, _A.AES_128_CCM_8, 16, 4, 8, 8, _SHA256, "PSK-AES128-CCM8"),
        _s("TLS_PSK_WITH_AES_128_GCM_SHA256", _K.PSK, _A.AES_128_GCM, 16, 4, 8, 16, _SHA256, "PSK-AES128-GCM-SHA256"),
        _s("TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256", _K.ECDHE_PSK, _A.CHACHA20_POLY1305, 32, 12, 0, 16, _SHA256, "ECDHE-PSK-CHACHA20-POLY1305"),
    )
}

#: Certificate-based suites offered by default, strongest-and-fastest first.
DEFAULT_CIPHER_SUITES: tuple[CipherSuite, ...] = (
    CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    CipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    CipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
)

_BY_NAME = {info.openssl_name: info.suite for info in CIPHER_SUITES.values()}
_BY_NAME.update({info.suite.name: info.suite for info in CIPHER_SUITES.values()})


def parse_cipher_list(text: str) -> tuple[CipherSuite, ...]:
    """
    Parse a colon-separated list of suite names, in OpenSSL spelling
    (C{ECDHE-ECDSA-AES128-GCM-SHA256}) or IANA spelling
    (C{TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}).

    @raise ValueError: naming every unknown suite.
    """
    names = [n.strip() for n in text.replace(",", ":").split(":") if n.strip()]
    unknown = [n for n in names if n not in _BY_NAME]
    if unknown:
        raise ValueError(
            f"unknown cipher suite(s) {', '.join(unknown)}; known: {', '.join(sorted(i.openssl_name for i in CIPHER_SUITES.values()))}"
        )
    if not names:
        raise ValueError("empty cipher list")
    return tuple(dict.fromkeys(_BY_NAME[n] for n in names))
