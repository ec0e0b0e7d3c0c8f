"""
50,000 ClientHellos without a valid cookie, from 100 loopback addresses
(127.0.0.2 .. 127.0.0.101, one real UDP socket bound to each, in a separate
process), at a real L{DTLSPort} in the reactor:

  - the port's memory stays flat (tracemalloc, before and after, within a
    small tolerance);
  - nothing per peer is created: no connection, no timer; the only per-source
    state is the rate limiter's bounded table;
  - the work done is bounded by the per-source rate limit;
  - a real client completes a handshake and is echoed while the flood runs.
"""

from __future__ import annotations

import gc
import os
import sys
import time
import tracemalloc

import pytest_twisted
from twisted.internet import task
from twisted.internet.protocol import Factory, Protocol

from tests.certs import make_pki
from tests.hostile.malicious import MaliciousClient
from tests.peers.process import PeerProcess
from tests.twisted.recording import clientConfiguration, serverConfiguration
from twisted_dtls.client import connectDTLS
from twisted_dtls.port import listenDTLS

PKI = make_pki()
SOURCES = 100
PER_SOURCE = 500
SECONDS = 15.0
#: A tight per-source budget (the defaults are 50/s, burst 100), so that
#: the flood runs into it.
HELLO_RATE = 5.0
HELLO_BURST = 10
FLOOD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "flood.py")


class Echo(Protocol):
    def dataReceived(self, data):
        self.transport.write(data)


class Catcher(Protocol):
    def __init__(self):
        self.received = []

    def dataReceived(self, data):
        self.received.append(data)


async def _sleep(seconds):
    from twisted.internet import reactor

    await task.deferLater(reactor, seconds, lambda: None)


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


@pytest_twisted.ensureDeferred
async def test_client_hello_flood_from_100_addresses():
    from twisted.internet import reactor

    port = listenDTLS(reactor, 0, Factory.forProtocol(Echo), serverConfiguration(PKI), interface="127.0.0.1",
                      helloRate=HELLO_RATE, helloBurst=HELLO_BURST)
    flood = None
    tracemalloc.start()
    try:
        # Warm up every code path once (a handshake, a HelloVerifyRequest)
        # so that first-use allocations are not counted as growth.
        warm = await connectDTLS(reactor, "127.0.0.1", port.getHost().port, Factory.forProtocol(Catcher),
                                 clientConfiguration(PKI), timeout=20)
        warm.transport.loseConnection()
        await _sleep(0.2)
        delayedBefore = len(reactor.getDelayedCalls())
        before = _traced()

        hello = MaliciousClient().client_hello()
        flood = PeerProcess(
            [sys.executable, FLOOD, "127.0.0.1", str(port.getHost().port), hello.hex(), str(SOURCES),
             str(PER_SOURCE), str(SECONDS)],
            lifetime=SECONDS + 30,
        )
        started = time.monotonic()
        while port.stats.datagramsReceived < 5000:
            assert time.monotonic() - started < 20, "the flood did not arrive"
            await _sleep(0.1)

        # A real client in the middle of the flood.
        client = await connectDTLS(reactor, "127.0.0.1", port.getHost().port, Factory.forProtocol(Catcher),
                                   clientConfiguration(PKI), timeout=30)
        handshakeDone = time.monotonic() - started
        while b"mid-flood" not in client.received:
            assert time.monotonic() - started < SECONDS + 20
            client.transport.write(b"mid-flood")
            await _sleep(0.2)
        assert flood.running, "the handshake should complete while the flood is still running"
        stats = port.stats
        assert stats.connectionsOpen == 1
        client.transport.loseConnection()

        await flood.when(r"^sent (\d+)", timeout=SECONDS + 20, stream="stdout")
        sent = int(flood.search(r"^sent (\d+)", stream="stdout").group(1))
        elapsed = time.monotonic() - started
        await _sleep(0.5)
        after = _traced()
    finally:
        tracemalloc.stop()
        if flood is not None:
            flood.stop()
        await port.stopListening()

    stats = port.stats
    assert sent >= 0.9 * SOURCES * PER_SOURCE
    # Nothing per peer: two connections ever (the warm-up and the real
    # client), none left, no timer left behind.
    assert stats.connectionsAccepted == 2 and stats.handshakesCompleted == 2
    assert stats.connectionsOpen == 0 and stats.handshakesInProgress == 0
    assert len(reactor.getDelayedCalls()) <= delayedBefore
    assert stats.sourcesTracked <= SOURCES + 1
    # Most of the flood reached the port; what was answered is bounded by
    # the per-source token buckets, and the rest was dropped unparsed.
    assert stats.datagramsReceived > 0.5 * sent
    limiter = port.helloLimiter
    bound = (SOURCES + 1) * (limiter.burst + limiter.rate * elapsed)
    assert stats.helloVerifyRequestsSent <= bound
    assert stats.drops["rate_limited"] >= stats.datagramsReceived - bound - 100
    # Flat memory: what the port holds after 50,000 hellos is what it held
    # before, give or take the rate limiter's table and the counters.
    assert after - before < 256 * 1024, (before, after)
    print(f"flood: sent {sent}, received {stats.datagramsReceived}, answered {stats.helloVerifyRequestsSent}, "
          f"rate-limited {stats.drops['rate_limited']}, handshake after {handshakeDone:.1f} s, "
          f"memory {before} -> {after} bytes")
