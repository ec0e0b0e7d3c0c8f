"""
A seeded, lossy UDP proxy on loopback, for tests that run real peers
(C{openssl s_client}, our own client, the Twisted reactor) over a bad
network.

L{LossyProxy} listens on C{front_host} (a free port); every client address
that writes to it gets its own upstream socket (bound to C{upstream_host}),
connected to the server, so the server sees one peer per client, as through
a NAT. Each direction has its own L{Impairment}: a probability to drop, a
probability to duplicate, and a random extra delay (which reorders). Chosen
datagrams can be dropped by index (in the order they reached the proxy,
both directions counted together), to cover "lose exactly this one".
Decisions come from C{random.Random(seed)}, taken in arrival order.

The proxy runs in a daemon thread of its own (so it works the same for a
test inside the reactor and for two external processes), forwards only
between loopback sockets, holds at most C{max_clients} client mappings and
C{max_queued} delayed datagrams, and stops by itself after C{lifetime}
seconds. Example::

    with LossyProxy(("127.0.0.1", server_port), seed=3,
                    c2s=Impairment(drop=0.2, duplicate=0.2, delay=0.1),
                    s2c=Impairment(drop=0.2, duplicate=0.2, delay=0.1)) as proxy:
        client = OpenSSLClient(proxy.port)
        ...
    print(proxy.log)   # [(time, "c2s"|"s2c", size, fate), ...]
"""

from __future__ import annotations

import heapq
import random
import selectors
import socket
import threading
import time
from dataclasses import dataclass

__all__ = ["Impairment", "LossyProxy"]


@dataclass(frozen=True)
class Impairment:
    """
    @ivar drop: probability that a datagram is lost.
    @ivar duplicate: probability that a datagram is sent twice (each copy
        gets its own delay).
    @ivar delay: maximum extra delay in seconds, uniformly random.
    """

    drop: float = 0.0
    duplicate: float = 0.0
    delay: float = 0.0


class LossyProxy:
    """
    @ivar address: C{(host, port)} clients should send to.
    @ivar log: one C{(seconds since start, direction, size, fate)} per
        datagram that reached the proxy; fate is C{"sent"}, C{"dropped"} or
        C{"duplicated"}.
    """

    def __init__(
        self,
        upstream: tuple[str, int],
        seed: int = 0,
        c2s: Impairment = Impairment(),
        s2c: Impairment = Impairment(),
        drop_indices: frozenset[int] | set[int] = frozenset(),
        front_host: str = "127.0.0.1",
        upstream_host: str = "127.0.0.1",
        max_clients: int = 64,
        max_queued: int = 10_000,
        lifetime: float = 120.0,
    ):
        for host in (upstream[0], front_host, upstream_host):
            if not (host.startswith("127.") or host == "::1"):
                raise ValueError(f"loopback addresses only, not {host!r}")
        self.upstream = upstream
        self.impairments = {"c2s": c2s, "s2c": s2c}
        self.drop_indices = frozenset(drop_indices)
        self.max_clients = max_clients
        self.max_queued = max_queued
        self.lifetime = lifetime
        self._rng = random.Random(seed)
        family = socket.AF_INET6 if ":" in front_host else socket.AF_INET
        self._front = socket.socket(family, socket.SOCK_DGRAM)
        self._front.bind((front_host, 0))
        self._front.setblocking(False)
        self.address = self._front.getsockname()[:2]
        self._upstream_host = upstream_host
        self._clients: dict[tuple, socket.socket] = {}
        self._by_socket: dict[socket.socket, tuple] = {}
        self._queue: list = []
        self._order = 0
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._front, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._run, name=f"lossy-proxy-{self.address[1]}", daemon=True)
        self.log: list[tuple[float, str, int, str]] = []
        self.errors: list[BaseException] = []

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def count(self) -> int:
        """Datagrams that reached the proxy so far, both directions."""
        return len(self.log)

    def counts(self, direction: str) -> int:
        return sum(1 for entry in self.log if entry[1] == direction)

    # -- life -------------------------------------------------------------------

    def start(self) -> "LossyProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self._selector.close()
        for sock in [self._front, *self._clients.values()]:
            sock.close()

    def __enter__(self) -> "LossyProxy":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- the loop ---------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now - self._started > self.lifetime:
                    return
                timeout = 0.05
                if self._queue:
                    timeout = max(0.0, min(timeout, self._queue[0][0] - now))
                for key, _ in self._selector.select(timeout):
                    self._readable(key.fileobj)
                self._release(time.monotonic())
        except BaseException as e:  # reported to the test through .errors
            self.errors.append(e)

    def _readable(self, sock: socket.socket) -> None:
        for _ in range(64):
            try:
                data, source = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # ICMP unreachable reported on a connected upstream socket.
                return
            if sock is self._front:
                upstream = self._upstreamFor(source[:2])
                if upstream is not None:
                    self._forward("c2s", data, upstream, None)
            else:
                client = self._by_socket.get(sock)
                if client is not None:
                    self._forward("s2c", data, self._front, client)

    def _upstreamFor(self, client: tuple) -> socket.socket | None:
        sock = self._clients.get(client)
        if sock is None:
            if len(self._clients) >= self.max_clients:
                return None
            family = socket.AF_INET6 if ":" in self._upstream_host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.bind((self._upstream_host, 0))
            sock.connect(self.upstream)
            sock.setblocking(False)
            self._clients[client] = sock
            self._by_socket[sock] = client
            self._selector.register(sock, selectors.EVENT_READ)
        return sock

    def _forward(self, direction: str, data: bytes, sock: socket.socket, destination) -> None:
        index = len(self.log)
        impairment = self.impairments[direction]
        rng = self._rng
        elapsed = time.monotonic() - self._started
        if index in self.drop_indices or (impairment.drop and rng.random() < impairment.drop):
            self.log.append((elapsed, direction, len(data), "dropped"))
            return
        copies = 2 if impairment.duplicate and rng.random() < impairment.duplicate else 1
        self.log.append((elapsed, direction, len(data), "duplicated" if copies == 2 else "sent"))
        now = time.monotonic()
        for _ in range(copies):
            due = now + (rng.uniform(0.0, impairment.delay) if impairment.delay else 0.0)
            if len(self._queue) < self.max_queued:
                self._order += 1
                heapq.heappush(self._queue, (due, self._order, sock, data, destination))

    def _release(self, now: float) -> None:
        queue = self._queue
        while queue and queue[0][0] <= now:
            _, _, sock, data, destination = heapq.heappop(queue)
            try:
                if destination is None:
                    sock.send(data)
                else:
                    sock.sendto(data, destination)
            except OSError:
                pass
