"""
Tests for twisted_dtls.core.recordlayer: one RecordLayer writes, another
reads, with real RecordProtection; and interoperability of the record
protection with OpenSSL (through pyOpenSSL).
"""

import datetime
import hashlib
import hmac

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import SSL

from twisted_dtls.core.constants import DTLS_1_0, DTLS_1_2, MAX_PLAINTEXT, CipherSuite
from twisted_dtls.core.protection import RecordProtection
from twisted_dtls.core.recordlayer import OpenedRecord, RecordLayer
from twisted_dtls.core.records import pull_records, push_record
from twisted_dtls.core.suites import CIPHER_SUITES

GCM = CIPHER_SUITES[CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]
CHACHA = CIPHER_SUITES[CipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256]
HANDSHAKE = 22
APP = 23


def protection(info=GCM, salt=0):
    key = bytes((i + salt) % 256 for i in range(info.key_length))
    iv = bytes((0x40 + i + salt) % 256 for i in range(info.fixed_iv_length))
    return RecordProtection(info, key, iv)


def protected_pair(info=GCM, max_pending_records=16):
    writer = RecordLayer()
    reader = RecordLayer(max_pending_records=max_pending_records)
    writer.install_write(1, protection(info))
    assert reader.install_read(1, protection(info)) == []
    return writer, reader


def headers(datagram):
    records, reason = pull_records(datagram)
    assert reason is None
    return [(r.content_type, r.version, r.epoch, r.sequence_number) for r in records]


# -- plaintext epoch 0 -----------------------------------------------------


def test_plaintext_records_bytes():
    layer = RecordLayer()
    assert layer.read_epoch == 0 and layer.write_epoch == 0 and layer.version == DTLS_1_2
    assert layer.seal(HANDSHAKE, b"abc") == bytes.fromhex("16fefd0000000000000000" "0003" "616263")
    assert layer.seal(HANDSHAKE, b"") == bytes.fromhex("16fefd0000000000000001" "0000")


def test_version_attribute():
    layer = RecordLayer()
    layer.version = DTLS_1_0
    assert headers(layer.seal(HANDSHAKE, b"x")) == [(HANDSHAKE, DTLS_1_0, 0, 0)]


def test_plaintext_several_records_per_datagram():
    writer, reader = RecordLayer(), RecordLayer()
    datagram = writer.seal(HANDSHAKE, b"one") + writer.seal(21, b"\x01\x00") + writer.seal(HANDSHAKE, b"three")
    assert reader.open_datagram(datagram) == [
        OpenedRecord(HANDSHAKE, 0, 0, b"one"),
        OpenedRecord(21, 0, 1, b"\x01\x00"),
        OpenedRecord(HANDSHAKE, 0, 2, b"three"),
    ]
    assert reader.drops == {}


def test_plaintext_accepts_dtls_1_0_version():
    # A ClientHello may carry DTLS 1.0 in its record header (RFC 6347 §4.1).
    reader = RecordLayer()
    datagram = push_record(HANDSHAKE, DTLS_1_0, 0, 0, b"hello")
    assert reader.open_datagram(datagram) == [OpenedRecord(HANDSHAKE, 0, 0, b"hello")]


# -- protected epochs ------------------------------------------------------


@pytest.mark.parametrize("info", [GCM, CHACHA], ids=["gcm", "chacha"])
def test_protected_round_trip(info):
    writer, reader = protected_pair(info)
    datagram = b"".join(writer.seal(APP, bytes([i]) * i) for i in range(5))
    assert headers(datagram) == [(APP, DTLS_1_2, 1, i) for i in range(5)]
    assert reader.open_datagram(datagram) == [OpenedRecord(APP, 1, i, bytes([i]) * i) for i in range(5)]
    assert reader.drops == {}


def test_replay_delivered_once():
    writer, reader = protected_pair()
    datagram = writer.seal(APP, b"a") + writer.seal(APP, b"b")
    assert len(reader.open_datagram(datagram)) == 2
    assert reader.open_datagram(datagram) == []
    assert reader.drops == {"replayed": 2}
    # Plaintext epoch 0 has no replay window: anyone could forge a record
    # that moves it; the handshake layer discards repeated messages itself.
    plain_writer, plain_reader = RecordLayer(), RecordLayer()
    record = plain_writer.seal(HANDSHAKE, b"hs")
    assert len(plain_reader.open_datagram(record + record)) == 2
    assert plain_reader.drops == {}


def test_reordered_records_within_window():
    writer, reader = protected_pair()
    records = [writer.seal(APP, bytes([i])) for i in range(10)]
    got = []
    for i in (9, 3, 0, 7, 1, 2, 8, 4, 6, 5, 3, 9):
        got.extend(r.sequence_number for r in reader.open_datagram(records[i]))
    assert got == [9, 3, 0, 7, 1, 2, 8, 4, 6, 5]
    assert reader.drops == {"replayed": 2}


def test_bad_tag_does_not_move_replay_window():
    writer, reader = protected_pair()
    first = writer.seal(APP, b"first")
    second = writer.seal(APP, b"second")
    # A forgery far ahead, and one reusing the genuine second record's number.
    forged_far = push_record(APP, DTLS_1_2, 1, 10_000, bytes(40))
    tampered = bytearray(second)
    tampered[-1] ^= 1
    assert reader.open_datagram(forged_far + bytes(tampered)) == []
    assert reader.drops == {"bad_tag": 2}
    assert reader.auth_failures == 2
    assert reader.open_datagram(second + first) == [
        OpenedRecord(APP, 1, 1, b"second"),
        OpenedRecord(APP, 1, 0, b"first"),
    ]


def test_wrong_key_is_bad_tag():
    writer = RecordLayer()
    reader = RecordLayer()
    writer.install_write(1, protection(salt=1))
    reader.install_read(1, protection(salt=2))
    assert reader.open_datagram(writer.seal(APP, b"x")) == []
    assert reader.drops == {"bad_tag": 1}
    assert reader.auth_failures == 1


def test_bad_version_dropped():
    writer, reader = protected_pair()
    good = writer.seal(APP, b"ok")
    bad = bytearray(writer.seal(APP, b"bad"))
    bad[1:3] = b"\x03\x03"  # TLS 1.2 on the wire
    assert reader.open_datagram(bytes(bad) + good) == [OpenedRecord(APP, 1, 0, b"ok")]
    assert reader.drops == {"bad_version": 1}


def test_unknown_epoch_dropped():
    reader = RecordLayer()
    datagram = push_record(APP, DTLS_1_2, 5, 0, b"x") + push_record(HANDSHAKE, DTLS_1_2, 0, 0, b"y")
    assert reader.open_datagram(datagram) == [OpenedRecord(HANDSHAKE, 0, 0, b"y")]
    assert reader.drops == {"unknown_epoch": 1}


def test_plaintext_too_long_dropped():
    reader = RecordLayer()
    datagram = push_record(HANDSHAKE, DTLS_1_2, 0, 0, bytes(MAX_PLAINTEXT + 1))
    datagram += push_record(HANDSHAKE, DTLS_1_2, 0, 1, bytes(MAX_PLAINTEXT))
    assert [r.sequence_number for r in reader.open_datagram(datagram)] == [1]
    assert reader.drops == {"too_long": 1}


def test_protected_too_long_dropped():
    # Authenticates, but decrypts to more than 2^14 bytes (RFC 5246 §6.2.1).
    reader = RecordLayer()
    reader.install_read(1, protection())
    fragment = protection().seal(APP, DTLS_1_2, 1, 0, bytes(MAX_PLAINTEXT + 1))
    assert reader.open_datagram(push_record(APP, DTLS_1_2, 1, 0, fragment)) == []
    assert reader.drops == {"too_long": 1}
    assert reader.auth_failures == 0


def test_every_truncation_never_raises():
    writer, reader_template = protected_pair()
    datagram = writer.seal(APP, b"first") + writer.seal(APP, b"second record") + writer.seal(APP, b"3")
    lengths = [len(r.fragment) + 13 for r in pull_records(datagram)[0]]
    boundaries = [sum(lengths[:i]) for i in range(len(lengths) + 1)]
    for n in range(len(datagram) + 1):
        writer2, reader = protected_pair()
        opened = reader.open_datagram(datagram[:n])
        complete = max(i for i, b in enumerate(boundaries) if b <= n)
        assert [r.sequence_number for r in opened] == list(range(complete))
        if n in boundaries:
            assert reader.drops == {}
        else:
            assert sum(reader.drops.values()) == 1
            assert set(reader.drops) <= {"truncated_header", "truncated_fragment"}


def test_garbage_after_records_counted():
    writer, reader = protected_pair()
    datagram = writer.seal(APP, b"ok") + b"\x63garbage-garbage"
    assert reader.open_datagram(datagram) == [OpenedRecord(APP, 1, 0, b"ok")]
    assert reader.drops == {"unknown_content_type": 1}


# -- epoch changes ---------------------------------------------------------


def test_next_epoch_records_queued_until_install_read():
    writer, reader = RecordLayer(), RecordLayer()
    hs = writer.seal(HANDSHAKE, b"epoch0")
    writer.install_write(1, protection())
    early = [writer.seal(APP, b"early%d" % i) for i in range(3)]
    # The epoch-1 records overtake the epoch-0 one.
    assert reader.open_datagram(early[1] + early[0]) == []
    assert reader.open_datagram(hs) == [OpenedRecord(HANDSHAKE, 0, 0, b"epoch0")]
    assert reader.open_datagram(early[2]) == []
    assert reader.drops == {}
    assert reader.install_read(1, protection()) == [
        OpenedRecord(APP, 1, 1, b"early1"),
        OpenedRecord(APP, 1, 0, b"early0"),
        OpenedRecord(APP, 1, 2, b"early2"),
    ]
    assert reader.read_epoch == 1
    # The queue was emptied: replays are now caught by the window.
    assert reader.open_datagram(early[0]) == []
    assert reader.drops == {"replayed": 1}


def test_next_epoch_queue_bounded():
    writer, reader = RecordLayer(), RecordLayer(max_pending_records=3)
    writer.install_write(1, protection())
    datagram = b"".join(writer.seal(APP, bytes([i])) for i in range(5))
    assert reader.open_datagram(datagram) == []
    assert reader.drops == {"queue_full": 2}
    opened = reader.install_read(1, protection())
    # the newest are kept: junk queued earlier cannot crowd out the peer's
    # records that arrive right before its ChangeCipherSpec
    assert [r.data for r in opened] == [b"\x02", b"\x03", b"\x04"]


def test_failures_of_records_queued_with_the_switch_are_reported():
    writer, reader = RecordLayer(), RecordLayer()
    writer.install_write(1, protection())
    junk = push_record(APP, 0xFEFD, 1, 7, bytes(40))
    assert reader.open_datagram(junk) == []
    # the ChangeCipherSpec comes in a later datagram
    assert len(reader.open_datagram(push_record(20, 0xFEFD, 0, 3, b"\x01"))) == 1
    reader.install_read(1, protection())
    assert reader.switch_failures == 0  # the junk came in an earlier datagram
    other, reader2 = RecordLayer(), RecordLayer()
    other.install_write(1, protection(salt=1))
    assert reader2.open_datagram(other.seal(APP, b"wrong key")) == []
    reader2.install_read(1, protection())
    assert reader2.switch_failures == 1


def test_queued_bad_records_dropped_at_install():
    writer, reader = RecordLayer(), RecordLayer()
    writer.install_write(1, protection())
    good = writer.seal(APP, b"good")
    bad = bytearray(writer.seal(APP, b"bad"))
    bad[-3] ^= 0x10
    assert reader.open_datagram(bytes(bad) + good + good) == []
    assert reader.install_read(1, protection()) == [OpenedRecord(APP, 1, 0, b"good")]
    assert reader.drops == {"bad_tag": 1, "replayed": 1}
    assert reader.auth_failures == 1


def test_queued_records_of_other_epochs_discarded():
    writer, reader = RecordLayer(), RecordLayer()
    writer.install_write(1, protection())
    assert reader.open_datagram(writer.seal(APP, b"x")) == []
    # Jumping straight to epoch 2 leaves the queued epoch-1 record stranded.
    assert reader.install_read(2, protection(salt=3)) == []
    assert reader.drops == {"unknown_epoch": 1}


def test_records_beyond_next_epoch_not_queued():
    reader = RecordLayer()
    assert reader.open_datagram(push_record(APP, DTLS_1_2, 2, 0, bytes(30))) == []
    assert reader.drops == {"unknown_epoch": 1}
    assert reader.install_read(1, protection()) == []


def test_previous_read_epoch_still_accepted():
    # After switching to epoch 1, the peer may retransmit epoch-0 handshake
    # records; they are still delivered, tagged with their epoch.
    writer, reader = RecordLayer(), RecordLayer()
    first = writer.seal(HANDSHAKE, b"flight")
    assert len(reader.open_datagram(first)) == 1
    reader.install_read(1, protection())
    retransmission = writer.seal(HANDSHAKE, b"flight again")
    assert reader.open_datagram(retransmission + first) == [
        OpenedRecord(HANDSHAKE, 0, 1, b"flight again"),
        OpenedRecord(HANDSHAKE, 0, 0, b"flight"),
    ]
    assert reader.drops == {}
    reader.discard_previous_read_epoch()
    assert reader.open_datagram(writer.seal(HANDSHAKE, b"late")) == []
    assert reader.drops == {"unknown_epoch": 1}


def test_previous_write_epoch_retransmission():
    # A flight spanning ChangeCipherSpec: ClientKeyExchange and CCS in epoch
    # 0, Finished in epoch 1; its retransmission reuses both epochs with
    # fresh sequence numbers (RFC 6347 §4.1).
    writer, reader = RecordLayer(), RecordLayer()
    flight = writer.seal(HANDSHAKE, b"cke") + writer.seal(20, b"\x01")
    writer.install_write(1, protection())
    flight += writer.seal(HANDSHAKE, b"finished")
    assert writer.write_epoch == 1
    retransmission = writer.seal(HANDSHAKE, b"cke", epoch=0) + writer.seal(20, b"\x01", epoch=0)
    retransmission += writer.seal(HANDSHAKE, b"finished")
    assert headers(retransmission) == [(22, DTLS_1_2, 0, 2), (20, DTLS_1_2, 0, 3), (22, DTLS_1_2, 1, 1)]
    # The first transmission is lost but for its first record.
    assert reader.open_datagram(flight[:16]) == [OpenedRecord(HANDSHAKE, 0, 0, b"cke")]
    opened = reader.open_datagram(retransmission)
    assert opened == [OpenedRecord(HANDSHAKE, 0, 2, b"cke"), OpenedRecord(20, 0, 3, b"\x01")]
    assert reader.install_read(1, protection()) == [OpenedRecord(HANDSHAKE, 1, 1, b"finished")]
    # Only the previous write epoch is kept.
    writer.install_write(2, protection(salt=9))
    writer.seal(APP, b"x", epoch=1)
    with pytest.raises(ValueError):
        writer.seal(APP, b"x", epoch=0)
    writer.discard_previous_write_epoch()
    with pytest.raises(ValueError):
        writer.seal(APP, b"x", epoch=1)


def test_install_epochs_must_increase():
    layer = RecordLayer()
    with pytest.raises(ValueError):
        layer.install_write(0, None)
    with pytest.raises(ValueError):
        layer.install_read(0, None)
    layer.install_write(1, protection())
    layer.install_read(1, protection())
    with pytest.raises(ValueError):
        layer.install_write(1, protection())
    with pytest.raises(ValueError):
        layer.install_read(1, protection())
    with pytest.raises(ValueError):
        layer.install_write(0x10000, protection())


# -- local misuse and sizing -----------------------------------------------


def test_seal_payload_limit():
    layer = RecordLayer()
    assert len(layer.seal(APP, bytes(MAX_PLAINTEXT))) == MAX_PLAINTEXT + 13
    with pytest.raises(ValueError):
        layer.seal(APP, bytes(MAX_PLAINTEXT + 1))
    # The failed call did not use up a sequence number.
    assert headers(layer.seal(APP, b""))[0][3] == 1


def test_seal_unknown_epoch():
    with pytest.raises(ValueError):
        RecordLayer().seal(APP, b"x", epoch=1)


def test_set_next_write_sequence():
    layer = RecordLayer()
    layer.set_next_write_sequence(0, 7)
    assert headers(layer.seal(HANDSHAKE, b"x")) == [(HANDSHAKE, DTLS_1_2, 0, 7)]
    with pytest.raises(ValueError):
        layer.set_next_write_sequence(0, 3)
    with pytest.raises(ValueError):
        layer.set_next_write_sequence(1, 3)


def test_sequence_space_exhausted():
    writer, reader = protected_pair()
    writer.set_next_write_sequence(1, 2**48 - 1)
    last = writer.seal(APP, b"last")
    assert reader.open_datagram(last) == [OpenedRecord(APP, 1, 2**48 - 1, b"last")]
    with pytest.raises(ValueError):
        writer.seal(APP, b"one too many")
    with pytest.raises(ValueError):
        writer.set_next_write_sequence(1, 2**48 + 1)


@pytest.mark.parametrize("info, overhead", [(None, 0), (GCM, 24), (CHACHA, 16)])
def test_max_payload(info, overhead):
    layer = RecordLayer()
    if info is not None:
        layer.install_write(1, protection(info))
    assert layer.max_payload(1400) == 1400 - 13 - overhead
    # The largest payload really fits the datagram.
    assert len(layer.seal(APP, bytes(layer.max_payload(1400)))) == 1400
    assert layer.max_payload(10) == 0
    assert layer.max_payload(100_000) == MAX_PLAINTEXT
    assert layer.max_payload(1400, epoch=0) == 1400 - 13


# -- interoperability with OpenSSL -----------------------------------------


def tls12_prf(hash_name, secret, label, seed, length):
    """RFC 5246 §5 P_hash, written out for this test."""
    seed = label + seed
    out = b""
    a = seed
    while len(out) < length:
        a = hmac.new(secret, a, hash_name).digest()
        out += hmac.new(secret, a + seed, hash_name).digest()
    return out[:length]


@pytest.fixture(scope="module")
def ec_identity():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "record layer test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _pump(source):
    out = b""
    while True:
        try:
            out += source.bio_read(65536)
        except SSL.WantReadError:
            return out


def openssl_pair(cipher, identity):
    key, cert = identity

    def context(server):
        ctx = SSL.Context(SSL.DTLS_METHOD)
        ctx.set_max_proto_version(DTLS_1_2)
        ctx.set_cipher_list(cipher.encode() + b":@SECLEVEL=0")
        if server:
            ctx.use_certificate(cert)
            ctx.use_privatekey(key)
        return ctx

    server = SSL.Connection(context(True), None)
    server.set_accept_state()
    client = SSL.Connection(context(False), None)
    client.set_connect_state()
    for conn in (client, server):
        conn.set_ciphertext_mtu(1400)
    for _ in range(10):
        for a, b in ((client, server), (server, client)):
            try:
                a.do_handshake()
            except SSL.WantReadError:
                pass
            data = _pump(a)
            if data:
                b.bio_write(data)
    assert client.get_cipher_name() == cipher
    return client, server


@pytest.mark.parametrize(
    "suite",
    [
        CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        CipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM,
        CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8,
    ],
    ids=lambda s: s.name,
)
def test_interop_with_openssl(suite, ec_identity):
    info = CIPHER_SUITES[suite]
    client, server = openssl_pair(info.openssl_name, ec_identity)
    # RFC 5246 §6.3 key block: client key, server key, client IV, server IV
    # (AEAD suites have no MAC keys).
    hash_name = hashlib.new(info.prf_hash.name).name
    block = tls12_prf(
        hash_name,
        client.master_key(),
        b"key expansion",
        client.server_random() + client.client_random(),
        2 * info.key_length + 2 * info.fixed_iv_length,
    )
    k, i = info.key_length, info.fixed_iv_length
    client_key, server_key = block[:k], block[k : 2 * k]
    client_iv, server_iv = block[2 * k : 2 * k + i], block[2 * k + i :]

    # OpenSSL client -> our reader (several records in one read).
    ours = RecordLayer()
    ours.install_read(1, RecordProtection(info, client_key, client_iv))
    client.send(b"hello from openssl")
    client.send(b"second record")
    opened = ours.open_datagram(_pump(client))
    assert [(r.content_type, r.epoch, r.data) for r in opened] == [
        (APP, 1, b"hello from openssl"),
        (APP, 1, b"second record"),
    ]
    assert ours.drops == {}

    # Our writer, standing in for the server -> OpenSSL client. The server
    # already used low epoch-1 sequence numbers for its Finished.
    ours.install_write(1, RecordProtection(info, server_key, server_iv))
    ours.set_next_write_sequence(1, 100)
    client.bio_write(ours.seal(APP, b"hello from twisted_dtls") + ours.seal(APP, b"and again"))
    assert client.recv(1000) == b"hello from twisted_dtls"
    assert client.recv(1000) == b"and again"


# -- the single-record path (one record per datagram, current epoch) -------


def test_single_record_datagrams_replay_and_tamper():
    """
    One record per datagram (every application write) goes through the
    record layer's fast path: the same checks and drop reasons apply.
    """
    writer, reader = protected_pair()
    first, second = writer.seal(APP, b"one"), writer.seal(APP, b"two")
    assert reader.open_datagram(second) == [OpenedRecord(APP, 1, 1, b"two")]
    assert reader.open_datagram(first) == [OpenedRecord(APP, 1, 0, b"one")]
    assert reader.open_datagram(second) == []
    tampered = bytearray(writer.seal(APP, b"three"))
    tampered[-1] ^= 1
    assert reader.open_datagram(bytes(tampered)) == []
    assert reader.drops == {"replayed": 1, "bad_tag": 1}
    assert reader.auth_failures == 1
    # The tampered record did not move the window: the genuine one opens.
    assert reader.open_datagram(writer.seal(APP, b"four")) == [OpenedRecord(APP, 1, 3, b"four")]


def test_single_record_of_previous_epoch_still_opens():
    writer, reader = protected_pair()
    old = writer.seal(APP, b"old epoch")
    writer.install_write(2, protection(salt=5))
    assert reader.install_read(2, protection(salt=5)) == []
    assert reader.open_datagram(writer.seal(APP, b"new")) == [OpenedRecord(APP, 2, 0, b"new")]
    assert reader.open_datagram(old) == [OpenedRecord(APP, 1, 0, b"old epoch")]


def test_release_ciphers_keeps_the_association_working():
    writer, reader = protected_pair()
    assert reader.open_datagram(writer.seal(APP, b"before")) == [OpenedRecord(APP, 1, 0, b"before")]
    writer.release_ciphers()
    reader.release_ciphers()
    assert reader.open_datagram(writer.seal(APP, b"after")) == [OpenedRecord(APP, 1, 1, b"after")]
