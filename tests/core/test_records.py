"""
Tests for twisted_dtls.core.records: the RFC 6347 §4.1 record header codec.
"""

from hypothesis import given, strategies as st
from OpenSSL import SSL

import pytest

from twisted_dtls.core.constants import DTLS_1_0, DTLS_1_2, MAX_CIPHERTEXT
from twisted_dtls.core.records import Record, pull_records, push_record

# Two records laid out by hand from the RFC 6347 §4.1 header definition:
# handshake(22) DTLS 1.2 epoch 0 seq 5, 3 bytes; then application_data(23)
# epoch 0x0102 seq 0x0A0B0C0D0E0F, 2 bytes.
TWO_RECORDS = bytes.fromhex(
    "16" "fefd" "0000" "000000000005" "0003" "aabbcc"
    "17" "fefd" "0102" "0a0b0c0d0e0f" "0002" "ddee"
)


def test_pull_two_records():
    records, reason = pull_records(TWO_RECORDS)
    assert reason is None
    assert records == [
        Record(22, DTLS_1_2, 0, 5, b"\xaa\xbb\xcc"),
        Record(23, DTLS_1_2, 0x0102, 0x0A0B0C0D0E0F, b"\xdd\xee"),
    ]


def test_push_record_bytes():
    assert push_record(22, DTLS_1_2, 0, 5, b"\xaa\xbb\xcc") + push_record(
        23, DTLS_1_2, 0x0102, 0x0A0B0C0D0E0F, b"\xdd\xee"
    ) == TWO_RECORDS


def test_push_pull_extremes():
    data = push_record(21, DTLS_1_0, 0xFFFF, 2**48 - 1, b"")
    assert data == bytes.fromhex("15feffffffffffffffffff0000")
    assert pull_records(data) == ([Record(21, DTLS_1_0, 0xFFFF, 2**48 - 1, b"")], None)


def test_empty_datagram():
    assert pull_records(b"") == ([], None)


def test_every_truncation_never_raises():
    first_end = 13 + 3
    for n in range(len(TWO_RECORDS)):
        records, reason = pull_records(TWO_RECORDS[:n])
        if n == 0:
            assert (records, reason) == ([], None)
        elif n < first_end:
            assert records == []
            assert reason == ("truncated_header" if n < 13 else "truncated_fragment")
        elif n == first_end:
            assert len(records) == 1 and reason is None
        else:
            assert len(records) == 1
            assert reason == ("truncated_header" if n < first_end + 13 else "truncated_fragment")


@pytest.mark.parametrize("content_type", [0, 19, 24, 26, 255])
def test_unknown_content_type_stops(content_type):
    bad = bytes([content_type]) + TWO_RECORDS[1:16]
    records, reason = pull_records(TWO_RECORDS[:16] + bad + TWO_RECORDS[:16])
    assert len(records) == 1
    assert reason == "unknown_content_type"


def test_tls12_cid_reported():
    # RFC 9146 §4: content type 25 carries a connection ID we do not parse.
    records, reason = pull_records(b"\x19" + TWO_RECORDS[1:16])
    assert (records, reason) == ([], "cid_unsupported")


@pytest.mark.parametrize("content_type", [20, 21, 22, 23])
def test_all_known_content_types(content_type):
    data = push_record(content_type, DTLS_1_2, 1, 2, b"x")
    assert pull_records(data) == ([Record(content_type, DTLS_1_2, 1, 2, b"x")], None)


def test_length_limit():
    # RFC 5246 §6.2.3: a ciphertext length above 2^14 + 2048 is malformed.
    ok = push_record(23, DTLS_1_2, 1, 0, bytes(MAX_CIPHERTEXT))
    assert pull_records(ok)[1] is None
    too_long = push_record(23, DTLS_1_2, 1, 0, bytes(MAX_CIPHERTEXT + 1))
    assert pull_records(too_long) == ([], "too_long")
    # The header alone suffices to reject it: no need to wait for the body.
    assert pull_records(too_long[:13]) == ([], "too_long")


def test_version_is_not_judged_here():
    data = push_record(22, 0x0303, 0, 0, b"")
    assert pull_records(data) == ([Record(22, 0x0303, 0, 0, b"")], None)


@pytest.mark.parametrize(
    "args",
    [
        (22, DTLS_1_2, 0x10000, 0, b""),
        (22, DTLS_1_2, -1, 0, b""),
        (22, DTLS_1_2, 0, 2**48, b""),
        (22, DTLS_1_2, 0, -1, b""),
        (22, DTLS_1_2, 0, 0, bytes(0x10000)),
    ],
)
def test_push_record_rejects_out_of_range(args):
    with pytest.raises(ValueError):
        push_record(*args)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(data):
    records, reason = pull_records(data)
    # Whatever parsed re-encodes to a prefix of the input.
    again = b"".join(push_record(r.content_type, r.version, r.epoch, r.sequence_number, r.fragment) for r in records)
    assert data.startswith(again)
    assert (reason is None) == (again == data)


def test_openssl_client_hello_header():
    # The first datagram of a real DTLS client (OpenSSL via pyOpenSSL): one
    # handshake record, epoch 0, sequence 0, carrying a ClientHello (type 1).
    ctx = SSL.Context(SSL.DTLS_METHOD)
    conn = SSL.Connection(ctx, None)
    conn.set_connect_state()
    conn.set_ciphertext_mtu(1400)
    with pytest.raises(SSL.WantReadError):
        conn.do_handshake()
    datagram = conn.bio_read(65536)
    records, reason = pull_records(datagram)
    assert reason is None
    assert len(records) == 1
    record = records[0]
    assert (record.content_type, record.epoch, record.sequence_number) == (22, 0, 0)
    assert record.version in (DTLS_1_0, DTLS_1_2)
    assert record.fragment[0] == 1
    assert len(record.fragment) == len(datagram) - 13
