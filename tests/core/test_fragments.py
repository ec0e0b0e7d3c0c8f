"""
Handshake fragmentation and bounded reassembly (RFC 6347 §4.2.3):
L{Reassembler} and L{pack_flight}, and a whole handshake whose plaintext
handshake messages travel as shuffled 2-byte fragments.
"""

from __future__ import annotations

import random

import pytest

from tests.certs import make_pki
from tests.core.pairnet import PairNetwork
from twisted_dtls.core.configuration import DTLSConfiguration
from twisted_dtls.core.constants import ContentType, HandshakeType
from twisted_dtls.core.fragments import FlightItem, Reassembler, pack_flight
from twisted_dtls.core.messages import HandshakeFragment, pull_handshake_fragments, push_handshake_fragment
from twisted_dtls.core.recordlayer import RecordLayer
from twisted_dtls.core.records import pull_records, push_record

PKI = make_pki()


def reassembler(max_message: int = 64 * 1024, max_total: int = 128 * 1024, max_future: int = 8) -> Reassembler:
    return Reassembler(max_message, max_total, max_future)


def frag(seq: int, body: bytes, offset: int, length: int | None = None, msg_type: int = HandshakeType.certificate):
    """A fragment of a message of C{length} bytes carrying C{body} at C{offset}."""
    return HandshakeFragment(msg_type, len(body) if length is None else length, seq, offset, body)


def pieces(seq: int, message: bytes, size: int, msg_type: int = HandshakeType.certificate) -> list[HandshakeFragment]:
    return [
        HandshakeFragment(msg_type, len(message), seq, off, message[off : off + size])
        for off in range(0, len(message), size)
    ]


def pop_all(r: Reassembler) -> list[tuple[int, int, bytes]]:
    out = []
    while (m := r.pop()) is not None:
        out.append(m)
    return out


MESSAGE = bytes(range(256)) * 3  # 768 bytes


# -- Reassembler ----------------------------------------------------------------------------


def test_whole_message_in_one_fragment():
    r = reassembler()
    assert r.add(frag(0, MESSAGE, 0)) is False
    assert r.held_bytes == len(MESSAGE)
    assert r.pop() == (HandshakeType.certificate, 0, MESSAGE)
    assert r.pop() is None
    assert r.held_bytes == 0
    assert r.next_seq == 1


def test_in_order_fragments():
    r = reassembler()
    parts = pieces(0, MESSAGE, 100)
    for p in parts[:-1]:
        r.add(p)
        assert r.pop() is None
    r.add(parts[-1])
    assert pop_all(r) == [(HandshakeType.certificate, 0, MESSAGE)]


@pytest.mark.parametrize("seed", range(5))
def test_out_of_order_and_duplicate_fragments(seed):
    rng = random.Random(seed)
    parts = pieces(0, MESSAGE, 37)
    parts = parts + rng.sample(parts, len(parts) // 2)
    rng.shuffle(parts)
    r = reassembler()
    for p in parts:
        r.add(p)
    assert pop_all(r) == [(HandshakeType.certificate, 0, MESSAGE)]
    assert r.held_bytes == 0


def test_overlapping_fragments():
    r = reassembler()
    n = len(MESSAGE)
    r.add(frag(0, MESSAGE[100:400], 100, n))
    r.add(frag(0, MESSAGE[50:150], 50, n))  # overlaps the start
    r.add(frag(0, MESSAGE[350:700], 350, n))  # overlaps the end
    r.add(frag(0, MESSAGE[120:130], 120, n))  # inside
    r.add(frag(0, MESSAGE[0:60], 0, n))
    assert r.pop() is None
    r.add(frag(0, MESSAGE[600:], 600, n))  # overlaps and completes
    assert pop_all(r) == [(HandshakeType.certificate, 0, MESSAGE)]


def test_fragment_spanning_several_held_ranges():
    r = reassembler()
    n = len(MESSAGE)
    for start in range(0, n, 100):
        r.add(frag(0, MESSAGE[start : start + 10], start, n))
    r.add(frag(0, MESSAGE, 0, n))
    assert pop_all(r) == [(HandshakeType.certificate, 0, MESSAGE)]


def test_conflicting_overlap_keeps_first_bytes():
    r = reassembler()
    n = 10
    r.add(frag(0, b"AAAAAA", 0, n))
    r.add(frag(0, b"BBBBBB", 3, n))  # bytes 3..5 conflict; 6..8 are new
    r.add(frag(0, b"CCCC", 6, n))  # 6..8 conflict, 9 new
    assert r.pop() == (HandshakeType.certificate, 0, b"AAAAAABBBC")


def test_conflicting_retransmission_over_whole_message_keeps_first_bytes():
    r = reassembler()
    r.add(frag(1, b"xxxx", 2, 8))
    r.add(frag(1, b"12345678", 0, 8))
    r.next_seq = 1
    assert r.pop() == (HandshakeType.certificate, 1, b"12xxxx78")


def test_fragment_disagreeing_on_type_or_length_cannot_block_the_real_message():
    """
    Fragments that disagree about a message's type or length mean one of
    them is forged; whichever came first, the real message (which the peer
    retransmits) must still complete, and the disagreement is counted.
    """
    # forged claim first
    r = reassembler()
    r.add(frag(0, b"zzz", 0, 7))
    r.add(frag(0, b"abc", 0, 6))
    r.add(frag(0, b"def", 3, 6))
    assert r.pop() == (HandshakeType.certificate, 0, b"abcdef")
    assert r.drops.get("fragment_mismatch") == 1
    assert r.held_bytes == 0
    # real claim first, forged ones (other length, other type) interleaved,
    # then the peer's retransmission of the whole message
    r = reassembler()
    r.add(frag(0, b"abc", 0, 6))
    r.add(frag(0, b"def", 3, 7))
    r.add(frag(0, b"def", 3, 6, msg_type=HandshakeType.server_key_exchange))
    assert r.drops.get("fragment_mismatch") == 2
    r.add(frag(0, b"abcdef", 0, 6))
    assert r.pop() == (HandshakeType.certificate, 0, b"abcdef")
    assert r.held_bytes == 0


def test_messages_delivered_in_message_seq_order():
    r = reassembler()
    r.add(frag(2, b"two", 0))
    r.add(frag(1, b"one", 0))
    assert r.pop() is None  # 0 missing
    r.add(frag(0, b"zero", 0))
    assert [m[2] for m in pop_all(r)] == [b"zero", b"one", b"two"]
    assert r.next_seq == 3


def test_old_message_fragment_reports_retransmission():
    r = reassembler()
    r.add(frag(0, b"zero", 0))
    assert r.pop() is not None
    assert r.add(frag(0, b"zero", 0)) is True
    assert r.add(frag(0, b"ze", 0, 4)) is True
    assert r.pop() is None
    assert r.held_bytes == 0


def _real_flight() -> list[tuple[int, int, bytes]]:
    """
    The server's first flight (ServerHello, Certificate, ServerKeyExchange,
    ServerHelloDone) of a real handshake between two engines, as
    (msg_type, message_seq, body).
    """
    net = PairNetwork(
        DTLSConfiguration(trust_roots=[PKI.ca_cert], server_name="localhost"),
        DTLSConfiguration(certificate_chain=PKI.server_rsa.chain, private_key=PKI.server_rsa.key),
    )
    net.handshake()
    assert net.client.completed is not None
    for _, direction, datagram in net.sent:
        records, _ = pull_records(datagram)
        fragments = [
            f
            for r in records
            if r.content_type == ContentType.handshake and r.epoch == 0
            for f in pull_handshake_fragments(r.fragment)
        ]
        if direction == "s2c" and fragments and fragments[0].msg_type == HandshakeType.server_hello:
            assert all(f.fragment_offset == 0 and len(f.body) == f.length for f in fragments)
            return [(f.msg_type, f.message_seq, f.body) for f in fragments]
    raise AssertionError("no server flight")


REAL_FLIGHT = _real_flight()


def test_real_flight_is_what_we_think():
    assert [t for t, _, _ in REAL_FLIGHT] == [
        HandshakeType.server_hello,
        HandshakeType.certificate,
        HandshakeType.server_key_exchange,
        HandshakeType.server_hello_done,
    ]
    assert [s for _, s, _ in REAL_FLIGHT] == [1, 2, 3, 4]


@pytest.mark.parametrize("seed", range(5))
def test_two_byte_fragments_of_a_real_flight_shuffled(seed):
    rng = random.Random(seed)
    parts: list[HandshakeFragment] = []
    for msg_type, seq, body in REAL_FLIGHT:
        if body:
            parts += pieces(seq, body, 2, msg_type)
        else:
            parts.append(HandshakeFragment(msg_type, 0, seq, 0, b""))
    rng.shuffle(parts)
    r = reassembler()
    r.next_seq = REAL_FLIGHT[0][1]
    delivered = []
    for p in parts:
        r.add(p)
        delivered += pop_all(r)
    assert delivered == REAL_FLIGHT
    assert r.held_bytes == 0


def test_declared_length_over_maximum_refused_before_allocation():
    r = reassembler(max_message=1000, max_total=10_000)
    r.add(frag(0, b"x", 0, 1001))
    assert r.held_bytes == 0
    assert r.drops.get("message_too_large") == 1
    # a length of 2^24 - 1 (the wire maximum) is refused just the same
    r.add(frag(1, b"", 0, (1 << 24) - 1))
    assert r.held_bytes == 0
    assert r.drops.get("message_too_large") == 2
    assert r.pop() is None
    # exactly the maximum is fine
    r.add(frag(0, b"y" * 1000, 0, 1000))
    assert r.pop() == (HandshakeType.certificate, 0, b"y" * 1000)


def test_total_held_bytes_bound():
    r = reassembler(max_message=1000, max_total=1500, max_future=8)
    r.add(frag(1, b"a", 0, 800))
    assert r.held_bytes == 800
    r.add(frag(2, b"b", 0, 800))  # 1600 > 1500
    assert r.held_bytes == 800
    assert r.drops.get("reassembly_full") == 1
    r.add(frag(0, b"zero", 0))
    r.add(frag(2, b"c", 0, 696))  # 1500: fits exactly
    assert r.held_bytes == 1500
    r.add(frag(3, b"d", 0, 1))
    assert r.drops.get("reassembly_full") == 2
    # Completing and delivering messages frees their room.
    r.add(frag(1, b"a" * 800, 0, 800))
    assert [m[1] for m in pop_all(r)] == [0, 1]
    assert r.held_bytes == 696
    r.add(frag(3, b"d", 0, 800))
    assert r.held_bytes == 1496


def test_future_messages_filling_byte_budget_do_not_block_next_message():
    """
    Fragments of future messages (unauthenticated epoch-0 input: two
    headers claiming large lengths suffice) fill the byte budget; the
    message the handshake needs next must still get in, or the handshake
    can never complete. (Regression: it was refused with
    C{reassembly_full}.)
    """
    r = reassembler(max_message=1000, max_total=1500, max_future=8)
    r.add(frag(1, b"a", 0, 800))
    r.add(frag(2, b"b", 0, 700))
    assert r.held_bytes == 1500
    r.add(frag(0, b"zero", 0))
    assert r.pop() == (HandshakeType.certificate, 0, b"zero")
    assert r.held_bytes <= 1500


def test_clear_releases_everything():
    r = reassembler()
    r.add(frag(1, b"a", 0, 500))
    r.add(frag(2, b"b", 0, 500))
    assert r.held_bytes == 1000
    r.clear()
    assert r.held_bytes == 0
    r.add(frag(0, b"zero", 0))
    assert pop_all(r) == [(HandshakeType.certificate, 0, b"zero")]


def test_future_message_seq_window():
    r = reassembler(max_future=4)
    r.next_seq = 10
    r.add(frag(14, b"too far", 0))
    assert r.drops.get("future_message") == 1
    assert r.held_bytes == 0
    r.add(frag(13, b"thirteen", 0))  # last one inside the window
    assert r.held_bytes == len(b"thirteen")
    for seq in (10, 11, 12):
        r.add(frag(seq, b"m%d" % seq, 0))
    assert [m[1] for m in pop_all(r)] == [10, 11, 12, 13]
    # the window slides with next_seq
    r.add(frag(17, b"seventeen", 0))
    assert r.drops.get("future_message") == 1
    assert r.held_bytes == len(b"seventeen")


def test_zero_length_message():
    r = reassembler()
    r.add(HandshakeFragment(HandshakeType.server_hello_done, 0, 0, 0, b""))
    assert r.pop() == (HandshakeType.server_hello_done, 0, b"")


def test_zero_length_fragment_of_a_longer_message_is_no_progress():
    r = reassembler()
    r.add(frag(0, b"", 0, 4))
    r.add(frag(0, b"", 2, 4))
    r.add(frag(0, b"", 4, 4))
    assert r.pop() is None
    r.add(frag(0, b"abcd", 0, 4))
    assert r.pop() == (HandshakeType.certificate, 0, b"abcd")


def test_overrun_fragment_dropped():
    r = reassembler()
    r.add(frag(0, b"abcdef", 2, 6))  # offset + length = 8 > 6
    r.add(frag(0, b"ab", 6, 6))  # starts at the end, reaches past it
    r.add(frag(0, b"", 7, 6))  # starts past the end
    assert r.drops.get("fragment_overrun") == 3
    assert r.held_bytes == 0
    assert r.pop() is None
    r.add(frag(0, b"abcdef", 0, 6))
    assert r.pop() == (HandshakeType.certificate, 0, b"abcdef")


# -- pack_flight ------------------------------------------------------------------------------


def _flight(sizes=(80, 1500, 300, 0), with_ccs: bool = False) -> list[FlightItem]:
    rng = random.Random(sum(sizes))
    types = [HandshakeType.server_hello, HandshakeType.certificate, HandshakeType.server_key_exchange,
             HandshakeType.server_hello_done, HandshakeType.certificate_request]
    items = [
        FlightItem(0, ContentType.handshake, types[i % len(types)], i + 1, rng.randbytes(size))
        for i, size in enumerate(sizes)
    ]
    if with_ccs:
        items.append(FlightItem(0, ContentType.change_cipher_spec, body=b"\x01"))
        items.append(FlightItem(1, ContentType.handshake, HandshakeType.finished, len(sizes) + 1, rng.randbytes(12)))
    return items


def _record_layer(with_epoch_1: bool = False) -> RecordLayer:
    layer = RecordLayer()
    if with_epoch_1:
        layer.install_write(1, None)
    return layer


def _unpack(datagrams: list[bytes]):
    """(epoch, content_type, fragments-or-body) per record, and the records' sequence numbers per epoch."""
    out = []
    seqs: dict[int, list[int]] = {}
    for d in datagrams:
        records, reason = pull_records(d)
        assert reason is None
        for r in records:
            seqs.setdefault(r.epoch, []).append(r.sequence_number)
            if r.content_type == ContentType.handshake:
                out.append((r.epoch, r.content_type, pull_handshake_fragments(r.fragment)))
            else:
                out.append((r.epoch, r.content_type, r.fragment))
    return out, seqs


def _reassemble(unpacked, first_seq: int = 1) -> list[tuple[int, int, bytes]]:
    r = reassembler()
    r.next_seq = first_seq
    messages = []
    for _, content_type, fragments in unpacked:
        if content_type != ContentType.handshake:
            continue
        for f in fragments:
            r.add(f)
        messages += pop_all(r)
    return messages


@pytest.mark.parametrize("max_size", [256, 300, 576, 1200, 1400, 9000])
def test_pack_flight_respects_datagram_size_and_reassembles(max_size):
    layer = _record_layer()
    items = _flight()
    datagrams = pack_flight(items, layer.seal, max_size, layer.overhead)
    assert datagrams
    assert all(len(d) <= max_size for d in datagrams)
    unpacked, seqs = _unpack(datagrams)
    assert _reassemble(unpacked) == [(i.msg_type, i.message_seq, i.body) for i in items]
    # record sequence numbers are fresh and increasing
    assert seqs[0] == list(range(len(seqs[0])))
    # each fragment carries its message's true length and type
    for _, _, fragments in unpacked:
        for f in fragments:
            item = items[f.message_seq - 1]
            assert (f.msg_type, f.length) == (item.msg_type, len(item.body))


def test_pack_flight_small_messages_share_a_datagram_unfragmented():
    layer = _record_layer()
    items = _flight((50, 60, 70, 0))
    datagrams = pack_flight(items, layer.seal, 1200, layer.overhead)
    assert len(datagrams) == 1
    unpacked, _ = _unpack(datagrams)
    fragments = [f for _, _, fs in unpacked for f in fs]
    assert all(f.fragment_offset == 0 and len(f.body) == f.length for f in fragments)


def test_pack_flight_fragments_what_does_not_fit():
    layer = _record_layer()
    items = _flight((3000,))
    datagrams = pack_flight(items, layer.seal, 500, layer.overhead)
    assert len(datagrams) >= 7
    assert all(len(d) <= 500 for d in datagrams)
    unpacked, _ = _unpack(datagrams)
    fragments = [f for _, _, fs in unpacked for f in fs]
    assert len(fragments) == len(datagrams)
    assert sum(len(f.body) for f in fragments) == 3000
    assert _reassemble(unpacked) == [(items[0].msg_type, 1, items[0].body)]


@pytest.mark.parametrize("max_size", [256, 1200])
def test_pack_flight_spanning_change_cipher_spec(max_size):
    layer = _record_layer(with_epoch_1=True)
    items = _flight((100, 900, 0), with_ccs=True)
    datagrams = pack_flight(items, layer.seal, max_size, layer.overhead)
    assert all(len(d) <= max_size for d in datagrams)
    unpacked, seqs = _unpack(datagrams)
    # epochs never go backwards along the flight, CCS last of epoch 0
    epochs = [e for e, _, _ in unpacked]
    assert epochs == sorted(epochs)
    kinds = [(e, ct) for e, ct, _ in unpacked]
    ccs_at = kinds.index((0, ContentType.change_cipher_spec))
    assert all(e == 0 for e, _ in kinds[:ccs_at]) and all(e == 1 for e, _ in kinds[ccs_at + 1 :])
    assert unpacked[ccs_at][2] == b"\x01"
    assert seqs[1] == [0]
    hs = [i for i in items if i.content_type == ContentType.handshake]
    assert _reassemble(unpacked) == [(i.msg_type, i.message_seq, i.body) for i in hs]


def test_pack_flight_again_uses_fresh_sequence_numbers():
    layer = _record_layer()
    items = _flight()
    first = pack_flight(items, layer.seal, 600, layer.overhead)
    second = pack_flight(items, layer.seal, 600, layer.overhead)
    _, s1 = _unpack(first)
    _, s2 = _unpack(second)
    assert min(s2[0]) > max(s1[0])
    assert len(s1[0]) == len(s2[0])


def test_pack_flight_with_protection_overhead_respects_size():
    # A protected epoch: records grow by the AEAD overhead, which
    # pack_flight must reserve.
    from twisted_dtls.core.constants import CipherSuite
    from twisted_dtls.core.protection import RecordProtection
    from twisted_dtls.core.suites import CIPHER_SUITES

    info = CIPHER_SUITES[CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]
    layer = RecordLayer()
    layer.install_write(1, RecordProtection(info, bytes(16), bytes(4)))
    items = [FlightItem(1, ContentType.handshake, HandshakeType.certificate, 1, bytes(2000))]
    for max_size in (256, 300, 1000):
        datagrams = pack_flight(items, layer.seal, max_size, layer.overhead)
        assert all(len(d) <= max_size for d in datagrams)
        # and it does not waste room: all but the last datagram are nearly full
        assert all(len(d) > max_size - 64 for d in datagrams[:-1])


# -- a whole handshake in shuffled 2-byte fragments --------------------------------------------


class TwoByteFragmentNetwork(PairNetwork):
    """
    Every plaintext handshake message except ClientHello and
    HelloVerifyRequest (which the stateless exchange needs whole) is cut
    into 2-byte fragments, one per record; the fragments of a datagram are
    shuffled and spread over several datagrams. The epoch-0 records of each
    direction are renumbered in the order they are sent, so that the
    receiver's replay window sees increasing sequence numbers.
    """

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self._next_seq = {"c2s": 0, "s2c": 0}
        self.refragmented = 0

    def _renumber(self, direction: str) -> int:
        seq = self._next_seq[direction]
        self._next_seq[direction] = seq + 1
        return seq

    def _put(self, direction: str, datagram: bytes) -> None:
        records, reason = pull_records(datagram)
        assert reason is None
        out: list[bytes] = []
        for r in records:
            if r.epoch != 0:
                out.append(push_record(r.content_type, r.version, r.epoch, r.sequence_number, r.fragment))
                continue
            if r.content_type == ContentType.handshake:
                pieces_: list[HandshakeFragment] = []
                for f in pull_handshake_fragments(r.fragment):
                    if f.msg_type in (HandshakeType.client_hello, HandshakeType.hello_verify_request) or not f.body:
                        pieces_.append(f)
                        continue
                    for off in range(0, len(f.body), 2):
                        pieces_.append(
                            HandshakeFragment(f.msg_type, f.length, f.message_seq, f.fragment_offset + off, f.body[off : off + 2])
                        )
                        self.refragmented += 1
                self.rng.shuffle(pieces_)
                for p in pieces_:
                    out.append(push_record(r.content_type, r.version, 0, self._renumber(direction), push_handshake_fragment(p)))
            else:
                out.append(push_record(r.content_type, r.version, 0, self._renumber(direction), r.fragment))
        # several datagrams of up to 25 records, epochs in order
        for start in range(0, len(out), 25):
            super()._put(direction, b"".join(out[start : start + 25]))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("credential", ["ec", "rsa"])
def test_handshake_with_every_message_in_shuffled_two_byte_fragments(credential, seed):
    cred = PKI.server_ec if credential == "ec" else PKI.server_rsa
    from twisted_dtls.core.configuration import ClientAuthentication

    net = TwoByteFragmentNetwork(
        DTLSConfiguration(
            trust_roots=[PKI.ca_cert],
            server_name="localhost",
            certificate_chain=PKI.client_ec.chain,
            private_key=PKI.client_ec.key,
        ),
        DTLSConfiguration(
            certificate_chain=cred.chain,
            private_key=cred.key,
            client_authentication=ClientAuthentication.REQUIRED,
            trust_roots=[PKI.ca_cert],
        ),
        seed=seed,
    )
    net.handshake(deadline=30)
    assert net.client.closed is None and net.server.closed is None
    assert net.client.completed is not None and net.server.completed is not None
    # Certificates both ways, key exchanges, CertificateVerify: hundreds of pieces.
    assert net.refragmented > 500
    # Nothing was retransmitted: reassembly alone did it.
    assert net.now < 1.0
    assert net.server.completed.peer_certificates[0] == PKI.client_ec.cert
    net.client_send(b"ping")
    net.run(lambda: net.server.received)
    assert net.server.received == [b"ping"]
    net.server_send(b"pong")
    net.run(lambda: net.client.received)
    assert net.client.received == [b"pong"]


def test_message_that_fits_a_datagram_is_not_split_to_fill_another():
    """
    After a 900-byte message, a 296-byte one does not fit the rest of a
    1200-byte datagram but fits a datagram of its own: it moves there whole
    instead of being split (RFC 6347 §4.2.3 allows splitting; it only costs).
    """
    from twisted_dtls.core.constants import ContentType as _CT
    from twisted_dtls.core.fragments import FlightItem, pack_flight
    from twisted_dtls.core.recordlayer import RecordLayer
    from twisted_dtls.core.messages import pull_handshake_fragments
    from twisted_dtls.core.records import pull_records

    layer = RecordLayer()
    items = [
        FlightItem(0, _CT.handshake, 11, 0, bytes(900)),
        FlightItem(0, _CT.handshake, 12, 1, bytes(296)),
        FlightItem(0, _CT.handshake, 14, 2, b""),
    ]
    datagrams = pack_flight(items, layer.seal, 1200, layer.overhead)
    fragments = [
        fragment
        for datagram in datagrams
        for record in pull_records(datagram)[0]
        for fragment in pull_handshake_fragments(record.fragment)
    ]
    assert [(f.msg_type, f.fragment_offset, len(f.body)) for f in fragments] == [(11, 0, 900), (12, 0, 296), (14, 0, 0)]
    assert len(datagrams) == 2
    assert all(len(d) <= 1200 for d in datagrams)
