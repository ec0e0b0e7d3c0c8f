"""
Pair tests for the features of issue 4 in the engine: PSK, CCM, ALPN,
use_srtp, SNI, record_size_limit, the exporter and the key log, under loss
and reordering, and their failure cases.
"""

from __future__ import annotations

import pytest

from tests.certs import make_pki, self_signed
from tests.core.pairnet import Impairment, PairNetwork
from tests.core.test_pair import assert_established, client_config, exchange_data, server_config
from twisted_dtls.core.certificates import fingerprint_sha256
from twisted_dtls.core.configuration import ClientAuthentication, DTLSConfiguration
from twisted_dtls.core.constants import AlertDescription, CipherSuite, ContentType, SRTPProtectionProfile
from twisted_dtls.core.events import CloseReason
from twisted_dtls.core.records import pull_records
from twisted_dtls.core.suites import CIPHER_SUITES

PKI = make_pki()
PSK_SUITES = [s for s, i in CIPHER_SUITES.items() if i.key_exchange.uses_psk]
KEYS = {b"client1": bytes.fromhex("000102030405060708090a0b0c0d0e0f")}


def psk_server(suites, **kw) -> DTLSConfiguration:
    return DTLSConfiguration(cipher_suites=tuple(suites), psk_lookup=KEYS.get, **kw)


def psk_client(suites, identity=b"client1", key=KEYS[b"client1"], **kw) -> DTLSConfiguration:
    return DTLSConfiguration(cipher_suites=tuple(suites), psk_identity=identity, psk=key, **kw)


@pytest.mark.parametrize("suite", PSK_SUITES, ids=lambda s: s.name)
@pytest.mark.parametrize("hint", [None, b"hint"], ids=["nohint", "hint"])
def test_psk_suites(suite, hint):
    net = PairNetwork(psk_client([suite]), psk_server([suite], psk_identity_hint=hint))
    net.handshake()
    assert_established(net, suite)
    assert net.server.completed.psk_identity == b"client1"
    assert net.server.completed.peer_certificates == ()
    exchange_data(net)


@pytest.mark.parametrize("seed", range(4))
def test_psk_under_loss(seed):
    suite = CipherSuite.TLS_PSK_WITH_AES_128_CCM_8
    net = PairNetwork(psk_client([suite]), psk_server([suite]), Impairment(drop=0.2, duplicate=0.2, delay=0.1), seed=seed)
    net.handshake(deadline=300)
    assert_established(net, suite)


def test_unknown_psk_identity_alert():
    suite = CipherSuite.TLS_PSK_WITH_AES_128_CCM_8
    net = PairNetwork(psk_client([suite], identity=b"nobody"), psk_server([suite]))
    net.handshake()
    assert net.server.closed.alert == AlertDescription.unknown_psk_identity
    assert net.client.closed.reason is CloseReason.ALERT_RECEIVED
    assert net.client.closed.alert == AlertDescription.unknown_psk_identity
    assert net.now < 5


@pytest.mark.parametrize("suite", PSK_SUITES, ids=lambda s: s.name)
def test_wrong_psk_fails_promptly_with_alert(suite):
    net = PairNetwork(psk_client([suite], key=b"\xff" * 16), psk_server([suite]))
    net.handshake()
    assert net.server.closed.reason is CloseReason.ALERT_SENT
    assert net.server.closed.alert == AlertDescription.bad_record_mac
    assert net.client.closed.reason is CloseReason.ALERT_RECEIVED
    assert net.now < 5, "a wrong key must not end in a retransmission timeout"


@pytest.mark.parametrize(
    "suite", [CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM, CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8], ids=lambda s: s.name
)
def test_ccm_suites_tag_length(suite):
    net = PairNetwork(client_config(cipher_suites=(suite,)), server_config())
    net.handshake()
    assert_established(net, suite)
    net.client_send(b"x" * 10)
    _, _, datagram = net.sent[-1]
    (record,), _ = pull_records(datagram)
    tag = 8 if suite == CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 else 16
    assert record.content_type == ContentType.application_data
    assert len(record.fragment) == 8 + 10 + tag


def test_alpn_negotiated():
    net = PairNetwork(client_config(alpn_protocols=("h2", "coap")), server_config(alpn_protocols=("coap", "h2")))
    net.handshake()
    assert net.client.completed.alpn_protocol == "coap"
    assert net.server.completed.alpn_protocol == "coap"


def test_alpn_without_common_protocol_fails():
    net = PairNetwork(client_config(alpn_protocols=("h2",)), server_config(alpn_protocols=("coap",)))
    net.handshake()
    assert net.server.closed.alert == AlertDescription.no_application_protocol
    assert net.client.closed.alert == AlertDescription.no_application_protocol


def test_alpn_not_configured_on_server_is_ignored():
    net = PairNetwork(client_config(alpn_protocols=("coap",)), server_config())
    net.handshake()
    assert_established(net)
    assert net.client.completed.alpn_protocol is None


def test_srtp_profile_negotiated_and_exporter_agrees():
    profiles = (SRTPProtectionProfile.SRTP_AEAD_AES_128_GCM, SRTPProtectionProfile.SRTP_AES128_CM_HMAC_SHA1_80)
    net = PairNetwork(
        client_config(srtp_profiles=profiles),
        server_config(srtp_profiles=(SRTPProtectionProfile.SRTP_AES128_CM_HMAC_SHA1_80,)),
    )
    net.handshake()
    assert net.client.completed.srtp_profile == SRTPProtectionProfile.SRTP_AES128_CM_HMAC_SHA1_80
    assert net.server.completed.srtp_profile == SRTPProtectionProfile.SRTP_AES128_CM_HMAC_SHA1_80
    label = b"EXTRACTOR-dtls_srtp"
    client_keys = net.client.connection.export_keying_material(label, None, 60)
    server_keys = net.server.connection.export_keying_material(label, None, 60)
    assert client_keys == server_keys and len(client_keys) == 60
    assert net.client.connection.export_keying_material(label, b"ctx", 60) != client_keys


def test_srtp_without_common_profile_leaves_it_out():
    net = PairNetwork(
        client_config(srtp_profiles=(SRTPProtectionProfile.SRTP_AEAD_AES_128_GCM,)),
        server_config(srtp_profiles=(SRTPProtectionProfile.SRTP_AES128_CM_HMAC_SHA1_80,)),
    )
    net.handshake()
    assert_established(net)
    assert net.client.completed.srtp_profile is None


def test_sni_selects_certificate():
    other = self_signed("other.example")
    sni = {"other.example": (other.chain, other.key)}
    net = PairNetwork(
        client_config(server_name="other.example", pinned_sha256=frozenset({fingerprint_sha256(other.cert)})),
        server_config(sni_credentials=sni),
    )
    net.handshake()
    assert_established(net)
    assert net.client.completed.peer_certificates[0] == other.cert
    assert net.server.completed.server_name == "other.example"

    default = PairNetwork(client_config(server_name="localhost"), server_config(sni_credentials=sni))
    default.handshake()
    assert default.client.completed.peer_certificates[0] == PKI.server_ec.cert


def test_record_size_limit_honoured_both_ways():
    net = PairNetwork(client_config(record_size_limit=256), server_config(record_size_limit=300))
    net.handshake()
    assert_established(net)
    # The server's certificate flight was cut to the client's 256-byte limit.
    for _, direction, datagram in net.sent:
        for record in pull_records(datagram)[0]:
            limit = 256 if direction == "s2c" else 300
            assert len(record.fragment) <= limit + 8 + 16
    assert net.server.connection.max_send_size == 256
    assert net.client.connection.max_send_size == 300
    with pytest.raises(ValueError, match="256"):
        net.server.connection.send(b"x" * 257)


def test_keylog_lines():
    client_lines, server_lines = [], []
    net = PairNetwork(client_config(keylog=client_lines.append), server_config(keylog=server_lines.append))
    net.handshake()
    assert client_lines == server_lines
    (line,) = client_lines
    label, client_random, master = line.split()
    assert label == "CLIENT_RANDOM" and len(client_random) == 64 and len(master) == 96


def test_exporter_before_handshake_is_misuse():
    from twisted_dtls.core.connection import DTLSConnection
    from twisted_dtls.core.errors import ProtocolMisuseError

    conn = DTLSConnection(client_config(), is_client=True)
    with pytest.raises(ProtocolMisuseError):
        conn.export_keying_material(b"EXPERIMENTAL x", None, 16)


# -- resumption ---------------------------------------------------------------------

from twisted_dtls.core.sessions import SessionCache, TicketKeys  # noqa: E402


def _resume_pair(server_kw, impairment=None, seed=0, client_kw=None):
    client_kw = client_kw or {}
    first = PairNetwork(client_config(**client_kw), server_config(**server_kw))
    first.handshake()
    assert_established(first)
    session = first.client.connection.session
    assert session is not None
    second = PairNetwork(client_config(**client_kw), server_config(**server_kw), impairment, seed=seed)
    from twisted_dtls.core.connection import DTLSConnection

    second.client.connection = DTLSConnection(second.client.connection.configuration, True, session=session)
    second.handshake(deadline=300)
    return first, second


def _messages(net, direction):
    from twisted_dtls.core.constants import HandshakeType

    types = []
    for _, d, datagram in net.sent:
        if d != direction:
            continue
        for record in pull_records(datagram)[0]:
            if record.content_type == ContentType.handshake and record.epoch == 0:
                types.append(HandshakeType(record.fragment[0]).name)
    return types


def test_resumption_by_session_id():
    cache = SessionCache()
    first, second = _resume_pair({"session_cache": cache}, client_kw={"session_tickets": False})
    assert not first.client.completed.resumed
    assert second.client.completed.resumed and second.server.completed.resumed
    assert "certificate" not in _messages(second, "s2c")
    assert "client_key_exchange" not in _messages(second, "c2s")
    assert second.client.completed.peer_certificates[0] == PKI.server_ec.cert
    exchange_data(second)


def test_resumption_by_ticket_across_servers_sharing_the_key():
    secret = b"t" * 32
    first = PairNetwork(client_config(), server_config(ticket_keys=TicketKeys(secret)))
    first.handshake()
    session = first.client.connection.session
    assert session.ticket
    assert "new_session_ticket" in _messages(first, "s2c")
    from twisted_dtls.core.connection import DTLSConnection

    other_server = PairNetwork(client_config(), server_config(ticket_keys=TicketKeys(secret)))
    other_server.client.connection = DTLSConnection(client_config(), True, session=session)
    other_server.handshake()
    assert other_server.server.completed.resumed and other_server.client.completed.resumed
    exchange_data(other_server)


@pytest.mark.parametrize("seed", range(5))
def test_abbreviated_handshake_under_loss(seed):
    first, second = _resume_pair(
        {"ticket_keys": TicketKeys(b"t" * 32)}, Impairment(drop=0.25, duplicate=0.2, delay=0.1), seed=seed
    )
    assert_established(second)
    assert second.client.completed.resumed


@pytest.mark.parametrize("index", range(4))
def test_abbreviated_handshake_every_datagram_dropped(index):
    first, second = _resume_pair({"ticket_keys": TicketKeys(b"t" * 32)}, Impairment(drop_indices=frozenset({index})))
    assert_established(second)
    assert second.client.completed.resumed


def test_forged_or_foreign_ticket_falls_back_to_full_handshake():
    first = PairNetwork(client_config(), server_config(ticket_keys=TicketKeys(b"a" * 32)))
    first.handshake()
    session = first.client.connection.session
    from dataclasses import replace

    from twisted_dtls.core.connection import DTLSConnection

    forged = replace(session, ticket=session.ticket[:-1] + bytes([session.ticket[-1] ^ 1]))
    for offered, keys in ((session, TicketKeys(b"b" * 32)), (forged, TicketKeys(b"a" * 32))):
        net = PairNetwork(client_config(), server_config(ticket_keys=keys))
        net.client.connection = DTLSConnection(client_config(), True, session=offered)
        net.handshake()
        assert_established(net)
        assert not net.client.completed.resumed and not net.server.completed.resumed
        assert "certificate" in _messages(net, "s2c")


def test_stale_ticket_falls_back_to_full_handshake():
    clock = [1_000_000.0]
    keys = TicketKeys(b"a" * 32, lifetime=60)
    first = PairNetwork(client_config(), server_config(ticket_keys=keys, wall_clock=lambda: clock[0]))
    first.handshake()
    session = first.client.connection.session
    clock[0] += 120
    from twisted_dtls.core.connection import DTLSConnection

    net = PairNetwork(client_config(), server_config(ticket_keys=keys, wall_clock=lambda: clock[0]))
    net.client.connection = DTLSConnection(client_config(), True, session=session)
    net.handshake()
    assert_established(net)
    assert not net.server.completed.resumed


def test_session_cache_is_bounded():
    cache = SessionCache(max_entries=3)
    for _ in range(5):
        net = PairNetwork(client_config(session_tickets=False), server_config(session_cache=cache))
        net.handshake()
    assert len(cache) == 3


# -- every feature at once, under loss and reordering -------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_features_together_under_loss_and_reordering(seed):
    other = self_signed("other.example")
    lines = []
    server = server_config(
        alpn_protocols=("coap",),
        srtp_profiles=(SRTPProtectionProfile.SRTP_AES128_CM_HMAC_SHA1_80,),
        sni_credentials={"other.example": (other.chain, other.key)},
        client_authentication=ClientAuthentication.REQUIRED,
        trust_roots=[PKI.ca_cert],
        record_size_limit=400,
        keylog=lines.append,
        max_datagram_size=300,
    )
    client = client_config(
        server_name="other.example",
        pinned_sha256=frozenset({fingerprint_sha256(other.cert)}),
        alpn_protocols=("h2", "coap"),
        srtp_profiles=(SRTPProtectionProfile.SRTP_AEAD_AES_128_GCM, SRTPProtectionProfile.SRTP_AES128_CM_HMAC_SHA1_80),
        certificate_chain=PKI.client_ec.chain,
        private_key=PKI.client_ec.key,
        record_size_limit=300,
        max_datagram_size=300,
    )
    net = PairNetwork(client, server, Impairment(drop=0.2, duplicate=0.2, delay=0.1), seed=seed)
    net.handshake(deadline=300)
    assert_established(net)
    for side in (net.client.completed, net.server.completed):
        assert side.alpn_protocol == "coap"
        assert side.srtp_profile == SRTPProtectionProfile.SRTP_AES128_CM_HMAC_SHA1_80
    assert net.client.completed.peer_certificates[0] == other.cert
    assert net.server.completed.peer_certificates[0] == PKI.client_ec.cert
    assert all(len(d) <= 300 for _, _, d in net.sent)
    assert len(lines) == 1
    label = b"EXTRACTOR-dtls_srtp"
    assert net.client.connection.export_keying_material(label, None, 30) == net.server.connection.export_keying_material(
        label, None, 30
    )


def test_bad_certificate_verify_is_refused_with_decrypt_error():
    from cryptography.hazmat.primitives.asymmetric import ec

    wrong_key = ec.generate_private_key(ec.SECP256R1())
    net = PairNetwork(
        client_config(certificate_chain=PKI.client_ec.chain, private_key=wrong_key),
        server_config(
            client_authentication=ClientAuthentication.REQUIRED,
            trust_roots=[PKI.ca_cert],
        ),
    )
    net.handshake()
    assert net.server.closed.reason is CloseReason.ALERT_SENT
    assert net.server.closed.alert == AlertDescription.decrypt_error
    assert net.server.completed is None and net.client.completed is None


def test_untrusted_client_certificate_is_refused():
    other = self_signed("client.example")
    net = PairNetwork(
        client_config(certificate_chain=other.chain, private_key=other.key),
        server_config(
            client_authentication=ClientAuthentication.OPTIONAL,
            trust_roots=[PKI.ca_cert],
        ),
    )
    net.handshake()
    assert net.server.closed.reason is CloseReason.ALERT_SENT
    assert net.server.closed.alert in (AlertDescription.unknown_ca, AlertDescription.bad_certificate)
    assert net.server.completed is None
