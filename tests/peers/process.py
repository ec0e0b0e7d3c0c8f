"""
L{PeerProcess}: one external peer program, run the way every interop test
needs it.

  - under C{timeout} (and C{stdbuf -oL -eL}, so line-buffered C programs
    show their output as it happens), optionally inside a
    L{tests.peers.netns.NetworkNamespace};
  - stdin an open pipe for the whole life of the process (EOF makes
    C{openssl s_server} exit; EOF makes the clients send close_notify);
  - stdout and stderr read by background threads into buffers, searched by
    L{PeerProcess.wait_for} (blocking) or L{PeerProcess.when}
    (a Deferred, for tests running inside the reactor);
  - stopped by PID: SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
import weakref
from typing import IO, TYPE_CHECKING, Callable, Pattern, Sequence

from tests.peers.ports import wait_udp_bound

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from tests.peers.netns import NetworkNamespace

__all__ = ["PeerError", "PeerProcess", "stop_all"]

_LIVE: "weakref.WeakSet[PeerProcess]" = weakref.WeakSet()


class PeerError(Exception):
    """
    A peer did not do what the test waited for (exited, or a deadline
    passed). The message carries the tail of its output.
    """


def stop_all() -> None:
    """
    Stop every peer process that is still running (a safety net for the end
    of the session; tests should stop their own peers).
    """
    for peer in list(_LIVE):
        peer.stop()


class PeerProcess:
    """
    One running peer program.

    @ivar argv: the command as given (without the wrappers).
    @ivar full_argv: the command actually started.
    @ivar process: the L{subprocess.Popen}; its PID is the peer (the
        wrappers all C{exec}), or C{timeout} forwarding signals to it.
    """

    #: A short name for messages.
    name = "peer"

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        netns: "NetworkNamespace | None" = None,
        lifetime: float = 60.0,
    ) -> None:
        """
        Start the program.

        @param env: the whole environment (default: inherit).
        @param netns: run inside this namespace.
        @param lifetime: C{timeout} kills the program after this many seconds
            whatever happens to the test.
        """
        self.argv = list(argv)
        wrapped = ["timeout", "-k", "2", str(lifetime), "stdbuf", "-oL", "-eL", *self.argv]
        if netns is not None:
            wrapped = netns.argv(wrapped)
        self.full_argv = wrapped
        self.netns = netns
        self._lock = threading.Condition()
        self._out = {"stdout": bytearray(), "stderr": bytearray()}
        self._closed_streams = 0
        self.process = subprocess.Popen(
            wrapped,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
        )
        _LIVE.add(self)
        self._readers = [
            threading.Thread(
                target=self._pump, args=(getattr(self.process, key), key), daemon=True,
                name=f"{self.name}-{key}-{self.process.pid}",
            )
            for key in ("stdout", "stderr")
        ]
        for reader in self._readers:
            reader.start()

    # -- output ---------------------------------------------------------

    def _pump(self, stream: IO[bytes], key: str) -> None:
        try:
            while True:
                chunk = stream.read1(65536)
                if not chunk:
                    break
                with self._lock:
                    self._out[key] += chunk
                    self._lock.notify_all()
        except (OSError, ValueError):
            pass
        finally:
            # The reader owns its stream and closes it at EOF, however late
            # that comes: a peer that outlived stop() (a child that kept the
            # pipe open after its wrapper was killed) would otherwise leave
            # the stream for the garbage collector, and its ResourceWarning
            # would fail whatever test happened to be running then.
            stream.close()
            with self._lock:
                self._closed_streams += 1
                self._lock.notify_all()

    @property
    def stdout(self) -> str:
        """Everything the peer wrote to stdout so far."""
        with self._lock:
            return self._out["stdout"].decode(errors="replace")

    @property
    def stderr(self) -> str:
        """Everything the peer wrote to stderr so far."""
        with self._lock:
            return self._out["stderr"].decode(errors="replace")

    @property
    def output(self) -> str:
        """stdout, then stderr (for messages; not interleaved in time)."""
        return self.stdout + self.stderr

    def describe(self, tail: int = 2000) -> str:
        """The command, exit status and the end of both streams."""
        return (
            f"{self.name} pid={self.process.pid} returncode={self.process.poll()}\n"
            f"argv: {' '.join(self.full_argv)}\n"
            f"--- stdout ---\n{self.stdout[-tail:]}\n--- stderr ---\n{self.stderr[-tail:]}"
        )

    def search(self, pattern: str | Pattern[str], stream: str | None = None) -> re.Match | None:
        """
        Search the output so far.

        @param pattern: a regular expression (compiled with C{re.MULTILINE}
            if given as a string).
        @param stream: C{"stdout"}, C{"stderr"} or C{None} for either.
        """
        regex = re.compile(pattern, re.MULTILINE) if isinstance(pattern, str) else pattern
        for key in (stream,) if stream else ("stdout", "stderr"):
            with self._lock:
                text = self._out[key].decode(errors="replace")
            match = regex.search(text)
            if match:
                return match
        return None

    def wait_for(
        self,
        pattern: str | Pattern[str],
        timeout: float = 10.0,
        stream: str | None = None,
    ) -> re.Match:
        """
        Block until C{pattern} appears in the output.

        Do not call this from inside the reactor (it blocks it); use L{when}.

        @raise PeerError: the deadline passed, or the peer's output ended
            without the pattern.
        """
        deadline = time.monotonic() + timeout
        while True:
            match = self.search(pattern, stream)
            if match:
                return match
            with self._lock:
                if self._closed_streams == 2:
                    ended = True
                else:
                    ended = False
                    remaining = deadline - time.monotonic()
                    if remaining > 0:
                        self._lock.wait(min(remaining, 0.5))
            if ended and not self.search(pattern, stream):
                raise PeerError(f"output ended without {_show(pattern)}\n{self.describe()}")
            if time.monotonic() >= deadline and not self.search(pattern, stream):
                raise PeerError(
                    f"no {_show(pattern)} within {timeout} s\n{self.describe()}"
                )

    def when(
        self,
        pattern: str | Pattern[str],
        timeout: float = 10.0,
        stream: str | None = None,
        reactor=None,
    ) -> "Deferred[re.Match]":
        """
        Like L{wait_for}, for tests running inside the reactor: a Deferred
        that fires with the match, or fails with L{PeerError}.
        """
        return poll_deferred(
            lambda: self.search(pattern, stream),
            timeout,
            lambda: f"no {_show(pattern)} within {timeout} s\n{self.describe()}",
            ended=lambda: self._output_ended(),
            reactor=reactor,
        )

    def _output_ended(self) -> bool:
        with self._lock:
            return self._closed_streams == 2

    # -- input ----------------------------------------------------------

    def write(self, data: bytes | str) -> None:
        """Write to the peer's stdin (and flush)."""
        if isinstance(data, str):
            data = data.encode()
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def send_line(self, line: str) -> None:
        """Write one line to the peer's stdin."""
        self.write(line.rstrip("\n") + "\n")

    def close_stdin(self) -> None:
        """EOF on stdin: the clients send close_notify and exit."""
        if not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except BrokenPipeError:
                pass

    # -- life -----------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    def wait_bound(self, port: int, timeout: float = 10.0) -> None:
        """
        Block until the peer has bound UDP C{port} (in its own namespace).

        @raise PeerError: it exited first, or the deadline passed.
        """
        try:
            wait_udp_bound(
                port,
                timeout,
                pid=self.process.pid if self.netns is not None else None,
                alive=lambda: self.running,
            )
        except TimeoutError as e:
            raise PeerError(f"{e}\n{self.describe()}") from None

    def wait(self, timeout: float = 10.0) -> int:
        """
        Wait for the peer to exit by itself.

        @return: its exit status.
        @raise PeerError: still running after C{timeout} (it is left running;
            L{stop} it).
        """
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise PeerError(f"still running after {timeout} s\n{self.describe()}") from None
        self._join_readers()
        return code

    def stop(self, grace: float = 3.0) -> int | None:
        """
        Stop the peer by its PID (SIGTERM, then SIGKILL after C{grace}
        seconds) and collect its output. Idempotent.

        @return: its exit status.
        """
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.close_stdin()
        self._join_readers()
        _LIVE.discard(self)
        return self.process.returncode

    def _join_readers(self) -> None:
        for reader in self._readers:
            reader.join(5)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None and not any(r.is_alive() for r in self._readers):
                stream.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} pid={self.process.pid} returncode={self.process.poll()}>"


def _show(pattern: str | Pattern[str]) -> str:
    return repr(pattern if isinstance(pattern, str) else pattern.pattern)


def poll_deferred(
    check: Callable[[], object],
    timeout: float,
    describe: Callable[[], str],
    ended: Callable[[], bool] | None = None,
    reactor=None,
    interval: float = 0.02,
) -> "Deferred":
    """
    A Deferred that fires with the first true result of C{check()}, polled
    every C{interval} seconds on the reactor, or fails with L{PeerError}
    after C{timeout} seconds or once C{ended()} is true and C{check()} still
    is not.
    """
    from twisted.internet import defer, task

    if reactor is None:
        from twisted.internet import reactor

    deadline = time.monotonic() + timeout

    async def poll():
        while True:
            finished = ended() if ended is not None else False
            result = check()
            if result:
                return result
            if finished:
                raise PeerError("output ended; " + describe())
            if time.monotonic() >= deadline:
                raise PeerError(describe())
            await task.deferLater(reactor, interval, lambda: None)

    return defer.ensureDeferred(poll())
