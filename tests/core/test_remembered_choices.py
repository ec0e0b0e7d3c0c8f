"""
A server negotiates an offer it has seen before with the same
configuration only once: what it chose (and the checks the offer passed)
is remembered with the configuration. These tests hold that to what a
client sees: every handshake still gets its own random and key share,
assigned settings and certificates added for a name take effect at once,
resumption is still looked up, a refusal is not remembered away, and what
is remembered stays bounded.
"""

from __future__ import annotations

import pytest

from tests.certs import make_pki, self_signed
from tests.core.pairnet import PairNetwork
from tests.core.test_pair import assert_established, client_config, server_config
from twisted_dtls.core import server as server_module
from twisted_dtls.core.certificates import fingerprint_sha256
from twisted_dtls.core.connection import DTLSConnection
from twisted_dtls.core.constants import AlertDescription, CipherSuite, ContentType, HandshakeType
from twisted_dtls.core.events import ConnectionClosed
from twisted_dtls.core.messages import pull_handshake_fragments
from twisted_dtls.core.records import pull_records
from twisted_dtls.core.sessions import SessionCache, TicketKeys

PKI = make_pki()
GCM_128 = CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
CHACHA = CipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256


def _handshake(client_configuration, server_configuration) -> PairNetwork:
    net = PairNetwork(client_configuration, server_configuration)
    net.handshake()
    assert_established(net)
    return net


def _server_messages(net: PairNetwork) -> dict[int, bytes]:
    """
    The bodies of the server's epoch-0 handshake messages, by type (each
    is sent whole in these tests).
    """
    found = {}
    for _, direction, datagram in net.sent:
        if direction != "s2c":
            continue
        for record in pull_records(datagram)[0]:
            if record.content_type == ContentType.handshake and record.epoch == 0:
                for fragment in pull_handshake_fragments(record.fragment):
                    found.setdefault(fragment.msg_type, fragment.body)
    return found


@pytest.fixture
def parses(monkeypatch):
    """
    How many ClientHellos the server parsed in full.
    """
    calls = []
    real = server_module.parse_client_hello
    monkeypatch.setattr(server_module, "parse_client_hello", lambda body: calls.append(body) or real(body))
    return calls


def test_a_repeated_offer_is_negotiated_once_with_fresh_randomness_each_time(parses):
    configuration = server_config()
    nets = [_handshake(client_config(), configuration) for _ in range(3)]
    assert len(parses) == 1
    hellos = [_server_messages(net)[HandshakeType.server_hello] for net in nets]
    key_exchanges = [_server_messages(net)[HandshakeType.server_key_exchange] for net in nets]
    # The same choices: the ServerHellos differ in their random only.
    assert len({hello[:2] + hello[34:] for hello in hellos}) == 1
    assert len({hello[2:34] for hello in hellos}) == 3
    # A key share and a signature of their own: the ServerKeyExchanges
    # (params || signature) have nothing in common after the curve.
    assert len({ske[4:] for ske in key_exchanges}) == 3
    assert all(net.client.completed.cipher_suite == nets[0].client.completed.cipher_suite for net in nets)


def test_an_assigned_setting_takes_effect_for_a_remembered_offer(parses):
    configuration = server_config(cipher_suites=(GCM_128, CHACHA))
    first = _handshake(client_config(), configuration)
    assert first.server.completed.cipher_suite == GCM_128
    configuration.cipher_suites = (CHACHA,)
    second = _handshake(client_config(), configuration)
    assert second.client.completed.cipher_suite == second.server.completed.cipher_suite == CHACHA
    assert len(parses) == 2


def test_a_certificate_added_for_a_name_in_place_is_presented_at_once():
    other = self_signed("other.example")
    third = self_signed("other.example")
    pins = frozenset(fingerprint_sha256(c.cert) for c in (PKI.server_ec, other, third))
    names: dict = {}
    configuration = server_config(sni_credentials=names)

    def client():
        return client_config(server_name="other.example", pinned_sha256=pins)

    assert _handshake(client(), configuration).client.completed.peer_certificates[0] == PKI.server_ec.cert
    names["other.example"] = (other.chain, other.key)
    assert _handshake(client(), configuration).client.completed.peer_certificates[0] == other.cert
    names["other.example"] = (third.chain, third.key)
    assert _handshake(client(), configuration).client.completed.peer_certificates[0] == third.cert
    del names["other.example"]
    assert _handshake(client(), configuration).client.completed.peer_certificates[0] == PKI.server_ec.cert


def _resumed(client_configuration, server_configuration, session) -> PairNetwork:
    net = PairNetwork(client_configuration, server_configuration)
    net.client.connection = DTLSConnection(client_configuration, True, session=session)
    net.handshake()
    assert_established(net)
    return net


def test_a_session_id_is_looked_up_although_the_offer_is_remembered():
    configuration = server_config(session_cache=SessionCache())
    first = _handshake(client_config(session_tickets=False), configuration)
    _handshake(client_config(session_tickets=False), configuration)  # the offer is remembered by now
    second = _resumed(client_config(session_tickets=False), configuration, first.client.connection.session)
    assert second.client.completed.resumed and second.server.completed.resumed


def test_a_ticket_is_issued_and_looked_up_although_the_offer_is_remembered(parses):
    configuration = server_config(ticket_keys=TicketKeys(b"t" * 32))
    nets = [_handshake(client_config(), configuration) for _ in range(3)]
    # An empty session_ticket extension asks for a ticket: the offer is
    # remembered, and each handshake promises and sends its own ticket.
    assert len(parses) == 1
    tickets = {_server_messages(net)[HandshakeType.new_session_ticket] for net in nets}
    assert len(tickets) == 3
    # A ticket in the offer is looked up every time.
    for _ in range(2):
        resumed = _resumed(client_config(), configuration, nets[1].client.connection.session)
        assert resumed.client.completed.resumed and resumed.server.completed.resumed
    assert len(parses) == 3


def _client_hello_datagram(client_configuration) -> bytes:
    client = DTLSConnection(client_configuration, is_client=True)
    client.connect(0.0)
    (datagram,) = client.datagrams_to_send(0.0)
    return datagram


def _serve(configuration, datagram: bytes) -> tuple[list[bytes], ConnectionClosed | None]:
    server = DTLSConnection(configuration, is_client=False)
    server.receive_datagram(datagram, 0.0)
    events = list(iter(server.next_event, None))
    closed = next((e for e in events if isinstance(e, ConnectionClosed)), None)
    return server.datagrams_to_send(0.0), closed


def test_a_remembered_offer_with_an_unsupported_version_is_still_refused():
    configuration = server_config()
    hello = _client_hello_datagram(client_config())
    answer, closed = _serve(configuration, hello)
    assert closed is None and answer  # the server's flight: the offer is remembered
    # Same offer, same record, but the ClientHello's client_version (after
    # the record header and the handshake header) says DTLS 1.0 only.
    at = 13 + 12
    old = hello[:at] + b"\xfe\xff" + hello[at + 2 :]
    _, closed = _serve(configuration, old)
    assert closed is not None and closed.alert == AlertDescription.protocol_version


def test_a_refused_offer_is_refused_every_time(parses):
    configuration = server_config(alpn_protocols=("coap",))
    hello = _client_hello_datagram(client_config(alpn_protocols=("h2",)))
    for _ in range(3):
        _, closed = _serve(configuration, hello)
        assert closed is not None and closed.alert == AlertDescription.no_application_protocol
    assert len(parses) == 3


def test_what_is_remembered_stays_bounded():
    configuration = server_config()
    # Each client offers a different ALPN protocol, which this server
    # ignores: as many distinct offers as clients.
    for index in range(3 * server_module._CACHE_SIZE):
        _, closed = _serve(configuration, _client_hello_datagram(client_config(alpn_protocols=(f"p{index}",))))
        assert closed is None
    remembered = configuration.remembered()
    assert sum(len(entries) for entries in remembered.values()) <= server_module._CACHE_SIZE
