"""
Running this project's command-line programs (twistd/twist plugins,
C{python -m twisted_dtls}) as separate processes, with the repository on
their path so that the plugins in C{twisted/plugins/} are found.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.peers.ports import free_udp_port
from tests.peers.process import PeerProcess

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = REPOSITORY + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def program(name: str) -> str:
    """
    A console script installed beside this Python (twistd, twist).
    """
    candidate = os.path.join(BIN, name)
    return candidate if os.path.exists(candidate) else name


def startEchoServer(tmp_path, *listen: str) -> tuple[PeerProcess, int, str]:
    """
    Run C{twist dtls-echo} on a free loopback port; return the process, the
    port and the certificate fingerprint it logged.
    """
    port = free_udp_port()
    arguments = [program("twist"), "--log-format=text", "dtls-echo"]
    for description in listen or (f"dtls:{port}:interface=127.0.0.1",):
        arguments += ["--listen", description.format(port=port)]
    server = PeerProcess(arguments, env=environment(), cwd=str(tmp_path), lifetime=60)
    match = server.wait_for(re.compile(r"SHA-256 fingerprint ([0-9a-f]{64})"), timeout=30)
    server.wait_bound(port)
    return server, port, match.group(1)


def runClient(description: str, stdin: bytes = b"", timeout: float = 30.0, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["timeout", "-k", "2", str(timeout), sys.executable, "-m", "twisted_dtls", "connect", *extra, description],
        input=stdin,
        capture_output=True,
        env=environment(),
        cwd=REPOSITORY,
        timeout=timeout + 5,
    )
