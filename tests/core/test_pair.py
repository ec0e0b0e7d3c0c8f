"""
Client and server engines paired in memory on an explicit timeline
(RFC 6347 §4.2.4: loss, duplication, reordering and retransmission).
"""

from __future__ import annotations


import pytest

from tests.certs import make_pki
from tests.core.pairnet import Impairment, PairNetwork
from twisted_dtls.core.configuration import ClientAuthentication, DTLSConfiguration
from twisted_dtls.core.constants import (
    AlertDescription,
    CipherSuite,
    ContentType,
    HandshakeType,
    NamedGroup,
    SignatureScheme,
)
from twisted_dtls.core.events import CloseReason
from twisted_dtls.core.records import pull_records
from twisted_dtls.core.suites import CIPHER_SUITES, KeyExchange

PKI = make_pki()

ECDSA_SUITES = [s for s, i in CIPHER_SUITES.items() if i.key_exchange is KeyExchange.ECDHE_ECDSA]
RSA_SUITES = [s for s, i in CIPHER_SUITES.items() if i.key_exchange is KeyExchange.ECDHE_RSA]
GROUPS = [NamedGroup.x25519, NamedGroup.secp256r1, NamedGroup.secp384r1]
ECDSA_CREDENTIALS = {"p256": PKI.server_ec, "p384": PKI.server_p384, "ed25519": PKI.server_ed25519}


def server_config(credential=PKI.server_ec, **kw) -> DTLSConfiguration:
    kw.setdefault("cipher_suites", tuple(CIPHER_SUITES_NO_PSK))
    return DTLSConfiguration(certificate_chain=credential.chain, private_key=credential.key, **kw)


def client_config(**kw) -> DTLSConfiguration:
    kw.setdefault("trust_roots", [PKI.ca_cert])
    kw.setdefault("server_name", "localhost")
    return DTLSConfiguration(**kw)


CIPHER_SUITES_NO_PSK = [s for s, i in CIPHER_SUITES.items() if i.key_exchange.uses_certificates]


def assert_established(net: PairNetwork, suite=None) -> None:
    assert net.client.closed is None, net.client.closed
    assert net.server.closed is None, net.server.closed
    assert net.client.completed is not None and net.server.completed is not None
    if suite is not None:
        assert net.client.completed.cipher_suite == suite
        assert net.server.completed.cipher_suite == suite


def exchange_data(net: PairNetwork) -> None:
    net.client_send(b"ping")
    net.run(lambda: net.server.received)
    assert net.server.received == [b"ping"]
    net.server_send(b"pong")
    net.run(lambda: net.client.received)
    assert net.client.received == [b"pong"]


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
@pytest.mark.parametrize("cred_name", sorted(ECDSA_CREDENTIALS))
@pytest.mark.parametrize("suite", ECDSA_SUITES, ids=lambda s: s.name)
def test_ecdsa_matrix(suite, cred_name, group):
    net = PairNetwork(
        client_config(cipher_suites=(suite,), groups=(group,)),
        server_config(ECDSA_CREDENTIALS[cred_name]),
    )
    net.handshake()
    assert_established(net, suite)
    assert net.client.completed.peer_certificates[0] == ECDSA_CREDENTIALS[cred_name].cert
    exchange_data(net)


RSA_SCHEMES = {
    "pss": (SignatureScheme.rsa_pss_rsae_sha256,),
    "pkcs1": (SignatureScheme.rsa_pkcs1_sha256,),
}


@pytest.mark.parametrize("scheme", sorted(RSA_SCHEMES))
@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
@pytest.mark.parametrize("suite", RSA_SUITES, ids=lambda s: s.name)
def test_rsa_matrix(suite, group, scheme):
    net = PairNetwork(
        client_config(cipher_suites=(suite,), groups=(group,), signature_schemes=RSA_SCHEMES[scheme]),
        server_config(PKI.server_rsa),
    )
    net.handshake()
    assert_established(net, suite)
    exchange_data(net)


def test_server_prefers_its_own_order():
    net = PairNetwork(
        client_config(cipher_suites=(CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, CipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256)),
        server_config(cipher_suites=(CipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384)),
    )
    net.handshake()
    assert_established(net, CipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256)


def test_no_common_suite_fails_with_handshake_failure():
    net = PairNetwork(
        client_config(cipher_suites=(CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,)),
        server_config(PKI.server_ec),
    )
    net.handshake()
    assert net.server.closed.reason is CloseReason.ALERT_SENT
    assert net.server.closed.alert == AlertDescription.handshake_failure
    assert net.client.closed.reason is CloseReason.ALERT_RECEIVED
    assert net.client.closed.alert == AlertDescription.handshake_failure


def test_untrusted_server_is_refused_with_alert():
    other = make_pki_other()
    net = PairNetwork(client_config(trust_roots=[other]), server_config())
    net.handshake()
    assert net.client.closed.reason is CloseReason.ALERT_SENT
    assert net.client.closed.alert in (AlertDescription.unknown_ca, AlertDescription.bad_certificate)
    assert net.server.closed.reason is CloseReason.ALERT_RECEIVED
    assert net.server.completed is None


def test_name_mismatch_is_refused():
    net = PairNetwork(client_config(server_name="not-this-host.example"), server_config())
    net.handshake()
    assert net.client.closed.reason is CloseReason.ALERT_SENT
    assert net.client.completed is None


def test_pinned_self_signed_server():
    from tests.certs import self_signed
    from twisted_dtls.core.certificates import fingerprint_sha256

    cred = self_signed("pinned.example")
    net = PairNetwork(
        client_config(trust_roots=[], pinned_sha256=frozenset({fingerprint_sha256(cred.cert)})),
        server_config(cred),
    )
    net.handshake()
    assert_established(net)


def make_pki_other():
    from tests.certs import self_signed

    return self_signed("some other root").cert


def test_client_without_certificate_answers_request_with_empty_certificate():
    net = PairNetwork(
        client_config(),
        server_config(client_authentication=ClientAuthentication.OPTIONAL, trust_roots=[PKI.ca_cert]),
    )
    net.handshake()
    assert_established(net)
    assert net.server.completed.peer_certificates == ()


def test_client_certificate_is_verified_and_reported():
    net = PairNetwork(
        client_config(certificate_chain=PKI.client_ec.chain, private_key=PKI.client_ec.key),
        server_config(client_authentication=ClientAuthentication.REQUIRED, trust_roots=[PKI.ca_cert]),
    )
    net.handshake()
    assert_established(net)
    assert net.server.completed.peer_certificates[0] == PKI.client_ec.cert


def test_required_client_certificate_missing_fails():
    net = PairNetwork(
        client_config(),
        server_config(client_authentication=ClientAuthentication.REQUIRED, trust_roots=[PKI.ca_cert]),
    )
    net.handshake()
    assert net.server.closed.alert == AlertDescription.handshake_failure
    assert net.server.completed is None


def _client_hello_datagram(extensions) -> bytes:
    from twisted_dtls.core.buffer import Buffer
    from twisted_dtls.core.messages import ClientHello, encode_handshake, push_client_hello
    from twisted_dtls.core.records import push_record

    buf = Buffer()
    push_client_hello(buf, ClientHello(0xFEFD, bytes(range(32)), b"", b"", [CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256], [0], extensions))
    return push_record(ContentType.handshake, 0xFEFD, 0, 1, encode_handshake(HandshakeType.client_hello, 1, buf.output))


def test_server_refuses_client_without_extended_master_secret():
    from twisted_dtls.core import extensions as ext
    from twisted_dtls.core.connection import DTLSConnection
    from twisted_dtls.core.constants import ExtensionType

    without_ems = [
        (ExtensionType.supported_groups, ext.encode_supported_groups([NamedGroup.secp256r1])),
        (ExtensionType.signature_algorithms, ext.encode_signature_algorithms([SignatureScheme.ecdsa_secp256r1_sha256])),
    ]
    conn = DTLSConnection(server_config(), is_client=False)
    conn.receive_datagram(_client_hello_datagram(without_ems), 0.0)
    events = [conn.next_event()]
    assert events[0].reason is CloseReason.ALERT_SENT
    assert events[0].alert == AlertDescription.handshake_failure
    alert = pull_records(conn.datagrams_to_send(0.0)[0])[0][0]
    assert alert.content_type == ContentType.alert and alert.fragment == bytes([2, AlertDescription.handshake_failure])

    lenient = DTLSConnection(server_config(require_extended_master_secret=False), is_client=False)
    lenient.receive_datagram(_client_hello_datagram(without_ems), 0.0)
    assert lenient.next_event() is None
    assert lenient.datagrams_to_send(0.0)


# -- loss, duplication, reordering -------------------------------------------------


@pytest.mark.parametrize("seed", range(10))
def test_lossy_network_completes(seed):
    net = PairNetwork(
        client_config(),
        server_config(),
        Impairment(drop=0.2, duplicate=0.2, delay=0.1),
        seed=seed,
    )
    net.handshake(deadline=300)
    assert_established(net)
    # Data under the same conditions: resend until it arrives (DTLS itself
    # does not retransmit application data).
    for _ in range(50):
        if net.server.received:
            break
        net.client_send(b"lossy")
        net.run(lambda: net.server.received, deadline=net.now + 0.5)
    assert b"lossy" in net.server.received
    assert len(set(net.server.received)) == 1


def clean_handshake_datagram_count() -> int:
    net = PairNetwork(client_config(), server_config())
    net.handshake()
    return len(net.sent)


@pytest.mark.parametrize("index", range(clean_handshake_datagram_count()))
def test_every_single_datagram_dropped_once(index):
    net = PairNetwork(client_config(), server_config(), Impairment(drop_indices=frozenset({index})))
    net.handshake(deadline=120)
    assert_established(net)
    exchange_data(net)


@pytest.mark.parametrize("index", range(clean_handshake_datagram_count()))
def test_every_single_datagram_duplicated(index):
    net = PairNetwork(client_config(), server_config(), Impairment())
    original = net._put

    def put(direction, datagram):
        original(direction, datagram)
        if len(net.sent) - 1 == index:
            original(direction, datagram)

    net._put = put
    net.handshake(deadline=120)
    assert_established(net)
    exchange_data(net)


@pytest.mark.parametrize("credential", [PKI.server_ec, PKI.server_rsa], ids=["ec", "rsa"])
def test_small_datagrams_fragment_the_handshake(credential):
    net = PairNetwork(client_config(max_datagram_size=256), server_config(credential, max_datagram_size=256))
    net.handshake()
    assert_established(net)
    assert all(len(d) <= 256 for _, _, d in net.sent)
    # the server's certificate flight really was fragmented
    fragmented = 0
    for _, direction, datagram in net.sent:
        records, _ = pull_records(datagram)
        for record in records:
            if record.content_type == ContentType.handshake and record.epoch == 0:
                body = record.fragment
                if int.from_bytes(body[9:12], "big") != int.from_bytes(body[1:4], "big"):
                    fragmented += 1
    assert fragmented >= 2
    exchange_data(net)


def test_small_datagrams_under_loss():
    for seed in range(3):
        net = PairNetwork(
            client_config(max_datagram_size=256),
            server_config(PKI.server_rsa, max_datagram_size=256),
            Impairment(drop=0.15, duplicate=0.1, delay=0.05),
            seed=seed,
        )
        net.handshake(deadline=300)
        assert_established(net)


def test_retransmission_deadlines_double_and_give_up():
    net = PairNetwork(client_config(), server_config())
    # Nothing from the server ever arrives.
    net.impairment = Impairment(drop_indices=frozenset())
    original = net._put

    def put(direction, datagram):
        if direction == "c2s":
            net.sent.append((net.now, direction, datagram))
            return
        original(direction, datagram)

    net._put = put
    net.start()
    net.run(deadline=1000)
    times = [t for t, d, _ in net.sent if d == "c2s"]
    assert times == [0.0, 1.0, 3.0, 7.0, 15.0, 31.0, 63.0]
    closed = net.client.closed
    assert closed.reason is CloseReason.TIMEOUT
    assert net.now == pytest.approx(123.0)


def test_retransmission_timeout_is_capped_at_max():
    net = PairNetwork(client_config(max_retransmissions=9), server_config())

    def put(direction, datagram):
        net.sent.append((net.now, direction, datagram))

    net._put = put
    net.start()
    net.run(deadline=10_000)
    times = [t for t, _, _ in net.sent]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert gaps == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_final_flight_is_retransmitted_when_peer_retransmits():
    # Drop the server's last flight (CCS + Finished) once: the client times
    # out, retransmits its Finished flight, and the server answers it again.
    net = PairNetwork(client_config(), server_config())
    dropped = []
    original = net._put

    def put(direction, datagram):
        records, _ = pull_records(datagram)
        if direction == "s2c" and any(r.content_type == ContentType.change_cipher_spec for r in records) and not dropped:
            dropped.append(datagram)
            net.sent.append((net.now, direction, datagram))
            return
        original(direction, datagram)

    net._put = put
    net.handshake()
    assert dropped
    assert_established(net)
    assert 1.0 <= net.now < 3.0


def test_hello_verify_request_mirrors_client_hello():
    net = PairNetwork(client_config(), server_config())
    net.handshake()
    first = pull_records(net.sent[0][2])[0][0]
    hvr = pull_records(net.hello_verify_requests[0])[0][0]
    assert hvr.sequence_number == first.sequence_number
    assert hvr.fragment[0] == HandshakeType.hello_verify_request
    assert hvr.fragment[4:6] == first.fragment[4:6]
    assert hvr.version == 0xFEFF
    assert len(net.hello_verify_requests[0]) <= len(net.sent[0][2])


def test_server_continues_message_seq_and_record_sequence_after_cookie():
    net = PairNetwork(client_config(), server_config())
    net.handshake()
    second_hello = pull_records(net.sent[2][2])[0][0]
    server_hello = pull_records(net.sent[3][2])[0][0]
    assert second_hello.fragment[0] == HandshakeType.client_hello
    assert int.from_bytes(second_hello.fragment[4:6], "big") == 1
    assert server_hello.fragment[0] == HandshakeType.server_hello
    assert int.from_bytes(server_hello.fragment[4:6], "big") == 1
    assert server_hello.sequence_number >= second_hello.sequence_number


def test_renegotiation_is_refused_and_connection_carries_on():
    from twisted_dtls.core.events import AlertReceived
    from twisted_dtls.core.messages import encode_handshake

    net = PairNetwork(client_config(), server_config())
    net.handshake()
    # A new ClientHello in epoch 1, numbered after the client's Finished (CH 0, CH 1, CKE 2, Finished 3).
    conn = net.client.connection
    hello = encode_handshake(HandshakeType.client_hello, 4, b"\xfe\xfd" + bytes(32) + b"\x00\x00\x00\x02\xc0\x2b\x01\x00")
    conn._outgoing.append(conn._records.seal(ContentType.handshake, hello))
    net.flush()
    net.run(lambda: any(isinstance(e, AlertReceived) for e in net.client.events))
    alerts = [e for e in net.client.events if isinstance(e, AlertReceived)]
    assert alerts and alerts[0].description == AlertDescription.no_renegotiation
    exchange_data(net)


def test_close_notify_both_ways():
    net = PairNetwork(client_config(), server_config())
    net.handshake()
    net.client.connection.close()
    net.flush()
    net.run(lambda: net.server.closed is not None)
    assert net.client.closed.reason is CloseReason.CLOSE_NOTIFY
    assert net.server.closed.reason is CloseReason.CLOSE_NOTIFY
    assert net.server.closed.clean


def test_failed_connection_stays_failed():
    net = PairNetwork(client_config(cipher_suites=(CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,)), server_config())
    net.handshake()
    conn = net.server.connection
    for _, direction, datagram in list(net.sent):
        if direction == "c2s":
            conn.receive_datagram(datagram, net.now)
    assert conn.datagrams_to_send(net.now) == []
    assert conn.next_event() is None
    assert conn.is_closed


def test_path_mtu_fallback_shrinks_datagrams_after_silence():
    # The path silently drops anything above 400 bytes: the server's
    # certificate flight (1200-byte datagrams) never arrives until the
    # server falls back to smaller datagrams.
    net = PairNetwork(client_config(), server_config(PKI.server_rsa))
    original = net._put

    def put(direction, datagram):
        if len(datagram) > 400:
            net.sent.append((net.now, direction, datagram))
            return
        original(direction, datagram)

    net._put = put
    net.handshake(deadline=120)
    assert_established(net)
    sizes = [len(d) for _, direction, d in net.sent if direction == "s2c"]
    assert max(sizes) > 400 and sizes[-1] <= 400


def test_path_mtu_fallback_never_goes_below_floor():
    # Nothing above 300 bytes gets through and the floor is 600: the server
    # shrinks to 600-byte datagrams, never below, and the handshake fails.
    net = PairNetwork(client_config(), server_config(PKI.server_rsa, min_datagram_size=600, max_retransmissions=8))
    original = net._put

    def put(direction, datagram):
        if direction == "s2c" and len(datagram) > 300:
            net.sent.append((net.now, direction, datagram))
            return
        original(direction, datagram)

    net._put = put
    net.handshake(deadline=2000)
    assert net.server.completed is None
    server_sizes = [len(d) for _, direction, d in net.sent if direction == "s2c" and len(d) > 300]
    assert max(server_sizes) <= 1200
    assert min(server_sizes) > 300
    assert any(500 < size <= 600 for size in server_sizes)
