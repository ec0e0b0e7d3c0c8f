"""
The handshake's fast paths agree with the general code they stand in for.

A server parses a ClientHello, a few handshake fragments and some
extension lists per handshake, and derives keys with the PRF: each of those
has a fast path for the common, well-formed case that hands anything
irregular to the general code. These tests feed both the same inputs,
well-formed and mutated, and require the same result or the same error.
"""

from __future__ import annotations

import random

import pytest
from cryptography.hazmat.primitives import hashes, hmac

from twisted_dtls.core import extensions as ext
from twisted_dtls.core.buffer import Buffer
from twisted_dtls.core.constants import (
    CipherSuite,
    ExtensionType,
    NamedGroup,
    SignatureScheme,
)
from twisted_dtls.core.errors import DecodeError
from twisted_dtls.core.fragments import FlightItem, Reassembler, pack_flight
from twisted_dtls.core.handshake import encode
from twisted_dtls.core.messages import (
    ClientHello,
    HandshakeFragment,
    ServerHello,
    _pull_handshake_fragments,
    client_hello_offer_at,
    encode_handshake,
    encode_server_hello,
    parse_client_hello,
    pull_client_hello,
    pull_handshake_fragments,
    push_client_hello,
    push_server_hello,
)
from twisted_dtls.core.prf import p_hash

HELLO = ClientHello(
    client_version=0xFEFD,
    random=bytes(range(32)),
    session_id=b"",
    cookie=bytes(range(20)),
    cipher_suites=[CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV],
    compression_methods=[0],
    extensions=[
        (ExtensionType.renegotiation_info, b"\x00"),
        (ExtensionType.ec_point_formats, b"\x01\x00"),
        (ExtensionType.supported_groups, ext.encode_supported_groups([NamedGroup.x25519, NamedGroup.secp256r1])),
        (ExtensionType.extended_master_secret, b""),
        (
            ExtensionType.signature_algorithms,
            ext.encode_signature_algorithms([SignatureScheme.ecdsa_secp256r1_sha256, SignatureScheme.ed25519]),
        ),
    ],
)


def _outcome(function, *args):
    try:
        return ("ok", function(*args))
    except DecodeError as e:
        return ("error", str(e), e.description)


def _general_client_hello(body: bytes):
    buf = Buffer(body)
    hello = pull_client_hello(buf)
    buf.expect_eof()
    return hello


def _mutations(data: bytes, rng: random.Random, count: int):
    """
    C{data} itself, truncations, extensions, and bytes flipped (lengths
    among them, since they are where parsers go wrong).
    """
    yield data
    for _ in range(count):
        choice = rng.randrange(4)
        if choice == 0:
            yield data[: rng.randrange(len(data) + 1)]
        elif choice == 1:
            yield data + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4)))
        else:
            mutated = bytearray(data)
            for _ in range(rng.randrange(1, 3)):
                mutated[rng.randrange(len(mutated))] = rng.choice((0, 1, 2, 0xFF, rng.randrange(256)))
            yield bytes(mutated)


@pytest.mark.parametrize("extensions", [HELLO.extensions, []])
def test_client_hello_parse_matches_the_general_parser(extensions):
    hello = ClientHello(**{**{f: getattr(HELLO, f) for f in HELLO.__slots__}, "extensions": extensions})
    body = encode(push_client_hello, hello)
    assert parse_client_hello(body) == hello
    rng = random.Random(6)
    for data in _mutations(body, rng, 3000):
        assert _outcome(parse_client_hello, data) == _outcome(_general_client_hello, data), data.hex()


@pytest.mark.parametrize("session_id", [b"", bytes(range(32))])
def test_client_hello_offer_at_agrees_with_the_general_parser(session_id):
    """
    A server that remembers its choices per offer reads a ClientHello's
    random and session_id through L{client_hello_offer_at} alone: where
    the general parser accepts a body, the offer starts right after its
    cookie; where the head is not even framed, the general parser refuses
    the body too.
    """
    hello = ClientHello(**{**{f: getattr(HELLO, f) for f in HELLO.__slots__}, "session_id": session_id})
    body = encode(push_client_hello, hello)
    rng = random.Random(8)
    for data in _mutations(body, rng, 3000):
        offer_at = client_hello_offer_at(data)
        outcome = _outcome(_general_client_hello, data)
        if offer_at is None:
            assert outcome[0] == "error", data.hex()
        if outcome[0] == "ok":
            parsed = outcome[1]
            head = 2 + 32 + 1 + len(parsed.session_id) + 1 + len(parsed.cookie)
            assert offer_at == head, data.hex()
            assert data[2:34] == parsed.random and data[35 : 35 + data[34]] == parsed.session_id


def test_client_hello_duplicate_extension_is_refused_alike():
    extensions = HELLO.extensions + [HELLO.extensions[0]]
    body = encode(push_client_hello, ClientHello(**{**{f: getattr(HELLO, f) for f in HELLO.__slots__}, "extensions": extensions}))
    assert _outcome(parse_client_hello, body) == _outcome(_general_client_hello, body)
    assert _outcome(parse_client_hello, body)[0] == "error"


def test_handshake_fragments_match_the_general_parser():
    record = encode_handshake(1, 3, b"hello" * 20) + encode_handshake(2, 4, b"") + encode_handshake(11, 5, bytes(300))
    assert pull_handshake_fragments(record) == _pull_handshake_fragments(record)
    rng = random.Random(7)
    for data in _mutations(record, rng, 3000):
        if data:
            assert _outcome(pull_handshake_fragments, data) == _outcome(_pull_handshake_fragments, data), data.hex()


@pytest.mark.parametrize(
    "decode, name",
    [
        (ext.decode_supported_groups, "named_group_list"),
        (ext.decode_signature_algorithms, "supported_signature_algorithms"),
        (ext.decode_ec_point_formats, None),
        (ext.decode_renegotiation_info, None),
    ],
)
def test_extension_decoders_match_the_general_path(decode, name):
    """
    The general path is the extension's C{_decode} over its pull function.
    """

    def general(data):
        if decode is ext.decode_ec_point_formats:

            def pull(buf):
                formats = buf.pull_list(1, 1)
                if not formats:
                    raise DecodeError("empty ec_point_format_list")
                return formats

            return ext._decode(data, pull)
        if decode is ext.decode_renegotiation_info:
            return ext._decode(data, lambda buf: buf.pull_opaque(1))
        return ext._decode(data, lambda buf: ext._pull_uint16_list(buf, 2, name))

    rng = random.Random(8)
    for seed in (b"\x00\x04\x00\x1d\x00\x17", b"\x02\x00\x01", b"\x00", b"\x01\x07", b"\x00\x02\x04\x03"):
        for data in _mutations(seed, rng, 300):
            assert _outcome(decode, data) == _outcome(general, data), data.hex()


def test_server_hello_encoding_matches_the_buffer_encoding():
    hello = ServerHello(0xFEFD, bytes(range(32)), b"\x07" * 32, 0xC02B, 0, [(0xFF01, b"\x00"), (23, b""), (11, b"\x01\x00")])
    buf = Buffer()
    buf.push_uint16(hello.server_version)
    buf.push_bytes(hello.random)
    buf.push_opaque(1, hello.session_id)
    buf.push_uint16(hello.cipher_suite)
    buf.push_uint8(hello.compression_method)
    with buf.push_block(2):
        for ext_type, data in hello.extensions:
            buf.push_uint16(ext_type)
            buf.push_opaque(2, data)
    assert encode_server_hello(hello) == buf.output == encode(push_server_hello, hello)
    hello.extensions = []
    assert encode_server_hello(hello)[-3:] == b"\xc0\x2b\x00"


def _reference_p_hash(hash_cls, secret: bytes, seed: bytes, length: int) -> bytes:
    out = b""
    a = seed
    while len(out) < length:
        h = hmac.HMAC(secret, hash_cls())
        h.update(a)
        a = h.finalize()
        h = hmac.HMAC(secret, hash_cls())
        h.update(a + seed)
        out += h.finalize()
    return out[:length]


@pytest.mark.parametrize("hash_cls", [hashes.SHA256, hashes.SHA384, hashes.SHA512])
@pytest.mark.parametrize("secret_length", [0, 1, 32, 48, 64, 65, 128, 129, 300])
@pytest.mark.parametrize("length", [0, 12, 40, 48, 100])
def test_p_hash_matches_cryptography_hmac(hash_cls, secret_length, length):
    """
    P_hash over hashlib agrees with HMAC from C{cryptography}, for keys
    shorter than, as long as and longer than the hash's block (RFC 2104 §2
    hashes long keys first).
    """
    secret = bytes(range(256)) * 2
    secret = secret[:secret_length]
    seed = b"label" + bytes(range(64))
    assert p_hash(hash_cls, secret, seed, length) == _reference_p_hash(hash_cls, secret, seed, length)
    assert p_hash(hash_cls(), bytearray(secret), seed, length) == _reference_p_hash(hash_cls, secret, seed, length)


def test_reassembler_keeps_a_whole_message_as_it_came():
    body = bytes(range(200))
    r = Reassembler(1024, 4096, 8)
    r.add(HandshakeFragment(11, len(body), 0, 0, body))
    # A retransmitted copy and a stray fragment of the same message change nothing.
    r.add(HandshakeFragment(11, len(body), 0, 0, body))
    r.add(HandshakeFragment(11, len(body), 0, 50, body[50:60]))
    assert r.held_bytes == len(body)
    msg_type, seq, data = r.pop()
    assert (msg_type, seq, data) == (11, 0, body)
    assert data is body
    assert r.held_bytes == 0


def test_pack_flight_single_records():
    """
    Messages that fit go out one record each, headers as RFC 6347 §4.2.2
    writes them for an unfragmented message.
    """
    items = [FlightItem(0, 22, 2, 1, b"a" * 70), FlightItem(0, 22, 14, 2, b"")]
    records = []
    datagrams = pack_flight(items, lambda t, p, e: records.append(p) or p, 1200, lambda e: 0)
    assert records == [encode_handshake(2, 1, b"a" * 70), encode_handshake(14, 2, b"")]
    assert datagrams == [b"".join(records)]
