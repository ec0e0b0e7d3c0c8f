"""
C{python -m bench}: run every benchmark, print the table, write
docs/bench.md's results section and docs/bench.png.

Each comparison is a ratio against a baseline measured in the same run,
in interleaved A/B pairs (the order alternates from pair to pair), and
the ratio reported is the median of the per-pair ratios, with their
spread (min-max).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from . import handshake_cpu, record_cpu, servers
from .common import cpu_plan, make_credential, pin, rss_bytes, summarize

ROOT = servers.ROOT
DOCS = os.path.join(ROOT, "docs")


@dataclass
class Row:
    """
    One line of the results table.

    @ivar ratios: per-pair ratios (ours / baseline, or baseline-relative as
        the row states).
    @ivar better: C{"higher"} if a larger ratio is better, C{"lower"} if smaller.
    @ivar target: the ratio the issue asks for, or None (reported only).
    """

    name: str
    ours: str
    baseline: str
    ratios: list[float]
    better: str = "higher"
    target: float | None = None
    note: str = ""
    key: str = ""

    @property
    def summary(self):
        return summarize(self.ratios) if self.ratios else None

    @property
    def holds(self) -> bool | None:
        if self.target is None or not self.ratios:
            return None
        median = self.summary.median
        return median >= self.target if self.better == "higher" else median <= self.target


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    raw: dict = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def _ratio_text(ratio: float, target: float | None) -> str:
    """
    A ratio to two decimals, or three where two would print the target
    itself (a 1.503 that misses a 1.5 target must not read "1.50").
    """
    text = f"{ratio:.2f}"
    if target is not None and ratio != target and float(text) == target:
        text = f"{ratio:.3f}"
    return text


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f} µs"


def _rate(x: float, unit: str) -> str:
    return f"{x:,.0f} {unit}/s"


def _kib(n: float) -> str:
    return f"{n / 1024:,.2f} KiB"


def _med(values: list[float]) -> float:
    return summarize(values).median


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- machine --------------------------------------------------------------------------

def machine() -> dict:
    import cryptography
    import OpenSSL
    import twisted
    from cryptography.hazmat.backends.openssl.backend import backend

    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "cryptography": cryptography.__version__,
        "openssl": backend.openssl_version_text(),
        "pyopenssl": OpenSSL.__version__,
        "twisted": twisted.__version__,
        "platform": platform.platform(),
        "pinning": cpu_plan(),
    }


# -- in-process benchmarks -------------------------------------------------------------

def bench_records(results: Results, quick: bool, cpu: int | None) -> None:
    pin(cpu)
    pairs = 11 if quick else 21
    count = 3000 if quick else 5000
    for size in (100, 1000):
        _say(f"record seal+open, {size}-byte payloads: {pairs} pairs")
        pairs_result = record_cpu.run_pairs(size, pairs, count)
        ours = _med([a for a, _ in pairs_result])
        bare = _med([b for _, b in pairs_result])
        results.raw[f"records_{size}"] = pairs_result
        results.rows.append(
            Row(
                f"Record seal+open, {size} B (AES-128-GCM), CPU per record",
                _us(ours),
                _us(bare) + " (bare AESGCM encrypt+decrypt)",
                [a / b for a, b in pairs_result],
                better="lower",
                target=3.0,
                key=f"records_{size}",
            )
        )


def bench_handshake_cpu(results: Results, quick: bool, cpu: int | None, credential) -> None:
    pin(cpu)
    # Cheap (a second or two a group) and the noisiest in-process ratio on a
    # shared machine: many pairs steady the median.
    pairs = 5 if quick else 15
    batch = 15 if quick else 60
    for group in ("P-256", "x25519"):
        _say(f"server CPU per handshake, ECDHE-ECDSA {group}: {pairs} pairs of {batch}")
        pairs_result = handshake_cpu.run_pairs(credential, group, pairs, batch)
        results.raw[f"handshake_cpu_{group}"] = pairs_result
        results.rows.append(
            Row(
                f"Server CPU per full handshake, ECDHE-ECDSA {group}, AES-128-GCM",
                _us(_med([a for a, _ in pairs_result])),
                _us(_med([b for _, b in pairs_result])) + " (OpenSSL server, pyOpenSSL memory BIOs)",
                [a / b for a, b in pairs_result],
                better="lower",
                target=1.5,
                key=f"handshake_cpu_{group}",
            )
        )


def _memory_pass(side: str, count: int, trace: bool, cpu: int | None, release: bool = False) -> dict:
    argv = ["timeout", "-s", "KILL", "600", sys.executable, "-m", "bench.memory", side, "--count", str(count)]
    if release:
        argv.append("--release")
    if trace:
        argv.append("--trace")
    if cpu is not None:
        argv += ["--cpu", str(cpu)]
    out = subprocess.run(argv, cwd=ROOT, env=servers._env(), capture_output=True, text=True, timeout=620)
    if out.returncode != 0:
        raise RuntimeError(f"memory pass {side} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_memory(results: Results, quick: bool, cpu: int | None) -> None:
    count = 2000 if quick else 10_000
    _say(f"memory per idle connection, in process: {count} connections (4 passes)")
    heap = _memory_pass("ours", count, True, cpu)["heap_per_connection"]
    rss = _memory_pass("ours", count, False, cpu)["rss_per_connection"]
    openssl = _memory_pass("openssl", count, False, cpu)["rss_per_connection"]
    released = _memory_pass("ours", count, False, cpu, release=True)["rss_per_connection"]
    results.raw["memory_engine"] = {
        "count": count, "heap": heap, "rss": rss, "openssl_rss": openssl, "rss_released": released,
    }
    limit = 8 * 1024
    results.rows.append(
        Row(
            f"Memory per established idle connection, engine, {count:,} held: RSS",
            _kib(rss),
            "8 KiB (the target itself)",
            [rss / limit],
            better="lower",
            target=1.0,
            key="memory_rss",
        )
    )
    results.rows.append(
        Row(
            f"Memory per established idle connection, engine, {count:,} held: Python heap (tracemalloc)",
            _kib(heap),
            "8 KiB (the target itself)",
            [heap / limit],
            better="lower",
            target=1.0,
            key="memory_heap",
        )
    )
    results.rows.append(
        Row(
            f"Memory per established idle connection, engine, {count:,} held: RSS after "
            "release_ciphers() (what the idle release does)",
            _kib(released),
            "8 KiB (the target itself)",
            [released / limit],
            better="lower",
            key="memory_rss_released",
        )
    )
    results.rows.append(
        Row(
            f"Memory per established idle connection, {count:,} held: RSS against OpenSSL",
            _kib(rss),
            _kib(openssl) + " (OpenSSL server SSL objects via pyOpenSSL)",
            [rss / openssl],
            better="lower",
            key="memory_vs_openssl",
        )
    )


# -- over UDP ----------------------------------------------------------------------------

def _pairs(label: str, n: int, run_a, run_b) -> list[tuple[dict, dict]]:
    """
    Interleaved A/B: even pairs run A first, odd pairs B first.
    """
    out = []
    for i in range(n):
        if i % 2 == 0:
            a = run_a()
            b = run_b()
        else:
            b = run_b()
            a = run_a()
        _say(f"  {label} pair {i + 1}/{n}: baseline {a['rate']:,.0f}/s, dtls {b['rate']:,.0f}/s")
        out.append((a, b))
    return out


def _load_pairs(label: str, n: int, mode: str, baseline, server, cpu, common: list, extra: tuple = ()) -> list:
    """
    C{n} interleaved load runs of C{mode} against the C{baseline} server
    and against C{server} (with C{extra} load generator options).
    """
    return _pairs(
        label,
        n,
        lambda: servers.loadgen(mode, baseline.port, cpu, *common, "--server-pid", str(baseline.pid)),
        lambda: servers.loadgen(mode, server.port, cpu, *extra, *common, "--server-pid", str(server.pid)),
    )


def _rate_row(name: str, got: list, ours_unit: str, baseline_unit: str, target: float | None = None,
              key: str = "") -> Row:
    """
    A row comparing the rates of interleaved (baseline, ours) load runs.
    """
    return Row(
        name,
        _rate(_med([b["rate"] for _, b in got]), ours_unit),
        _rate(_med([a["rate"] for a, _ in got]), baseline_unit),
        [b["rate"] / a["rate"] for a, b in got],
        target=target,
        key=key,
    )


def _cpu_row(name: str, got: list, key: str) -> Row:
    """
    A row comparing the server CPU per datagram of interleaved load runs.
    """
    return Row(
        name,
        _us(_med([b["server_cpu_per_record"] for _, b in got])),
        _us(_med([a["server_cpu_per_record"] for a, _ in got])),
        [b["server_cpu_per_record"] / a["server_cpu_per_record"] for a, b in got],
        better="lower",
        key=key,
    )


def bench_network(results: Results, quick: bool, plan: dict, workdir: str) -> None:
    scpu, lcpu = plan["server"], plan["loadgen"]
    pairs = 5 if quick else 9
    duration = "0.8" if quick else "2.0"
    warmup = "0.2" if quick else "0.5"
    plain = servers.start_plain_echo(workdir, scpu)
    started = [plain]
    try:
        dtls = servers.start_dtls_echo(workdir, scpu)
        started.append(dtls)
        # HVRs and handshakes all come from 127.0.0.1, which the port's
        # per-source hello rate limit would throttle: see dtls_echo.tac.
        unlimited = servers.start_bench_dtls_echo(workdir, scpu)
        started.append(unlimited)
        aead = servers.start_plain_echo(workdir, scpu, aead=True)
        started.append(aead)
    except Exception:
        for server in started:
            server.stop()
        raise
    try:
        for payload in (100, 1000):
            _say(f"echo, {payload}-byte payloads, window 32: {pairs} pairs of {duration} s")
            common = ["--payload", str(payload), "--window", "32", "--duration", duration, "--warmup", warmup]
            got = _load_pairs(f"echo {payload} B", pairs, "echo", plain, dtls, lcpu, common, ("--dtls",))
            results.raw[f"echo_{payload}"] = got
            bad = sum(b["failed_checks"] for _, b in got)
            if bad:
                raise RuntimeError(f"{bad} sampled DTLS echoes did not match what was sent")
            results.rows.append(
                _rate_row(
                    f"Echo records/s, {payload} B, window 32 (`twistd dtls-echo` vs plain Twisted UDP echo)",
                    got, "records", "datagrams", target=0.60 if payload == 1000 else None, key=f"echo_{payload}",
                )
            )
            results.rows.append(_cpu_row(f"Server CPU per echoed record, {payload} B", got, f"echo_cpu_{payload}"))
        _say(f"echo with a bare AES-GCM seal and open, 1000-byte payloads, window 32: {pairs} pairs of {duration} s")
        common = ["--payload", "1000", "--window", "32", "--duration", duration, "--warmup", warmup]
        got = _load_pairs("AEAD echo 1000 B", pairs, "echo", plain, aead, lcpu, common)
        results.raw["echo_aead_1000"] = got
        results.rows.append(
            _rate_row(
                "Echo datagrams/s, 1000 B, window 32: the plain echo plus one bare AES-GCM seal and open per "
                "datagram (the cipher alone, no record layer: a ceiling for any Python DTLS) vs plain echo",
                got, "datagrams", "datagrams", key="echo_aead_1000",
            )
        )
        _say(f"HelloVerifyRequests, window 32: {pairs} pairs of {duration} s")
        common = ["--window", "32", "--duration", duration, "--warmup", warmup]
        got = _load_pairs("HVR", pairs, "hvr", plain, unlimited, lcpu, common)
        results.raw["hvr"] = got
        results.rows.append(
            _rate_row(
                "HelloVerifyRequests answered/s (DTLSPort without per-source limit, vs plain echo of the same ClientHello)",
                got, "HVR", "datagrams", target=0.70, key="hvr",
            )
        )
        results.rows.append(_cpu_row("Server CPU per HelloVerifyRequest (vs per plain echo)", got, "hvr_cpu"))
        hs_duration = "1.5" if quick else "3.0"
        _say(f"handshakes over UDP, 16 OpenSSL clients: 5 runs of {hs_duration} s")
        runs = []
        for group in ("P-256", "x25519") if not quick else ("P-256",):
            for _ in range(3 if quick else 5):
                runs.append(
                    servers.loadgen(
                        "handshakes", unlimited.port, lcpu, "--clients", "16", "--duration", hs_duration,
                        "--warmup", warmup, "--server-pid", str(unlimited.pid), "--group", group,
                    )
                )
            got = runs[-(3 if quick else 5):]
            results.raw[f"handshakes_udp_{group}"] = got
            rate = _med([r["rate"] for r in got])
            cpu = _med([r["server_cpu_per_record"] for r in got if r["server_cpu_per_record"]])
            # Baseline: OpenSSL's in-process server CPU per handshake from this run,
            # as the handshakes/s one core could sustain.
            inproc = results.raw.get(f"handshake_cpu_{group}")
            openssl_capacity = 1 / _med([b for _, b in inproc]) if inproc else None
            results.rows.append(
                Row(
                    f"Handshakes/s over UDP, ECDHE-ECDSA {group}, with cookie exchange (16 clients)",
                    f"{rate:,.0f} /s ({_us(cpu)} server CPU each)",
                    (f"{openssl_capacity:,.0f} /s (1 / OpenSSL server CPU per handshake, in process)"
                     if openssl_capacity else "n/a"),
                    [r["rate"] * (1 / openssl_capacity) for r in got] if openssl_capacity else [],
                    key=f"handshakes_udp_{group}",
                )
            )
    finally:
        for server in started:
            server.stop()
    bench_hold(results, quick, plan, workdir)


def bench_hold(results: Results, quick: bool, plan: dict, workdir: str) -> None:
    """
    RSS of a fresh C{twistd dtls-echo} holding C{count} idle connections.
    """
    count = 1000 if quick else 10_000
    dtls = servers.start_bench_dtls_echo(
        workdir, plan["server"], {"maxConnections": count + 100, "idleTimeout": 600.0}
    )
    try:
        _say(f"twistd dtls-echo holding {count:,} idle connections")
        # Warm up (first handshake imports and caches), then measure.
        servers.loadgen("handshakes", dtls.port, plan["loadgen"], "--clients", "4", "--duration", "0.5",
                        "--warmup", "0")
        time.sleep(0.5)
        before = rss_bytes(dtls.pid)
        argv = ["timeout", "-s", "KILL", "600", sys.executable, "-m", "bench.loadgen", "hold", "--port",
                str(dtls.port), "--count", str(count), "--clients", "64", "--duration", "300"]
        if plan["loadgen"] is not None:
            argv += ["--cpu", str(plan["loadgen"])]
        holder = subprocess.Popen(argv, cwd=ROOT, env=servers._env(), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        try:
            line = holder.stdout.readline()
            report = json.loads(line)
            time.sleep(1.0)
            after = rss_bytes(dtls.pid)
            after_idle = None
            if not quick:
                # Server transports release their AEAD contexts after this
                # long without traffic; an idle connection then costs less.
                from twisted_dtls.transport import DTLSServerTransport

                _say(f"waiting {DTLSServerTransport.cipherReleaseAfter:.0f} s for the idle cipher release")
                time.sleep(DTLSServerTransport.cipherReleaseAfter + 3.0)
                after_idle = rss_bytes(dtls.pid)
            holder.stdin.write("stop\n")
            holder.stdin.flush()
            holder.wait(60)
        finally:
            if holder.poll() is None:
                holder.kill()
                holder.wait()
            holder.stdin.close()
            holder.stdout.close()
        held = report["established"]
        per = (after - before) / held if held else float("nan")
        results.raw["memory_twistd"] = {"count": held, "before": before, "after": after, **report}
        engine = results.raw.get("memory_engine", {})
        results.rows.append(
            Row(
                f"Memory per established idle connection, DTLS echo server (twistd) RSS, {held:,} held",
                _kib(per),
                "8 KiB (the target itself)",
                [per / 8192],
                better="lower",
                target=1.0,
                note=f"established {held:,} of {count:,} in {report['elapsed']:.0f} s"
                + (f"; engine alone {_kib(engine['rss'])}" if engine else ""),
                key="memory_twistd",
            )
        )
        if after_idle is not None and held:
            per_idle = (after_idle - before) / held
            results.raw["memory_twistd"]["after_idle"] = after_idle
            results.rows.append(
                Row(
                    f"Memory per established idle connection, DTLS echo server (twistd) RSS, {held:,} held, "
                    "after the idle cipher release",
                    _kib(per_idle),
                    "8 KiB (the target itself)",
                    [per_idle / 8192],
                    better="lower",
                    target=1.0,
                    note="RSS rarely shrinks when memory is freed, so this is an upper bound",
                    key="memory_twistd_idle",
                )
            )
    finally:
        dtls.stop()


# -- output ----------------------------------------------------------------------------

def table(results: Results) -> str:
    lines = [
        "| Measurement | twisted_dtls | Baseline | Ratio (median) | Spread (min–max) | Pairs | Target | Holds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in results.rows:
        s = row.summary
        if s is None:
            ratio = spread = "n/a"
            n = 0
        else:
            ratio = _ratio_text(s.median, row.target)
            spread = f"{s.low:.2f}–{s.high:.2f}"
            n = s.n
        if row.target is None:
            target, holds = "—", "—"
        else:
            sign = "≥" if row.better == "higher" else "≤"
            target = f"{sign} {row.target:g}"
            holds = "yes" if row.holds else "**no**"
        name = row.name + (f" ({row.note})" if row.note else "")
        lines.append(f"| {name} | {row.ours} | {row.baseline} | {ratio} | {spread} | {n} | {target} | {holds} |")
    return "\n".join(lines)


def _short_label(name: str) -> str:
    name = name.replace("Memory per established idle connection", "Memory per idle connection")
    name = name.replace(" (`twistd dtls-echo` vs plain Twisted UDP echo)", " vs plain UDP echo")
    name = name.replace(" (DTLSPort without per-source limit, vs plain echo of the same ClientHello)", " vs plain echo")
    name = name.replace(" (what the idle release does)", "")
    name = name.replace(
        ", window 32: the plain echo plus one bare AES-GCM seal and open per datagram (the cipher alone, no record "
        "layer: a ceiling for any Python DTLS) vs plain echo",
        ": plain echo + bare AES-GCM seal and open (ceiling) vs plain echo",
    )
    return name if len(name) <= 95 else name[:94] + "…"


def plot(results: Results, path: str) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install matplotlib): no plot written"
    rows = [r for r in results.rows if r.ratios]
    fig, ax = plt.subplots(figsize=(13, 0.5 * len(rows) + 1.8))
    labels, medians, lows, highs, colors = [], [], [], [], []
    for r in rows:
        s = r.summary
        labels.append(_short_label(r.name))
        medians.append(s.median)
        lows.append(s.median - s.low)
        highs.append(s.high - s.median)
        colors.append("tab:gray" if r.target is None else ("tab:green" if r.holds else "tab:red"))
    y = list(range(len(rows)))[::-1]
    ax.barh(y, medians, xerr=[lows, highs], color=colors, capsize=3)
    for yy, r in zip(y, rows):
        if r.target is not None:
            ax.plot([r.target, r.target], [yy - 0.4, yy + 0.4], color="black", linewidth=2)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("ratio to the baseline (median, min–max whiskers); black tick = target")
    ax.set_title("twisted_dtls against baselines from the same run\n(green: target holds, red: fails, gray: no target)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def machine_text(m: dict) -> str:
    pinning = m["pinning"]
    pinned = (
        f"server on CPU {pinning['server']}, load generator on CPU {pinning['loadgen']}"
        if pinning["server"] is not None
        else "not pinned (fewer than 2 CPUs)"
    )
    return (
        f"- nproc: {m['nproc']}; CPU: {m['cpu']}\n"
        f"- Python {m['python']}, cryptography {m['cryptography']} ({m['openssl']}), "
        f"pyOpenSSL {m['pyopenssl']}, Twisted {m['twisted']}\n"
        f"- {m['platform']}; {pinned}"
    )


START, END = "<!-- bench results: start -->", "<!-- bench results: end -->"


def write_docs(text: str) -> None:
    path = os.path.join(DOCS, "bench.md")
    with open(path) as f:
        doc = f.read()
    if START in doc and END in doc:
        doc = doc[: doc.index(START) + len(START)] + "\n" + text + "\n" + doc[doc.index(END):]
    else:
        doc += f"\n{START}\n{text}\n{END}\n"
    with open(path, "w") as f:
        f.write(doc)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="about a minute instead of about seven")
    parser.add_argument("--only", action="append", choices=("records", "handshake", "memory", "network"),
                        help="run only these parts (repeatable)")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/bench.md and docs/bench.png")
    parser.add_argument("--json", help="also write the raw results to this file")
    args = parser.parse_args(argv)
    parts = args.only or ["records", "handshake", "memory", "network"]
    plan = cpu_plan()
    m = machine()
    results = Results()
    started = time.monotonic()
    credential = make_credential()
    workdir = tempfile.mkdtemp(prefix="dtls-bench-")
    # In-process parts run pinned to the server CPU; the orchestrator moves
    # to the load generator's CPU for the network part (it only waits there).
    try:
        if "records" in parts:
            bench_records(results, args.quick, plan["server"])
        if "handshake" in parts:
            bench_handshake_cpu(results, args.quick, plan["server"], credential)
        if "memory" in parts:
            bench_memory(results, args.quick, plan["server"])
        if "network" in parts:
            pin(plan["loadgen"])
            bench_network(results, args.quick, plan, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - started
    text = table(results)
    failing = [r for r in results.rows if r.holds is False]
    summary = (
        "All targets hold."
        if not failing
        else "Targets that do not hold: "
        + "; ".join(f"{r.name} ({_ratio_text(r.summary.median, r.target)})" for r in failing)
        + "."
    )
    print()
    print(machine_text(m))
    print()
    print(text)
    print()
    print(summary)
    print(f"(bench took {elapsed:.0f} s{', --quick' if args.quick else ''})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": m, "raw": results.raw}, f, indent=1, default=str)
    if not args.no_docs:
        message = plot(results, os.path.join(DOCS, "bench.png"))
        if message:
            print(message)
        stamp = time.strftime("%Y-%m-%d", time.gmtime())
        body = (
            f"Run of {stamp} (`python -m bench{' --quick' if args.quick else ''}`, {elapsed:.0f} s) on:\n\n"
            f"{machine_text(m)}\n\n{text}\n\n{summary}\n\n"
            + ("![ratios against the baselines](bench.png)\n" if not message else f"({message})\n")
        )
        write_docs(body)
