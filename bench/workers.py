"""
Echo throughput of C{twistd dtls-echo --workers N} with 1, 2 and N
workers, as records per second and as a ratio to one worker.

    python bench/workers.py [--workers N] [--clients 64] [--seconds 5]
                            [--client-processes P] [--size 100]

For each worker count a supervisor is started on a free loopback port
(C{python -m twisted dtls-echo --workers K}, stopped by PID); P client
processes each drive an equal share of the clients, every client on its own
loopback source address (127.0.0.2, 127.0.0.3, ...) so that the kernel's
SO_REUSEPORT hash spreads them over the workers. After all handshakes, each
client keeps one 100-byte record in flight for C{--seconds} seconds; the
figure is echoed records per second over all clients.

The clients (tests/scaling/loadclient.py, engines driven by one
C{selectors} loop per process) run on the same machine and compete with the
workers for CPU, so the ratios describe this machine as much as the server;
the output names the core count for that reason.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests.scaling.loadclient import LoadClient, loopbackSources  # noqa: E402
from twisted_dtls.core.configuration import DTLSConfiguration  # noqa: E402

#: Seconds a supervisor and its workers may take to start.
START_TIMEOUT = 60.0


def _status(path: str):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def startSupervisor(workers: int, directory: str) -> tuple[subprocess.Popen, dict]:
    statusFile = os.path.join(directory, f"status-{workers}.json")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    process = subprocess.Popen(
        [sys.executable, "-m", "twisted", "--log-format=text", "dtls-echo", "--workers", str(workers),
         "--listen", "dtls:0:interface=127.0.0.1", "--status-file", statusFile],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env, cwd=directory,
    )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        status = _status(statusFile)
        if status and status["listening"] and len(status["workers"]) == workers and all(
            w["pid"] and w["status"] for w in status["workers"]
        ):
            return process, status
        if process.poll() is not None:
            break
        time.sleep(0.1)
    stopSupervisor(process)
    raise RuntimeError(f"dtls-echo --workers {workers} did not start")


def stopSupervisor(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _clientShare(port: int, fingerprint: str, first: int, count: int, seconds: float, size: int,
                 start: float) -> tuple[int, list]:
    """
    One client process: handshake C{count} clients, wait for the common
    start time, echo for C{seconds}.

    @return: echoes, and the local addresses (to attribute them to workers).
    """
    configuration = DTLSConfiguration(pinned_sha256=frozenset({bytes.fromhex(fingerprint)}), initial_timeout=0.5)
    with LoadClient(("127.0.0.1", port), configuration, loopbackSources(count, first=first)) as load:
        load.handshake(deadline=60)
        delay = start - time.time()
        if delay > 0:
            time.sleep(delay)
        return load.run(seconds, size=size), [c.local for c in load.clients]


def measure(workers: int, clients: int, processes: int, seconds: float, size: int, directory: str) -> dict:
    supervisor, status = startSupervisor(workers, directory)
    try:
        port = status["listening"][0]["port"]
        fingerprint = status["workers"][0]["status"]["listeners"][0]["fingerprint"]
        shares = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
        # Handshakes first (they are slow next to echoes), then all start at once.
        start = time.time() + 3.0 + clients * 0.01
        context = multiprocessing.get_context("fork")
        with concurrent.futures.ProcessPoolExecutor(processes, mp_context=context) as pool:
            futures, first = [], 2
            for share in shares:
                futures.append(pool.submit(_clientShare, port, fingerprint, first, share, seconds, size, start))
                first += share
            results = [f.result(timeout=START_TIMEOUT + seconds + 30) for f in futures]
        echoes = sum(r[0] for r in results)
        return {"workers": workers, "echoes": echoes, "rate": echoes / seconds}
    finally:
        stopSupervisor(supervisor)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=max(2, os.cpu_count() or 2),
                        help="the largest worker count (default: the number of cores, at least 2)")
    parser.add_argument("--clients", type=int, default=64, help="clients in all (default 64)")
    parser.add_argument("--seconds", type=float, default=5.0, help="echo time per worker count (default 5)")
    parser.add_argument("--client-processes", type=int, default=None,
                        help="client processes (default: half the cores, at least 1, at most 4)")
    parser.add_argument("--size", type=int, default=100, help="record size in bytes (default 100)")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 5000 or args.workers < 1 or not 0 < args.seconds <= 120:
        parser.error("need 1..5000 clients, at least 1 worker and 0 < seconds <= 120")
    processes = args.client_processes or min(4, max(1, (os.cpu_count() or 2) // 2))
    processes = min(processes, args.clients)
    counts = sorted({1, 2, args.workers}) if args.workers >= 2 else [1]
    print(f"dtls-echo --workers: {args.clients} clients in {processes} process(es), {args.size}-byte records, "
          f"{args.seconds:g}s each, {os.cpu_count()} cores")
    print(f"{'workers':>8} {'records/s':>12} {'ratio':>7}")
    baseline = None
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as directory:
        for workers in counts:
            result = measure(workers, args.clients, processes, args.seconds, args.size, directory)
            baseline = baseline or result["rate"]
            ratio = result["rate"] / baseline if baseline else 0.0
            print(f"{workers:>8} {result['rate']:>12.0f} {ratio:>7.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
