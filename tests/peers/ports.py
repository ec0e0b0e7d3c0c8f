"""
Loopback UDP ports: picking a free one, and waiting until a peer has bound
one.

Readiness is read from the kernel (C{/proc/<pid>/net/udp} and C{udp6}),
never from a peer's banner: banners are buffered or suppressed by
C{-brief}.
"""

from __future__ import annotations

import socket
import time
from typing import Callable

__all__ = ["free_udp_port", "bound_udp_ports", "is_udp_bound", "wait_udp_bound"]


def free_udp_port(host: str = "127.0.0.1") -> int:
    """
    A UDP port that is free on C{host} right now.

    The port is released before returning, so another process could take it
    in between; on loopback in a test run that is rare enough, and a peer
    failing to bind shows up as a clear error from L{wait_udp_bound}.

    @param host: C{"127.0.0.1"} or C{"::1"}.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _proc_net_dir(pid: int | None) -> str:
    # /proc/net follows the thread-group leader's namespace; thread-self
    # follows this thread, which is what matters after netns.entered().
    return "/proc/thread-self/net" if pid is None else f"/proc/{pid}/net"


def bound_udp_ports(pid: int | None = None) -> set[int]:
    """
    Every locally bound UDP port (IPv4 and IPv6) in the network namespace of
    process C{pid} (default: the calling thread's).

    @raise FileNotFoundError: if process C{pid} is gone.
    """
    ports: set[int] = set()
    base = _proc_net_dir(pid)
    for table in ("udp", "udp6"):
        try:
            with open(f"{base}/{table}") as f:
                lines = f.read().splitlines()[1:]
        except FileNotFoundError:
            if table == "udp6":  # no IPv6 in this kernel
                continue
            raise
        for line in lines:
            fields = line.split()
            # fields[1] is local_address, "HEXADDR:HEXPORT".
            if len(fields) > 1 and ":" in fields[1]:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def is_udp_bound(port: int, pid: int | None = None) -> bool:
    """
    Whether UDP C{port} is bound in the namespace of C{pid} (default: the
    calling thread's).
    """
    try:
        return port in bound_udp_ports(pid)
    except FileNotFoundError:
        return False


def wait_udp_bound(
    port: int,
    timeout: float = 10.0,
    pid: int | None = None,
    alive: Callable[[], bool] | None = None,
) -> None:
    """
    Block until UDP C{port} is bound.

    @param pid: read the tables of this process's network namespace (a peer
        inside a private namespace); default: the calling thread's.
    @param alive: called while waiting; when it returns C{False} the wait
        stops at once (the peer exited instead of binding).
    @raise TimeoutError: the deadline passed, or C{alive()} became false.
    """
    deadline = time.monotonic() + timeout
    while True:
        if is_udp_bound(port, pid):
            return
        if alive is not None and not alive():
            raise TimeoutError(f"peer exited before binding UDP port {port}")
        if time.monotonic() >= deadline:
            raise TimeoutError(f"UDP port {port} not bound after {timeout} s")
        time.sleep(0.02)
