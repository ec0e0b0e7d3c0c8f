"""
The engine's per-record shortcuts, C{receive_application_datagram} and
C{seal_application_datagram}: what they return, and that every datagram
they do not take is handled exactly as C{receive_datagram} and C{send}
handle it (events, drops, order on the wire).
"""

from __future__ import annotations

import pytest

from tests.certs import make_pki
from tests.core.pairnet import PairNetwork
from twisted_dtls.core.configuration import DTLSConfiguration
from twisted_dtls.core.constants import AlertDescription
from twisted_dtls.core.errors import ProtocolMisuseError
from twisted_dtls.core.events import CloseReason, ConnectionClosed, DataReceived

PKI = make_pki()


def _established() -> PairNetwork:
    net = PairNetwork(
        DTLSConfiguration(trust_roots=[PKI.ca_cert], server_name="localhost"),
        DTLSConfiguration(certificate_chain=PKI.server_ec.chain, private_key=PKI.server_ec.key),
    )
    net.handshake()
    net.run()
    assert net.client.completed and net.server.completed
    return net


def _events(connection) -> list:
    events = []
    while (event := connection.next_event()) is not None:
        events.append(event)
    return events


def test_application_record_comes_back_as_plaintext_without_an_event():
    net = _established()
    client, server = net.client.connection, net.server.connection
    for payload in (b"one", b"", b"x" * 1000):
        datagram = client.seal_application_datagram(payload)
        assert server.receive_application_datagram(datagram, net.now) == payload
        assert _events(server) == []


def test_sealed_datagram_is_what_send_would_have_queued():
    net = _established()
    client, server = net.client.connection, net.server.connection
    sealed = client.seal_application_datagram(b"hello")
    client.send(b"world")
    (queued,) = client.datagrams_to_send(net.now)
    # Same record layout, consecutive sequence numbers: both open in order
    # through the general path.
    server.receive_datagram(sealed, net.now)
    server.receive_datagram(queued, net.now)
    assert [e.data for e in _events(server) if isinstance(e, DataReceived)] == [b"hello", b"world"]


def test_replayed_and_forged_records_are_dropped_and_counted():
    net = _established()
    client, server = net.client.connection, net.server.connection
    datagram = client.seal_application_datagram(b"once")
    assert server.receive_application_datagram(datagram, net.now) == b"once"
    replayed = server.drops.get("replayed", 0)
    assert server.receive_application_datagram(datagram, net.now) is None
    assert server.drops["replayed"] == replayed + 1
    forged = bytearray(client.seal_application_datagram(b"twice"))
    forged[-1] ^= 1
    bad_tag = server.drops.get("bad_tag", 0)
    assert server.receive_application_datagram(bytes(forged), net.now) is None
    assert server.drops["bad_tag"] == bad_tag + 1
    assert _events(server) == []
    assert not server.is_closed


def test_anything_else_is_handled_as_receive_datagram_handles_it():
    net = _established()
    client, server = net.client.connection, net.server.connection
    client.close()
    (close_notify,) = client.datagrams_to_send(net.now)
    assert server.receive_application_datagram(close_notify, net.now) is None
    (closed,) = [e for e in _events(server) if isinstance(e, ConnectionClosed)]
    assert closed.reason is CloseReason.CLOSE_NOTIFY
    assert closed.alert == AlertDescription.close_notify
    # The answering close_notify is queued as usual.
    assert server.datagrams_to_send(net.now)
    with pytest.raises(ProtocolMisuseError, match="closed"):
        server.seal_application_datagram(b"late")


def test_a_record_never_overtakes_datagrams_still_queued():
    net = _established()
    client = net.client.connection
    client.send(b"first")
    assert client.seal_application_datagram(b"second") is None
    first, second = client.datagrams_to_send(net.now)
    server = net.server.connection
    assert server.receive_application_datagram(first, net.now) == b"first"
    assert server.receive_application_datagram(second, net.now) == b"second"
    assert client.seal_application_datagram(b"third") is not None


def test_before_the_handshake_the_shortcuts_refuse_or_defer():
    net = PairNetwork(
        DTLSConfiguration(trust_roots=[PKI.ca_cert], server_name="localhost"),
        DTLSConfiguration(certificate_chain=PKI.server_ec.chain, private_key=PKI.server_ec.key),
    )
    client = net.client.connection
    with pytest.raises(ProtocolMisuseError, match="handshake"):
        client.seal_application_datagram(b"early")
    client.connect(0.0)
    (hello,) = client.datagrams_to_send(0.0)
    # Not established: taken by the general path (a client drops a
    # ClientHello) and None returned.
    assert client.receive_application_datagram(hello, 0.0) is None
