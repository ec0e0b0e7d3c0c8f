"""
Protocol code points used by DTLS 1.2.

Every value here is from the IANA TLS registries; the RFC that defines each
group of values is cited next to it.
"""

from enum import IntEnum

#: DTLS 1.0 wire version (RFC 4347); carried by HelloVerifyRequest (RFC 6347
#: §4.2.1, errata 4103) and by the record layer of some ClientHellos.
DTLS_1_0 = 0xFEFF
#: DTLS 1.2 wire version (RFC 6347 §4.1).
DTLS_1_2 = 0xFEFD

#: Length of the DTLS record header (RFC 6347 §4.1).
RECORD_HEADER_SIZE = 13
#: Length of the DTLS handshake message header (RFC 6347 §4.2.2).
HANDSHAKE_HEADER_SIZE = 12
#: Largest record plaintext (RFC 5246 §6.2.1).
MAX_PLAINTEXT = 2**14
#: Largest record ciphertext: plaintext plus 2048 (RFC 5246 §6.2.3).
MAX_CIPHERTEXT = 2**14 + 2048
#: Largest 48-bit record sequence number (RFC 6347 §4.1).
MAX_SEQUENCE_NUMBER = 2**48 - 1


class ContentType(IntEnum):
    """RFC 5246 §6.2.1, RFC 9146 §4 (tls12_cid)."""

    change_cipher_spec = 20
    alert = 21
    handshake = 22
    application_data = 23
    tls12_cid = 25


class HandshakeType(IntEnum):
    """RFC 5246 §7.4, RFC 6347 §4.3.2, RFC 5077 §3.3."""

    hello_request = 0
    client_hello = 1
    server_hello = 2
    hello_verify_request = 3
    new_session_ticket = 4
    certificate = 11
    server_key_exchange = 12
    certificate_request = 13
    server_hello_done = 14
    certificate_verify = 15
    client_key_exchange = 16
    finished = 20


class AlertLevel(IntEnum):
    """RFC 5246 §7.2."""

    warning = 1
    fatal = 2


class AlertDescription(IntEnum):
    """RFC 5246 §7.2, RFC 8446 §6 (names shared with TLS 1.2), RFC 7301 §3.2."""

    close_notify = 0
    unexpected_message = 10
    bad_record_mac = 20
    record_overflow = 22
    handshake_failure = 40
    bad_certificate = 42
    unsupported_certificate = 43
    certificate_revoked = 44
    certificate_expired = 45
    certificate_unknown = 46
    illegal_parameter = 47
    unknown_ca = 48
    access_denied = 49
    decode_error = 50
    decrypt_error = 51
    protocol_version = 70
    insufficient_security = 71
    internal_error = 80
    user_canceled = 90
    no_renegotiation = 100
    unsupported_extension = 110
    unrecognized_name = 112
    unknown_psk_identity = 115
    no_application_protocol = 120


class CipherSuite(IntEnum):
    """RFC 5289, RFC 7905, RFC 7251, RFC 6655, RFC 5487, RFC 5489."""

    TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 = 0xC02B
    TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 = 0xC02C
    TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 = 0xC02F
    TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 = 0xC030
    TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 = 0xCCA8
    TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 = 0xCCA9
    TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256 = 0xCCAC
    TLS_ECDHE_ECDSA_WITH_AES_128_CCM = 0xC0AC
    TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 = 0xC0AE
    TLS_PSK_WITH_AES_128_CCM = 0xC0A4
    TLS_PSK_WITH_AES_128_CCM_8 = 0xC0A8
    TLS_PSK_WITH_AES_128_GCM_SHA256 = 0x00A8
    #: Signalling value, never negotiated (RFC 5746 §3.3).
    TLS_EMPTY_RENEGOTIATION_INFO_SCSV = 0x00FF


class CompressionMethod(IntEnum):
    """RFC 5246 §7.4.1.2."""

    null = 0


class NamedGroup(IntEnum):
    """RFC 8422 §5.1.1, RFC 7919."""

    secp256r1 = 23
    secp384r1 = 24
    secp521r1 = 25
    x25519 = 29
    x448 = 30


class ECPointFormat(IntEnum):
    """RFC 8422 §5.1.2."""

    uncompressed = 0


class ECCurveType(IntEnum):
    """RFC 8422 §5.4."""

    named_curve = 3


class SignatureScheme(IntEnum):
    """RFC 8446 §4.2.3; these code points are used by TLS 1.2 too."""

    rsa_pkcs1_sha256 = 0x0401
    rsa_pkcs1_sha384 = 0x0501
    rsa_pkcs1_sha512 = 0x0601
    ecdsa_secp256r1_sha256 = 0x0403
    ecdsa_secp384r1_sha384 = 0x0503
    ecdsa_secp521r1_sha512 = 0x0603
    rsa_pss_rsae_sha256 = 0x0804
    rsa_pss_rsae_sha384 = 0x0805
    rsa_pss_rsae_sha512 = 0x0806
    ed25519 = 0x0807
    ed448 = 0x0808
    rsa_pss_pss_sha256 = 0x0809
    rsa_pss_pss_sha384 = 0x080A
    rsa_pss_pss_sha512 = 0x080B
    rsa_pkcs1_sha1 = 0x0201
    ecdsa_sha1 = 0x0203


class ClientCertificateType(IntEnum):
    """RFC 5246 §7.4.4, RFC 8422 §5.5."""

    rsa_sign = 1
    ecdsa_sign = 64


class ExtensionType(IntEnum):
    """IANA TLS ExtensionType registry."""

    server_name = 0
    max_fragment_length = 1
    status_request = 5
    supported_groups = 10
    ec_point_formats = 11
    signature_algorithms = 13
    use_srtp = 14
    application_layer_protocol_negotiation = 16
    encrypt_then_mac = 22
    extended_master_secret = 23
    record_size_limit = 28
    session_ticket = 35
    connection_id = 54
    renegotiation_info = 0xFF01


class SRTPProtectionProfile(IntEnum):
    """RFC 5764 §4.1.2, RFC 7714 §14.2."""

    SRTP_AES128_CM_HMAC_SHA1_80 = 0x0001
    SRTP_AES128_CM_HMAC_SHA1_32 = 0x0002
    SRTP_NULL_HMAC_SHA1_80 = 0x0005
    SRTP_NULL_HMAC_SHA1_32 = 0x0006
    SRTP_AEAD_AES_128_GCM = 0x0007
    SRTP_AEAD_AES_256_GCM = 0x0008
