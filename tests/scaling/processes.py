"""
Running C{dtls-echo} processes (alone or as a supervisor with workers) for
the scaling tests, and reading their status files. Every process runs
under C{timeout} (L{PeerProcess}) and is stopped by PID.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Callable, Iterable, Optional

from tests.peers.process import PeerProcess
from tests.twisted.clitools import environment

__all__ = ["startEcho", "readStatus", "waitStatus", "alive", "waitGone", "killAll", "peersByPid"]


def startEcho(tmp_path, listen: Iterable[str], statusFile: str, *options: str, lifetime: float = 150.0,
              name: str = "dtls-echo") -> PeerProcess:
    """
    Start C{python -m twisted dtls-echo} (the C{twist} runner) with these
    --listen descriptions and options, writing its status to C{statusFile}.
    """
    argv = [sys.executable, "-m", "twisted", "--log-format=text", "dtls-echo", "--status-file", statusFile, *options]
    for description in listen:
        argv += ["--listen", description]
    process = PeerProcess(argv, env=environment(), cwd=str(tmp_path), lifetime=lifetime)
    process.name = name
    return process


def readStatus(path: str) -> Optional[dict]:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def waitStatus(path: str, predicate: Callable[[dict], bool], timeout: float, process: PeerProcess = None,
               what: str = "status") -> dict:
    """
    Poll a status file until C{predicate(status)} holds.

    @raise AssertionError: at the deadline (with the process's output).
    """
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        status = readStatus(path)
        if status is not None:
            try:
                if predicate(status):
                    return status
            except (KeyError, TypeError, IndexError):
                pass
        if process is not None and process.process.poll() is not None:
            break
        time.sleep(0.1)
    detail = process.describe(4000) if process is not None else ""
    raise AssertionError(f"timed out waiting for {what}; last status: {json.dumps(status)[:2000]}\n{detail}")


def alive(pid: int) -> bool:
    """
    Whether process C{pid} exists and is not a zombie.
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def waitGone(pids: Iterable[int], timeout: float) -> list[int]:
    """
    Wait until none of C{pids} is alive; return those still alive at the
    deadline.
    """
    pids = list(pids)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        remaining = [pid for pid in pids if alive(pid)]
        if not remaining:
            return []
        time.sleep(0.1)
    return [pid for pid in pids if alive(pid)]


def killAll(pids: Iterable[int]) -> None:
    """
    SIGKILL each of C{pids} that is still alive (a test's last resort).
    """
    for pid in pids:
        if pid and alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def workerPids(status: dict) -> list[int]:
    return [w["pid"] for w in status.get("workers", []) if w.get("pid")]


def peersByPid(status: dict) -> dict[int, set[str]]:
    """
    The established peers of each running worker, by PID.
    """
    peers: dict[int, set[str]] = {}
    for worker in status["workers"]:
        own = worker.get("status")
        if worker.get("pid") and own:
            peers[worker["pid"]] = {p for listener in own["listeners"] for p in listener["peers"]}
    return peers
