"""
Real UDP on loopback through L{LossyProxy}: our L{DTLSPort} echo server in
the reactor, and as clients both C{openssl s_client} and our own
C{connectDTLS}.

  - 20% drop, 20% duplication and up to 100 ms of delay (reordering) in both
    directions, ten seeds: every handshake completes and data is echoed,
    each within 40 s (the ten seeds run at once, each client through its own
    proxy, so the whole test takes as long as the slowest handshake).
  - Dropping any single datagram of a full handshake (each index in its own
    run, all at once): the handshake still completes.

Application data is not retransmitted by DTLS, so each client repeats its
line until the echo comes back.
"""

from __future__ import annotations

import re
import socket
import time

import pytest
import pytest_twisted
from twisted.internet import defer, task
from twisted.internet.protocol import Factory, Protocol

from tests.certs import make_pki, write_pem_files
from tests.hostile.lossyproxy import Impairment, LossyProxy
from tests.peers import require_peer
from tests.peers.openssl_cli import HANDSHAKE_MARKER, OpenSSLClient
from tests.twisted.recording import clientConfiguration, serverConfiguration
from twisted_dtls.client import connectDTLS
from twisted_dtls.port import listenDTLS

PKI = make_pki()
SEEDS = range(10)
BAD = Impairment(drop=0.2, duplicate=0.2, delay=0.1)
DEADLINE = 40.0


class Echo(Protocol):
    def dataReceived(self, data):
        self.transport.write(data)


class Catcher(Protocol):
    def __init__(self):
        self.received: list[bytes] = []

    def dataReceived(self, data):
        self.received.append(data)


def _upstreamHost(index: int) -> str:
    # One source address per proxy: what the port rate-limits is per
    # source host, and these are different clients.
    return f"127.0.1.{1 + index}"


async def _sleep(seconds: float):
    from twisted.internet import reactor

    await task.deferLater(reactor, seconds, lambda: None)


async def _ourClient(proxy: LossyProxy, tag: str, started: float) -> float:
    """
    Handshake and one echoed line through C{proxy}; returns the seconds it
    took.
    """
    from twisted.internet import reactor

    factory = Factory.forProtocol(Catcher)
    protocol = await connectDTLS(reactor, proxy.address[0], proxy.port, factory, clientConfiguration(PKI),
                                 timeout=DEADLINE)
    line = tag.encode()
    try:
        while line not in protocol.received:
            if time.monotonic() - started > DEADLINE:
                raise AssertionError(f"{tag}: no echo within {DEADLINE} s")
            protocol.transport.write(line)
            await _sleep(0.3)
    finally:
        protocol.transport.loseConnection()
    return time.monotonic() - started


async def _opensslClient(proxy: LossyProxy, tag: str, started: float, cafile: str) -> float:
    client = OpenSSLClient(proxy.port, cafile=cafile, lifetime=DEADLINE + 10)
    try:
        await client.when(HANDSHAKE_MARKER, timeout=DEADLINE)
        pattern = re.compile(f"^{re.escape(tag)}$", re.M)
        while not client.search(pattern, stream="stdout"):
            if time.monotonic() - started > DEADLINE or not client.running:
                raise AssertionError(f"{tag}: no echo within {DEADLINE} s\n{client.describe()}")
            client.send_line(tag)
            await _sleep(0.3)
    finally:
        client.stop()
    return time.monotonic() - started


def _listen():
    from twisted.internet import reactor

    return listenDTLS(reactor, 0, Factory.forProtocol(Echo), serverConfiguration(PKI), interface="127.0.0.1")


@pytest.fixture
def cafile(tmp_path):
    return write_pem_files(PKI, tmp_path)["ca.pem"]


# -- the proxy itself ----------------------------------------------------------


def test_proxy_forwards_drops_and_duplicates_deterministically():
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(0.5)
    logs = []
    try:
        for _ in range(2):
            with LossyProxy(server.getsockname(), seed=7, c2s=Impairment(drop=0.3, duplicate=0.3),
                            drop_indices={0}) as proxy:
                client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                client.bind(("127.0.0.1", 0))
                for i in range(200):
                    client.sendto(i.to_bytes(2, "big"), proxy.address)
                    time.sleep(0.0005)
                got = []
                try:
                    while True:
                        data, source = server.recvfrom(100)
                        got.append(int.from_bytes(data, "big"))
                except socket.timeout:
                    pass
                # The server answers the proxy's upstream socket; the
                # answer reaches the client.
                server.sendto(b"back", source)
                client.settimeout(2)
                assert client.recvfrom(100)[0] == b"back"
                client.close()
            fates = [entry[3] for entry in proxy.log if entry[1] == "c2s"]
            logs.append(fates)
            assert fates[0] == "dropped"
            assert 0 not in got
            assert len(got) == fates.count("sent") + 2 * fates.count("duplicated")
            assert 30 < fates.count("dropped") < 100 and 20 < fates.count("duplicated") < 90
        assert logs[0] == logs[1]
    finally:
        server.close()


def test_proxy_refuses_non_loopback():
    with pytest.raises(ValueError):
        LossyProxy(("192.0.2.1", 4433))


# -- handshakes over a bad network -------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_ten_seeds_of_loss_duplication_and_reordering(cafile):
    require_peer("openssl")
    port = _listen()
    server = ("127.0.0.1", port.getHost().port)
    proxies = []
    try:
        runs = []
        started = time.monotonic()
        for seed in SEEDS:
            ours = LossyProxy(server, seed=seed, c2s=BAD, s2c=BAD, upstream_host=_upstreamHost(2 * seed)).start()
            theirs = LossyProxy(server, seed=100 + seed, c2s=BAD, s2c=BAD,
                                upstream_host=_upstreamHost(2 * seed + 1)).start()
            proxies += [ours, theirs]
            runs.append(defer.ensureDeferred(_ourClient(ours, f"ours-{seed}", started)))
            runs.append(defer.ensureDeferred(_opensslClient(theirs, f"openssl-{seed}", started, cafile)))
        results = await defer.DeferredList(runs, consumeErrors=True)
        failures = [r[1] for r in results if not r[0]]
        assert not failures, "\n".join(f.getTraceback() for f in failures)
        durations = [r[1] for r in results]
        assert max(durations) < DEADLINE
        # The network really was bad: every proxy dropped and duplicated.
        total = sum(p.count for p in proxies)
        dropped = sum(1 for p in proxies for e in p.log if e[3] == "dropped")
        duplicated = sum(1 for p in proxies for e in p.log if e[3] == "duplicated")
        assert 0.1 * total < dropped < 0.3 * total
        assert 0.1 * total < duplicated < 0.3 * total
        assert port.stats.handshakesCompleted >= 20
        assert not [p.errors for p in proxies if p.errors]
    finally:
        for proxy in proxies:
            proxy.stop()
        await port.stopListening()


async def _cleanCount(server, kind: str, cafile: str) -> int:
    """
    How many datagrams a loss-free handshake takes, up to the client's
    handshake completing.
    """
    from twisted.internet import reactor

    with LossyProxy(server, upstream_host="127.0.2.250") as proxy:
        if kind == "ours":
            protocol = await connectDTLS(reactor, proxy.address[0], proxy.port, Factory.forProtocol(Catcher),
                                         clientConfiguration(PKI), timeout=DEADLINE)
            count = proxy.count
            protocol.transport.loseConnection()
        else:
            client = OpenSSLClient(proxy.port, cafile=cafile, lifetime=30)
            try:
                await client.when(HANDSHAKE_MARKER, timeout=20)
                count = proxy.count
            finally:
                client.stop()
    return count


@pytest.mark.parametrize("kind", ["ours", "openssl"])
@pytest_twisted.ensureDeferred
async def test_every_single_datagram_of_a_handshake_dropped(kind, cafile):
    if kind == "openssl":
        require_peer("openssl")
    port = _listen()
    server = ("127.0.0.1", port.getHost().port)
    proxies = []
    try:
        count = await _cleanCount(server, kind, cafile)
        # ClientHello, HelloVerifyRequest, ClientHello, the server's flight
        # (one or more datagrams), the client's flight, the server's last.
        assert count >= 6
        runs = []
        started = time.monotonic()
        for index in range(count):
            proxy = LossyProxy(server, drop_indices={index}, upstream_host=_upstreamHost(40 + index)).start()
            proxies.append(proxy)
            tag = f"{kind}-drop-{index}"
            if kind == "ours":
                runs.append(defer.ensureDeferred(_ourClient(proxy, tag, started)))
            else:
                runs.append(defer.ensureDeferred(_opensslClient(proxy, tag, started, cafile)))
        results = await defer.DeferredList(runs, consumeErrors=True)
        failures = [r[1] for r in results if not r[0]]
        assert not failures, "\n".join(f.getTraceback() for f in failures)
        for index, proxy in enumerate(proxies):
            assert proxy.log[index][3] == "dropped"
    finally:
        for proxy in proxies:
            proxy.stop()
        await port.stopListening()
