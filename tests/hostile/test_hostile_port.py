"""
A L{DTLSPort} on the in-memory network against hostile networks and
hostile peers: tiny path MTUs, replayed, forged and duplicated records,
hostile handshake fragments, peer restarts and hijack attempts
(RFC 6347 §4.2.8), and the per-source rate limit on work done before a
cookie verifies.
"""

from __future__ import annotations

import collections
import gc
import os
import random
import tracemalloc

import pytest

from tests.hostile.malicious import APPLICATION_DATA, MaliciousClient
from tests.hostile.targets import PortTarget, start
from tests.twisted.recording import RecordingFactory, clientConfiguration, connect, listen, serverConfiguration
from twisted_dtls.core.configuration import ClientAuthentication, DTLSConfiguration
from twisted_dtls.core.constants import ContentType, HandshakeType
from twisted_dtls.core.messages import HandshakeFragment, encode_handshake, push_handshake_fragment
from twisted_dtls.core.records import push_record
from twisted_dtls.port import HelloRateLimiter
from twisted_dtls.transport import DTLSConnectionLost

SERVER = ("127.0.0.1", 4433)


def _established(network, pki, port, **options):
    clientFactory, outcome = connect(network, pki, port, **options)
    network.flush()
    assert outcome.result is not None
    return outcome.result


def _echoes(network, client, data: bytes) -> bool:
    before = len(client.received)
    client.transport.write(data)
    network.flush()
    return client.received[before:] == [data]


# -- path MTU ------------------------------------------------------------------


def test_256_byte_datagrams_in_both_roles(network, pki):
    """
    Server and client both limited to 256-byte datagrams, with an RSA
    server chain and a client certificate so that both flights fragment:
    the handshake completes, no datagram is larger, and data is echoed.
    """
    server = DTLSConfiguration(
        certificate_chain=tuple(pki.server_rsa.chain), private_key=pki.server_rsa.key,
        client_authentication=ClientAuthentication.REQUIRED, trust_roots=(pki.ca_cert,),
        max_datagram_size=256, min_datagram_size=256,
    )
    client = clientConfiguration(pki, certificate_chain=tuple(pki.client_ec.chain), private_key=pki.client_ec.key,
                                 max_datagram_size=256, min_datagram_size=256)
    serverFactory = RecordingFactory(echo=True)
    port = listen(network, pki, serverFactory, configuration=server)
    protocol = _established(network, pki, port, configuration=client)
    assert _echoes(network, protocol, b"x" * protocol.transport.maxWriteSize)
    sizes = [len(d.data) for d in network.sent]
    assert max(sizes) <= 256
    # Both sides really had to fragment: many more datagrams than a
    # handshake needs at 1200 bytes.
    assert len([d for d in network.sent if d.source == SERVER]) >= 8
    assert len([d for d in network.sent if d.destination == SERVER]) >= 5
    assert serverFactory.protocols[0].transport.getPeerCertificate() is not None


def test_path_mtu_fallback_through_the_port(network, pki):
    """
    A path that silently loses every datagram over 600 bytes: the server's
    first flight (RSA chain, 1200-byte datagrams) never arrives until the
    engine halves its datagrams after repeated retransmissions; then the
    handshake completes.
    """
    server = DTLSConfiguration(certificate_chain=tuple(pki.server_rsa.chain), private_key=pki.server_rsa.key)
    port = listen(network, pki, configuration=server)
    network.dropIf = lambda datagram: len(datagram.data) > 600
    clientFactory, outcome = connect(network, pki, port, timeout=30.0)
    network.run(15.0, step=0.25)
    assert outcome.result is not None
    assert network.dropped and min(len(d.data) for d in network.dropped) > 600
    assert _echoes(network, outcome.result, b"through a small pipe")


# -- records: replay, forgery, duplication ---------------------------------------------


def _clientToServer(network, client):
    host = client.transport.getHost()
    return [d for d in network.sent if d.destination == SERVER and d.source == (host.host, host.port)]


def test_replayed_record_is_delivered_once(network, pki):
    serverFactory = RecordingFactory()
    port = listen(network, pki, serverFactory)
    client = _established(network, pki, port)
    client.transport.write(b"once")
    network.flush()
    record = _clientToServer(network, client)[-1]
    for _ in range(3):
        network.inject(record.source, record.destination, record.data)
    network.flush()
    server = serverFactory.protocols[0]
    assert server.received == [b"once"]
    client.transport.write(b"twice")
    network.flush()
    assert server.received == [b"once", b"twice"]


@pytest.mark.parametrize("epoch", [1, 2])
def test_forged_record_with_largest_sequence_number_moves_no_window(network, pki, epoch):
    """
    A record of the current epoch (1) or the next one (2) with sequence
    number 2^48-1 and a bad tag, from the peer's address: dropped, and the
    replay window does not move, so the peer's next (low-numbered) record
    is still delivered.
    """
    serverFactory = RecordingFactory()
    port = listen(network, pki, serverFactory)
    client = _established(network, pki, port)
    source = _clientToServer(network, client)[-1].source
    forged = push_record(ContentType.application_data, 0xFEFD, epoch, 2**48 - 1, os.urandom(40))
    for _ in range(3):
        network.inject(source, SERVER, forged)
    network.flush()
    client.transport.write(b"after the forgery")
    network.flush()
    assert serverFactory.protocols[0].received == [b"after the forgery"]
    assert serverFactory.protocols[0].lost == []


def test_every_datagram_duplicated_delivers_each_record_once(network, pki):
    send = network._send

    def twice(sender, destination, data):
        send(sender, destination, data)
        send(sender, destination, data)

    network._send = twice
    serverFactory = RecordingFactory(echo=True)
    port = listen(network, pki, serverFactory)
    client = _established(network, pki, port)
    for i in range(5):
        client.transport.write(b"record %d" % i)
    network.flush()
    expected = [b"record %d" % i for i in range(5)]
    assert serverFactory.protocols[0].received == expected
    assert client.received == expected
    assert port.stats.connectionsAccepted == 1 and port.stats.handshakesCompleted == 1


# -- hostile handshake fragments ------------------------------------------------------


def _fragment(msg_type, length, seq, offset, body):
    return push_handshake_fragment(HandshakeFragment(msg_type, length, seq, offset, body))


def test_hostile_fragments_are_bounded_and_the_handshake_survives(network, pki):
    """
    After its cookie verified, a client sends, in epoch-0 records:
    fragments that overrun their message, a declared length of 2^24-1,
    zero-length fragments, a conflicting overlap of its real
    ClientKeyExchange, and a flood of far-future message_seq values with
    large declared lengths. Nothing raises, the memory held stays within
    the reassembly budget, and the real flight still completes the
    handshake; a normal client is served after.
    """
    target = PortTarget(network, pki)
    client = MaliciousClient()
    start(client, target)
    items = client.messages(client.normal_flight())
    cke_type, cke_seq, cke_body, _ = items[0]
    assert cke_type == HandshakeType.client_key_exchange

    def send(payload: bytes) -> None:
        target.send(client.record(ContentType.handshake, payload, 0))

    # The in-memory network keeps a copy of every datagram: that is the
    # test's memory, not the port's; keep only the last few meanwhile.
    network.sent = collections.deque(maxlen=16)
    gc.collect()
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        # Overrun: offset + fragment_length beyond the declared length.
        send(_fragment(cke_type, 10, cke_seq, 5, b"x" * 20))
        # A declared length of 2^24-1 for the next message and a later one.
        send(_fragment(cke_type, 2**24 - 1, cke_seq, 0, b"y" * 100))
        send(_fragment(HandshakeType.certificate, 2**24 - 1, cke_seq + 3, 2**24 - 101, b"z" * 100))
        # Zero-length fragments, of a real-looking and of a huge message.
        for offset in (0, 7, len(cke_body)):
            send(_fragment(cke_type, len(cke_body), cke_seq, offset, b""))
        send(_fragment(cke_type, 2**24 - 1, cke_seq + 1, 0, b""))
        # The start of the real ClientKeyExchange, then a fragment whose
        # bytes conflict with it: the bytes received first win (RFC 6347
        # §4.2.3 leaves conflicting overlaps undefined; the engine keeps the
        # first).
        send(_fragment(cke_type, len(cke_body), cke_seq, 0, cke_body[:20]))
        send(_fragment(cke_type, len(cke_body), cke_seq, 5, bytes(15)))
        # A flood of future messages: every message_seq up to 65535, each
        # declaring 60000 bytes and sending 1000 of them.
        for seq in range(cke_seq + 1, 65536, 7):
            send(_fragment(HandshakeType.certificate, 60_000, seq, 0, b"f" * 1000))
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    network.sent = list(network.sent)
    configuration = target.port.configuration
    assert held < configuration.max_reassembly_bytes + 256 * 1024, held
    # The rest of the real ClientKeyExchange, then the real flight.
    send(_fragment(cke_type, len(cke_body), cke_seq, 20, cke_body[20:]))
    for record in client.fragment_records(items[1:], size=1 << 14):
        target.send(record)
    assert target.completed
    target.send(client.build(["app@1"])[0])
    assert target.delivered == [APPLICATION_DATA]
    assert target.normal_client_works()


@pytest.mark.parametrize("seed", range(3))
def test_two_byte_fragments_of_a_whole_flight_in_shuffled_order(network, pki, seed):
    """
    The client's whole flight (Certificate, ClientKeyExchange,
    CertificateVerify, ChangeCipherSpec, Finished under the new keys) as
    2-byte fragments, one record per datagram, shuffled; sent again (fresh
    record numbers, new order) as a client retransmits, until the server
    completes.
    """
    options = dict(client_authentication=ClientAuthentication.REQUIRED, trust_roots=(pki.ca_cert,))
    target = PortTarget(network, pki, configuration=serverConfiguration(pki, **options))
    client = MaliciousClient((pki.client_ec.chain, pki.client_ec.key))
    start(client, target)
    items = client.messages(client.normal_flight())
    rng = random.Random(seed)
    for attempt in range(4):
        records = client.fragment_records(items, size=2)
        assert len(records) > 300
        rng.shuffle(records)
        for record in records:
            target.send(record)
        if target.completed:
            break
    assert target.completed
    assert client.view.finished_ok is True
    target.send(client.build(["app@1"])[0])
    assert target.delivered == [APPLICATION_DATA]


# -- peer restarts and hijack attempts (RFC 6347 §4.2.8) -----------------------------


def _victim(network, pki, port, address=("127.0.0.5", 5555)):
    return _established(network, pki, port, bindAddress=address)


def _sentTo(network, address, since: int):
    return [d.data for d in network.sent[since:] if d.source == SERVER and d.destination == address]


def test_spoofed_client_hellos_never_disturb_an_established_connection(network, pki):
    """
    From an established peer's address, an attacker who cannot receive
    there sends: a ClientHello with a new random and no cookie, one with a
    made-up cookie, one with a cookie the port gave the attacker's own
    address, and a replay of the peer's own cookie ClientHello. Each new
    ClientHello only earns the real peer a HelloVerifyRequest; the
    connection carries on untouched.
    """
    serverFactory = RecordingFactory(echo=True)
    port = listen(network, pki, serverFactory)
    victim = _victim(network, pki, port)
    address = ("127.0.0.5", 5555)
    attacker = ("127.0.0.6", 6666)
    originalCookieHello = [d.data for d in network.sent if d.source == address][1]

    mallory = MaliciousClient()
    network.inject(attacker, SERVER, mallory.client_hello())
    network.flush()
    mallory.receive(_sentTo(network, attacker, 0)[-1])
    ownCookieHello = mallory.client_hello()
    assert mallory.cookie

    forged = MaliciousClient()
    forged.cookie = os.urandom(32)
    hellos = [MaliciousClient().client_hello(), forged.client_hello(), ownCookieHello, originalCookieHello]
    verifies = port.stats.helloVerifyRequestsSent
    for hello in hellos:
        network.inject(address, SERVER, hello)
        network.flush()
        assert _echoes(network, victim, b"still mine")
    assert port.stats.helloVerifyRequestsSent == verifies + 3
    assert port.stats.peerRestarts == 0 and port.stats.restartsPending == 0
    assert port.stats.connectionsOpen == 1 and port.stats.connectionsAccepted == 1
    assert serverFactory.protocols[0].lost == [] and victim.lost == []


def test_restart_handshake_leaves_the_old_connection_until_it_completes(network, pki):
    """
    A new ClientHello from an established peer's address whose cookie
    verifies (here: an attacker on the path, who sees the
    HelloVerifyRequest) starts a second connection beside the first. The
    established connection keeps carrying data while that handshake is in
    progress; if it never completes, it times out and nothing changed. When
    a new handshake does complete (a verified Finished), the old connection
    is replaced, and only then.
    """
    serverFactory = RecordingFactory(echo=True)
    port = listen(network, pki, serverFactory, handshakeTimeout=10.0)
    victim = _victim(network, pki, port)
    address = ("127.0.0.5", 5555)

    def handshakeFromVictimAddress(complete: bool) -> MaliciousClient:
        mallory = MaliciousClient()
        mark = len(network.sent)
        network.inject(address, SERVER, mallory.client_hello())
        network.flush()
        for datagram in _sentTo(network, address, mark):
            mallory.receive(datagram)
        mark = len(network.sent)
        network.inject(address, SERVER, mallory.client_hello())
        network.flush()
        for datagram in _sentTo(network, address, mark):
            mallory.receive(datagram)
        assert mallory.server_done
        assert port.stats.restartsPending == 1
        assert _echoes(network, victim, b"during the new handshake")
        script = mallory.normal_flight() if complete else mallory.normal_flight()[:-1]
        datagrams = mallory.build(script)
        for index, datagram in enumerate(datagrams):
            network.inject(address, SERVER, datagram)
            network.flush()
            if not complete or index < len(datagrams) - 1:
                # Not replaced before the new handshake's Finished.
                assert _echoes(network, victim, b"between its messages")
                assert port.stats.peerRestarts == 0
        return mallory

    # 1. Never completed: the pending handshake times out, nothing changed.
    handshakeFromVictimAddress(complete=False)
    assert _echoes(network, victim, b"still here")
    network.run(11.0, step=1.0)
    assert port.stats.restartsPending == 0 and port.stats.peerRestarts == 0
    assert _echoes(network, victim, b"after the timeout")
    assert victim.lost == [] and serverFactory.protocols[0].lost == []

    # 2. Completed: the new connection replaces the old one.
    mallory = handshakeFromVictimAddress(complete=True)
    assert port.stats.peerRestarts == 1 and port.stats.restartsPending == 0
    old = serverFactory.protocols[0]
    assert len(old.lost) == 1 and old.lost[0].check(DTLSConnectionLost)
    assert port.stats.connectionsOpen == 1
    network.inject(address, SERVER, mallory.build(["app@1"])[0])
    network.flush()
    assert serverFactory.protocols[1].received == [APPLICATION_DATA]


# -- the rate limit before a cookie ------------------------------------------------------


def test_rate_limiter_token_bucket():
    limiter = HelloRateLimiter(rate=10.0, burst=5, maxSources=3)
    assert [limiter.allow("127.0.0.2", 0.0) for _ in range(7)] == [True] * 5 + [False] * 2
    assert limiter.allow("127.0.0.2", 0.05) is False  # half a token
    assert limiter.allow("127.0.0.2", 0.1) is True
    assert limiter.allow("127.0.0.2", 0.1) is False
    # Another source has its own bucket.
    assert limiter.allow("127.0.0.3", 0.1) is True
    # A refill never exceeds the burst.
    assert [limiter.allow("127.0.0.3", 100.0) for _ in range(6)] == [True] * 5 + [False]
    # IPv6 sources share a bucket per /64.
    assert [limiter.allow(f"2001:db8::{i}", 0.0) for i in range(1, 7)] == [True] * 5 + [False]
    assert limiter.allow("2001:db8:0:1::1", 0.0) is True
    # The table is bounded; the least recently used source is forgotten.
    assert len(limiter) == 3
    for i in range(100):
        limiter.allow(f"127.1.0.{i}", 0.0)
    assert len(limiter) == 3


def test_port_rate_limits_work_before_a_cookie(network, pki):
    """
    One source floods ClientHellos: the port answers its burst, then drops
    the rest unparsed (counted as rate_limited) until tokens refill; other
    sources and the established path are unaffected.
    """
    serverFactory = RecordingFactory(echo=True)
    port = listen(network, pki, serverFactory, helloRate=10.0, helloBurst=20)
    hello = MaliciousClient().client_hello()
    for i in range(200):
        network.inject(("127.0.0.9", 1000 + i), SERVER, hello)
    network.flush()
    assert port.stats.helloVerifyRequestsSent == 20
    assert port.stats.drops["rate_limited"] == 180
    network.advance(1.0)
    for i in range(200):
        network.inject(("127.0.0.9", 2000 + i), SERVER, hello)
    network.flush()
    assert port.stats.helloVerifyRequestsSent == 30
    # A client from another address is served at once.
    client = _established(network, pki, port, bindAddress=("127.0.0.10", 0))
    assert _echoes(network, client, b"not me")
    assert port.stats.sourcesTracked == 2
    assert port.stats.connectionsOpen == 1


def test_rate_limit_applies_to_new_client_hellos_from_a_connected_address(network, pki):
    port = listen(network, pki, helloRate=1.0, helloBurst=3)
    victim = _victim(network, pki, port)
    verifies = port.stats.helloVerifyRequestsSent
    for _ in range(50):
        network.inject(("127.0.0.5", 5555), SERVER, MaliciousClient().client_hello())
    network.flush()
    # The victim's own handshake spent two of the source's three tokens.
    assert port.stats.helloVerifyRequestsSent - verifies <= 3
    assert port.stats.drops["rate_limited"] >= 47
    assert _echoes(network, victim, b"unharmed")


def test_hello_verify_request_is_never_larger_than_its_client_hello(network, pki):
    """
    Whatever the ClientHello's size, the answer is no larger (no
    amplification, RFC 6347 §4.2.1); a ClientHello too small to carry a
    cookie-sized answer gets none.
    """
    port = listen(network, pki, helloBurst=1000)
    for i, cookie in enumerate((b"", b"x", os.urandom(32), os.urandom(255))):
        # A made-up cookie of any length is answered with a fresh one.
        client = MaliciousClient()
        client.cookie = cookie
        hello = client.client_hello()
        mark = len(network.sent)
        network.inject((f"127.0.3.{i + 1}", 1000), SERVER, hello)
        network.flush()
        replies = [d.data for d in network.sent[mark:] if d.source == SERVER]
        assert len(replies) == 1 and len(replies[0]) <= len(hello)
    # A minimal ClientHello: no extensions, one suite.
    from twisted_dtls.core.buffer import Buffer
    from twisted_dtls.core.messages import ClientHello, push_client_hello

    buf = Buffer()
    push_client_hello(buf, ClientHello(0xFEFD, os.urandom(32), b"", b"", [0xC02B], [0], []))
    tiny = push_record(ContentType.handshake, 0xFEFD, 0, 0, encode_handshake(HandshakeType.client_hello, 0, buf.output))
    mark = len(network.sent)
    network.inject(("127.0.3.99", 1000), SERVER, tiny)
    network.flush()
    replies = [d.data for d in network.sent[mark:] if d.source == SERVER]
    assert all(len(r) <= len(tiny) for r in replies)
    assert port.stats.connectionsOpen == 0
