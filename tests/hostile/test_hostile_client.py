"""
State-machine hardening of the client role (RFC 5246 §7.3/§7.4, RFC 6347
§4.2, RFC 5077 §3.3): our client accepts exactly the server flights the RFCs
allow and nothing else.

A L{MaliciousServer} performs a real ECDHE-ECDSA handshake against a client
L{DTLSConnection} (in memory, explicit time), optionally after a
HelloVerifyRequest, and sends scripted flights: messages omitted, repeated,
swapped, inserted, ChangeCipherSpec missing or repeated, then application
data under the new keys. Refused means: no HandshakeCompleted, no
application data delivered and, where the deviation is detectable, the
right fatal alert on the wire.

Every group of tests also runs the unmodified script through the same
harness and checks that it does complete, so a broken harness cannot pass.
"""

from __future__ import annotations

import pytest

from tests.certs import make_pki
from tests.hostile.malicious_server import APPLICATION_DATA, FLIGHT_4, FLIGHT_6, MaliciousServer
from twisted_dtls.core import extensions as ext
from twisted_dtls.core.configuration import DTLSConfiguration
from twisted_dtls.core.connection import DTLSConnection
from twisted_dtls.core.constants import (
    AlertDescription as AD,
    AlertLevel,
    CipherSuite,
    ExtensionType,
    HandshakeType,
    NamedGroup,
    SignatureScheme,
)
from twisted_dtls.core.events import CloseReason, ConnectionClosed, DataReceived, HandshakeCompleted

PKI = make_pki()
SERVER_CREDENTIAL = (PKI.server_ec.chain, PKI.server_ec.key)

NORMAL = FLIGHT_4 + FLIGHT_6
WITH_HVR = ["hello_verify_request"] + NORMAL
WITH_REQUEST = FLIGHT_4[:3] + ["certificate_request"] + FLIGHT_4[3:] + FLIGHT_6
WITH_TICKET = FLIGHT_4 + ["new_session_ticket"] + FLIGHT_6


class ClientUnderTest:
    """
    Our client engine wired to a L{MaliciousServer}, with a clock of its own.
    """

    def __init__(self, server: MaliciousServer, session=None, **overrides):
        overrides.setdefault("server_name", "localhost")
        self.configuration = DTLSConfiguration(trust_roots=(PKI.ca_cert,), **overrides)
        self.connection = DTLSConnection(self.configuration, is_client=True, session=session)
        self.server = server
        self.now = 0.0
        self.events: list = []

    def connect(self) -> None:
        self.connection.connect(self.now)
        self._pump()

    def send(self, datagram: bytes) -> None:
        self.connection.receive_datagram(datagram, self.now)
        self._pump()

    def _pump(self) -> None:
        for out in self.connection.datagrams_to_send(self.now):
            self.server.receive(out)
        while (event := self.connection.next_event()) is not None:
            self.events.append(event)

    def run(self, seconds: float) -> None:
        """
        Let the client's retransmission timer run for C{seconds}.
        """
        end = self.now + seconds
        while (deadline := self.connection.get_timer()) is not None and deadline <= end:
            self.now = deadline
            self.connection.handle_timer(self.now)
            self._pump()
        self.now = end

    @property
    def completed(self) -> bool:
        return any(isinstance(e, HandshakeCompleted) for e in self.events)

    @property
    def delivered(self) -> list[bytes]:
        return [e.data for e in self.events if isinstance(e, DataReceived)]

    @property
    def closed(self) -> ConnectionClosed | None:
        return next((e for e in self.events if isinstance(e, ConnectionClosed)), None)

    @property
    def alert_sent(self) -> int | None:
        """
        The fatal alert the client sent, checked on the wire as well as in
        its close event.
        """
        closed = self.closed
        if closed is None or closed.reason is not CloseReason.ALERT_SENT:
            return None
        assert (AlertLevel.fatal, closed.alert) in self.server.view.alerts
        return closed.alert


def handshake(script, server=None, then_app=True, session=None, **overrides) -> ClientUnderTest:
    """
    Connect, send C{script} step by step (the client's answers reach the
    server in between), then application data under the new keys if they
    exist, then let the client's timers run.
    """
    server = server or MaliciousServer(SERVER_CREDENTIAL)
    client = ClientUnderTest(server, session=session, **overrides)
    client.connect()
    assert server.view.client_hellos == 1
    for step in script:
        for datagram in server.build([step]):
            client.send(datagram)
    if then_app and server.has_keys:
        for datagram in server.build(["app@1"]):
            client.send(datagram)
    client.run(5.0)
    return client


def assertRefused(client: ClientUnderTest, alert: int | None = None) -> None:
    assert not client.completed
    assert client.delivered == []
    if alert is not None:
        assert client.alert_sent == alert


# -- the controls --------------------------------------------------------------------


@pytest.mark.parametrize(
    "script", [NORMAL, WITH_HVR, WITH_REQUEST], ids=["plain", "hello_verify_request", "certificate_request"]
)
def test_the_correct_script_completes(script):
    client = handshake(script)
    assert client.completed
    assert client.delivered == [APPLICATION_DATA]
    assert client.closed is None
    view = client.server.view
    assert view.finished_ok is True
    assert view.skipped == []
    assert view.client_hellos == (2 if "hello_verify_request" in script else 1)
    # Our client answered a CertificateRequest, without a credential, with
    # an empty Certificate (RFC 5246 §7.4.6).
    expected = [HandshakeType.client_hello] * view.client_hellos
    if "certificate_request" in script:
        expected.append(HandshakeType.certificate)
    assert view.messages == expected + [HandshakeType.client_key_exchange, HandshakeType.finished]


def test_the_correct_ticket_script_completes():
    server = MaliciousServer(SERVER_CREDENTIAL)
    server.ticket_extension = True
    client = handshake(WITH_TICKET, server=server)
    assert client.completed and client.delivered == [APPLICATION_DATA]
    assert client.connection.session.ticket == b"opaque hostile ticket"


def test_a_duplicated_epoch_0_change_cipher_spec_is_a_retransmission():
    """
    A second ChangeCipherSpec in epoch 0 cannot be told from the network
    duplicating the first (RFC 6347 §4.1.2.6): it is stale once epoch 1 is
    read, and dropped.
    """
    client = handshake(FLIGHT_4 + ["ccs", "ccs@0", "finished"])
    assert client.completed and client.delivered == [APPLICATION_DATA]


def test_several_hello_verify_requests_are_answered():
    client = handshake(["hello_verify_request"] * 3 + NORMAL)
    assert client.completed and client.server.view.client_hellos == 4


def test_too_many_hello_verify_requests_are_refused():
    client = handshake(["hello_verify_request"] * 5 + NORMAL)
    assertRefused(client, AD.handshake_failure)


# -- named deviations ------------------------------------------------------------------

S = NORMAL

#: name -> (script, ServerHello/SKE changes, client configuration, alert or None)
REFUSED = {
    "server_hello_twice": (["server_hello"] + S, {}, {}, AD.unexpected_message),
    "certificate_omitted": ([s for s in S if s != "certificate"], {}, {}, AD.unexpected_message),
    "server_key_exchange_omitted": ([s for s in S if s != "server_key_exchange"], {}, {}, AD.unexpected_message),
    "server_hello_done_before_server_key_exchange": (
        ["server_hello", "certificate", "server_hello_done", "server_key_exchange", "ccs", "finished"],
        {}, {}, AD.unexpected_message,
    ),
    "finished_without_ccs_in_epoch_0": (FLIGHT_4 + ["finished"], {}, {}, AD.unexpected_message),
    # The second one under the new keys: no duplicate of the first.
    "second_ccs": (FLIGHT_4 + ["ccs", "ccs", "finished"], {}, {}, AD.unexpected_message),
    "wrong_finished": (FLIGHT_4 + ["ccs", "bad_finished"], {}, {}, AD.decrypt_error),
    "wrong_finished_then_right_one": (FLIGHT_4 + ["ccs", "bad_finished", "finished"], {}, {}, AD.decrypt_error),
    "new_session_ticket_without_extension": (WITH_TICKET, {}, {}, AD.unexpected_message),
    "new_session_ticket_when_client_offered_none": (
        WITH_TICKET, {}, {"session_tickets": False}, AD.unexpected_message
    ),
    "certificate_request_after_server_hello_done": (
        FLIGHT_4 + ["certificate_request"] + FLIGHT_6, {}, {}, AD.unexpected_message
    ),
    "certificate_request_before_server_key_exchange": (
        ["server_hello", "certificate", "certificate_request", "server_key_exchange", "server_hello_done"] + FLIGHT_6,
        {}, {}, AD.unexpected_message,
    ),
    "hello_verify_request_after_server_hello": (
        ["server_hello", "hello_verify_request"] + S[1:], {}, {}, AD.unexpected_message
    ),
    "client_hello_type_from_server": (
        ["server_hello", f"msg:{HandshakeType.client_hello}"] + S[1:], {}, {}, AD.unexpected_message
    ),
    "client_key_exchange_type_from_server": (
        FLIGHT_4[:3] + [f"msg:{HandshakeType.client_key_exchange}"] + FLIGHT_4[3:] + FLIGHT_6,
        {}, {}, AD.unexpected_message,
    ),
    "suite_not_offered": (
        S, {"suite": CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384},
        {"cipher_suites": (CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,)}, AD.illegal_parameter,
    ),
    "suite_unknown": (S, {"suite": 0x1301}, {}, AD.illegal_parameter),
    "group_not_offered": (S, {"group": NamedGroup.secp256r1}, {"groups": (NamedGroup.x25519,)}, AD.illegal_parameter),
    "scheme_not_offered": (
        S, {"scheme": SignatureScheme.ecdsa_secp384r1_sha384},
        {"signature_schemes": (SignatureScheme.ecdsa_secp256r1_sha256,)}, AD.illegal_parameter,
    ),
    # A real ECDSA signature, labelled as RSA-PSS (which we did offer).
    "scheme_of_another_algorithm": (S, {"claimed_scheme": SignatureScheme.rsa_pss_rsae_sha256}, {}, AD.illegal_parameter),
    "ske_signed_with_the_wrong_key": (S, {"signing_key": PKI.client_ec.key}, {}, AD.decrypt_error),
    "unsolicited_extension_alpn": (
        S, {"extra_extensions": [(ExtensionType.application_layer_protocol_negotiation, ext.encode_alpn([b"h2"]))]},
        {}, AD.unsupported_extension,
    ),
    "unsolicited_extension_session_ticket": (S, {"ticket_extension": True}, {"session_tickets": False},
                                             AD.unsupported_extension),
    "unsolicited_extension_unknown": (S, {"extra_extensions": [(0xFAFA, b"")]}, {}, AD.unsupported_extension),
    "server_version_dtls_1_0": (S, {"version": 0xFEFF}, {}, AD.protocol_version),
    "server_version_tls_1_2": (S, {"version": 0x0303}, {}, AD.protocol_version),
    "hello_verify_request_version_tls_1_2": (
        ["hello_verify_request"] + S, {"hello_verify_version": 0x0303}, {}, AD.protocol_version
    ),
    "fatal_alert_then_flight": (["server_hello", "certificate", "fatal_alert"] + S[2:], {}, {}, None),
    "fatal_alert_before_finished": (FLIGHT_4 + ["ccs", "fatal_alert", "finished"], {}, {}, None),
    "finished_in_epoch_1_without_ccs": (FLIGHT_4 + ["finished@1"], {}, {}, None),
    "finished_omitted": (FLIGHT_4 + ["ccs"], {}, {}, None),
}


#: The scripted server's random, fixed: its first byte is also the first
#: byte after the version in every inserted "msg:<type>" body (a ServerHello
#: body), and a random one would, once in 256 runs, equal the length of the
#: rest and make an inserted HelloVerifyRequest well formed, which a client
#: rightly accepts.
_SERVER_RANDOM = bytes(32)


def _server(changes) -> MaliciousServer:
    server = MaliciousServer(SERVER_CREDENTIAL, random=_SERVER_RANDOM)
    for name, value in changes.items():
        setattr(server, name, value)
    return server


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_client_refuses(name):
    script, changes, options, alert = REFUSED[name]
    server = _server(changes)
    client = handshake(script, server=server, **options)
    assertRefused(client, alert)
    if alert is None:
        # Nothing was detectable as wrong (a peer alert, a message that never
        # came): the client keeps waiting, and gives up at its timeout.
        client.run(120.0)
        assert client.closed is not None
        assert client.closed.reason in (CloseReason.TIMEOUT, CloseReason.ALERT_RECEIVED)
    # Nothing more gets in afterwards either: the correct end of the
    # handshake and more data.
    for datagram in server.build(["ccs", "finished", "app@1", "app@0"]):
        client.send(datagram)
    assertRefused(client)


def test_fatal_alert_stops_the_client_at_once():
    client = handshake(["server_hello", "certificate", "fatal_alert"] + S[2:])
    assert client.closed.reason is CloseReason.ALERT_RECEIVED
    assert client.closed.alert == AD.handshake_failure
    # It never sent its second flight, nor any alert of its own.
    assert client.server.view.messages == [HandshakeType.client_hello]
    assert client.server.view.alerts == []


# -- application data -------------------------------------------------------------------


def test_application_data_in_epoch_0_is_never_delivered():
    """
    Plaintext application data before ServerHello, in the middle of the
    flight, before and after Finished: never delivered; data under the
    negotiated keys is.
    """
    script = ["app@0", "server_hello", "app@0", "certificate", "server_key_exchange", "server_hello_done",
              "app@0", "ccs", "app@0", "finished", "app@0"]
    client = handshake(script, then_app=False)
    assert client.completed
    assert client.delivered == []
    for datagram in client.server.build(["app@0", "app@1", "app@0"]):
        client.send(datagram)
    assert client.delivered == [APPLICATION_DATA]


def test_nothing_after_a_fatal_alert_on_an_established_connection():
    client = handshake(NORMAL, then_app=False)
    assert client.completed
    for datagram in client.server.build(["app", "fatal_alert", "app", f"msg:{HandshakeType.hello_request}", "app"]):
        client.send(datagram)
    assert client.delivered == [APPLICATION_DATA]
    assert client.closed.reason is CloseReason.ALERT_RECEIVED


# -- every single deviation from the correct script -------------------------------------

#: Handshake types a server might misplace: every type of RFC 5246 / 6347 /
#: 5077 and an unassigned one.
_INSERTED_TYPES = sorted({int(t) for t in HandshakeType} | {99})

def _allowed(script: list[str], base: list[str]) -> bool:
    """
    Whether C{script} is one the RFCs allow as well as C{base}:
    HelloVerifyRequest is optional and may be repeated (RFC 6347 §4.2.1),
    CertificateRequest is optional (RFC 5246 §7.3).
    """
    leading = 0
    while leading < len(script) and script[leading] == "hello_verify_request":
        leading += 1
    rest = script[leading:]
    core = [s for s in base if s not in ("hello_verify_request", "certificate_request")]
    with_request = core[:3] + ["certificate_request"] + core[3:]
    return leading <= 4 and rest in (core, with_request)


def _mutations(flight: list[str]) -> list[tuple[str, list[str]]]:
    """
    Each single-step deviation from C{flight}: omit, repeat, swap with the
    next, or insert a message of another type, at every position. Scripts
    the RFCs allow, and scripts that begin with the whole correct flight
    (what follows a completed handshake is not a handshake question), are
    left out.
    """
    out = []
    n = len(flight)
    for i in range(n):
        out.append((f"omit {flight[i]}", flight[:i] + flight[i + 1 :]))
        out.append((f"repeat {flight[i]}", flight[: i + 1] + [flight[i]] + flight[i + 1 :]))
        if i + 1 < n:
            out.append((f"swap {flight[i]}/{flight[i + 1]}", flight[:i] + [flight[i + 1], flight[i]] + flight[i + 2 :]))
        for t in _INSERTED_TYPES:
            out.append((f"insert type {t} before {flight[i]}", flight[:i] + [f"msg:{t}"] + flight[i:]))
    return [(name, s) for name, s in out if s[:n] != flight and not _allowed(s, flight)]


#: Deviations no receiver can tell from loss or reordering (unless a later
#: message gives them away): the client waits for what is missing and times
#: out, without an alert. An epoch-0
#: ChangeCipherSpec that arrives before the client sent its flight is taken
#: for one reordered ahead of its flight and dropped (RFC 6347 §4.1: records
#: may be reordered; the server retransmits it with its flight).
_SILENT = {
    "omit server_hello", "omit server_hello_done", "omit finished",
    "swap server_hello/ccs", "swap server_hello_done/ccs", "swap new_session_ticket/ccs",
    # the ChangeCipherSpec then looks reordered ahead of the ticket
    "omit new_session_ticket",
}

#: The alerts for a malformed message of a type the client does expect at
#: that point (the inserted body is a ServerHello's): RFC 5246 §7.2.2
#: decode_error, or illegal_parameter for the ECDH curve_type (RFC 8422 §5.4).
_MALFORMED = (AD.unexpected_message, AD.decode_error, AD.illegal_parameter)

def _resumable():
    """
    A session (with a ticket) from a full handshake, and its master secret.
    """
    server = MaliciousServer(SERVER_CREDENTIAL)
    server.ticket_extension = True
    client = handshake(WITH_TICKET, server=server)
    assert client.completed
    return client.connection.session, server.master_secret


SESSION, MASTER_SECRET = _resumable()
RESUMED = ["server_hello", "ccs", "finished"]
RESUMED_WITH_TICKET = ["server_hello", "new_session_ticket", "ccs", "finished"]

BASES = {
    "plain": (NORMAL, {}),
    "resumed": (RESUMED, {"resume_master_secret": MASTER_SECRET}),
    "resumed_ticket": (RESUMED_WITH_TICKET, {"resume_master_secret": MASTER_SECRET, "ticket_extension": True}),
    "hello_verify_request": (WITH_HVR, {}),
    "certificate_request": (WITH_REQUEST, {}),
    "ticket": (WITH_TICKET, {"ticket_extension": True}),
}

#: Deviations the client accepts although an RFC forbids them: none.
_KNOWN_ACCEPTED: set[tuple[str, str]] = set()


def _outcome(base_name: str, script: list[str]) -> ClientUnderTest:
    session = SESSION if base_name.startswith("resumed") else None
    return handshake(script, server=_server(BASES[base_name][1]), session=session)


@pytest.mark.parametrize("base_name", sorted(BASES))
def test_client_refuses_every_single_deviation(base_name):
    base, _ = BASES[base_name]
    control = _outcome(base_name, base)
    assert control.completed and control.delivered == [APPLICATION_DATA]
    mutations = _mutations(base)
    assert len(mutations) > 40
    accepted, wrong_alert = [], []
    for name, script in mutations:
        client = _outcome(base_name, script)
        if (base_name, name) in _KNOWN_ACCEPTED:
            continue
        if client.completed or client.delivered:
            accepted.append(name)
            continue
        alert = client.alert_sent
        expected = _MALFORMED if name.startswith("insert") else (AD.unexpected_message,)
        if name in _SILENT and client.closed is None:
            continue
        if alert not in expected:
            wrong_alert.append((name, alert, client.closed and client.closed.reason))
    assert accepted == []
    assert wrong_alert == []


@pytest.mark.parametrize("base_name", ["ticket", "resumed_ticket"])
def test_new_session_ticket_is_required_after_the_extension(base_name):
    script = [s for s in BASES[base_name][0] if s != "new_session_ticket"]
    # RFC 5077 §3.3: the epoch-0 ChangeCipherSpec is dropped as one
    # reordered ahead of the NewSessionTicket, and the client waits for that.
    assertRefused(_outcome(base_name, script))


def test_resumption_with_another_suite_is_refused():
    server = _server({"resume_master_secret": MASTER_SECRET, "suite": CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384})
    client = handshake(RESUMED, server=server, session=SESSION)
    assertRefused(client, AD.illegal_parameter)


def test_resumption_then_a_full_handshake_flight_is_refused():
    """
    Once ServerHello echoed our session id, Certificate and the rest of a
    full handshake are out of place (RFC 5246 §7.3).
    """
    server = _server({"resume_master_secret": MASTER_SECRET})
    client = handshake(NORMAL, server=server, session=SESSION)
    assertRefused(client, AD.unexpected_message)
