"""
A client and a server engine joined by an in-memory network on an explicit
timeline, with seeded loss, duplication and reordering.

The server side behaves like the port: datagrams from the client go through
the stateless cookie exchange (L{examine_first_datagram}) until one is
accepted, and only then is a server L{DTLSConnection} created.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from typing import Callable

from twisted_dtls.core.configuration import DTLSConfiguration
from twisted_dtls.core.connection import DTLSConnection
from twisted_dtls.core.cookie import CookieContext
from twisted_dtls.core.events import ConnectionClosed, DataReceived, HandshakeCompleted
from twisted_dtls.core.listener import Verdict, examine_first_datagram

CLIENT_ADDRESS = ("127.0.0.2", 40000)


@dataclass
class Impairment:
    """
    @ivar drop: probability of dropping a datagram.
    @ivar duplicate: probability of sending a datagram twice.
    @ivar delay: maximum extra delay (seconds); uniformly random, so later
        datagrams overtake earlier ones.
    @ivar drop_indices: indices (in send order, both directions counted
        together) of datagrams to drop.
    """

    drop: float = 0.0
    duplicate: float = 0.0
    delay: float = 0.0
    drop_indices: frozenset[int] = frozenset()


@dataclass
class Endpoint:
    name: str
    connection: DTLSConnection | None = None
    events: list = field(default_factory=list)
    received: list[bytes] = field(default_factory=list)

    @property
    def completed(self) -> HandshakeCompleted | None:
        return next((e for e in self.events if isinstance(e, HandshakeCompleted)), None)

    @property
    def closed(self) -> ConnectionClosed | None:
        return next((e for e in self.events if isinstance(e, ConnectionClosed)), None)


class PairNetwork:
    """
    Run a handshake (and data) between two engines.

    @ivar sent: every datagram put on the wire, as (time, direction, bytes);
        direction is C{"c2s"} or C{"s2c"}.
    @ivar hello_verify_requests: HelloVerifyRequests the stateless listener
        sent.
    """

    def __init__(
        self,
        client_configuration: DTLSConfiguration,
        server_configuration: DTLSConfiguration,
        impairment: Impairment | None = None,
        seed: int = 0,
        latency: float = 0.01,
        cookies: CookieContext | None = None,
    ):
        self.now = 0.0
        self.rng = random.Random(seed)
        self.impairment = impairment or Impairment()
        self.latency = latency
        self.cookies = cookies or CookieContext(secret=b"k" * 32)
        self.client = Endpoint("client", DTLSConnection(client_configuration, is_client=True))
        self.server = Endpoint("server")
        self.server_configuration = server_configuration
        self.sent: list[tuple[float, str, bytes]] = []
        self.hello_verify_requests: list[bytes] = []
        self._queue: list[tuple[float, int, str, bytes]] = []
        self._order = 0
        self.on_server_datagram: Callable[[bytes], None] | None = None

    # -- wire ---------------------------------------------------------------------------

    def _put(self, direction: str, datagram: bytes) -> None:
        index = len(self.sent)
        self.sent.append((self.now, direction, datagram))
        imp = self.impairment
        if index in imp.drop_indices or (imp.drop and self.rng.random() < imp.drop):
            return
        copies = 2 if imp.duplicate and self.rng.random() < imp.duplicate else 1
        for _ in range(copies):
            at = self.now + self.latency + (self.rng.uniform(0, imp.delay) if imp.delay else 0.0)
            self._order += 1
            heapq.heappush(self._queue, (at, self._order, direction, datagram))

    def _flush(self, endpoint: Endpoint, direction: str) -> None:
        conn = endpoint.connection
        if conn is None:
            return
        for datagram in conn.datagrams_to_send(self.now):
            self._put(direction, datagram)
        while (event := conn.next_event()) is not None:
            endpoint.events.append(event)
            if isinstance(event, DataReceived):
                endpoint.received.append(event.data)

    def flush(self) -> None:
        self._flush(self.client, "c2s")
        self._flush(self.server, "s2c")

    def _deliver(self, direction: str, datagram: bytes) -> None:
        if direction == "s2c":
            self.client.connection.receive_datagram(datagram, self.now)
            return
        if self.on_server_datagram is not None:
            self.on_server_datagram(datagram)
        if self.server.connection is None:
            verdict = examine_first_datagram(datagram, CLIENT_ADDRESS, self.cookies, self.now)
            if verdict.verdict is Verdict.HELLO_VERIFY:
                self.hello_verify_requests.append(verdict.reply)
                self._put("s2c", verdict.reply)
                return
            if verdict.verdict is Verdict.DROP:
                return
            self.server.connection = DTLSConnection(self.server_configuration, is_client=False)
        self.server.connection.receive_datagram(datagram, self.now)

    # -- running --------------------------------------------------------------------------

    def start(self) -> None:
        self.client.connection.connect(self.now)
        self.flush()

    def _next_timer(self) -> float | None:
        deadlines = [
            d
            for e in (self.client, self.server)
            if e.connection is not None and (d := e.connection.get_timer()) is not None
        ]
        return min(deadlines) if deadlines else None

    def step(self) -> bool:
        """
        Advance to the next datagram arrival or timer; C{False} when
        nothing is left to happen.
        """
        timer = self._next_timer()
        arrival = self._queue[0][0] if self._queue else None
        if arrival is None and timer is None:
            return False
        if arrival is not None and (timer is None or arrival <= timer):
            at, _, direction, datagram = heapq.heappop(self._queue)
            self.now = max(self.now, at)
            self._deliver(direction, datagram)
        else:
            self.now = max(self.now, timer)
            for endpoint in (self.client, self.server):
                if endpoint.connection is not None:
                    endpoint.connection.handle_timer(self.now)
        self.flush()
        return True

    def run(self, until: Callable[[], bool] | None = None, deadline: float = 600.0, max_steps: int = 100_000) -> None:
        for _ in range(max_steps):
            if until is not None and until():
                return
            if self.now > deadline or not self.step():
                return

    def handshake(self, deadline: float = 600.0) -> None:
        self.start()
        self.run(lambda: self.client.completed is not None and self.server.completed is not None, deadline)

    def client_send(self, data: bytes) -> None:
        self.client.connection.send(data)
        self.flush()

    def server_send(self, data: bytes) -> None:
        self.server.connection.send(data)
        self.flush()
