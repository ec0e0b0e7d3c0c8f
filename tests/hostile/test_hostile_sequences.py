"""
State-machine hardening (RFC 5246 §7.3/§7.4, RFC 6347 §4.2): a server
accepts exactly the client flights the RFCs allow and nothing else.

A L{MaliciousClient} performs a real handshake up to the server's first
flight, then sends a scripted client flight (messages omitted, duplicated,
reordered, in the wrong epoch, ChangeCipherSpec missing or repeated), then
application data under the new keys. Each hostile flight is run against a
server engine behind the stateless listener and against a L{DTLSPort} on the
in-memory network. Refused means: no HandshakeCompleted (no protocol built
at the port), no application data delivered; at the port, the half-open
connection is released by the handshake timeout and a normal client is
served afterwards.

Every test also runs the correct flight through the same harness and
checks that it does complete, so a broken harness cannot pass.
"""

from __future__ import annotations

import pytest

from tests.certs import make_pki
from tests.hostile.malicious import APPLICATION_DATA, MaliciousClient
from tests.hostile.targets import EngineTarget, PortTarget, play, server_configuration, start
from tests.twisted.memorynet import MemoryNetwork
from tests.twisted.recording import clientConfiguration
from twisted_dtls.core.configuration import ClientAuthentication
from twisted_dtls.core.constants import HandshakeType

PKI = make_pki()
CLIENT_CREDENTIAL = (PKI.client_ec.chain, PKI.client_ec.key)

NO_AUTH = dict(client_authentication=ClientAuthentication.NONE)
REQUIRED = dict(client_authentication=ClientAuthentication.REQUIRED, trust_roots=(PKI.ca_cert,))
OPTIONAL = dict(client_authentication=ClientAuthentication.OPTIONAL, trust_roots=(PKI.ca_cert,))

#: name -> (server options, client has a certificate, script)
REFUSED = {
    "finished_without_ccs": (NO_AUTH, False, ["client_key_exchange", "finished"]),
    "finished_in_epoch_1_without_ccs": (NO_AUTH, False, ["client_key_exchange", "finished@1"]),
    "second_ccs": (NO_AUTH, False, ["client_key_exchange", "ccs", "ccs@1", "finished"]),
    "ccs_before_client_key_exchange": (NO_AUTH, False, ["ccs", "client_key_exchange", "finished@1"]),
    "client_auth_required_no_certificate": (REQUIRED, False, ["client_key_exchange", "ccs", "finished"]),
    "client_auth_required_empty_certificate": (
        REQUIRED, False, ["empty_certificate", "client_key_exchange", "ccs", "finished"]
    ),
    "certificate_without_certificate_verify": (
        REQUIRED, True, ["certificate", "client_key_exchange", "ccs", "finished"]
    ),
    "certificate_without_certificate_verify_optional": (
        OPTIONAL, True, ["certificate", "client_key_exchange", "ccs", "finished"]
    ),
    "certificate_verify_after_ccs": (
        REQUIRED, True, ["certificate", "client_key_exchange", "ccs", "certificate_verify", "finished"]
    ),
    "client_key_exchange_before_certificate": (
        REQUIRED, True, ["client_key_exchange", "certificate", "certificate_verify", "ccs", "finished"]
    ),
    "certificate_verify_without_certificate": (
        OPTIONAL, True, ["client_key_exchange", "certificate_verify", "ccs", "finished"]
    ),
    "client_hello_in_epoch_1": (NO_AUTH, False, ["client_key_exchange", "ccs", "client_hello", "finished"]),
    "wrong_finished": (NO_AUTH, False, ["client_key_exchange", "ccs", "bad_finished"]),
    "wrong_finished_then_right_one": (NO_AUTH, False, ["client_key_exchange", "ccs", "bad_finished", "finished"]),
    "fatal_alert_then_flight": (NO_AUTH, False, ["fatal_alert", "client_key_exchange", "ccs", "finished"]),
    "flight_then_fatal_alert_before_finished": (
        NO_AUTH, False, ["client_key_exchange", "ccs", "fatal_alert", "finished"]
    ),
    "server_hello_done_from_client": (NO_AUTH, False, [f"msg:{HandshakeType.server_hello_done}",
                                                       "client_key_exchange", "ccs", "finished"]),
}


def _client(has_certificate: bool) -> MaliciousClient:
    return MaliciousClient(CLIENT_CREDENTIAL if has_certificate else None)


def _engine(options) -> EngineTarget:
    return EngineTarget(server_configuration(PKI, **options))


def _normalClientConfiguration(options):
    if options.get("client_authentication", ClientAuthentication.NONE) is ClientAuthentication.NONE:
        return clientConfiguration(PKI)
    return clientConfiguration(PKI, certificate_chain=tuple(PKI.client_ec.chain), private_key=PKI.client_ec.key)


def assertRefused(target) -> None:
    assert not target.completed
    assert target.delivered == []


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_engine_refuses(name):
    options, has_certificate, script = REFUSED[name]
    target = _engine(options)
    client = _client(has_certificate)
    start(client, target)
    play(client, target, script)
    assertRefused(target)
    # Nothing more gets in afterwards either: the correct rest of the
    # flight and more data.
    for datagram in client.build(["finished", "app@1"]):
        target.send(datagram)
    assertRefused(target)


@pytest.mark.parametrize("options, has_certificate", [(NO_AUTH, False), (REQUIRED, True), (OPTIONAL, False)])
def test_engine_accepts_the_correct_flight(options, has_certificate):
    target = _engine(options)
    client = _client(has_certificate)
    start(client, target)
    play(client, target, client.normal_flight())
    assert target.completed
    assert target.delivered == [APPLICATION_DATA]
    assert client.view.finished_ok is True


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_port_refuses_and_keeps_serving(name):
    options, has_certificate, script = REFUSED[name]
    network = MemoryNetwork()
    target = PortTarget(network, PKI, configuration=server_configuration(PKI, **options), handshakeTimeout=10.0)
    client = _client(has_certificate)
    start(client, target)
    play(client, target, script)
    assertRefused(target)
    port = target.port
    assert port.stats.handshakesCompleted == 0
    # The half-open connection is released by the handshake timeout.
    network.run(12.0, step=1.0)
    assert port.stats.connectionsOpen == 0
    assert target.factory.protocols == []
    assert target.normal_client_works(configuration=_normalClientConfiguration(options))
    assert port.stats.handshakesCompleted == 1


def test_port_accepts_the_correct_flight():
    network = MemoryNetwork()
    target = PortTarget(network, PKI)
    client = _client(False)
    start(client, target)
    play(client, target, client.normal_flight())
    assert target.completed and target.delivered == [APPLICATION_DATA]
    # The echo server answered under the new keys.
    assert client.view.application_data == [APPLICATION_DATA]


# -- every single deviation from the correct flight ------------------------------

#: Handshake types a client might misplace: every type of RFC 5246 / 6347 /
#: 5077 and an unassigned one.
_INSERTED_TYPES = sorted({int(t) for t in HandshakeType} | {99})


def _mutations(flight: list[str]) -> list[tuple[str, list[str]]]:
    """
    Each single-step deviation from C{flight}: omit, repeat, swap with the
    next, or insert a message of another type, at every position. Scripts
    that begin with the whole correct flight are left out (what follows a
    completed handshake is not a handshake question).
    """
    out = []
    n = len(flight)
    for i in range(n):
        out.append((f"omit {flight[i]}", flight[:i] + flight[i + 1 :]))
        out.append((f"repeat {flight[i]}", flight[: i + 1] + [flight[i]] + flight[i + 1 :]))
        if i + 1 < n:
            swapped = flight[:i] + [flight[i + 1], flight[i]] + flight[i + 2 :]
            out.append((f"swap {flight[i]}/{flight[i + 1]}", swapped))
        for t in _INSERTED_TYPES:
            out.append((f"insert type {t} before {flight[i]}", flight[:i] + [f"msg:{t}"] + flight[i:]))
    return [(name, script) for name, script in out if script[:n] != flight]


@pytest.mark.parametrize(
    "options, has_certificate", [(NO_AUTH, False), (REQUIRED, True), (OPTIONAL, True)], ids=["none", "required", "optional"]
)
def test_engine_refuses_every_single_deviation(options, has_certificate):
    probe = _client(has_certificate)
    start(probe, _engine(options))
    flight = probe.normal_flight()
    mutations = _mutations(flight)
    assert len(mutations) > 40
    accepted = []
    for name, script in mutations:
        target = _engine(options)
        client = _client(has_certificate)
        start(client, target)
        play(client, target, script)
        if target.completed or target.delivered:
            accepted.append(name)
    assert accepted == []


def test_port_refuses_every_single_deviation():
    """
    The same, through one L{DTLSPort}: each hostile client from its own
    address, and a normal client served at the end.
    """
    network = MemoryNetwork()
    options = REQUIRED
    target = PortTarget(network, PKI, configuration=server_configuration(PKI, **options), handshakeTimeout=10.0)
    probe = _client(True)
    start(probe, EngineTarget(server_configuration(PKI, **options)))
    mutations = _mutations(probe.normal_flight())
    for index, (name, script) in enumerate(mutations):
        target.address = (f"127.0.{10 + index // 200}.{1 + index % 200}", 7000)
        client = _client(True)
        start(client, target)
        for datagram in client.build(script):
            target.send(datagram)
        if client.client_write is not None:
            target.send(client.build(["app@1"])[0])
        assert not target.completed, name
        assert target.delivered == [], name
    assert target.port.stats.handshakesCompleted == 0
    network.run(12.0, step=1.0)
    assert target.port.stats.connectionsOpen == 0
    assert target.normal_client_works(configuration=_normalClientConfiguration(options))


# -- application data in epoch 0 -------------------------------------------------


@pytest.mark.parametrize("make_target", ["engine", "port"])
def test_application_data_in_epoch_0_is_never_delivered(make_target):
    """
    Plaintext application data before the handshake, between the flight's
    messages, and after the handshake completed: never delivered; the data
    sent under the negotiated keys is.
    """
    target = _engine(NO_AUTH) if make_target == "engine" else PortTarget(MemoryNetwork(), PKI)
    client = _client(False)
    start(client, target)
    play(client, target, ["app@0", "client_key_exchange", "app@0", "ccs", "finished"], then_app=False)
    assert target.completed
    for datagram in client.build(["app@0", "app@1", "app@0"]):
        target.send(datagram)
    assert target.delivered == [APPLICATION_DATA]


@pytest.mark.parametrize("make_target", ["engine", "port"])
def test_nothing_after_a_fatal_alert_on_an_established_connection(make_target):
    target = _engine(NO_AUTH) if make_target == "engine" else PortTarget(MemoryNetwork(), PKI)
    client = _client(False)
    start(client, target)
    play(client, target, client.normal_flight(), then_app=False)
    assert target.completed
    for datagram in client.build(["app", "fatal_alert", "app", "client_hello", "app"]):
        target.send(datagram)
    assert target.delivered == [APPLICATION_DATA]
    if make_target == "port":
        assert target.port.stats.connectionsOpen == 0
        assert target.normal_client_works()
    else:
        assert target.closed is not None
