"""
Starting and stopping the servers under test: C{twistd -n dtls-echo} and
the plain Twisted UDP echo (C{bench/plain_echo.tac}), each pinned to the
server CPU, stopped by PID.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


#: twistd of this interpreter (the console script may belong to another).
_TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen
    log_path: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _start(name: str, argv: list[str], port: int, workdir: str, cpu: int | None, ready_text: str,
           env_extra: dict | None = None) -> Server:
    log_path = os.path.join(workdir, f"{name}.log")
    env = _env()
    env.update(env_extra or {})

    def preexec():
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    log = open(log_path, "wb")
    # `timeout` bounds the server's life even if this process dies.
    process = subprocess.Popen(
        ["timeout", "-s", "TERM", "1800", *argv],
        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env, preexec_fn=preexec,
    )
    log.close()
    server = Server(name, port, process, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited: {open(log_path).read()[-2000:]}")
        with open(log_path, "rb") as f:
            if ready_text.encode() in f.read():
                break
        time.sleep(0.1)
    else:
        server.stop()
        raise RuntimeError(f"{name} did not start: {open(log_path).read()[-2000:]}")
    # `timeout` forks the server; measure the server itself.
    server.process = _ChildView(process)
    return server


class _ChildView:
    """
    The server under `timeout`: its PID for /proc, signals go to it too.
    """

    def __init__(self, wrapper: subprocess.Popen):
        self.wrapper = wrapper
        self.pid = _only_child(wrapper.pid)

    def poll(self):
        return self.wrapper.poll()

    def send_signal(self, sig):
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def wait(self, timeout=None):
        return self.wrapper.wait(timeout)

    def kill(self):
        self.send_signal(signal.SIGKILL)
        self.wrapper.kill()


def _only_child(pid: int) -> int:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                children = f.read().split()
        except FileNotFoundError:
            children = []
        if children:
            return int(children[0])
        time.sleep(0.05)
    return pid


def start_dtls_echo(workdir: str, cpu: int | None, extra: str = "") -> Server:
    port = free_udp_port()
    listen = f"dtls:{port}:interface=127.0.0.1{extra}"
    argv = [*_TWISTD, "-n", "--pidfile=", "--logfile=-",
            "dtls-echo", "--listen", listen]
    return _start("dtls-echo", argv, port, workdir, cpu, "dtls-echo listening on")


def start_plain_echo(workdir: str, cpu: int | None, aead: bool = False) -> Server:
    """
    C{bench/plain_echo.tac}; with C{aead}, the variant that also seals and
    opens every datagram with a bare AES-GCM (see the file).
    """
    port = free_udp_port()
    argv = [*_TWISTD, "-n", "--pidfile=", "--logfile=-",
            "-y", os.path.join(HERE, "plain_echo.tac")]
    name = "aead-echo" if aead else "plain-echo"
    return _start(name, argv, port, workdir, cpu, "starting on", {"BENCH_PORT": str(port), "BENCH_AEAD": "1" if aead else "0"})


def start_bench_dtls_echo(workdir: str, cpu: int | None, options: dict | None = None) -> Server:
    """
    C{bench/dtls_echo.tac}: the dtls-echo server without the per-source
    HelloVerifyRequest rate limit (see the file).
    """
    import json

    port = free_udp_port()
    argv = [*_TWISTD, "-n", "--pidfile=", "--logfile=-", "-y", os.path.join(HERE, "dtls_echo.tac")]
    env = {"BENCH_PORT": str(port), "BENCH_PORT_OPTIONS": json.dumps(options or {})}
    return _start("bench-dtls-echo", argv, port, workdir, cpu, "bench dtls echo listening", env)


def loadgen(mode: str, port: int, cpu: int | None, *args: str, timeout: float = 120) -> dict:
    """
    Run the load generator once and return its JSON result.
    """
    import json

    argv = ["timeout", "-s", "KILL", str(int(timeout)), sys.executable, "-m", "bench.loadgen", mode,
            "--port", str(port), *args]
    if cpu is not None:
        argv += ["--cpu", str(cpu)]
    out = subprocess.run(argv, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout + 10)
    if out.returncode != 0:
        raise RuntimeError(f"loadgen {mode} failed ({out.returncode}): {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
