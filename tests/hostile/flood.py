"""
A ClientHello flood from many loopback source addresses, as a separate
process (so that the server under test does not share its CPU or its
memory accounting with the sender).

    python tests/hostile/flood.py HOST PORT HELLO_HEX SOURCES PER_SOURCE SECONDS

binds one UDP socket to each of 127.0.0.2 .. 127.0.0.(1+SOURCES), and
sends PER_SOURCE copies of the ClientHello (each with a fresh client
random) from each, round robin, spread evenly over SECONDS. It only ever
sends to a loopback HOST, and stops after the count or the time, whichever
comes first (plus a small grace). Prints C{sent N} at the end.
"""

from __future__ import annotations

import os
import socket
import sys
import time

# record header (13) + handshake header (12) + client_version (2)
RANDOM_OFFSET = 27


def main(argv: list[str]) -> int:
    host, port, hello_hex, sources, per_source, seconds = argv
    if not host.startswith("127."):
        raise SystemExit("loopback targets only")
    port, sources, per_source, seconds = int(port), int(sources), int(per_source), float(seconds)
    hello = bytearray(bytes.fromhex(hello_hex))
    sockets = []
    for i in range(sources):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((f"127.0.0.{2 + i}", 0))
        sockets.append(s)
    total = sources * per_source
    batch = sources
    interval = seconds / per_source
    start = time.monotonic()
    sent = 0
    for round_ in range(per_source):
        for s in sockets:
            hello[RANDOM_OFFSET : RANDOM_OFFSET + 32] = os.urandom(32)
            try:
                s.sendto(hello, (host, port))
                sent += 1
            except OSError:
                pass
        # Pace to the schedule; never run past it by more than a little.
        due = start + (round_ + 1) * interval
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if time.monotonic() - start > seconds + 5:
            break
    for s in sockets:
        s.close()
    print(f"sent {sent} of {total} in {time.monotonic() - start:.1f} s from {batch} sources", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
