"""
L{twisted_dtls.secretfiles}: reading, writing and watching secret files,
on a L{Clock}.
"""

from __future__ import annotations

import os
import stat

import pytest
from twisted.internet.task import Clock

from twisted_dtls.core.cookie import cookie_input
from twisted_dtls.core.sessions import Session
from twisted_dtls.secretfiles import (
    DEFAULT_CHECK_INTERVAL,
    CookieSecretFile,
    SecretFileWatcher,
    TicketKeyFile,
    readSecretFile,
    writeSecretFile,
)

FIELDS = cookie_input(0xFEFD, b"r" * 32, b"", [0xC02B], [0])
PEER = ("127.0.0.2", 5000)


def test_readStripsWhitespace(tmp_path):
    path = tmp_path / "s"
    path.write_bytes(b"  0123456789abcdef0123\r\n")
    assert readSecretFile(str(path)) == b"0123456789abcdef0123"


def test_readBinary(tmp_path):
    path = tmp_path / "s"
    secret = bytes(range(100, 132))
    path.write_bytes(secret)
    assert readSecretFile(str(path)) == secret


@pytest.mark.parametrize(
    "content, message",
    [(None, "cannot read ticketKeyFile"), (b"short\n", "holds 5 bytes; at least 16 are needed")],
)
def test_readErrors(tmp_path, content, message):
    path = tmp_path / "s"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        readSecretFile(str(path), "ticketKeyFile")


def test_writeIsPrivateAndReadable(tmp_path):
    path = str(tmp_path / "s")
    first = writeSecretFile(path)
    assert len(first) == 64 and readSecretFile(path) == first
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    second = writeSecretFile(path)
    assert second != first and readSecretFile(path) == second
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["s"]  # no temporary file left
    with pytest.raises(ValueError):
        writeSecretFile(path, b"short")


def test_watcherCallsOnChangeOnlyWhenContentChanges(tmp_path):
    path = tmp_path / "s"
    path.write_bytes(b"a" * 20)
    clock = Clock()
    seen = []
    watcher = SecretFileWatcher(str(path), seen.append, clock, interval=5)
    watcher.start()
    clock.advance(5)
    assert seen == [] and watcher.rotations == 0
    path.write_bytes(b"a" * 20 + b"\n")  # same secret, different bytes on disk
    clock.advance(5)
    assert seen == []
    path.write_bytes(b"b" * 20)
    clock.advance(4.9)
    assert seen == []
    clock.advance(0.1)
    assert seen == [b"b" * 20] and watcher.secret == b"b" * 20 and watcher.rotations == 1
    watcher.stop()
    path.write_bytes(b"c" * 20)
    clock.advance(50)
    assert seen == [b"b" * 20]
    assert not clock.getDelayedCalls()


def test_watcherKeepsSecretWhenFileIsBad(tmp_path):
    path = tmp_path / "s"
    path.write_bytes(b"a" * 20)
    clock = Clock()
    seen = []
    watcher = SecretFileWatcher(str(path), seen.append, clock)
    assert watcher.interval == DEFAULT_CHECK_INTERVAL
    os.unlink(path)
    assert watcher.check() is False
    path.write_bytes(b"tiny")
    assert watcher.check() is False
    assert watcher.secret == b"a" * 20 and seen == []
    path.write_bytes(b"d" * 20)
    assert watcher.check() is True and seen == [b"d" * 20]


def test_watcherRejectsBadInterval(tmp_path):
    path = tmp_path / "s"
    path.write_bytes(b"a" * 20)
    with pytest.raises(ValueError):
        SecretFileWatcher(str(path), lambda s: None, Clock(), interval=0)


def test_cookieRotationKeepsPreviousForOneLifetime(tmp_path):
    """
    Two contexts on one file: after the file changes, a cookie made under
    the old secret still verifies for one cookie lifetime, and cookies made
    under the new one verify in the other context once it has re-read the
    file.
    """
    path = tmp_path / "cookie"
    writeSecretFile(str(path))
    clock = Clock()
    clock.advance(1_000_000)
    a = CookieSecretFile(str(path), clock, lifetime=60, interval=10)
    b = CookieSecretFile(str(path), clock, lifetime=60, interval=10)
    old = a.context.make_cookie(FIELDS, PEER, clock.seconds())
    assert b.context.verify_cookie(old, FIELDS, PEER, clock.seconds())

    writeSecretFile(str(path))
    assert a.check() and b.check()
    new = a.context.make_cookie(FIELDS, PEER, clock.seconds())
    assert new != old
    assert b.context.verify_cookie(new, FIELDS, PEER, clock.seconds())
    assert b.context.verify_cookie(old, FIELDS, PEER, clock.seconds() + 30)
    assert not b.context.verify_cookie(old, FIELDS, PEER, clock.seconds() + 61)

    stranger = tmp_path / "other"
    writeSecretFile(str(stranger))
    c = CookieSecretFile(str(stranger), clock)
    assert not c.context.verify_cookie(new, FIELDS, PEER, clock.seconds())


def _session(created: float) -> Session:
    return Session(
        session_id=b"",
        cipher_suite=0xC02B,
        master_secret=b"m" * 48,
        extended_master_secret=True,
        created=created,
    )


def test_ticketRotationKeepsPreviousUntilNextChange(tmp_path):
    path = tmp_path / "ticket"
    writeSecretFile(str(path))
    clock = Clock()
    a = TicketKeyFile(str(path), clock)
    b = TicketKeyFile(str(path), clock)
    now = 1_000_000.0
    first = a.keys.seal(_session(now))
    assert b.keys.open(first, b"", now) is not None

    writeSecretFile(str(path))
    assert a.check() and b.check()
    second = a.keys.seal(_session(now))
    assert b.keys.open(second, b"", now) is not None
    assert b.keys.open(first, b"", now) is not None  # the previous key still opens

    writeSecretFile(str(path))
    assert b.check()
    assert b.keys.open(first, b"", now) is None  # two rotations ago: gone
    assert b.keys.open(second, b"", now) is not None
