"""
What an established connection keeps (issue 6): after the handshake, no
handshake-only state stays referenced, and 1,000 held server connections
cost under 8 KiB of Python heap each.

A thousand client/server pairs of our engine complete full handshakes in
memory (ECDHE-ECDSA P-256 with a CA-issued certificate, the client
verifying the chain). Then:

  - every object reachable from each connection (C{gc.get_referents},
    stopping at the shared configuration, modules, classes and functions'
    globals) is inspected for handshake-only state: transcripts and
    reassembly buffers (bytearrays), ephemeral key shares and private keys,
    hash contexts, the handshake state machine itself, flights a client no
    longer needs, certificates other than the peer's;
  - C{tracemalloc} measures the heap the held server connections cost;
  - a sample of the connections still carries data both ways, so what was
    released was not needed.

Not timed: it takes a few seconds.
"""

from __future__ import annotations

import gc
import tracemalloc
import types

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, x25519

from tests.certs import make_pki
from twisted_dtls.core.configuration import DTLSConfiguration
from twisted_dtls.core.connection import DTLSConnection
from twisted_dtls.core.constants import CipherSuite, NamedGroup
from twisted_dtls.core.events import DataReceived, HandshakeCompleted
from twisted_dtls.core.fragments import FlightItem
from twisted_dtls.core.handshake import Handshake, Secrets
from twisted_dtls.core.keyexchange import KeyShare

CONNECTIONS = 1000
#: Issue 6: at most 8 KiB per established idle connection.
MAX_BYTES_PER_CONNECTION = 8 * 1024

PKI = make_pki()
SERVER_CONFIGURATION = DTLSConfiguration(
    certificate_chain=PKI.server_ec.chain,
    private_key=PKI.server_ec.key,
    cipher_suites=(CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,),
    groups=(NamedGroup.secp256r1,),
)
CLIENT_CONFIGURATION = DTLSConfiguration(
    trust_roots=[PKI.ca_cert],
    server_name="localhost",
    cipher_suites=(CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,),
    groups=(NamedGroup.secp256r1,),
)


def _handshake() -> tuple[DTLSConnection, DTLSConnection]:
    client = DTLSConnection(CLIENT_CONFIGURATION, is_client=True)
    server = DTLSConnection(SERVER_CONFIGURATION, is_client=False)
    client.connect(0.0)
    for _ in range(10):
        moved = False
        for datagram in client.datagrams_to_send(0.0):
            server.receive_datagram(datagram, 0.0)
            moved = True
        for datagram in server.datagrams_to_send(0.0):
            client.receive_datagram(datagram, 0.0)
            moved = True
        if not moved:
            break
    for conn in (client, server):
        events = []
        while (event := conn.next_event()) is not None:
            events.append(event)
        assert [type(e) for e in events] == [HandshakeCompleted], events
    return client, server


@pytest.fixture(scope="module")
def pairs() -> list[tuple[DTLSConnection, DTLSConnection]]:
    return [_handshake() for _ in range(CONNECTIONS)]


def _reachable(root, shared) -> list:
    """
    Every object reachable from C{root}, not going into C{shared} objects,
    modules or classes, nor into functions' globals (only their closures
    and defaults, which are the function's own state).
    """
    seen: set[int] = {id(s) for s in shared}
    found = []
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, (type, types.ModuleType, types.BuiltinFunctionType)):
            continue
        found.append(obj)
        if isinstance(obj, types.FunctionType):
            stack.extend(cell.cell_contents for cell in obj.__closure__ or () if _cell_filled(cell))
            stack.extend(obj.__defaults__ or ())
            continue
        stack.extend(gc.get_referents(obj))
    return found


def _cell_filled(cell) -> bool:
    try:
        _ = cell.cell_contents
    except ValueError:
        return False
    return True


#: Handshake-only state: none of it may be reachable from an established
#: connection (bytearray: transcripts and reassembly buffers).
HANDSHAKE_ONLY = (
    bytearray,
    KeyShare,
    Handshake,
    Secrets,
    ec.EllipticCurvePrivateKey,
    x25519.X25519PrivateKey,
    hashes.Hash,
)


def _offending(objects, kinds) -> list[str]:
    return sorted({type(o).__name__ for o in objects if isinstance(o, kinds)})


def test_server_keeps_no_handshake_state(pairs):
    """
    An established server connection references no transcript, reassembly
    buffer, key share, private key, hash context or handshake machine, and
    no certificate at all (its own chain lives in the shared configuration;
    the client sent none).
    """
    for _, server in pairs[:: CONNECTIONS // 50]:
        objects = _reachable(server, shared=[SERVER_CONFIGURATION])
        assert _offending(objects, HANDSHAKE_ONLY) == []
        assert _offending(objects, x509.Certificate) == []


def test_client_keeps_only_the_peer_certificates(pairs):
    """
    An established client keeps the server's chain (the application may
    ask for it) and nothing else of the handshake: no flight either, since
    the server's Finished ended the exchange.
    """
    for client, _ in pairs[:: CONNECTIONS // 50]:
        objects = _reachable(client, shared=[CLIENT_CONFIGURATION])
        assert _offending(objects, HANDSHAKE_ONLY + (FlightItem,)) == []
        certificates = [o for o in objects if isinstance(o, x509.Certificate)]
        assert sorted(c.fingerprint(hashes.SHA256()) for c in certificates) == sorted(
            c.fingerprint(hashes.SHA256()) for c in PKI.server_ec.chain
        )


def test_held_server_connections_cost_under_8_kib_each():
    """
    The Python heap grows by less than 8 KiB for each established server
    connection held (the clients are dropped as soon as they are done).
    """
    _handshake()  # first-use allocations are not per connection
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        held = [_handshake()[1] for _ in range(CONNECTIONS)]
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert all(conn.is_established for conn in held)
    per_connection = (after - before) / len(held)
    assert per_connection < MAX_BYTES_PER_CONNECTION, f"{per_connection:.0f} bytes per connection"


def test_connections_still_carry_data(pairs):
    """
    What was released was not needed: established pairs still exchange
    application data in both directions.
    """
    for client, server in pairs[:: CONNECTIONS // 20]:
        client.send(b"ping")
        for datagram in client.datagrams_to_send(1.0):
            server.receive_datagram(datagram, 1.0)
        assert server.next_event() == DataReceived(b"ping")
        server.send(b"pong")
        for datagram in server.datagrams_to_send(1.0):
            client.receive_datagram(datagram, 1.0)
        assert client.next_event() == DataReceived(b"pong")


def test_the_walk_finds_handshake_state_while_it_exists():
    """
    The check above can fail: in the middle of a handshake the same walk
    does reach the transcript, the key share and the handshake machine.
    """
    client = DTLSConnection(CLIENT_CONFIGURATION, is_client=True)
    server = DTLSConnection(SERVER_CONFIGURATION, is_client=False)
    client.connect(0.0)
    for datagram in client.datagrams_to_send(0.0):
        server.receive_datagram(datagram, 0.0)
    objects = _reachable(server, shared=[SERVER_CONFIGURATION])
    assert {"bytearray", "KeyShare", "ServerHandshake"} <= set(_offending(objects, HANDSHAKE_ONLY))
