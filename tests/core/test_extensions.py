"""
Hello extension codecs, checked against the extension bodies that OpenSSL
and GnuTLS sent in the captured ClientHellos (tests/data/captures/README.md),
RFC-derived known answers and property tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twisted_dtls.core.buffer import Buffer
from twisted_dtls.core.constants import AlertDescription, ExtensionType as ET
from twisted_dtls.core.errors import DecodeError
from twisted_dtls.core.extensions import (
    UseSRTP,
    decode_alpn,
    decode_connection_id,
    decode_ec_point_formats,
    decode_extended_master_secret,
    decode_record_size_limit,
    decode_renegotiation_info,
    decode_server_name,
    decode_session_ticket,
    decode_signature_algorithms,
    decode_supported_groups,
    decode_use_srtp,
    encode_alpn,
    encode_connection_id,
    encode_ec_point_formats,
    encode_extended_master_secret,
    encode_record_size_limit,
    encode_renegotiation_info,
    encode_server_name,
    encode_session_ticket,
    encode_signature_algorithms,
    encode_supported_groups,
    encode_use_srtp,
    find_extension,
    pull_extensions,
    push_extensions,
)

CAPTURES = Path(__file__).resolve().parent.parent / "data" / "captures"


def client_hello_extension_block(name: str) -> bytes:
    """
    The raw extensions block (with its length) of the first ClientHello in a
    capture, found by walking the record and ClientHello layouts inline
    (RFC 6347 §4.1, §4.2.2, §4.2.1) so this test does not depend on the
    message codec.
    """
    line = next(
        l for l in (CAPTURES / name).read_text().splitlines() if l and not l.startswith("#")
    )
    datagram = bytes.fromhex(line.split()[1])
    assert datagram[0] == 22
    body = datagram[13 + 12 :]
    pos = 2 + 32
    pos += 1 + body[pos]  # session_id
    pos += 1 + body[pos]  # cookie
    pos += 2 + int.from_bytes(body[pos : pos + 2], "big")  # cipher_suites
    pos += 1 + body[pos]  # compression_methods
    return body[pos:]


def captured_extensions(name: str) -> list[tuple[int, bytes]]:
    block = client_hello_extension_block(name)
    buf = Buffer(block)
    extensions = pull_extensions(buf)
    buf.expect_eof()
    out = Buffer()
    push_extensions(out, extensions)
    assert out.output == block  # round trip of the whole list, unknown types included
    return extensions


GNUTLS = "gnutls_cli_client_hello.txt"
GNUTLS_EXT = "gnutls_cli_client_hello_extensions.txt"
OPENSSL = "openssl_s_client_client_hello.txt"
OPENSSL_EXT = "openssl_s_client_client_hello_extensions.txt"
PYOPENSSL = "pyopenssl_ecdhe_ecdsa_client_auth.txt"


@pytest.mark.parametrize("name", [GNUTLS, GNUTLS_EXT, OPENSSL, OPENSSL_EXT, PYOPENSSL])
def test_captured_extension_lists_round_trip(name):
    extensions = captured_extensions(name)
    assert find_extension(extensions, ET.extended_master_secret) == b""
    decode_extended_master_secret(find_extension(extensions, ET.extended_master_secret))


def test_gnutls_extension_bodies():
    ext = captured_extensions(GNUTLS)
    groups = decode_supported_groups(find_extension(ext, ET.supported_groups))
    assert groups[:5] == [23, 24, 25, 29, 30]
    assert encode_supported_groups(groups) == find_extension(ext, ET.supported_groups)
    assert decode_ec_point_formats(find_extension(ext, ET.ec_point_formats)) == [0]
    schemes = decode_signature_algorithms(find_extension(ext, ET.signature_algorithms))
    assert {0x0403, 0x0804, 0x0807} <= set(schemes)
    assert encode_signature_algorithms(schemes) == find_extension(ext, ET.signature_algorithms)
    # GnuTLS announces the TLS 1.2 maximum, 2^14 (RFC 8449 §4).
    assert decode_record_size_limit(find_extension(ext, ET.record_size_limit)) == 2**14
    assert decode_renegotiation_info(find_extension(ext, ET.renegotiation_info)) == b""
    assert decode_session_ticket(find_extension(ext, ET.session_ticket)) == b""
    assert find_extension(ext, ET.encrypt_then_mac) == b""
    # status_request (5) is not decoded here but kept raw.
    assert find_extension(ext, ET.status_request) == bytes.fromhex("0100000000")
    assert find_extension(ext, ET.connection_id) is None


def test_openssl_extension_bodies():
    ext = captured_extensions(OPENSSL)
    assert decode_ec_point_formats(find_extension(ext, ET.ec_point_formats)) == [0, 1, 2]
    assert decode_supported_groups(find_extension(ext, ET.supported_groups)) == [29, 23, 30, 25, 24]
    assert find_extension(ext, ET.renegotiation_info) is None  # OpenSSL 3.0 CLI sends the SCSV


@pytest.mark.parametrize("name", [GNUTLS_EXT, OPENSSL_EXT])
def test_server_name_and_alpn_from_captures(name):
    ext = captured_extensions(name)
    data = find_extension(ext, ET.server_name)
    assert decode_server_name(data) == "localhost"
    assert encode_server_name("localhost") == data
    data = find_extension(ext, ET.application_layer_protocol_negotiation)
    assert decode_alpn(data) == [b"coap", b"h2"]
    assert encode_alpn([b"coap", b"h2"]) == data


@pytest.mark.parametrize(
    "name,profiles",
    [
        # --srtp-profiles SRTP_AES128_CM_HMAC_SHA1_80:SRTP_NULL_HMAC_SHA1_80
        (GNUTLS_EXT, [0x0001, 0x0005]),
        # -use_srtp SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80
        (OPENSSL_EXT, [0x0007, 0x0001]),
    ],
)
def test_use_srtp_from_captures(name, profiles):
    data = find_extension(captured_extensions(name), ET.use_srtp)
    assert decode_use_srtp(data) == UseSRTP(profiles, b"")
    assert encode_use_srtp(profiles) == data


# -- the list ---------------------------------------------------------------


def test_duplicate_extension_is_illegal_parameter():
    """
    RFC 5246 §7.4.1.4: at most one extension of each type.
    """
    with pytest.raises(DecodeError) as info:
        pull_extensions(Buffer(bytes.fromhex("000d 0017 0000 ff01 0001 00 0017 0000")))
    assert info.value.description == AlertDescription.illegal_parameter


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(bytes.fromhex("00"), id="half length"),
        pytest.param(bytes.fromhex("0005 0017 0000"), id="list overrun"),
        pytest.param(bytes.fromhex("0003 0017 00"), id="partial header"),
        pytest.param(bytes.fromhex("0005 0017 0002 00"), id="body overrun"),
    ],
)
def test_bad_extension_lists(data):
    with pytest.raises(DecodeError):
        pull_extensions(Buffer(data))


def test_empty_list_and_unknown_kept_raw():
    assert pull_extensions(Buffer(b"\x00\x00")) == []
    data = bytes.fromhex("0009 fafa 0001 aa 0017 0000")
    assert pull_extensions(Buffer(data)) == [(0xFAFA, b"\xaa"), (23, b"")]
    assert find_extension([(0xFAFA, b"\xaa")], 23) is None


# -- known answers (layouts from the RFCs) ------------------------------------


def test_known_answers():
    # RFC 6066 §3: list length, name_type 0, name length, name.
    assert encode_server_name("example.com") == bytes.fromhex("000e 00 000b") + b"example.com"
    # RFC 7301 §3.1
    assert encode_alpn([b"h2"]) == bytes.fromhex("0003 02") + b"h2"
    # RFC 5764 §4.1.1: profiles then an MKI
    assert encode_use_srtp([1], b"\x07\x08") == bytes.fromhex("0002 0001 02 0708")
    assert decode_use_srtp(bytes.fromhex("0002 0001 02 0708")) == UseSRTP([1], b"\x07\x08")
    # RFC 5746 §3.2: 1-byte length
    assert encode_renegotiation_info() == b"\x00"
    assert decode_renegotiation_info(b"\x0c" + b"v" * 12) == b"v" * 12
    assert encode_extended_master_secret() == b""
    assert encode_record_size_limit(2**14) == b"\x40\x00"
    assert decode_record_size_limit(b"\x00\x40") == 64
    assert encode_session_ticket(b"tkt") == b"tkt"
    # RFC 9146 §3: cid<0..2^8-1>
    assert encode_connection_id(b"\x01\x02\x03") == b"\x03\x01\x02\x03"
    assert decode_connection_id(b"\x00") == b""
    assert encode_ec_point_formats([0]) == b"\x01\x00"
    assert encode_supported_groups([29, 23]) == bytes.fromhex("0004 001d 0017")


def test_server_name_skips_other_name_types():
    data = bytes.fromhex("0006 01 0003") + b"abc"
    assert decode_server_name(data) is None


@pytest.mark.parametrize(
    "decode,data,description",
    [
        (decode_server_name, b"", AlertDescription.decode_error),
        (decode_server_name, bytes.fromhex("0000"), AlertDescription.decode_error),
        (decode_server_name, bytes.fromhex("0003 00 0000"), AlertDescription.decode_error),
        (decode_server_name, bytes.fromhex("0008 00 0001 61 00 0001 62"), AlertDescription.illegal_parameter),
        (decode_server_name, bytes.fromhex("0004 00 0001 ff"), AlertDescription.illegal_parameter),
        (decode_supported_groups, bytes.fromhex("0000"), AlertDescription.decode_error),
        (decode_supported_groups, bytes.fromhex("0003 0017 00"), AlertDescription.decode_error),
        (decode_ec_point_formats, bytes.fromhex("00"), AlertDescription.decode_error),
        (decode_ec_point_formats, bytes.fromhex("01 00 00"), AlertDescription.decode_error),
        (decode_signature_algorithms, bytes.fromhex("0000"), AlertDescription.decode_error),
        (decode_signature_algorithms, bytes.fromhex("0001 04"), AlertDescription.decode_error),
        (decode_alpn, bytes.fromhex("0000"), AlertDescription.decode_error),
        (decode_alpn, bytes.fromhex("0001 00"), AlertDescription.decode_error),  # empty name
        (decode_alpn, bytes.fromhex("0003 03 6832"), AlertDescription.decode_error),
        (decode_use_srtp, bytes.fromhex("0000 00"), AlertDescription.decode_error),
        (decode_use_srtp, bytes.fromhex("0002 0001"), AlertDescription.decode_error),  # no mki length
        (decode_use_srtp, bytes.fromhex("0001 00 00"), AlertDescription.decode_error),
        (decode_renegotiation_info, b"", AlertDescription.decode_error),
        (decode_renegotiation_info, bytes.fromhex("00 00"), AlertDescription.decode_error),
        (decode_extended_master_secret, b"\x00", AlertDescription.decode_error),
        (decode_record_size_limit, b"\x00", AlertDescription.decode_error),
        (decode_record_size_limit, b"\x00\x3f", AlertDescription.illegal_parameter),
        (decode_record_size_limit, b"\x40\x00\x00", AlertDescription.decode_error),
        (decode_connection_id, b"\x02\x01", AlertDescription.decode_error),
        (decode_connection_id, b"", AlertDescription.decode_error),
    ],
)
def test_bad_bodies(decode, data, description):
    with pytest.raises(DecodeError) as info:
        decode(data)
    assert info.value.description == description


# -- property tests ------------------------------------------------------------

DECODERS = [
    decode_server_name,
    decode_supported_groups,
    decode_ec_point_formats,
    decode_signature_algorithms,
    decode_alpn,
    decode_use_srtp,
    decode_renegotiation_info,
    decode_extended_master_secret,
    decode_record_size_limit,
    decode_session_ticket,
    decode_connection_id,
]


# Drawn rather than parametrized: pytest-twisted breaks parametrized @given tests.
@settings(max_examples=1500, deadline=None)
@given(decode=st.sampled_from(DECODERS), data=st.binary(max_size=80))
def test_decoders_on_arbitrary_bytes_raise_only_decode_error(decode, data):
    try:
        decode(data)
    except DecodeError:
        pass


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=120))
def test_pull_extensions_arbitrary_bytes(data):
    buf = Buffer(data)
    try:
        extensions = pull_extensions(buf)
    except DecodeError:
        return
    assert len({t for t, _ in extensions}) == len(extensions)
    out = Buffer()
    push_extensions(out, extensions)
    assert out.output == data[: buf.tell()]


u16_lists = st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=30)
host_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-", min_size=1, max_size=60)
ROUND_TRIPS = [
    (encode_server_name, decode_server_name, host_names),
    (encode_supported_groups, decode_supported_groups, u16_lists),
    (encode_ec_point_formats, decode_ec_point_formats, st.lists(st.integers(0, 255), min_size=1, max_size=10)),
    (encode_signature_algorithms, decode_signature_algorithms, u16_lists),
    (encode_alpn, decode_alpn, st.lists(st.binary(min_size=1, max_size=255), min_size=1, max_size=5)),
    (encode_renegotiation_info, decode_renegotiation_info, st.binary(max_size=255)),
    (encode_record_size_limit, decode_record_size_limit, st.integers(64, 0xFFFF)),
    (encode_session_ticket, decode_session_ticket, st.binary(max_size=300)),
    (encode_connection_id, decode_connection_id, st.binary(max_size=255)),
]


@settings(max_examples=1000, deadline=None)
@given(which=st.integers(0, len(ROUND_TRIPS) - 1), data=st.data())
def test_encode_decode_round_trip(which, data):
    encode, decode, values = ROUND_TRIPS[which]
    value = data.draw(values)
    assert decode(encode(value)) == value


@settings(max_examples=200, deadline=None)
@given(profiles=u16_lists, mki=st.binary(max_size=255))
def test_use_srtp_round_trip(profiles, mki):
    assert decode_use_srtp(encode_use_srtp(profiles, mki)) == UseSRTP(profiles, mki)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.integers(0, 0xFFFF), st.binary(max_size=50), max_size=8))
def test_extension_list_round_trip(extensions):
    items = list(extensions.items())
    buf = Buffer()
    push_extensions(buf, items)
    assert pull_extensions(Buffer(buf.output)) == items
