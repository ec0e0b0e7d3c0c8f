"""
The load generator: a separate process (C{python -m bench.loadgen MODE
...}) that drives one server over UDP on 127.0.0.1 and prints one JSON
object with what it measured.

Modes:
  - C{echo}: C{--window} records in flight; every reply sends the next.
    With C{--dtls} it first completes a handshake (our engine as the
    client) and sends application-data records; replies are counted, and
    a sample of them is decrypted and compared with what was sent.
  - C{hvr}: the same loop with one fixed datagram, a cookie-less
    ClientHello: a DTLS server answers each with a HelloVerifyRequest, a
    plain echo server echoes it.
  - C{handshakes}: C{--clients} concurrent OpenSSL clients (pyOpenSSL,
    cheap on CPU, so that the server is the bottleneck), each completing
    a handshake, closing it with close_notify and starting the next.
  - C{hold}: complete C{--count} handshakes from as many sockets and keep
    every connection open (idle) until told to stop on stdin.

Every loop is bounded by a record/handshake count and by time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import select
import socket
import sys
import time

from .common import client_configuration, pin, process_cpu_seconds

#: How often (iterations) the echo loops look at the clock.
_CLOCK_EVERY = 256
#: A reply not seen within this long counts as lost and is replaced.
_LOSS_TIMEOUT = 0.5


def _server_cpu(pid: int | None) -> float:
    return process_cpu_seconds(pid) if pid else 0.0


# -- DTLS client over a socket -----------------------------------------------------------

def dtls_handshake(sock: socket.socket, deadline: float, group: str | None = None):
    """
    Complete a handshake with our engine over the connected socket C{sock}.
    """
    from twisted_dtls.core.connection import DTLSConnection
    from twisted_dtls.core.events import ConnectionClosed, HandshakeCompleted

    conn = DTLSConnection(client_configuration(group), is_client=True)
    now = time.monotonic()
    conn.connect(now)
    while True:
        for datagram in conn.datagrams_to_send(now):
            sock.send(datagram)
        while (event := conn.next_event()) is not None:
            if isinstance(event, HandshakeCompleted):
                return conn
            if isinstance(event, ConnectionClosed):
                raise RuntimeError(f"handshake failed: {event}")
        now = time.monotonic()
        if now > deadline:
            raise RuntimeError("handshake timed out")
        timer = conn.get_timer()
        wait = max(0.001, min(deadline, timer if timer is not None else deadline) - now)
        ready, _, _ = select.select([sock], [], [], wait)
        now = time.monotonic()
        if ready:
            conn.receive_datagram(sock.recv(65535), now)
        elif timer is not None and now >= timer:
            conn.handle_timer(now)


def _check_echo(conn, reply: bytes, payload: bytes) -> bool:
    from twisted_dtls.core.events import DataReceived

    conn.receive_datagram(reply, time.monotonic())
    found = False
    while (event := conn.next_event()) is not None:
        if isinstance(event, DataReceived) and event.data == payload:
            found = True
    return found


# -- echo / hvr ------------------------------------------------------------------------

def run_window(args) -> dict:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.connect((args.host, args.port))
    deadline = time.monotonic() + args.duration + args.warmup + 10.0
    conn = None
    payload = os.urandom(args.payload)
    if args.mode == "hvr":
        fixed = _client_hello()
        make = lambda: fixed  # noqa: E731
    elif args.dtls:
        conn = dtls_handshake(sock, deadline)
        # One call per record: the generator must stay cheaper than the
        # server it measures.
        seal = conn.seal_application_datagram

        def make() -> bytes:
            return seal(payload)
    else:
        make = lambda: payload  # noqa: E731

    sock.setblocking(False)
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    wait = poller.poll
    recv, sock_send = sock.recv, sock.send
    lost = 0
    checked = failed_checks = 0

    def phase(seconds: float, limit: int) -> tuple[int, float, float, float]:
        nonlocal lost, checked, failed_checks
        in_flight = 0
        for _ in range(args.window):
            sock_send(make())
            in_flight += 1
        received = 0
        server0 = _server_cpu(args.server_pid)
        cpu0 = time.process_time()
        t0 = time.monotonic()
        end = t0 + seconds
        next_check = 1
        while received < limit:
            if not wait(_LOSS_TIMEOUT * 1000):
                lost += in_flight
                in_flight = 0
                for _ in range(args.window):
                    sock_send(make())
                    in_flight += 1
                if time.monotonic() > end:
                    break
                continue
            # Take every reply already queued, then refill the window with
            # as many requests (a burst rather than strict ping-pong, as a
            # real sender with a window would).
            try:
                reply = recv(65535)
            except BlockingIOError:
                continue
            replies = 1
            while True:
                try:
                    recv(65535)
                except BlockingIOError:
                    break
                replies += 1
            received += replies
            if conn is not None and received >= next_check:
                next_check += 4096
                checked += 1
                if not _check_echo(conn, reply, payload):
                    failed_checks += 1
            if time.monotonic() > end:
                break
            for _ in range(replies):
                sock_send(make())
        t1 = time.monotonic()
        cpu = time.process_time() - cpu0
        server = _server_cpu(args.server_pid) - server0
        # Let the replies still in flight arrive before the next phase.
        while wait(50):
            try:
                recv(65535)
            except BlockingIOError:
                pass
        return received, t1 - t0, server, cpu

    if args.warmup > 0:
        phase(args.warmup, args.max_records)
    lost = 0
    received, elapsed, server_cpu, own_cpu = phase(args.duration, args.max_records)
    if conn is not None:
        conn.close()
        for datagram in conn.datagrams_to_send(0.0):
            sock.send(datagram)
    sock.close()
    return {
        "received": received,
        "elapsed": elapsed,
        "rate": received / elapsed if elapsed else 0.0,
        "server_cpu": server_cpu,
        "server_cpu_per_record": server_cpu / received if received else None,
        "loadgen_cpu_share": own_cpu / elapsed if elapsed else 0.0,
        "lost": lost,
        "checked": checked,
        "failed_checks": failed_checks,
    }


def _client_hello() -> bytes:
    from twisted_dtls.core.connection import DTLSConnection

    conn = DTLSConnection(client_configuration(), is_client=True)
    conn.connect(0.0)
    (hello,) = conn.datagrams_to_send(0.0)
    return hello


# -- handshakes ------------------------------------------------------------------------

class _OpenSSLClient:
    """
    One pyOpenSSL client, handshaking again and again, each time from a
    fresh socket (a new client to the server, not a restart of the last).
    """

    def __init__(self, ctx, address, poller, by_fd: dict):
        self.ctx = ctx
        self.address = address
        self.poller = poller
        self.by_fd = by_fd
        self.sock = None
        self.started = 0.0
        self.endpoint = None

    def _new_socket(self) -> None:
        if self.sock is not None:
            self.close()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.connect(self.address)
        self.sock = sock
        self.by_fd[sock.fileno()] = self
        self.poller.register(sock.fileno(), select.EPOLLIN)

    def close(self) -> None:
        fd = self.sock.fileno()
        self.poller.unregister(fd)
        del self.by_fd[fd]
        self.sock.close()
        self.sock = None

    def start(self, now: float, fresh: bool = True) -> None:
        from .openssl_side import MemoryEndpoint

        if fresh or self.sock is None:
            self._new_socket()
        self.endpoint = MemoryEndpoint(self.ctx, client=True)
        self.endpoint.step()
        self.started = now
        self.flush()

    def flush(self) -> None:
        for blob in self.endpoint.drain():
            try:
                self.sock.send(blob)
            except BlockingIOError:
                pass

    def readable(self) -> bool:
        """
        Feed what arrived; C{True} once the handshake completed.
        """
        from OpenSSL import SSL

        while True:
            try:
                data = self.sock.recv(65535)
            except BlockingIOError:
                break
            try:
                self.endpoint.feed(data)
            except SSL.Error:
                return False
        self.flush()
        return self.endpoint.done

    def finish(self) -> None:
        from OpenSSL import SSL

        try:
            self.endpoint.conn.shutdown()
        except SSL.Error:
            pass
        self.flush()


def run_handshakes(args) -> dict:
    from .openssl_side import client_context

    ctx = client_context(args.group)
    address = (args.host, args.port)
    poller = select.epoll()
    by_fd: dict[int, _OpenSSLClient] = {}
    clients = [_OpenSSLClient(ctx, address, poller, by_fd) for _ in range(args.clients)]

    def phase(seconds: float, limit: int) -> tuple[int, int, float, float]:
        done = stalled = 0
        now = time.monotonic()
        for c in clients:
            c.start(now)
        server0 = _server_cpu(args.server_pid)
        t0 = now
        end = t0 + seconds
        while done < limit and now < end:
            for fd, _ in poller.poll(0.05):
                c = by_fd.get(fd)
                if c is None:
                    continue
                if c.readable():
                    done += 1
                    c.finish()
                    c.start(time.monotonic())
            now = time.monotonic()
            for c in clients:
                if now - c.started > 1.0:
                    # Lost somewhere: start over (the server's half-open
                    # connection times out on its own).
                    stalled += 1
                    c.start(now)
        elapsed = time.monotonic() - t0
        server = _server_cpu(args.server_pid) - server0
        return done, stalled, elapsed, server

    if args.warmup > 0:
        phase(args.warmup, args.max_records)
    done, stalled, elapsed, server_cpu = phase(args.duration, args.max_records)
    for c in clients:
        c.close()
    return {
        "received": done,
        "elapsed": elapsed,
        "rate": done / elapsed if elapsed else 0.0,
        "server_cpu": server_cpu,
        "server_cpu_per_record": server_cpu / done if done else None,
        "stalled": stalled,
    }


# -- holding connections -----------------------------------------------------------------

def run_hold(args) -> None:
    """
    Establish C{--count} connections (OpenSSL clients, one socket each,
    C{--clients} handshakes in flight at once), report, then keep them
    until a line arrives on stdin (or C{--duration} seconds pass), and
    close them.
    """
    from .openssl_side import client_context

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.count + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    ctx = client_context(args.group)
    address = (args.host, args.port)
    poller = select.epoll()
    by_fd: dict[int, _OpenSSLClient] = {}
    established: list[_OpenSSLClient] = []
    pending: dict[int, _OpenSSLClient] = {}
    started = 0
    t0 = time.monotonic()
    deadline = t0 + args.duration
    retries = 0
    while len(established) < args.count and time.monotonic() < deadline:
        while started < args.count and len(pending) < args.clients:
            c = _OpenSSLClient(ctx, address, poller, by_fd)
            c.start(time.monotonic())
            pending[c.sock.fileno()] = c
            started += 1
        for fd, _ in poller.poll(0.05):
            c = pending.get(fd)
            if c is None:
                continue
            if c.readable():
                del pending[fd]
                established.append(c)
        now = time.monotonic()
        for fd, c in list(pending.items()):
            if now - c.started > 2.0:
                # Same socket: the server's half-done connection for it is
                # replaced by the new handshake.
                retries += 1
                c.start(now, fresh=False)
    elapsed = time.monotonic() - t0
    print(json.dumps({"established": len(established), "elapsed": elapsed, "retries": retries}), flush=True)
    select.select([sys.stdin], [], [], max(0.0, deadline - time.monotonic()))
    for c in established:
        c.finish()
        c.close()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    parser.add_argument("mode", choices=("echo", "hvr", "handshakes", "hold"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dtls", action="store_true")
    parser.add_argument("--payload", type=int, default=100)
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--max-records", type=int, default=2_000_000)
    parser.add_argument("--server-pid", type=int, default=None)
    parser.add_argument("--cpu", type=int, default=None)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--group", default=None)
    args = parser.parse_args(argv)
    pin(args.cpu)
    if args.mode == "hold":
        run_hold(args)
        return
    result = run_handshakes(args) if args.mode == "handshakes" else run_window(args)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
