"""
The test policy in C{tests/conftest.py} and L{tests.peers} helpers do what
they promise: logged errors fail tests, missing peers skip locally and fail
in CI, and peer output can be awaited inside the reactor.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import pytest_twisted

from tests.peers import require_peer
from tests.peers.process import PeerError, PeerProcess

ROOT = Path(__file__).resolve().parent.parent

INNER_TESTS = '''
import logging

import pytest
from twisted.logger import Logger
from twisted.python import log as legacy_log
from twisted.python.failure import Failure

log = Logger()


def test_logger_error():
    log.error("boom {x}", x=1)


def test_logger_critical():
    log.critical("critical boom")


def test_logger_failure():
    try:
        1 / 0
    except ZeroDivisionError:
        log.failure("caught and logged")


def test_legacy_err():
    legacy_log.err(Failure(ValueError("legacy boom")), "legacy")


def test_stdlib_error():
    logging.getLogger("some.library").error("stdlib boom")


def test_warnings_are_fine():
    log.warn("only a warning")
    logging.getLogger("some.library").warning("only a warning")


def test_accepted_after_checking(logged_errors):
    log.error("expected {n}", n=1)
    assert len(logged_errors) == 1
    logged_errors.clear()


def test_own_failure_wins():
    log.error("side effect")
    assert False, "the test's own failure"


@pytest.fixture
def noisy_teardown():
    yield
    log.error("teardown noise")


def test_teardown_noise(noisy_teardown):
    pass
'''


def _run_inner(tmp_path: Path) -> tuple[dict[str, set[str]], str]:
    shutil.copy(ROOT / "tests" / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(INNER_TESTS))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", "test_inner.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    outcomes: dict[str, set[str]] = {}
    for outcome, name in re.findall(r"^(PASSED|FAILED|ERROR) test_inner\.py::(\w+)", result.stdout, re.M):
        outcomes.setdefault(outcome, set()).add(name)
    return outcomes, result.stdout + result.stderr


def test_logged_errors_fail_the_test(tmp_path):
    """
    Error-level events through twisted.logger (error, critical, failure,
    legacy log.err) and stdlib logging fail the test that logged them;
    warnings do not; a test may accept errors it checked; an error logged
    in teardown fails the teardown.
    """
    outcomes, output = _run_inner(tmp_path)
    assert outcomes.get("FAILED") == {
        "test_logger_error",
        "test_logger_critical",
        "test_logger_failure",
        "test_legacy_err",
        "test_stdlib_error",
        "test_own_failure_wins",
    }, output
    assert outcomes.get("PASSED") == {
        "test_warnings_are_fine",
        "test_accepted_after_checking",
        "test_teardown_noise",  # its call passed; its teardown errors
    }, output
    assert outcomes.get("ERROR") == {"test_teardown_noise"}, output
    for message in ("boom 1", "critical boom", "caught and logged", "ZeroDivisionError",
                    "legacy boom", "stdlib boom", "the test's own failure", "teardown noise"):
        assert message in output


def test_require_peer_skips_locally(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("DTLS_REQUIRE_PEERS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no-such-peer-for-tests"):
        require_peer("no-such-peer-for-tests")


@pytest.mark.parametrize("name, value", [("CI", "true"), ("CI", "TRUE"), ("DTLS_REQUIRE_PEERS", "1")])
def test_require_peer_fails_when_required(monkeypatch, name, value):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("DTLS_REQUIRE_PEERS", raising=False)
    monkeypatch.setenv(name, value)
    with pytest.raises(pytest.fail.Exception, match="no-such-peer-for-tests"):
        require_peer("no-such-peer-for-tests")


def test_require_peer_finds_executables_and_modules():
    assert require_peer("sh") == shutil.which("sh")
    assert require_peer("pyOpenSSL") == "OpenSSL.SSL"


def test_wait_for_reports_exit_and_deadline():
    """
    L{PeerProcess.wait_for} returns the match, and raises L{PeerError} with
    the output when the process ends without the pattern or the deadline
    passes.
    """
    with PeerProcess(["sh", "-c", "echo started; echo to-stderr >&2; exit 3"]) as peer:
        assert peer.wait_for(r"^to-(\w+)$", stream="stderr").group(1) == "stderr"
        with pytest.raises(PeerError, match="started"):
            peer.wait_for("never printed", timeout=5)
        assert peer.wait() == 3
    with PeerProcess(["sh", "-c", "cat"]) as peer:
        with pytest.raises(PeerError, match="within 0.2 s"):
            peer.wait_for("never printed", timeout=0.2)
        peer.send_line("echoed")
        peer.wait_for("^echoed$")
        peer.close_stdin()
        assert peer.wait() == 0


def test_stop_ends_a_process_that_ignores_stdin_eof():
    with PeerProcess(["sleep", "30"]) as peer:
        pid = peer.process.pid
    assert peer.returncode is not None
    assert not os.path.exists(f"/proc/{pid}/status") or "zombie" not in Path(
        f"/proc/{pid}/status"
    ).read_text()


@pytest_twisted.ensureDeferred
async def test_when_fires_inside_the_reactor():
    with PeerProcess(["sh", "-c", "sleep 0.2; echo ready-marker; sleep 5"]) as peer:
        match = await peer.when(r"ready-(\w+)", timeout=5)
        assert match.group(1) == "marker"
        with pytest.raises(PeerError):
            await peer.when("never printed", timeout=0.2)
