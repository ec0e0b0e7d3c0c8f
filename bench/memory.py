"""
Memory per established idle connection, in process: C{count} server
connections complete a handshake (each with its own OpenSSL client over
memory BIOs, dropped afterwards) and are held; what they cost is the
difference before and after, divided by C{count}.

  - Python heap: C{tracemalloc}, in a pass of its own (tracing costs
    memory itself, which would inflate the RSS figure).
  - RSS: C{/proc/self/statm}, without tracing; it includes what the
    allocator keeps around, so it is the number a user's machine sees.

The baseline is OpenSSL's server (pyOpenSSL SSL.Connection objects over
memory BIOs, the same handshake), measured by RSS the same way: its
memory is C memory that tracemalloc does not see.

Each pass runs in a fresh process (C{python -m bench.memory ...}) so that
one pass's freed memory does not hide the next one's growth.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tracemalloc

from .common import make_credential, pin, rss_bytes, server_configuration
from .handshake_cpu import ours_once_keep, openssl_once_keep
from .openssl_side import client_context, server_context


def measure(side: str, count: int, trace: bool, group: str = "P-256", release: bool = False) -> dict:
    credential = make_credential()
    client_ctx = client_context(group)
    if side == "ours":
        configuration = server_configuration(credential, group)
        make = lambda: ours_once_keep(configuration, client_ctx)  # noqa: E731
        if release:
            # What the server transport does after cipherReleaseAfter
            # seconds without traffic.
            def make():
                conn = ours_once_keep(configuration, client_ctx)
                conn.release_ciphers()
                return conn
    else:
        server_ctx = server_context(credential, group)
        make = lambda: openssl_once_keep(server_ctx, client_ctx)  # noqa: E731
    # Warm up: first-use allocations (caches, interned names) are not per
    # connection.
    warm = [make() for _ in range(50)]
    del warm
    held = []
    gc.collect()
    if trace:
        tracemalloc.start()
    before_heap = tracemalloc.get_traced_memory()[0] if trace else 0
    before_rss = rss_bytes()
    for _ in range(count):
        held.append(make())
    gc.collect()
    after_rss = rss_bytes()
    after_heap = tracemalloc.get_traced_memory()[0] if trace else 0
    if trace:
        tracemalloc.stop()
    result = {"side": side, "count": len(held)}
    if trace:
        result["heap_per_connection"] = (after_heap - before_heap) / count
    else:
        result["rss_per_connection"] = (after_rss - before_rss) / count
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.memory")
    parser.add_argument("side", choices=("ours", "openssl"))
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--trace", action="store_true")
    parser.add_argument("--cpu", type=int, default=None)
    parser.add_argument("--release", action="store_true", help="ours: RecordLayer.release_ciphers() once idle")
    args = parser.parse_args(argv)
    pin(args.cpu)
    print(json.dumps(measure(args.side, args.count, args.trace, release=args.release)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
