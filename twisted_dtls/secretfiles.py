"""
Secrets kept in files, shared by every process and host of one service, and
rotated by changing the file.

Two secrets make a DTLS service work across processes and hosts:

  - the HelloVerifyRequest cookie secret (RFC 6347 §4.2.1): a ClientHello
    answered by one process may come back, with its cookie, to another;
  - the RFC 5077 session-ticket key: a ticket sealed by one process is
    opened by whichever process the client reaches next (RFC 5077 §4 leaves
    the key management to the servers; sharing it is how a farm of servers
    resumes each other's sessions).

A secret file holds one secret: its content with surrounding whitespace
removed (text or binary, at least 16 bytes), the same rule as the
C{cookieSecretFile} endpoint keyword has always had. A L{SecretFileWatcher}
re-reads the file every C{interval} seconds and rotates when the content
changed: the new secret becomes current and the previous one stays
accepted (cookies for one cookie lifetime, tickets until the next
rotation), so processes that notice the change a few seconds apart still
accept each other's cookies and tickets. A file that cannot be read, or
holds too short a secret, leaves the current secret in place and is logged.

Writing the file is the operator's business; write a new file and
C{rename} it over the old one, so that no reader ever sees half a secret.
L{writeSecretFile} does that, with mode 0600.
"""

from __future__ import annotations

import binascii
import os
import tempfile
from typing import Callable, Optional

from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from twisted_dtls.core.cookie import CookieContext
from twisted_dtls.core.sessions import TicketKeys

__all__ = [
    "MIN_SECRET_LENGTH",
    "DEFAULT_CHECK_INTERVAL",
    "readSecretFile",
    "writeSecretFile",
    "SecretFileWatcher",
    "CookieSecretFile",
    "TicketKeyFile",
]

#: Bytes a secret file must hold at least (after stripping whitespace).
MIN_SECRET_LENGTH = 16
#: Seconds between two reads of a secret file.
DEFAULT_CHECK_INTERVAL = 10.0


def readSecretFile(path: str, name: str = "secret file", minimum: int = MIN_SECRET_LENGTH) -> bytes:
    """
    The secret in C{path}: its content without surrounding whitespace.

    @param name: how error messages call the file (an endpoint keyword).
    @raise ValueError: if the file cannot be read or holds fewer than
        C{minimum} bytes.
    """
    try:
        with open(path, "rb") as f:
            secret = f.read().strip()
    except OSError as e:
        raise ValueError(f"cannot read {name} {path!r}: {e.strerror or e}") from None
    if len(secret) < minimum:
        raise ValueError(f"{name} {path!r} holds {len(secret)} bytes; at least {minimum} are needed")
    return secret


def writeSecretFile(path: str, secret: Optional[bytes] = None) -> bytes:
    """
    Replace C{path} atomically with C{secret} (default: 32 random bytes in
    hex), readable by its owner only.

    @return: the secret as L{readSecretFile} will read it.
    """
    if secret is None:
        secret = binascii.hexlify(os.urandom(32))
    secret = bytes(secret).strip()
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(f"a secret needs at least {MIN_SECRET_LENGTH} bytes")
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=".secret-", dir=directory)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secret + b"\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    return secret


class SecretFileWatcher:
    """
    Re-reads one secret file every C{interval} seconds on a clock, and calls
    C{onChange(secret)} when its content changed.

    Started and stopped with the port that uses it (L{DTLSPort}'s
    C{watchers}).

    @ivar path: the file.
    @ivar secret: the secret in use.
    @ivar interval: seconds between reads.
    @ivar rotations: how many times the secret changed.
    """

    _log = Logger()

    def __init__(
        self,
        path: str,
        onChange: Callable[[bytes], None],
        clock,
        interval: float = DEFAULT_CHECK_INTERVAL,
        name: str = "secret file",
        initial: Optional[bytes] = None,
    ):
        """
        @param clock: an C{IReactorTime} (the reactor, or a
            L{twisted.internet.task.Clock} in tests).
        @param name: how log messages call the file.
        @param initial: the secret already read from C{path}; read now when
            None.
        @raise ValueError: if C{initial} is None and the file cannot be read
            or holds too short a secret; or for a non-positive interval.
        """
        if not interval > 0:
            raise ValueError(f"interval must be positive, not {interval!r}")
        self.path = path
        self.name = name
        self.interval = float(interval)
        self.secret = initial if initial is not None else readSecretFile(path, name)
        self.rotations = 0
        self._onChange = onChange
        self._clock = clock
        self._loop = LoopingCall(self.check)
        self._loop.clock = clock
        self._lastProblem: Optional[str] = None

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} {self.path!r} every {self.interval:g}s>"

    @property
    def running(self) -> bool:
        return self._loop.running

    def start(self) -> None:
        """
        Check the file every C{interval} seconds from now on (idempotent).
        """
        if not self._loop.running:
            self._loop.start(self.interval, now=False)

    def stop(self) -> None:
        """
        Stop checking (idempotent).
        """
        if self._loop.running:
            self._loop.stop()

    def check(self) -> bool:
        """
        Read the file now; rotate if its secret changed.

        @return: whether the secret changed.
        """
        try:
            secret = readSecretFile(self.path, self.name)
        except ValueError as e:
            # Once per distinct problem: a file being replaced by hand may
            # be briefly missing, and a log line every interval helps nobody.
            problem = str(e)
            if problem != self._lastProblem:
                self._lastProblem = problem
                self._log.warn("{problem}; keeping the current secret", problem=problem)
            return False
        self._lastProblem = None
        if secret == self.secret:
            return False
        try:
            self._onChange(secret)
        except Exception:
            self._log.failure("Rotating to the new secret in {path} failed", path=self.path)
            return False
        self.secret = secret
        self.rotations += 1
        self._log.info("{name} {path} changed: rotated to the new secret", name=self.name, path=self.path)
        return True


class CookieSecretFile(SecretFileWatcher):
    """
    A L{CookieContext} keyed by a secret file: every port (in any process,
    on any host) given the same file accepts the others' cookies. On a
    change the previous secret keeps verifying for one cookie C{lifetime}.

    @ivar context: the L{CookieContext} to give the port (C{cookieContext}).
    """

    def __init__(self, path: str, clock, lifetime: float = 60.0, interval: float = DEFAULT_CHECK_INTERVAL,
                 name: str = "cookieSecretFile"):
        secret = readSecretFile(path, name)
        self.context = CookieContext(secret, lifetime)
        super().__init__(path, self._rotate, clock, interval, name, initial=secret)

    def _rotate(self, secret: bytes) -> None:
        self.context.rotate(self._clock.seconds(), secret)


class TicketKeyFile(SecretFileWatcher):
    """
    L{TicketKeys} derived from a secret file: every server given the same
    file opens the others' tickets. On a change the new key seals, and the
    previous one still opens tickets until the next change.

    @ivar keys: the L{TicketKeys} to put in the configuration
        (C{ticket_keys}).
    """

    def __init__(self, path: str, clock, lifetime: float = 7200.0, interval: float = DEFAULT_CHECK_INTERVAL,
                 name: str = "ticketKeyFile"):
        secret = readSecretFile(path, name)
        self.keys = TicketKeys(secret, lifetime)
        super().__init__(path, self.keys.rotate, clock, interval, name, initial=secret)
