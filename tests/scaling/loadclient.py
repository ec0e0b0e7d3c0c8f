"""
Many DTLS clients in one process, for load and failover tests: each client
is one engine (L{DTLSConnection}) on its own UDP socket, bound to its own
loopback source address (127.0.0.0/8 all reaches C{lo} on Linux, so
127.0.0.2 ... 127.0.0.201 are 200 different peers for the kernel's
C{SO_REUSEPORT} hash and for a proxy's C{hash $remote_addr}).

One C{selectors} loop drives every client; every wait is bounded by a
deadline. The engine is used directly (not the Twisted client) so that a
client can re-handshake on the same socket, offering its last session, and
so that each client's handshakes (full or abbreviated) are counted.
"""

from __future__ import annotations

import errno
import ipaddress
import selectors
import socket
import time
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence

from twisted_dtls.core.configuration import DTLSConfiguration
from twisted_dtls.core.connection import DTLSConnection
from twisted_dtls.core.events import ConnectionClosed, DataReceived, HandshakeCompleted

__all__ = ["LoadClient", "Client", "LoadError", "loopbackSources"]


class LoadError(AssertionError):
    """
    Some clients did not get there before the deadline.
    """


def loopbackSources(count: int, first: int = 2) -> list[str]:
    """
    C{count} loopback addresses: 127.0.0.C{first}, then upwards, skipping
    addresses whose last byte is 0 or 255.
    """
    sources: list[str] = []
    number = int(ipaddress.IPv4Address("127.0.0.0")) + first
    while len(sources) < count:
        if number & 0xFF not in (0, 255):
            sources.append(str(ipaddress.IPv4Address(number)))
        number += 1
    return sources


@dataclass(eq=False)
class Client:
    """
    One client.

    @ivar handshakes: handshakes completed (full and abbreviated).
    @ivar resumed: how many of them were abbreviated.
    @ivar closes: connections that ended (alert, timeout) and were started
        again.
    """

    index: int
    source: str
    sock: socket.socket
    configuration: DTLSConfiguration
    connection: Optional[DTLSConnection] = None
    session: object = None
    handshakes: int = 0
    resumed: int = 0
    closes: int = 0
    lastResumed: bool = False
    established: bool = False
    # echo state
    expect: Optional[bytes] = None
    sentAt: float = 0.0
    lastSend: float = 0.0
    handshakeStarted: float = 0.0
    received: list = field(default_factory=list)

    @property
    def local(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"{host}:{port}"

    def start(self, now: float, resume: bool = True) -> None:
        self.established = False
        self.connection = DTLSConnection(self.configuration, is_client=True,
                                         session=self.session if resume else None)
        self.connection.connect(now)
        self.handshakeStarted = now

    def sendExpected(self, now: float) -> None:
        self.connection.send(self.expect)
        self.lastSend = now


class LoadClient:
    """
    Clients of one server address, one per source address.
    """

    def __init__(self, server: tuple[str, int], configuration: DTLSConfiguration, sources: Sequence[str]):
        self.server = server
        self.clients: list[Client] = []
        self._selector = selectors.DefaultSelector()
        try:
            for index, source in enumerate(sources):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.bind((source, 0))
                sock.connect(server)
                sock.setblocking(False)
                client = Client(index, source, sock, configuration)
                self.clients.append(client)
                self._selector.register(sock, selectors.EVENT_READ, client)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for client in self.clients:
            try:
                self._selector.unregister(client.sock)
            except (KeyError, ValueError):
                pass
            client.sock.close()
        self._selector.close()

    def __enter__(self) -> "LoadClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the loop ---------------------------------------------------------------

    def _flush(self, client: Client, now: float) -> None:
        if client.connection is None:
            return
        for datagram in client.connection.datagrams_to_send(now):
            try:
                client.sock.send(datagram)
            except OSError as e:
                # ECONNREFUSED: an ICMP error from an earlier datagram; the
                # engine's retransmission (or the echo timeout) copes.
                if e.errno not in (errno.ECONNREFUSED, errno.EAGAIN):
                    raise
        while True:
            event = client.connection.next_event()
            if event is None:
                break
            if isinstance(event, HandshakeCompleted):
                client.established = True
                client.handshakes += 1
                client.lastResumed = event.resumed
                if event.resumed:
                    client.resumed += 1
                client.session = client.connection.session
                if client.expect is not None:
                    client.sendExpected(now)
                    self._flushData(client, now)
            elif isinstance(event, DataReceived):
                client.received.append(event.data)
                if client.expect is not None and event.data == client.expect:
                    client.expect = None
            elif isinstance(event, ConnectionClosed):
                client.established = False

    def _flushData(self, client: Client, now: float) -> None:
        for datagram in client.connection.datagrams_to_send(now):
            try:
                client.sock.send(datagram)
            except OSError as e:
                if e.errno not in (errno.ECONNREFUSED, errno.EAGAIN):
                    raise

    def _poll(self, timeout: float) -> None:
        now = time.time()
        for client in self.clients:
            connection = client.connection
            if connection is not None:
                timer = connection.get_timer()
                if timer is not None:
                    timeout = min(timeout, max(0.0, timer - now))
        for key, _ in self._selector.select(timeout):
            client = key.data
            while True:
                try:
                    datagram = client.sock.recv(65535)
                except BlockingIOError:
                    break
                except OSError as e:
                    if e.errno == errno.ECONNREFUSED:
                        continue
                    raise
                if client.connection is not None:
                    client.connection.receive_datagram(datagram, time.time())
            self._flush(client, time.time())
        now = time.time()
        for client in self.clients:
            connection = client.connection
            if connection is not None:
                timer = connection.get_timer()
                if timer is not None and timer <= now:
                    connection.handle_timer(now)
                    self._flush(client, now)

    # -- what tests ask for ---------------------------------------------------------

    def handshake(self, clients: Optional[Iterable[Client]] = None, deadline: float = 60.0,
                  resume: bool = True) -> float:
        """
        Start a handshake on every client and wait until all are
        established; one whose connection fails is started again.

        @return: the seconds it took.
        @raise LoadError: if some are not established by the deadline.
        """
        clients = list(self.clients if clients is None else clients)
        begin = time.time()
        for client in clients:
            client.start(begin, resume=resume)
            self._flush(client, begin)
        end = begin + deadline
        while time.time() < end:
            pending = [c for c in clients if not c.established]
            if not pending:
                return time.time() - begin
            for client in pending:
                if client.connection.is_closed:
                    client.closes += 1
                    client.start(time.time(), resume=resume)
                    self._flush(client, time.time())
            self._poll(0.05)
        pending = [c.source for c in clients if not c.established]
        raise LoadError(f"{len(pending)} of {len(clients)} handshakes not done after {deadline}s: {pending[:10]}")

    def echo(self, tag: str, clients: Optional[Iterable[Client]] = None, resend: float = 1.0,
             rehandshakeAfter: Optional[float] = 3.0, deadline: float = 60.0) -> float:
        """
        Every client sends one record and waits for it to come back,
        sending it again every C{resend} seconds; after C{rehandshakeAfter}
        seconds without its echo (or when its connection ended) it starts
        a new handshake on the same socket, offering its last session, and
        sends the record again once established.

        @param rehandshakeAfter: None never re-handshakes.
        @return: the seconds it took.
        @raise LoadError: if some echoes are missing at the deadline.
        """
        clients = list(self.clients if clients is None else clients)
        begin = time.time()
        for client in clients:
            client.expect = f"{tag}:{client.index}".encode()
            client.sentAt = begin
            if client.established and not client.connection.is_closed:
                client.sendExpected(begin)
                self._flushData(client, begin)
        end = begin + deadline
        while time.time() < end:
            pending = [c for c in clients if c.expect is not None]
            if not pending:
                return time.time() - begin
            now = time.time()
            for client in pending:
                broken = client.connection is None or client.connection.is_closed
                if rehandshakeAfter is not None and (broken or (client.established and now - client.sentAt > rehandshakeAfter)):
                    if broken:
                        client.closes += 1
                    client.sentAt = now
                    client.start(now)
                    self._flush(client, now)
                elif client.established and now - client.lastSend > resend:
                    client.sendExpected(now)
                    self._flushData(client, now)
            self._poll(0.05)
        pending = [c.source for c in clients if c.expect is not None]
        raise LoadError(f"{len(pending)} of {len(clients)} echoes missing after {deadline}s: {pending[:10]}")

    def run(self, seconds: float, clients: Optional[Iterable[Client]] = None, size: int = 100) -> int:
        """
        Echo as fast as each client can, one record in flight per client,
        for C{seconds}.

        @return: echoes received.
        """
        clients = list(self.clients if clients is None else clients)
        payload = b"x" * size
        for client in clients:
            client.received.clear()
            client.expect = payload
            client.sendExpected(time.time())
            self._flushData(client, time.time())
        end = time.time() + seconds
        count = 0
        while time.time() < end:
            self._poll(0.02)
            now = time.time()
            for client in clients:
                if client.expect is None:
                    count += 1
                    client.expect = payload
                    client.sendExpected(now)
                    self._flushData(client, now)
                elif now - client.lastSend > 1.0:
                    client.sendExpected(now)
                    self._flushData(client, now)
        for client in clients:
            client.expect = None
        return count
