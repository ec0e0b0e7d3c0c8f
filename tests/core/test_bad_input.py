"""
Garbage on the wire (RFC 6347 §4.1.2.7: invalid records are dropped
silently; §4.1.2.6: the replay window moves only for authenticated
records).

Every truncation of every datagram of a handshake, random bytes, bit-flipped
copies, records with a bad tag or a forged future sequence number: fed to
the receiving connection just before the real datagram arrives, none of
them may raise, close the connection or stop the handshake from completing
and data from flowing.

Epoch-0 records carry no authentication at all, so a well-formed plaintext
record (a forged alert, a handshake fragment with made-up bytes) can
legitimately disturb a handshake; the tests that inject such records
only require the absence of exceptions, and the ones that require
completion inject only what a DTLS stack can recognise as invalid.
"""

from __future__ import annotations

import os
import random
from typing import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.certs import make_pki
from tests.core.pairnet import CLIENT_ADDRESS, PairNetwork
from twisted_dtls.core.configuration import DTLSConfiguration
from twisted_dtls.core.connection import DTLSConnection
from twisted_dtls.core.constants import AlertDescription, AlertLevel, ContentType, HandshakeType
from twisted_dtls.core.errors import ProtocolMisuseError
from twisted_dtls.core.events import AlertReceived, CloseReason, ConnectionClosed, DataReceived
from twisted_dtls.core.listener import Verdict, examine_first_datagram
from twisted_dtls.core.messages import encode_handshake
from twisted_dtls.core.records import pull_records, push_record
from twisted_dtls.core.suites import CIPHER_SUITES

PKI = make_pki()
DTLS_1_2 = 0xFEFD


def client_config(**kw) -> DTLSConfiguration:
    kw.setdefault("trust_roots", [PKI.ca_cert])
    kw.setdefault("server_name", "localhost")
    return DTLSConfiguration(**kw)


def server_config(**kw) -> DTLSConfiguration:
    kw.setdefault("cipher_suites", tuple(s for s, i in CIPHER_SUITES.items() if i.key_exchange.uses_certificates))
    return DTLSConfiguration(certificate_chain=PKI.server_ec.chain, private_key=PKI.server_ec.key, **kw)


class InjectingNetwork(PairNetwork):
    """
    A L{PairNetwork} that, just before delivering its C{index}-th datagram,
    hands the receiving side the junk that C{inject[index](datagram)}
    makes from it (the real datagram then follows).

    While the server has no connection yet, junk goes through the
    stateless listener, as the port would do; its verdicts are kept in
    L{listener_verdicts} and its replies are not sent.
    """

    def __init__(self, *a, inject: dict[int, Callable[[bytes], list[bytes]]] | None = None, **kw):
        super().__init__(*a, **kw)
        self.inject = inject or {}
        self.delivered = 0
        self.listener_verdicts: list = []
        self.junk_count = 0
        #: the real datagrams junk was made from
        self.injected_before: list[bytes] = []

    def _deliver(self, direction: str, datagram: bytes) -> None:
        index = self.delivered
        self.delivered += 1
        make = self.inject.get(index)
        if make is not None:
            self.injected_before.append(datagram)
            for junk in make(datagram):
                self.deliver_junk(direction, junk)
        super()._deliver(direction, datagram)

    def deliver_junk(self, direction: str, junk: bytes) -> None:
        self.junk_count += 1
        endpoint = self.client if direction == "s2c" else self.server
        if endpoint.connection is None:
            self.listener_verdicts.append(examine_first_datagram(junk, CLIENT_ADDRESS, self.cookies, self.now))
            return
        endpoint.connection.receive_datagram(junk, self.now)


def new_net(**kw) -> InjectingNetwork:
    return InjectingNetwork(client_config(), server_config(), **kw)


def assert_no_close(net: PairNetwork) -> None:
    net.flush()
    assert net.client.closed is None, net.client.closed
    assert net.server.closed is None, net.server.closed


def assert_completes_and_data_flows(net: PairNetwork) -> None:
    net.run(lambda: net.client.completed is not None and net.server.completed is not None, deadline=net.now + 120)
    assert_no_close(net)
    assert net.client.completed is not None and net.server.completed is not None
    net.client_send(b"ping")
    net.run(lambda: net.server.received)
    assert net.server.received == [b"ping"]
    net.server_send(b"pong")
    net.run(lambda: net.client.received)
    assert net.client.received == [b"pong"]
    assert_no_close(net)


def _clean_handshake() -> list[tuple[float, str, bytes]]:
    net = new_net()
    net.handshake()
    assert net.client.completed and net.server.completed
    return net.sent


CLEAN = _clean_handshake()
INDICES = range(len(CLEAN))


def _describe(index: int) -> str:
    _, direction, datagram = CLEAN[index]
    records, _ = pull_records(datagram)
    return f"{index}-{direction}-" + "+".join(f"{ContentType(r.content_type).name[:4]}{r.epoch}" for r in records)


IDS = [_describe(i) for i in INDICES]


def test_recorded_handshake_has_both_directions_and_both_epochs():
    directions = {d for _, d, _ in CLEAN}
    assert directions == {"c2s", "s2c"}
    epochs = {r.epoch for _, _, d in CLEAN for r in pull_records(d)[0]}
    assert epochs == {0, 1}
    # ClientHello, HelloVerifyRequest, ClientHello, server flight, client
    # flight, server's last flight
    assert len(CLEAN) == 6


# -- truncations ------------------------------------------------------------------------


def truncations(datagram: bytes) -> list[bytes]:
    return [datagram[:n] for n in range(len(datagram))]


@pytest.mark.parametrize("index", INDICES, ids=IDS)
def test_every_truncation_of_every_datagram(index):
    net = new_net(inject={index: truncations})
    net.handshake()
    (real,) = net.injected_before
    assert net.junk_count == len(real)
    assert_completes_and_data_flows(net)
    # A truncation that goes to the stateless listener never makes it answer.
    assert all(v.verdict is Verdict.DROP for v in net.listener_verdicts)
    # The cut records were counted as framing drops by whoever received them.
    receiver = net.client if CLEAN[index][1] == "s2c" else net.server
    if receiver.connection is not None and not net.listener_verdicts:
        drops = receiver.connection.drops
        assert drops.get("truncated_header", 0) + drops.get("truncated_fragment", 0) > 0


# -- bit flips --------------------------------------------------------------------------

#: Content-type bit flips that turn handshake (22), alert (21), CCS (20)
#: and application data (23) into no content type at all.
_TYPE_FLIPS = (0x08, 0x10, 0x40, 0x80)


def _flipped(record: bytes, position: int, mask: int) -> bytes:
    out = bytearray(record)
    out[position] ^= mask
    return bytes(out)


def recognisably_invalid_flips(datagram: bytes) -> list[bytes]:
    """
    Single records of C{datagram}, each with bits flipped where a receiver
    can tell: in an epoch-0 record the content type and the version; in a
    protected record also every byte of the sequence number and of the
    fragment (nonce, ciphertext, tag), which the AEAD authenticates.
    """
    out: list[bytes] = []
    records, _ = pull_records(datagram)
    for record in records:
        raw = push_record(record.content_type, record.version, record.epoch, record.sequence_number, record.fragment)
        out += [_flipped(raw, 0, m) for m in _TYPE_FLIPS]
        out += [_flipped(raw, 1, 0x02), _flipped(raw, 2, 0x01)]
        if record.epoch >= 1:
            out += [_flipped(raw, p, 1 << (p % 8)) for p in range(5, 11)]
            out += [_flipped(raw, p, 1 << (p % 8)) for p in range(13, len(raw))]
    return out


@pytest.mark.parametrize("index", INDICES, ids=IDS)
def test_bit_flipped_copies_of_every_datagram(index):
    net = new_net(inject={index: recognisably_invalid_flips})
    net.handshake()
    assert net.junk_count > 0
    assert_completes_and_data_flows(net)
    receiver = net.client if CLEAN[index][1] == "s2c" else net.server
    if receiver.connection is not None and not net.listener_verdicts:
        drops = receiver.connection.drops
        assert drops.get("unknown_content_type", 0) > 0
        assert drops.get("bad_version", 0) > 0
        if any(r.epoch == 1 for r in pull_records(CLEAN[index][2])[0]):
            assert drops.get("bad_tag", 0) > 0


# -- random bytes -----------------------------------------------------------------------


def random_datagrams(seed: int) -> Callable[[bytes], list[bytes]]:
    rng = random.Random(seed)

    def make(datagram: bytes) -> list[bytes]:
        out = [rng.randbytes(rng.randrange(0, 1500)) for _ in range(20)]
        # valid-looking headers in protected epochs with random bodies
        for epoch in (1, 2, 0xFFFF):
            for content_type in (20, 21, 22, 23):
                body = rng.randbytes(rng.randrange(0, 200))
                out.append(push_record(content_type, DTLS_1_2, epoch, rng.randrange(0, 1 << 48), body))
        return out

    return make


@pytest.mark.parametrize("index", INDICES, ids=IDS)
def test_random_datagrams_before_every_datagram(index):
    net = new_net(inject={index: random_datagrams(index)})
    net.handshake()
    assert_completes_and_data_flows(net)


_PROTECTED_RECORD = st.builds(
    push_record,
    st.sampled_from([20, 21, 22, 23]),
    st.sampled_from([DTLS_1_2, 0xFEFF]),
    st.integers(1, 0xFFFF),
    st.integers(0, (1 << 48) - 1),
    st.binary(max_size=120),
)

_ANY_RECORD = st.builds(
    push_record,
    st.integers(0, 255),
    st.sampled_from([DTLS_1_2, 0xFEFF, 0x0303, 0]),
    st.integers(0, 0xFFFF),
    st.integers(0, (1 << 48) - 1),
    st.binary(max_size=120),
)


def _has_plaintext_record(datagram: bytes) -> bool:
    return any(r.epoch == 0 for r in pull_records(datagram)[0])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    index=st.sampled_from(list(INDICES)),
    junk=st.lists(
        st.one_of(
            st.binary(max_size=400),
            _PROTECTED_RECORD,
            st.lists(_PROTECTED_RECORD, min_size=2, max_size=4).map(b"".join),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_hypothesis_junk_in_any_handshake_state_is_harmless(index, junk):
    """
    Random datagrams and records of protected epochs in any state: the
    handshake completes. (Random bytes that happen to form an epoch-0
    record are unauthenticated input a peer could have sent; for those
    only the absence of exceptions is required.)
    """
    net = new_net(inject={index: lambda d: junk})
    net.handshake()
    if any(_has_plaintext_record(j) for j in junk):
        return
    assert_completes_and_data_flows(net)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.sampled_from(list(INDICES)), junk=st.lists(st.one_of(st.binary(max_size=300), _ANY_RECORD), max_size=8))
def test_hypothesis_any_input_never_raises(index, junk):
    net = new_net(inject={index: lambda d: junk})
    net.handshake()
    # Whatever happened, both sides are in a defined state and still obey
    # the surface: data flows or the connection reported why it closed.
    for endpoint in (net.client, net.server):
        conn = endpoint.connection
        if conn is None:
            continue
        if endpoint.closed is not None:
            assert conn.is_closed
            with pytest.raises(ProtocolMisuseError):
                conn.send(b"x")


@settings(max_examples=40, deadline=None)
@given(junk=st.lists(st.one_of(st.binary(max_size=300), _ANY_RECORD), max_size=8))
def test_hypothesis_junk_to_established_connection(junk):
    net = new_net()
    net.handshake()
    for j in junk:
        net.deliver_junk("c2s", j)
        net.deliver_junk("s2c", j)
    net.flush()
    if not any(_has_plaintext_record(j) for j in junk):
        assert_completes_and_data_flows(net)


# -- established connections: replay window ------------------------------------------------


def established() -> InjectingNetwork:
    net = new_net()
    net.handshake()
    assert_no_close(net)
    return net


def _last(net: PairNetwork, direction: str) -> bytes:
    return next(d for _, dr, d in reversed(net.sent) if dr == direction)


def test_forged_future_sequence_number_with_bad_tag_does_not_move_window():
    net = established()
    server = net.server.connection
    # One legit record, so that we know the client's current sequence number.
    net.client_send(b"first")
    net.run(lambda: net.server.received)
    legit = pull_records(_last(net, "c2s"))[0][0]
    before = server.drops.get("bad_tag", 0)
    forged = push_record(ContentType.application_data, DTLS_1_2, 1, (1 << 48) - 1, os.urandom(40))
    server.receive_datagram(forged, net.now)
    assert server.drops.get("bad_tag", 0) == before + 1
    # Also a forged record just above the legit one, and a near-future one.
    for seq in (legit.sequence_number + 1, legit.sequence_number + 64, legit.sequence_number + 1000):
        server.receive_datagram(push_record(ContentType.application_data, DTLS_1_2, 1, seq, os.urandom(40)), net.now)
    assert server.drops.get("bad_tag", 0) == before + 4
    net.flush()
    # The next legit records (lower sequence numbers than all of the above
    # but the first) are still delivered: the window did not move.
    net.client_send(b"second")
    net.client_send(b"third")
    net.run(lambda: len(net.server.received) == 3)
    assert net.server.received == [b"first", b"second", b"third"]
    assert_no_close(net)


def test_replayed_application_record_is_delivered_once():
    net = established()
    net.client_send(b"once")
    net.run(lambda: net.server.received)
    datagram = _last(net, "c2s")
    server = net.server.connection
    before = server.drops.get("replayed", 0)
    for _ in range(3):
        server.receive_datagram(datagram, net.now)
    net.flush()
    assert net.server.received == [b"once"]
    assert server.drops.get("replayed", 0) == before + 3
    assert_no_close(net)


def test_old_record_within_window_delivered_once_when_reordered():
    net = established()
    server = net.server.connection
    client = net.client.connection
    client.send(b"a")
    client.send(b"b")
    client.send(b"c")
    a, b, c = client.datagrams_to_send(net.now)
    for datagram in (c, a, c, b, a, b):
        server.receive_datagram(datagram, net.now)
    net.flush()
    assert net.server.received == [b"c", b"a", b"b"]


def test_every_datagram_duplicated_delivers_each_record_once():
    from tests.core.pairnet import Impairment

    net = InjectingNetwork(client_config(), server_config(), Impairment(duplicate=1.0))
    net.handshake()
    assert_no_close(net)
    assert net.client.completed and net.server.completed
    assert sum(1 for e in net.client.events if e is net.client.completed) == 1
    for i in range(5):
        net.client_send(b"c%d" % i)
        net.server_send(b"s%d" % i)
    net.run(lambda: False, deadline=net.now + 5)
    assert net.server.received == [b"c%d" % i for i in range(5)]
    assert net.client.received == [b"s%d" % i for i in range(5)]
    assert net.server.connection.drops.get("replayed", 0) >= 5


def test_bit_flipped_application_records_dropped_then_real_one_delivered():
    net = established()
    client = net.client.connection
    server = net.server.connection
    client.send(b"payload")
    (datagram,) = client.datagrams_to_send(net.now)
    flips = [_flipped(datagram, p, 1 << b) for p in range(3, len(datagram)) for b in range(8)]
    for flipped in flips:
        server.receive_datagram(flipped, net.now)
    net.flush()
    assert net.server.received == []
    server.receive_datagram(datagram, net.now)
    net.flush()
    assert net.server.received == [b"payload"]
    assert_no_close(net)


# -- plaintext where protection is required ------------------------------------------------


def _plaintext_app_data(seq: int) -> bytes:
    return push_record(ContentType.application_data, DTLS_1_2, 0, seq, b"unprotected")


def test_plaintext_application_data_is_never_delivered():
    # Sequence number 40: ahead of the handshake's epoch-0 records but
    # within a 64-record window, should one be kept for epoch 0.
    net = new_net(inject={i: (lambda d: [_plaintext_app_data(40)]) for i in range(1, len(CLEAN))})
    net.handshake()
    assert_no_close(net)
    for endpoint in (net.client, net.server):
        assert endpoint.connection.drops.get("plaintext_application_data", 0) >= 1
    # after the handshake, too
    for seq in (41, 1000):
        net.deliver_junk("c2s", _plaintext_app_data(seq))
        net.deliver_junk("s2c", _plaintext_app_data(seq))
    assert_completes_and_data_flows(net)
    assert b"unprotected" not in net.server.received + net.client.received
    assert not any(isinstance(e, DataReceived) and e.data == b"unprotected" for e in net.client.events + net.server.events)


def test_renegotiating_client_hello_gets_no_renegotiation_and_connection_carries_on():
    net = established()
    client = net.client.connection
    # ClientHello, message_seq after the client's Finished (CH 0, CH 1, CKE 2, Finished 3)
    hello = encode_handshake(HandshakeType.client_hello, 4, b"\xfe\xfd" + bytes(32) + b"\x00\x00\x00\x02\xc0\x2b\x01\x00")
    record = client._records.seal(ContentType.handshake, hello)
    assert pull_records(record)[0][0].epoch == 1
    net.server.connection.receive_datagram(record, net.now)
    (reply,) = net.server.connection.datagrams_to_send(net.now)
    (alert,), _ = pull_records(reply)
    assert alert.content_type == ContentType.alert and alert.epoch == 1
    client.receive_datagram(reply, net.now)
    net.flush()
    warnings = [e for e in net.client.events if isinstance(e, AlertReceived)]
    assert [w.description for w in warnings] == [AlertDescription.no_renegotiation]
    assert_completes_and_data_flows(net)


def test_hello_request_to_client_gets_no_renegotiation_and_connection_carries_on():
    net = established()
    server = net.server.connection
    # server message_seq after its Finished: SH 1, Cert 2, SKE 3, SHD 4, Finished 5
    request = server._records.seal(ContentType.handshake, encode_handshake(HandshakeType.hello_request, 6, b""))
    net.client.connection.receive_datagram(request, net.now)
    net.flush()
    net.run(lambda: any(isinstance(e, AlertReceived) for e in net.server.events))
    warnings = [e for e in net.server.events if isinstance(e, AlertReceived)]
    assert [w.description for w in warnings] == [AlertDescription.no_renegotiation]
    assert_completes_and_data_flows(net)


# -- after a fatal alert ------------------------------------------------------------------


def _assert_silent(conn: DTLSConnection, now: float) -> None:
    assert conn.is_closed
    assert conn.datagrams_to_send(now) == []
    assert conn.next_event() is None
    assert conn.get_timer() is None


def test_everything_after_a_received_fatal_alert_is_ignored():
    """
    An epoch-0 fatal alert reaches the client after its second ClientHello;
    the server's real flight and everything else then arriving is ignored.
    """
    alert = push_record(ContentType.alert, DTLS_1_2, 0, 50, bytes((AlertLevel.fatal, AlertDescription.internal_error)))
    net = new_net(inject={3: lambda d: [alert]})
    net.handshake(deadline=200)
    closed = net.client.closed
    assert closed.reason is CloseReason.ALERT_RECEIVED
    assert closed.alert == AlertDescription.internal_error
    assert net.client.completed is None
    conn = net.client.connection
    _assert_silent(conn, net.now)
    for _, direction, datagram in CLEAN + list(net.sent):
        conn.receive_datagram(datagram, net.now)
        conn.receive_datagram(os.urandom(100), net.now)
    conn.handle_timer(net.now + 1000)
    _assert_silent(conn, net.now + 1000)
    with pytest.raises(ProtocolMisuseError):
        conn.send(b"x")
    # exactly one ConnectionClosed was ever reported
    assert sum(isinstance(e, ConnectionClosed) for e in net.client.events) == 1


def test_everything_after_a_sent_fatal_alert_is_ignored():
    from twisted_dtls.core.constants import CipherSuite

    net = InjectingNetwork(
        client_config(cipher_suites=(CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,)), server_config()
    )
    net.handshake()
    assert net.server.closed.reason is CloseReason.ALERT_SENT
    conn = net.server.connection
    _assert_silent(conn, net.now)
    for _, direction, datagram in CLEAN:
        conn.receive_datagram(datagram, net.now)
        for cut in truncations(datagram)[::7]:
            conn.receive_datagram(cut, net.now)
    conn.handle_timer(net.now + 1000)
    _assert_silent(conn, net.now + 1000)
    assert sum(isinstance(e, ConnectionClosed) for e in net.server.events) == 1


# -- unauthenticated ChangeCipherSpec --------------------------------------------------------


def _plaintext_ccs(seq: int, body: bytes) -> bytes:
    return push_record(ContentType.change_cipher_spec, DTLS_1_2, 0, seq, body)


@pytest.mark.parametrize("body", [b"", b"\x02", b"\x01\x01", b"\x00"], ids=["empty", "two", "long", "zero"])
def test_malformed_plaintext_change_cipher_spec_after_handshake_is_dropped(body):
    """
    An off-path datagram of 14 bytes, a plaintext (epoch 0) ChangeCipherSpec
    whose body is not C{01}, must be dropped like any unauthenticated
    garbage (RFC 6347 §4.1.2.7). (Regression: it used to be answered with
    a fatal decode_error.)
    """
    net = established()
    net.deliver_junk("c2s", _plaintext_ccs(70, body))
    net.deliver_junk("s2c", _plaintext_ccs(70, body))
    assert_completes_and_data_flows(net)


def test_malformed_plaintext_change_cipher_spec_during_handshake_is_dropped():
    """
    The same during the handshake: a bit flip turning an epoch-0 handshake
    record (22) into a ChangeCipherSpec (20) with a long body is dropped.
    """

    def as_ccs(datagram: bytes) -> list[bytes]:
        records, _ = pull_records(datagram)
        return [
            push_record(ContentType.change_cipher_spec, r.version, 0, r.sequence_number + 30, r.fragment)
            for r in records
            if r.epoch == 0 and r.content_type == ContentType.handshake
        ]

    net = new_net(inject={3: as_ccs, 4: as_ccs})
    net.handshake()
    assert_completes_and_data_flows(net)


def test_well_formed_plaintext_change_cipher_spec_after_handshake_is_ignored():
    net = established()
    net.deliver_junk("c2s", _plaintext_ccs(70, b"\x01"))
    net.deliver_junk("s2c", _plaintext_ccs(70, b"\x01"))
    assert_completes_and_data_flows(net)


def test_plaintext_alert_after_handshake_is_ignored():
    net = established()
    fatal = push_record(ContentType.alert, DTLS_1_2, 0, 80, bytes((AlertLevel.fatal, AlertDescription.internal_error)))
    close = push_record(ContentType.alert, DTLS_1_2, 0, 81, bytes((AlertLevel.warning, AlertDescription.close_notify)))
    for junk in (fatal, close):
        net.deliver_junk("c2s", junk)
        net.deliver_junk("s2c", junk)
    assert_completes_and_data_flows(net)
    assert net.server.connection.drops.get("stale_epoch_alert", 0) == 2


def test_protected_alert_with_bad_tag_is_ignored():
    net = established()
    forged = push_record(ContentType.alert, DTLS_1_2, 1, 5000, os.urandom(26))
    net.deliver_junk("c2s", forged)
    net.deliver_junk("s2c", forged)
    assert_completes_and_data_flows(net)
    assert net.server.connection.drops.get("bad_tag", 0) >= 1


# -- reassembly budget -------------------------------------------------------------------------


def _forged_fragments(*claims: tuple[int, int, int]) -> Callable[[bytes], list[bytes]]:
    """Plaintext records, each a 1-byte fragment claiming (msg_type, length, message_seq)."""
    from twisted_dtls.core.messages import HandshakeFragment, push_handshake_fragment

    def make(datagram: bytes) -> list[bytes]:
        return [
            push_record(
                ContentType.handshake,
                DTLS_1_2,
                0,
                40 + i,
                push_handshake_fragment(HandshakeFragment(msg_type, length, seq, 0, b"x")),
            )
            for i, (msg_type, length, seq) in enumerate(claims)
        ]

    return make


def test_forged_future_fragments_cannot_exhaust_reassembly_budget():
    """
    Two forged plaintext records, each a 1-byte fragment of a future
    message (message_seq 5 and 6, beyond the server's flight) declaring
    64 KiB (the default maximum), reach the client just before the server's
    flight: together they hold the whole default 128 KiB reassembly budget.
    The real ServerHello .. ServerHelloDone (message_seq 1..4) must still
    be reassembled. (Regression: the expected messages were refused with
    C{reassembly_full} and the handshake timed out.)
    """
    net = new_net(inject={3: _forged_fragments((HandshakeType.finished, 64 * 1024, 5), (HandshakeType.finished, 64 * 1024, 6))})
    net.handshake(deadline=200)
    assert_completes_and_data_flows(net)


@pytest.mark.parametrize(
    "claim",
    [(HandshakeType.certificate, 10), (HandshakeType.server_key_exchange, 4000), (HandshakeType.certificate, 64 * 1024)],
    ids=["short", "other_type", "long"],
)
def test_one_forged_fragment_with_wrong_length_does_not_block_a_message(claim):
    """
    One forged plaintext record, a 1-byte fragment claiming message_seq 2
    (the server's Certificate) with a wrong type or length, reaches the
    client just before the server's flight. The real Certificate must
    still be reassembled. (Regression: the first claim for a message_seq
    used to stand, and every real fragment was dropped as
    C{fragment_mismatch} until the handshake timed out.)
    """
    msg_type, length = claim
    net = new_net(inject={3: _forged_fragments((msg_type, length, 2))})
    net.handshake(deadline=200)
    assert_completes_and_data_flows(net)


# -- epoch-0 replay window ---------------------------------------------------------------------

_DISCARDED_PLAINTEXT = {
    "malformed_handshake": push_record(ContentType.handshake, DTLS_1_2, 0, (1 << 48) - 1, b"\xff"),
    "plaintext_application_data": push_record(ContentType.application_data, DTLS_1_2, 0, (1 << 48) - 1, b"evil"),
    "malformed_alert": push_record(ContentType.alert, DTLS_1_2, 0, (1 << 48) - 1, b"\x01\x02\x03"),
}


@pytest.mark.parametrize("index", [1, 3, 5], ids=["before_hvr", "before_server_flight", "before_server_finished"])
@pytest.mark.parametrize("kind", sorted(_DISCARDED_PLAINTEXT))
def test_discarded_plaintext_record_with_forged_sequence_number_does_not_stall_handshake(kind, index):
    """
    One forged 14..17-byte epoch-0 record with sequence number 2^48-1,
    which the connection itself discards (its C{drops} say so), reaches
    the client. The server's real epoch-0 records that follow must still
    be accepted. (Regression: the epoch-0 replay window was marked for
    every record that parsed, so with the window at 2^48-1 every real
    epoch-0 record and retransmission was dropped as C{replayed} and the
    handshake timed out. Epoch 0 has no authentication, so a window there
    protects nothing; RFC 6347 §4.1.2.6 ties window updates to
    authentication.)
    """
    net = new_net(inject={index: lambda d: [_DISCARDED_PLAINTEXT[kind]]})
    net.handshake(deadline=200)
    assert net.client.connection.drops.get(kind, 0) == 1
    assert_completes_and_data_flows(net)
