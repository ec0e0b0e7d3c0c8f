"""
Handshake message codecs, checked against handshakes captured from OpenSSL
(pyOpenSSL and the CLI) and GnuTLS (see tests/data/captures/README.md), plus
RFC-derived edge cases and property tests.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from twisted_dtls.core.buffer import Buffer
from twisted_dtls.core.constants import AlertDescription, HandshakeType as HT
from twisted_dtls.core.errors import DecodeError
from twisted_dtls.core.messages import (
    Certificate,
    CertificateRequest,
    CertificateVerify,
    ClientHello,
    ClientKeyExchangeECDHE,
    ClientKeyExchangeECDHEPSK,
    ClientKeyExchangePSK,
    Finished,
    HandshakeFragment,
    HelloVerifyRequest,
    NewSessionTicket,
    ServerECDHParams,
    ServerHello,
    ServerHelloDone,
    ServerKeyExchangeECDHE,
    ServerKeyExchangeECDHEPSK,
    ServerKeyExchangePSK,
    ecdhe_params_bytes,
    ecdhe_signed_data,
    encode_handshake,
    pull_certificate,
    pull_certificate_request,
    pull_certificate_verify,
    pull_client_hello,
    pull_client_key_exchange_ecdhe,
    pull_client_key_exchange_ecdhe_psk,
    pull_client_key_exchange_psk,
    pull_finished,
    pull_handshake_fragments,
    pull_hello_verify_request,
    pull_new_session_ticket,
    pull_server_hello,
    pull_server_hello_done,
    pull_server_key_exchange_ecdhe,
    pull_server_key_exchange_ecdhe_psk,
    pull_server_key_exchange_psk,
    push_certificate,
    push_certificate_request,
    push_certificate_verify,
    push_client_hello,
    push_client_key_exchange_ecdhe,
    push_client_key_exchange_ecdhe_psk,
    push_client_key_exchange_psk,
    push_finished,
    push_handshake_fragment,
    push_hello_verify_request,
    push_new_session_ticket,
    push_server_hello,
    push_server_hello_done,
    push_server_key_exchange_ecdhe,
    push_server_key_exchange_ecdhe_psk,
    push_server_key_exchange_psk,
)

CAPTURES = Path(__file__).resolve().parent.parent / "data" / "captures"

# (pull, push, msg_type) for every message body codec.
CODECS = {
    "client_hello": (pull_client_hello, push_client_hello),
    "server_hello": (pull_server_hello, push_server_hello),
    "hello_verify_request": (pull_hello_verify_request, push_hello_verify_request),
    "certificate": (pull_certificate, push_certificate),
    "certificate_request": (pull_certificate_request, push_certificate_request),
    "server_hello_done": (pull_server_hello_done, push_server_hello_done),
    "certificate_verify": (pull_certificate_verify, push_certificate_verify),
    "finished": (pull_finished, push_finished),
    "new_session_ticket": (pull_new_session_ticket, push_new_session_ticket),
    "server_key_exchange_ecdhe": (pull_server_key_exchange_ecdhe, push_server_key_exchange_ecdhe),
    "server_key_exchange_psk": (pull_server_key_exchange_psk, push_server_key_exchange_psk),
    "server_key_exchange_ecdhe_psk": (
        pull_server_key_exchange_ecdhe_psk,
        push_server_key_exchange_ecdhe_psk,
    ),
    "client_key_exchange_ecdhe": (pull_client_key_exchange_ecdhe, push_client_key_exchange_ecdhe),
    "client_key_exchange_psk": (pull_client_key_exchange_psk, push_client_key_exchange_psk),
    "client_key_exchange_ecdhe_psk": (
        pull_client_key_exchange_ecdhe_psk,
        push_client_key_exchange_ecdhe_psk,
    ),
}


# -- reading the captures (record header parsed inline, RFC 6347 §4.1) -------


def load_capture(name: str) -> list[tuple[str, bytes]]:
    datagrams = []
    for line in (CAPTURES / name).read_text().splitlines():
        if line and not line.startswith("#"):
            sender, hexdata = line.split()
            datagrams.append((sender, bytes.fromhex(hexdata)))
    return datagrams


def split_records(datagram: bytes) -> list[tuple[int, int, int, int, bytes]]:
    """
    (content_type, version, epoch, sequence_number, fragment) per record.
    """
    records = []
    pos = 0
    while pos < len(datagram):
        header = datagram[pos : pos + 13]
        length = int.from_bytes(header[11:13], "big")
        fragment = datagram[pos + 13 : pos + 13 + length]
        assert len(fragment) == length, "capture truncated"
        records.append(
            (
                header[0],
                int.from_bytes(header[1:3], "big"),
                int.from_bytes(header[3:5], "big"),
                int.from_bytes(header[5:11], "big"),
                fragment,
            )
        )
        pos += 13 + length
    return records


def plaintext_handshake(name: str) -> list[tuple[str, list[tuple[int, HandshakeFragment]], bytes]]:
    """
    Per datagram: sender, [(record version, fragment)] of epoch-0 handshake
    records, and the datagram itself.
    """
    out = []
    for sender, datagram in load_capture(name):
        fragments = []
        for content_type, version, epoch, _seq, payload in split_records(datagram):
            if content_type == 22 and epoch == 0:
                for fragment in pull_handshake_fragments(payload):
                    fragments.append((version, fragment))
        out.append((sender, fragments, datagram))
    return out


def reassemble(name: str) -> list[tuple[str, int, int, bytes]]:
    """
    Whole epoch-0 messages (sender, msg_type, message_seq, body) in order,
    joining fragments (assumed in order and non-overlapping, as OpenSSL sends
    them).
    """
    messages = []
    partial: dict[tuple[str, int], bytearray] = {}
    for sender, fragments, _ in plaintext_handshake(name):
        for _version, frag in fragments:
            key = (sender, frag.message_seq)
            body = partial.setdefault(key, bytearray())
            assert frag.fragment_offset == len(body)
            body += frag.body
            if len(body) == frag.length:
                messages.append((sender, frag.msg_type, frag.message_seq, bytes(body)))
                del partial[key]
    assert not partial
    return messages


def reencode(push, msg) -> bytes:
    buf = Buffer()
    push(buf, msg)
    return buf.output


def decode_roundtrip(pull, push, body: bytes):
    msg = pull(Buffer(body))
    assert reencode(push, msg) == body
    return msg


def first_client_hello(name: str) -> tuple[int, HandshakeFragment]:
    [(_sender, fragments, _)] = plaintext_handshake(name)
    [(version, fragment)] = fragments
    return version, fragment


# -- the pyOpenSSL handshake with client authentication ---------------------

AUTH = "pyopenssl_ecdhe_ecdsa_client_auth.txt"


@pytest.fixture(scope="module")
def auth_messages():
    return reassemble(AUTH)


def message(messages, sender: str, msg_type: int, index: int = 0) -> tuple[int, bytes]:
    found = [(seq, body) for s, t, seq, body in messages if s == sender and t == msg_type]
    return found[index]


def test_capture_flights_are_unfragmented_and_reencode():
    """
    With MTU 1400 every handshake message travels whole: each fragment's
    header re-encodes exactly (encode_handshake), as does each record payload.
    """
    for _sender, fragments, _ in plaintext_handshake(AUTH):
        for _version, frag in fragments:
            assert frag.is_complete
            assert encode_handshake(frag.msg_type, frag.message_seq, frag.body) == (
                push_handshake_fragment(frag)
            )
    for sender, datagram in load_capture(AUTH):
        for content_type, _v, epoch, _s, payload in split_records(datagram):
            if content_type == 22 and epoch == 0:
                rebuilt = b"".join(push_handshake_fragment(f) for f in pull_handshake_fragments(payload))
                assert rebuilt == payload


def test_capture_message_sequence(auth_messages):
    assert [(s, t, seq) for s, t, seq, _ in auth_messages] == [
        ("client", HT.client_hello, 0),
        ("server", HT.hello_verify_request, 0),
        ("client", HT.client_hello, 1),
        ("server", HT.server_hello, 1),
        ("server", HT.certificate, 2),
        ("server", HT.server_key_exchange, 3),
        ("server", HT.certificate_request, 4),
        ("server", HT.server_hello_done, 5),
        ("client", HT.certificate, 2),
        ("client", HT.client_key_exchange, 3),
        ("client", HT.certificate_verify, 4),
        ("server", HT.new_session_ticket, 6),
    ]


def test_openssl_first_client_hello(auth_messages):
    version, fragment = plaintext_handshake(AUTH)[0][1][0]
    assert version == 0xFEFF  # OpenSSL's ClientHello record version
    ch = decode_roundtrip(pull_client_hello, push_client_hello, fragment.body)
    assert ch.client_version == 0xFEFD
    assert len(ch.random) == 32
    assert ch.session_id == b""
    assert ch.cookie == b""
    assert ch.cipher_suites == [0xC02B]
    assert ch.compression_methods == [0]
    types = [t for t, _ in ch.extensions]
    assert 23 in types  # extended_master_secret
    assert dict(ch.extensions)[0xFF01] == b"\x00"  # empty renegotiated_connection
    assert {10, 11, 13, 35} <= set(types)


def test_openssl_hello_verify_request_and_cookie_echo(auth_messages):
    _, hvr_body = message(auth_messages, "server", HT.hello_verify_request)
    hvr = decode_roundtrip(pull_hello_verify_request, push_hello_verify_request, hvr_body)
    assert hvr == HelloVerifyRequest(0xFEFF, b"0123456789abcdefghij")

    _, first = message(auth_messages, "client", HT.client_hello, 0)
    _, second = message(auth_messages, "client", HT.client_hello, 1)
    ch1 = pull_client_hello(Buffer(first))
    ch2 = decode_roundtrip(pull_client_hello, push_client_hello, second)
    assert ch2.cookie == hvr.cookie
    # RFC 6347 §4.2.1: the second ClientHello repeats the first apart from the cookie.
    ch1.cookie = hvr.cookie
    assert ch2 == ch1


def test_openssl_server_hello(auth_messages):
    _, body = message(auth_messages, "server", HT.server_hello)
    sh = decode_roundtrip(pull_server_hello, push_server_hello, body)
    assert sh.server_version == 0xFEFD
    assert len(sh.random) == 32
    assert sh.cipher_suite == 0xC02B
    assert sh.compression_method == 0
    ext = dict(sh.extensions)
    assert ext[23] == b""
    assert ext[0xFF01] == b"\x00"


def _certificate(messages, sender) -> x509.Certificate:
    _, body = message(messages, sender, HT.certificate)
    msg = decode_roundtrip(pull_certificate, push_certificate, body)
    assert len(msg.certificates) == 1
    return x509.load_der_x509_certificate(msg.certificates[0])


def test_openssl_certificates(auth_messages):
    server = _certificate(auth_messages, "server")
    client = _certificate(auth_messages, "client")
    assert server.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "server.test"
    assert client.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "client.test"
    assert isinstance(server.public_key().curve, ec.SECP256R1)


def test_openssl_server_key_exchange_signature_verifies(auth_messages):
    """
    The signature covers client_random + server_random + the exact params
    bytes (RFC 8422 §5.4): checking it with the server's key proves that
    ecdhe_params_bytes reproduces the wire bytes.
    """
    _, body = message(auth_messages, "server", HT.server_key_exchange)
    ske = decode_roundtrip(pull_server_key_exchange_ecdhe, push_server_key_exchange_ecdhe, body)
    assert ske.params.named_curve == 23
    assert len(ske.params.public) == 65 and ske.params.public[0] == 4
    assert ske.scheme == 0x0403  # ecdsa_secp256r1_sha256
    assert body.startswith(ecdhe_params_bytes(ske))
    assert ecdhe_params_bytes(ske) == ecdhe_params_bytes(ske.params)

    client_random = pull_client_hello(Buffer(message(auth_messages, "client", HT.client_hello, 1)[1])).random
    server_random = pull_server_hello(Buffer(message(auth_messages, "server", HT.server_hello)[1])).random
    key = _certificate(auth_messages, "server").public_key()
    key.verify(
        ske.signature,
        ecdhe_signed_data(client_random, server_random, ske.params),
        ec.ECDSA(hashes.SHA256()),
    )
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), ske.params.public)


def test_openssl_certificate_request(auth_messages):
    _, body = message(auth_messages, "server", HT.certificate_request)
    cr = decode_roundtrip(pull_certificate_request, push_certificate_request, body)
    assert 64 in cr.certificate_types  # ecdsa_sign
    assert 0x0403 in cr.signature_schemes
    assert cr.authorities == []


def test_openssl_server_hello_done(auth_messages):
    _, body = message(auth_messages, "server", HT.server_hello_done)
    assert body == b""
    assert pull_server_hello_done(Buffer(body)) == ServerHelloDone()


def test_openssl_client_key_exchange(auth_messages):
    _, body = message(auth_messages, "client", HT.client_key_exchange)
    cke = decode_roundtrip(pull_client_key_exchange_ecdhe, push_client_key_exchange_ecdhe, body)
    assert len(cke.public) == 65
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), cke.public)


def test_openssl_certificate_verify_over_transcript(auth_messages):
    """
    RFC 6347 §4.2.6: the transcript holds every message from the
    cookie-bearing ClientHello on, each with an unfragmented 12-byte header,
    and not the first ClientHello or the HelloVerifyRequest. The client's
    CertificateVerify signature verifying over that proves encode_handshake.
    """
    transcript = b""
    for sender, msg_type, seq, body in auth_messages:
        if msg_type == HT.certificate_verify:
            cv = decode_roundtrip(pull_certificate_verify, push_certificate_verify, body)
            break
        if seq == 0 and msg_type in (HT.client_hello, HT.hello_verify_request):
            continue
        transcript += encode_handshake(msg_type, seq, body)
    assert cv.scheme == 0x0403
    _certificate(auth_messages, "client").public_key().verify(
        cv.signature, transcript, ec.ECDSA(hashes.SHA256())
    )


def test_openssl_new_session_ticket(auth_messages):
    _, body = message(auth_messages, "server", HT.new_session_ticket)
    nst = decode_roundtrip(pull_new_session_ticket, push_new_session_ticket, body)
    assert nst.lifetime_hint > 0
    assert len(nst.ticket) == len(body) - 6 > 0


# -- the fragmented pyOpenSSL handshake --------------------------------------

FRAGMENTED = "pyopenssl_ecdhe_ecdsa_fragmented.txt"


def test_fragmented_capture_headers():
    fragments = [f for _s, fs, _ in plaintext_handshake(FRAGMENTED) for _v, f in fs]
    certificate = [f for f in fragments if f.msg_type == HT.certificate]
    assert len(certificate) >= 2
    assert not any(f.is_complete for f in certificate)
    assert {f.length for f in certificate} == {sum(f.fragment_length for f in certificate)}
    assert certificate[0].fragment_offset == 0
    assert certificate[1].fragment_offset == certificate[0].fragment_length
    for f in fragments:
        assert f.fragment_offset + f.fragment_length <= f.length


def test_fragmented_capture_reassembles():
    messages = reassemble(FRAGMENTED)
    cert = x509.load_der_x509_certificate(
        pull_certificate(Buffer(message(messages, "server", HT.certificate)[1])).certificates[0]
    )
    ske = pull_server_key_exchange_ecdhe(Buffer(message(messages, "server", HT.server_key_exchange)[1]))
    assert ske.params.named_curve == 29 and len(ske.params.public) == 32  # x25519
    client_random = pull_client_hello(Buffer(message(messages, "client", HT.client_hello, 1)[1])).random
    server_random = pull_server_hello(Buffer(message(messages, "server", HT.server_hello)[1])).random
    cert.public_key().verify(
        ske.signature,
        ecdhe_signed_data(client_random, server_random, ske.params),
        ec.ECDSA(hashes.SHA256()),
    )


# -- ClientHellos from the OpenSSL and GnuTLS command-line clients ----------


def test_gnutls_client_hello():
    version, fragment = first_client_hello("gnutls_cli_client_hello.txt")
    assert version == 0xFEFD  # GnuTLS uses the DTLS 1.2 record version
    assert fragment.is_complete and fragment.message_seq == 0
    ch = decode_roundtrip(pull_client_hello, push_client_hello, fragment.body)
    assert ch.client_version == 0xFEFD and ch.cookie == b""
    assert {0xC02B, 0xC02C, 0xCCA9, 0xC0AC} <= set(ch.cipher_suites)
    types = [t for t, _ in ch.extensions]
    assert {23, 22, 28, 0xFF01, 10, 11, 13} <= set(types)


def test_openssl_cli_client_hello():
    version, fragment = first_client_hello("openssl_s_client_client_hello.txt")
    assert version == 0xFEFF
    ch = decode_roundtrip(pull_client_hello, push_client_hello, fragment.body)
    assert ch.client_version == 0xFEFD and ch.cookie == b""
    assert 0x00FF in ch.cipher_suites  # TLS_EMPTY_RENEGOTIATION_INFO_SCSV
    assert {0xC02B, 0xCCA9} <= set(ch.cipher_suites)
    assert 23 in [t for t, _ in ch.extensions]


@pytest.mark.parametrize(
    "name", ["gnutls_cli_client_hello_extensions.txt", "openssl_s_client_client_hello_extensions.txt"]
)
def test_cli_client_hello_with_more_extensions(name):
    _, fragment = first_client_hello(name)
    ch = decode_roundtrip(pull_client_hello, push_client_hello, fragment.body)
    assert {0, 14, 16} <= {t for t, _ in ch.extensions}


# -- the handshake header (RFC 6347 §4.2.2) ----------------------------------


def test_encode_handshake_known_bytes():
    assert encode_handshake(HT.finished, 0x0102, b"\xaa" * 12) == bytes.fromhex(
        "14" "00000c" "0102" "000000" "00000c"
    ) + b"\xaa" * 12
    assert encode_handshake(HT.server_hello_done, 5, b"") == bytes.fromhex("0e0000000005000000000000")


def test_several_fragments_in_one_record():
    a = HandshakeFragment(11, 10, 2, 0, b"12345")
    b = HandshakeFragment(11, 10, 2, 5, b"67890")
    data = push_handshake_fragment(a) + push_handshake_fragment(b)
    assert pull_handshake_fragments(data) == [a, b]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty record"),
        pytest.param(bytes.fromhex("0e0000000005000000"), id="short header"),
        pytest.param(bytes.fromhex("14 00000c 0000 000000 00000c") + b"x" * 11, id="short body"),
        pytest.param(bytes.fromhex("14 00000c 0000 000004 000009") + b"x" * 9, id="past length"),
        pytest.param(bytes.fromhex("0e000000000500000000000000 0e00"), id="trailing partial header"),
    ],
)
def test_bad_fragments(data):
    with pytest.raises(DecodeError):
        pull_handshake_fragments(data)


# -- message edge cases (RFC 5246 §7.4 vector bounds) -----------------------

RANDOM = bytes(range(32))


def body(push, msg) -> bytes:
    return reencode(push, msg)


def test_client_hello_without_extensions_block():
    data = bytes.fromhex("fefd") + RANDOM + bytes.fromhex("00 00 0002c02b 0100")
    ch = pull_client_hello(Buffer(data))
    assert ch == ClientHello(0xFEFD, RANDOM, b"", b"", [0xC02B], [0], [])
    assert body(push_client_hello, ch) == data
    # An empty extensions block is accepted too.
    assert pull_client_hello(Buffer(data + b"\x00\x00")).extensions == []


def client_hello_bytes(session_id=b"", cookie=b"", suites=b"\x00\x02\xc0\x2b", comp=b"\x01\x00", tail=b""):
    return (
        b"\xfe\xfd" + RANDOM + bytes([len(session_id)]) + session_id + bytes([len(cookie)]) + cookie
        + suites + comp + tail
    )


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(client_hello_bytes(session_id=b"s" * 33), id="session_id>32"),
        pytest.param(client_hello_bytes(suites=b"\x00\x00"), id="no suites"),
        pytest.param(client_hello_bytes(suites=b"\x00\x03\xc0\x2b\x00"), id="odd suites"),
        pytest.param(client_hello_bytes(comp=b"\x00"), id="no compression"),
        pytest.param(client_hello_bytes(tail=b"\x00"), id="half extensions length"),
        pytest.param(client_hello_bytes(tail=b"\x00\x04\x00\x17\x00"), id="truncated extension"),
        pytest.param(client_hello_bytes(tail=b"\x00\x00\x00"), id="trailing byte"),
        pytest.param(client_hello_bytes()[:-1], id="truncated"),
    ],
)
def test_bad_client_hello(data):
    with pytest.raises(DecodeError):
        pull_client_hello(Buffer(data))


def test_client_hello_duplicate_extension_is_illegal_parameter():
    data = client_hello_bytes(tail=bytes.fromhex("0008 0017 0000 0017 0000"))
    with pytest.raises(DecodeError) as info:
        pull_client_hello(Buffer(data))
    assert info.value.description == AlertDescription.illegal_parameter


def test_hello_verify_request_known_bytes():
    data = bytes.fromhex("feff 10") + b"c" * 16
    assert pull_hello_verify_request(Buffer(data)) == HelloVerifyRequest(0xFEFF, b"c" * 16)
    with pytest.raises(DecodeError):
        pull_hello_verify_request(Buffer(data + b"\x00"))


@pytest.mark.parametrize(
    "pull,data",
    [
        pytest.param(pull_certificate, bytes.fromhex("000003 000000"), id="empty ASN.1Cert"),
        pytest.param(pull_certificate, bytes.fromhex("000005 000001 aa"), id="cert list overrun"),
        pytest.param(pull_certificate, bytes.fromhex("000004 000001 aa00"), id="partial entry"),
        pytest.param(pull_certificate_request, bytes.fromhex("00 0002 0403 0000"), id="no cert types"),
        pytest.param(pull_certificate_request, bytes.fromhex("01 40 0000 0000"), id="no sig algs"),
        pytest.param(pull_certificate_request, bytes.fromhex("01 40 0002 0403 0002 0000"), id="empty DN"),
        pytest.param(pull_server_hello_done, b"\x00", id="non-empty ServerHelloDone"),
        pytest.param(pull_certificate_verify, bytes.fromhex("0403 0002 aa"), id="short signature"),
        pytest.param(pull_new_session_ticket, bytes.fromhex("00001c20 0003 aabb"), id="short ticket"),
        pytest.param(pull_server_hello, bytes.fromhex("fefd") + RANDOM + bytes.fromhex("21") + b"s" * 33
                     + bytes.fromhex("c02b 00"), id="session_id>32"),
        pytest.param(pull_server_key_exchange_ecdhe, bytes.fromhex("03 0017 00 0403 0000"), id="empty point"),
        pytest.param(pull_server_key_exchange_ecdhe, bytes.fromhex("03 0017 01 04 0403 0000 00"), id="trailing"),
        pytest.param(pull_client_key_exchange_ecdhe, bytes.fromhex("00"), id="empty Yc"),
        pytest.param(pull_client_key_exchange_ecdhe, bytes.fromhex("02 04"), id="short Yc"),
        pytest.param(pull_client_key_exchange_psk, bytes.fromhex("0007") + b"client", id="short identity"),
        pytest.param(pull_client_key_exchange_ecdhe_psk, bytes.fromhex("0000 00"), id="ecdhe_psk empty Yc"),
        pytest.param(pull_server_key_exchange_psk, bytes.fromhex("0001"), id="short hint"),
    ],
)
def test_bad_bodies(pull, data):
    with pytest.raises(DecodeError):
        pull(Buffer(data))


def test_explicit_curve_is_illegal_parameter():
    """
    RFC 8422 §5.4: only named_curve (3) is allowed; explicit_prime (1) is not.
    """
    with pytest.raises(DecodeError) as info:
        pull_server_key_exchange_ecdhe(Buffer(bytes.fromhex("01 0017 01 04 0403 0000")))
    assert info.value.description == AlertDescription.illegal_parameter


def test_psk_messages_known_bytes():
    """
    RFC 4279 §2 / RFC 5489 §2 layouts with the INTEROP identity "client1".
    """
    assert body(push_client_key_exchange_psk, ClientKeyExchangePSK(b"client1")) == b"\x00\x07client1"
    assert pull_server_key_exchange_psk(Buffer(b"\x00\x00")) == ServerKeyExchangePSK(b"")
    point = b"\x20" + bytes(range(32))  # an X25519 key: 32 bytes
    params = ServerECDHParams(29, bytes(range(32)))
    ske = ServerKeyExchangeECDHEPSK(b"hint", params)
    assert body(push_server_key_exchange_ecdhe_psk, ske) == b"\x00\x04hint" + b"\x03\x00\x1d" + point
    assert pull_server_key_exchange_ecdhe_psk(Buffer(b"\x00\x04hint\x03\x00\x1d" + point)) == ske
    cke = ClientKeyExchangeECDHEPSK(b"client1", bytes(range(32)))
    assert body(push_client_key_exchange_ecdhe_psk, cke) == b"\x00\x07client1" + point
    assert ecdhe_params_bytes(params) == b"\x03\x00\x1d" + point
    assert ecdhe_signed_data(b"C" * 32, b"S" * 32, params) == b"C" * 32 + b"S" * 32 + b"\x03\x00\x1d" + point


def test_finished_is_rest_of_body():
    data = hashlib.sha256(b"x").digest()[:12]
    assert pull_finished(Buffer(data)) == Finished(data)
    assert body(push_finished, Finished(data)) == data


# -- property tests ------------------------------------------------------------


# Hypothesis tests draw the codec instead of using pytest.mark.parametrize:
# pytest-twisted's test-call hook breaks on parametrized @given tests.
@settings(max_examples=2000, deadline=None)
@given(name=st.sampled_from(sorted(CODECS)), data=st.binary(max_size=200))
def test_pull_arbitrary_bytes_raises_only_decode_error(name, data):
    pull, push = CODECS[name]
    try:
        msg = pull(Buffer(data))
    except DecodeError:
        return
    # Whatever parses re-encodes to a message that parses to the same value.
    assert pull(Buffer(reencode(push, msg))) == msg


def _capture_bodies():
    pulls = {
        HT.client_hello: "client_hello",
        HT.server_hello: "server_hello",
        HT.hello_verify_request: "hello_verify_request",
        HT.certificate: "certificate",
        HT.server_key_exchange: "server_key_exchange_ecdhe",
        HT.certificate_request: "certificate_request",
        HT.client_key_exchange: "client_key_exchange_ecdhe",
        HT.certificate_verify: "certificate_verify",
        HT.new_session_ticket: "new_session_ticket",
    }
    return [(pulls[t], b) for _s, t, _seq, b in reassemble(AUTH) if t in pulls]


CAPTURE_BODIES = _capture_bodies()


@settings(max_examples=400, deadline=None)
@given(
    which=st.integers(0, len(CAPTURE_BODIES) - 1),
    cut=st.integers(0, 600),
    flips=st.lists(st.tuples(st.integers(0, 600), st.integers(0, 255)), max_size=4),
)
def test_pull_mutated_captures_raises_only_decode_error(which, cut, flips):
    """
    Real messages, truncated and with bytes replaced: the length fields now
    disagree with the data in every way a peer could make them.
    """
    name, original = CAPTURE_BODIES[which]
    data = bytearray(original[: min(cut, len(original))] if cut < len(original) else original)
    for pos, value in flips:
        if data:
            data[pos % len(data)] = value
    try:
        CODECS[name][0](Buffer(bytes(data)))
    except DecodeError:
        pass


u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
randoms = st.binary(min_size=32, max_size=32)
extension_lists = st.dictionaries(u16, st.binary(max_size=40), max_size=6).map(lambda d: list(d.items()))
points = st.binary(min_size=1, max_size=255)
params = st.builds(ServerECDHParams, u16, points)

MESSAGES = {
    "client_hello": st.builds(
        ClientHello, u16, randoms, st.binary(max_size=32), st.binary(max_size=255),
        st.lists(u16, min_size=1, max_size=40), st.lists(u8, min_size=1, max_size=5), extension_lists,
    ),
    "server_hello": st.builds(ServerHello, u16, randoms, st.binary(max_size=32), u16, u8, extension_lists),
    "hello_verify_request": st.builds(HelloVerifyRequest, u16, st.binary(max_size=255)),
    "certificate": st.builds(Certificate, st.lists(st.binary(min_size=1, max_size=100), max_size=4)),
    "certificate_request": st.builds(
        CertificateRequest, st.lists(u8, min_size=1, max_size=5), st.lists(u16, min_size=1, max_size=20),
        st.lists(st.binary(min_size=1, max_size=50), max_size=4),
    ),
    "server_hello_done": st.just(ServerHelloDone()),
    "certificate_verify": st.builds(CertificateVerify, u16, st.binary(max_size=300)),
    "finished": st.builds(Finished, st.binary(min_size=12, max_size=12)),
    "new_session_ticket": st.builds(NewSessionTicket, st.integers(0, 2**32 - 1), st.binary(max_size=300)),
    "server_key_exchange_ecdhe": st.builds(ServerKeyExchangeECDHE, params, u16, st.binary(max_size=300)),
    "server_key_exchange_psk": st.builds(ServerKeyExchangePSK, st.binary(max_size=300)),
    "server_key_exchange_ecdhe_psk": st.builds(ServerKeyExchangeECDHEPSK, st.binary(max_size=300), params),
    "client_key_exchange_ecdhe": st.builds(ClientKeyExchangeECDHE, points),
    "client_key_exchange_psk": st.builds(ClientKeyExchangePSK, st.binary(max_size=300)),
    "client_key_exchange_ecdhe_psk": st.builds(ClientKeyExchangeECDHEPSK, st.binary(max_size=300), points),
}


def test_every_codec_has_a_strategy():
    assert set(MESSAGES) == set(CODECS)


@settings(max_examples=1500, deadline=None)
@given(name=st.sampled_from(sorted(MESSAGES)), data=st.data())
def test_push_pull_round_trip(name, data):
    pull, push = CODECS[name]
    msg = data.draw(MESSAGES[name])
    encoded = reencode(push, msg)
    assert pull(Buffer(encoded)) == msg
    # And the message survives the handshake header.
    [fragment] = pull_handshake_fragments(encode_handshake(1, 7, encoded))
    assert fragment.body == encoded and fragment.is_complete


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=100))
def test_pull_handshake_fragments_arbitrary_bytes(data):
    try:
        fragments = pull_handshake_fragments(data)
    except DecodeError:
        return
    assert b"".join(push_handshake_fragment(f) for f in fragments) == data
