"""
Private network namespaces for peers that cannot be told where to bind.

C{gnutls-serv} has no bind-address option: it binds 0.0.0.0 and [::]. To
keep the tests on loopback it runs in a private network namespace that has
only C{lo}. Whatever talks to it must be in the same namespace. What works
here (root, Linux, util-linux C{unshare}/C{nsenter}):

  - L{NetworkNamespace} starts a tiny holder process (C{sleep} under
    C{timeout}) with C{unshare -n}, brings C{lo} up, and names the namespace
    by C{/proc/<holder pid>/ns/net}. It lives until L{NetworkNamespace.close}
    (or the holder's C{timeout}).
  - External peers join it with C{nsenter --net=PATH}: pass C{netns=ns} to
    any driver in L{tests.peers}.
  - The test process itself joins it for a moment with
    L{NetworkNamespace.entered}: C{setns(2)} moves only the calling thread,
    and a socket stays in the namespace it was created in. So::

        with ns.entered():
            port = reactor.listenUDP(0, proto, interface="127.0.0.1")
        # back in the original namespace; the socket still talks to
        # gnutls-serv inside ns, and the reactor polls it as usual.

    Do not yield to the reactor or start threads inside the C{with} block.
  - L{run_in_netns} runs a whole command (for example a Python script or a
    pytest subprocess) inside a fresh private namespace, for the rare test
    that cannot create its sockets up front.

Needs CAP_SYS_ADMIN; L{netns_available} says why not when it fails, and
L{tests.peers.require_netns} turns that into a skip (or a CI failure).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import subprocess
from typing import Iterator, Sequence

__all__ = [
    "NetworkNamespace",
    "netns_available",
    "private_netns_argv",
    "run_in_netns",
]

CLONE_NEWNET = 0x40000000

#: sh script that brings loopback up, then becomes the given command.
_LO_UP_THEN_EXEC = 'ip link set lo up && exec "$@"'


def private_netns_argv(argv: Sequence[str]) -> list[str]:
    """
    Wrap C{argv} so it runs in a new network namespace with C{lo} up.

    The command keeps the PID of the wrapper (C{unshare} and C{sh} both
    C{exec}), so stopping that PID stops the command.
    """
    return ["unshare", "-n", "--", "sh", "-c", _LO_UP_THEN_EXEC, "sh", *argv]


def run_in_netns(
    argv: Sequence[str], timeout: float = 120.0, **kwargs
) -> subprocess.CompletedProcess:
    """
    Run C{argv} to completion in a fresh private network namespace with only
    C{lo}, under C{timeout}.

    @param kwargs: passed to L{subprocess.run} (C{capture_output}, C{env},
        C{cwd}, ...).
    """
    return subprocess.run(
        private_netns_argv(["timeout", "-k", "2", str(timeout), *argv]), **kwargs
    )


@functools.cache
def netns_available() -> str | None:
    """
    Check once whether private network namespaces work here.

    @return: C{None} if they do, otherwise what went wrong.
    """
    try:
        result = run_in_netns(["true"], timeout=10, capture_output=True, text=True)
    except OSError as e:
        return str(e)
    if result.returncode != 0:
        return (result.stderr or f"exit status {result.returncode}").strip()
    return None


_libc = None


def _setns(fd: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns(CLONE_NEWNET): {os.strerror(errno)}")


class NetworkNamespace:
    """
    A private network namespace with only C{lo} (up), kept alive by a holder
    process. Use as a context manager, or call L{close}.

    @ivar pid: the holder's PID.
    @ivar path: C{/proc/<pid>/ns/net}, for C{nsenter --net=}.
    """

    def __init__(self, lifetime: float = 300.0) -> None:
        """
        @param lifetime: seconds after which the holder exits by itself
            (its C{timeout}), should L{close} never be called.
        """
        self._holder = subprocess.Popen(
            private_netns_argv(
                ["sh", "-c", 'echo ready && exec "$@"', "sh",
                 "timeout", str(lifetime), "sleep", str(lifetime)]
            ),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        line = self._holder.stdout.readline()
        if line.strip() != b"ready":
            self._holder.wait(timeout=10)
            err = self._holder.stderr.read().decode(errors="replace").strip()
            self._holder.stdout.close()
            self._holder.stderr.close()
            raise OSError(f"could not create a network namespace: {err or 'no output'}")
        self.pid = self._holder.pid
        self.path = f"/proc/{self.pid}/ns/net"
        # Holding a descriptor keeps the namespace usable by entered() even
        # if the holder dies early.
        self._fd: int | None = os.open(self.path, os.O_RDONLY)

    def argv(self, argv: Sequence[str]) -> list[str]:
        """
        Wrap C{argv} so it runs inside this namespace (C{nsenter} execs, so
        the command keeps the wrapper's PID).
        """
        return ["nsenter", f"--net={self.path}", "--", *argv]

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """
        Move the calling thread into this namespace for the duration of the
        block, then back. Sockets created inside stay in this namespace.
        """
        if self._fd is None:
            raise ValueError("namespace closed")
        original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            _setns(self._fd)
            try:
                yield
            finally:
                _setns(original)
        finally:
            os.close(original)

    def close(self) -> None:
        """
        Stop the holder (by PID) and release the namespace. Idempotent.
        """
        if self._holder.poll() is None:
            self._holder.terminate()
            try:
                self._holder.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._holder.kill()
                self._holder.wait()
        for stream in (self._holder.stdout, self._holder.stderr):
            if stream is not None:
                stream.close()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "NetworkNamespace":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<NetworkNamespace pid={self.pid}>"
