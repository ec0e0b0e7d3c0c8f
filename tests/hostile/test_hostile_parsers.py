"""
Property-based tests (hypothesis) for the parsers that had none: the
stateless listener (L{examine_first_datagram}), session state
(L{decode_session}, L{TicketKeys.open}), cookies
(L{CookieContext.verify_cookie}), the record layer with live keys
(L{RecordLayer.open_datagram}), and the whole port (L{DTLSPort} fed any
datagram from any address). The codecs of C{records}, C{messages} and
C{extensions} have theirs in C{tests/core}.

Contract checked: peer input never raises anything but the documented
errors (here: nothing at all, or L{DecodeError} for C{decode_session});
nothing is logged at error level (C{tests/conftest.py}).

pytest-twisted and C{@pytest.mark.parametrize} do not mix with C{@given}:
variants are drawn with C{st.sampled_from} instead.
"""

from __future__ import annotations


from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.certs import make_pki
from tests.hostile.malicious import MaliciousClient
from tests.twisted.memorynet import MemoryNetwork
from tests.twisted.recording import RecordingFactory, listen
from twisted_dtls.core.cookie import CookieContext
from twisted_dtls.core.errors import DecodeError
from twisted_dtls.core.listener import Verdict, examine_first_datagram
from twisted_dtls.core.protection import RecordProtection
from twisted_dtls.core.recordlayer import RecordLayer
from twisted_dtls.core.sessions import Session, TicketKeys, decode_session, encode_session
from twisted_dtls.core.suites import CIPHER_SUITES

PKI = make_pki()
COOKIES = CookieContext(b"h" * 32)
ADDRESS = ("127.0.0.5", 5684)
HELLO = MaliciousClient().client_hello()
SERVER = ("127.0.0.1", 4433)


def _mutate(data: bytes, edits) -> bytes:
    out = bytearray(data)
    for position, value in edits:
        if out:
            out[position % len(out)] = value
    return bytes(out)


edits = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8)


def _checkVerdict(datagram: bytes) -> None:
    verdict = examine_first_datagram(datagram, ADDRESS, COOKIES, 0.0)
    assert verdict.verdict in Verdict
    if verdict.verdict is Verdict.HELLO_VERIFY:
        # Never amplifies (RFC 6347 §4.2.1).
        assert verdict.reply is not None and len(verdict.reply) <= len(datagram)
    else:
        assert verdict.reply is None
    if verdict.verdict is Verdict.DROP:
        assert verdict.reason


@given(st.binary(max_size=600))
def test_listener_arbitrary_bytes(datagram):
    _checkVerdict(datagram)


@given(edits, st.integers(0, len(HELLO)), st.binary(max_size=40))
def test_listener_mutated_client_hello(changes, cut, tail):
    _checkVerdict(_mutate(HELLO, changes)[:cut] + tail)


@given(st.binary(max_size=64))
def test_listener_arbitrary_cookie_never_accepted(cookie):
    client = MaliciousClient()
    client.cookie = cookie
    verdict = examine_first_datagram(client.client_hello(), ADDRESS, COOKIES, 0.0)
    assert verdict.verdict is Verdict.HELLO_VERIFY


@given(st.binary(max_size=300), st.binary(max_size=64))
def test_cookie_verify_arbitrary(fields, cookie):
    assert COOKIES.verify_cookie(cookie, fields, ADDRESS, 0.0) in (True, False)
    assert not COOKIES.verify_cookie(cookie, fields, ADDRESS, 0.0) or cookie == COOKIES.make_cookie(fields, ADDRESS, 0.0)


@given(st.binary(max_size=400))
def test_decode_session_arbitrary_bytes(data):
    try:
        session = decode_session(data)
    except DecodeError:
        return
    assert isinstance(session, Session)


sessions = st.builds(
    Session,
    session_id=st.binary(max_size=32),
    cipher_suite=st.integers(0, 0xFFFF),
    master_secret=st.binary(min_size=48, max_size=48),
    extended_master_secret=st.booleans(),
    created=st.integers(0, 2**40).map(float),
    peer_certificates=st.lists(st.binary(min_size=1, max_size=300), max_size=3).map(tuple),
    alpn_protocol=st.one_of(st.none(), st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1,
                                                 max_size=30)),
    server_name=st.one_of(st.none(), st.from_regex(r"[a-z0-9]{1,20}(\.[a-z0-9]{1,20}){0,3}", fullmatch=True)),
)


@given(sessions)
def test_session_round_trip(session):
    decoded = decode_session(encode_session(session), session.session_id)
    assert decoded == session


@given(st.binary(max_size=300), st.binary(max_size=32))
def test_ticket_open_arbitrary(ticket, session_id):
    keys = TicketKeys(b"t" * 32)
    assert keys.open(ticket, session_id, 0.0) is None


@given(sessions, edits)
def test_ticket_open_tampered(session, changes):
    keys = TicketKeys(b"t" * 32)
    ticket = keys.seal(session)
    tampered = _mutate(ticket, changes)
    opened = keys.open(tampered, session.session_id, session.created)
    assert opened is None or tampered == ticket


_SUITES = sorted(CIPHER_SUITES)


@given(st.sampled_from(_SUITES), st.binary(max_size=400), edits)
def test_record_layer_with_live_keys_arbitrary(suite, junk, changes):
    info = CIPHER_SUITES[suite]
    protection = RecordProtection(info, bytes(info.key_length), bytes(info.fixed_iv_length))
    layer = RecordLayer(4)
    layer.install_read(1, protection)
    layer.install_write(1, protection)
    good = layer.seal(23, b"payload")
    assert [r.data for r in layer.open_datagram(good)] == [b"payload"]
    layer.open_datagram(junk)
    for record in layer.open_datagram(_mutate(good, changes)):
        # No protected record opens: the genuine one was already seen (the
        # window refuses it) and any other fails its tag. An edit that
        # zeroes the epoch makes an epoch-0 record, which is plaintext by
        # definition and stays readable for the handshake's retransmissions
        # (RFC 6347 §4.1); the connection refuses application data in it
        # ("plaintext_application_data", tests/core/test_bad_input.py).
        assert record.epoch == 0, f"replayed or forged record delivered: {record}"


# -- the whole port ------------------------------------------------------------------

_PORT_STATE: dict = {}


def _port():
    if not _PORT_STATE:
        network = MemoryNetwork()
        factory = RecordingFactory(echo=True)
        port = listen(network, PKI, factory, helloBurst=10**9)
        _PORT_STATE.update(network=network, port=port)
    return _PORT_STATE["network"], _PORT_STATE["port"]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(st.binary(max_size=300), st.tuples(edits, st.integers(0, len(HELLO))).map(
        lambda t: _mutate(HELLO, t[0])[: t[1]])),
    st.tuples(st.integers(1, 254), st.integers(1, 65535)),
)
def test_port_any_datagram_from_any_address(datagram, source):
    network, port = _port()
    network.inject((f"127.0.9.{source[0]}", source[1]), SERVER, datagram)
    network.flush()
    assert port.stats.connectionsOpen <= port.maxConnections
    # The in-memory network keeps every datagram; keep it small.
    del network.sent[:]


def test_port_serves_after_the_property_runs():
    network, port = _port()
    from tests.twisted.recording import connect

    clientFactory, outcome = connect(network, PKI, port, bindAddress=("127.0.0.200", 0))
    network.flush()
    assert outcome.result is not None
    outcome.result.transport.write(b"ok")
    network.flush()
    assert outcome.result.received == [b"ok"]
