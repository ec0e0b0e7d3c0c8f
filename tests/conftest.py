"""
Test-wide policy.

  - A test fails when anything is logged at error or critical level during
    it, through C{twisted.logger} (including C{log.failure}, legacy
    C{log.err} and "Unhandled error in Deferred") or through the standard
    library's C{logging}. Twisted's C{udp.Port} logs and swallows
    exceptions raised by C{datagramReceived}, so without this a crash on
    bad input would pass silently. A test that provokes such a log on
    purpose requests the L{logged_errors} fixture, checks the events, and
    calls C{logged_errors.clear()}.
  - Interop peers: see L{tests.peers.require_peer} (skip locally, fail when
    C{CI=true} or C{DTLS_REQUIRE_PEERS=1}).
  - pytest-twisted runs with its default reactor.

Events logged after a test's call phase (in fixture teardown) fail the
test's teardown instead. An unhandled Deferred error is logged when the
Deferred is garbage collected, which may be during a later test.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from twisted.logger import LogLevel, formatEvent, globalLogPublisher

from tests.peers.process import stop_all

_ERROR_LEVELS = (LogLevel.error, LogLevel.critical)


class LoggedErrors:
    """
    Collects error-level events (twisted.logger and stdlib logging) while a
    test runs.

    @ivar events: twisted.logger event dicts.
    @ivar records: stdlib L{logging.LogRecord}s.
    """

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.records: list[logging.LogRecord] = []

    # twisted.logger observer
    def __call__(self, event: dict[str, Any]) -> None:
        if (
            event.get("log_level") in _ERROR_LEVELS
            or event.get("log_failure") is not None
            or event.get("isError")
        ):
            self.events.append(event)

    def __bool__(self) -> bool:
        return bool(self.events or self.records)

    def __len__(self) -> int:
        return len(self.events) + len(self.records)

    def clear(self) -> None:
        """Accept what was logged so far (after checking it)."""
        del self.events[:]
        del self.records[:]

    def report(self) -> str:
        lines = []
        for event in self.events:
            text = formatEvent(event)
            namespace = event.get("log_namespace", "?")
            level = event.get("log_level")
            lines.append(f"[{namespace}#{getattr(level, 'name', level)}] {text}")
            failure = event.get("log_failure")
            if failure is not None:
                lines.append(failure.getTraceback())
        for record in self.records:
            lines.append(f"[logging {record.name}#{record.levelname}] {record.getMessage()}")
            if record.exc_text:
                lines.append(record.exc_text)
        return "\n".join(lines)


class _StdlibCollector(logging.Handler):
    def __init__(self, target: LoggedErrors) -> None:
        super().__init__(level=logging.ERROR)
        self._target = target

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        self._target.records.append(record)


_KEY = pytest.StashKey[LoggedErrors]()


@pytest.fixture(autouse=True)
def logged_errors(request: pytest.FixtureRequest):
    """
    Error-level log events of the running test; any left at the end of the
    call phase fail the test (see the module docstring).
    """
    collected = LoggedErrors()
    handler = _StdlibCollector(collected)
    globalLogPublisher.addObserver(collected)
    root = logging.getLogger()
    root.addHandler(handler)
    request.node.stash[_KEY] = collected
    try:
        yield collected
    finally:
        root.removeHandler(handler)
        globalLogPublisher.removeObserver(collected)
        del request.node.stash[_KEY]
    if collected:
        pytest.fail(
            f"{len(collected)} error(s) logged during teardown:\n{collected.report()}",
            pytrace=False,
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    collected = item.stash.get(_KEY, None)
    try:
        result = yield
    except BaseException:
        # The test failed already; show what was logged beside its error.
        if collected:
            item.add_report_section("call", "logged errors", collected.report())
            collected.clear()
        raise
    if collected:
        count, text = len(collected), collected.report()
        collected.clear()
        pytest.fail(f"{count} error(s) logged during the test:\n{text}", pytrace=False)
    return result


def pytest_sessionfinish(session: pytest.Session) -> None:
    # Safety net: no peer process outlives the run.
    stop_all()
