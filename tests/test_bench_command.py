"""
The bench command (issue 6) runs from a checkout and prints every
measurement with its ratio, spread and whether its target holds.

Not timed: no ratio is judged here (speed is judged by the bench itself,
against baselines measured in the same run). This only keeps the command
working: servers start and stop, the load generator talks to them, every
row is produced. C{--quick --no-docs} leaves docs/ alone.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: Every measurement the quick bench reports, and whether it has a target.
EXPECTED_ROWS = {
    "Record seal+open, 100 B": True,
    "Record seal+open, 1000 B": True,
    "Server CPU per full handshake, ECDHE-ECDSA P-256": True,
    "Server CPU per full handshake, ECDHE-ECDSA x25519": True,
    "held: RSS |": True,
    "held: Python heap": True,
    "Echo records/s, 100 B": False,
    "Echo records/s, 1000 B": True,
    "Server CPU per echoed record, 1000 B": False,
    "the plain echo plus one bare AES-GCM seal and open": False,
    "HelloVerifyRequests answered/s": True,
    "Server CPU per HelloVerifyRequest": False,
    "Handshakes/s over UDP, ECDHE-ECDSA P-256": False,
    "Memory per established idle connection, DTLS echo server (twistd) RSS": True,
}


def test_quick_bench_prints_every_row():
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--no-docs"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    rows = [line for line in out.splitlines() if line.startswith("| ") and not line.startswith("| Measurement")]
    assert "| Measurement | twisted_dtls | Baseline | Ratio (median) | Spread (min–max) | Pairs | Target | Holds |" in out
    for name, has_target in EXPECTED_ROWS.items():
        matching = [row for row in rows if name in row]
        assert matching, f"no row for {name!r} in:\n{out}"
        cells = [cell.strip() for cell in matching[0].strip("|").split("|")]
        ratio, spread, target, holds = cells[3], cells[4], cells[6], cells[7]
        assert re.fullmatch(r"\d+\.\d\d\d?", ratio), matching[0]
        assert re.fullmatch(r"\d+\.\d\d–\d+\.\d\d", spread), matching[0]
        if has_target:
            assert re.fullmatch(r"[≤≥] \d+(\.\d+)?", target), matching[0]
            assert holds in ("yes", "**no**"), matching[0]
        else:
            assert target == holds == "—", matching[0]
    assert re.search(r"^(All targets hold\.|Targets that do not hold: .+\.)$", out, re.M), out
    assert re.search(r"^\(bench took \d+ s, --quick\)$", out, re.M), out
    assert "nproc:" in out and "Python " in out
