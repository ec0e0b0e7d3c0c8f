"""
A mutation run at the port: tens of thousands of mutated datagrams, made
from the live datagrams of real handshakes, sent at a L{DTLSPort} on the
in-memory network.

Each round, a client connects from its own address and exchanges data.
Every datagram it sends reaches the port only after C{PER_DATAGRAM}
mutated copies of it, from the same address (so they hit the cookie path,
the half-open connection and the established one in turn) and from
unknown addresses. Mutations: bit flips, byte overwrites, truncation,
extension, record header fields (type, version, epoch, sequence number,
length), handshake header fields (type, length, message_seq, offset,
fragment length), records duplicated, datagrams spliced.

Nothing may raise or be logged as an error (C{tests/conftest.py}); every
counter stays within the limits; after the run and its timeouts nothing is
left open, and a normal client is served.
"""

from __future__ import annotations

import random
import time

from tests.twisted.memorynet import MemoryNetwork
from tests.twisted.recording import RecordingFactory, connect, listen
from tests.certs import make_pki

PKI = make_pki()
SERVER = ("127.0.0.1", 4433)
ROUNDS = 100
PER_DATAGRAM = 90
#: Mutated datagrams per round at most: a spoofed ClientHello from the
#: client's address earns it a HelloVerifyRequest, which makes it resend its
#: flight (RFC 6347 §4.2.4), which would be mutated again, and so on.
PER_ROUND = 900
SEED = 20240611


def _mutate(rng: random.Random, data: bytes, others: list[bytes]) -> bytes:
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        op = rng.randrange(11)
        n = len(out)
        if op == 0 and n:
            i = rng.randrange(n)
            out[i] ^= 1 << rng.randrange(8)
        elif op == 1 and n:
            out[rng.randrange(n)] = rng.randrange(256)
        elif op == 2:
            del out[rng.randrange(n + 1):]
        elif op == 3:
            out += rng.randbytes(rng.randrange(1, 64))
        elif op == 4 and n >= 13:
            out[0] = rng.choice((20, 21, 22, 23, 24, 25, rng.randrange(256)))
        elif op == 5 and n >= 13:
            out[1:3] = rng.choice((b"\xfe\xff", b"\xfe\xfd", b"\x03\x03", rng.randbytes(2)))
        elif op == 6 and n >= 13:
            out[3:5] = rng.choice((b"\x00\x00", b"\x00\x01", b"\x00\x02", b"\xff\xff"))
        elif op == 7 and n >= 13:
            out[5:11] = rng.choice((b"\xff" * 6, b"\x00" * 6, rng.randbytes(6)))
        elif op == 8 and n >= 13:
            out[11:13] = rng.choice((b"\x00\x00", b"\xff\xff", (max(0, n - 13 + rng.randrange(-3, 4))).to_bytes(2, "big")))
        elif op == 9 and n >= 25:
            # handshake header: msg_type, length, message_seq, offset, fragment length
            field = rng.choice(((13, 14), (14, 17), (17, 19), (19, 22), (22, 25)))
            width = field[1] - field[0]
            out[field[0]:field[1]] = rng.choice((b"\x00" * width, b"\xff" * width, rng.randbytes(width)))
        elif op == 10 and others:
            other = rng.choice(others)
            out = out[: rng.randrange(len(out) + 1)] + other[rng.randrange(len(other) + 1):]
    return bytes(out)


def test_mutated_handshakes_at_the_port():
    network = MemoryNetwork()
    serverFactory = RecordingFactory(echo=True)
    # Rate limit high enough that every mutated ClientHello is parsed.
    port = listen(network, PKI, serverFactory, handshakeTimeout=10.0, helloRate=1e6, helloBurst=10**6)
    rng = random.Random(SEED)
    seen: list[bytes] = []
    count = {"mutated": 0}
    injecting = {"on": True}
    budget = {"left": 0}

    def interpose(datagram):
        if datagram.destination != SERVER or not injecting["on"] or budget["left"] <= 0:
            return False
        data = datagram.data
        budget["left"] -= PER_DATAGRAM
        for i in range(PER_DATAGRAM):
            source = datagram.source if i % 3 else (f"127.0.{rng.randrange(1, 250)}.{rng.randrange(1, 250)}",
                                                    rng.randrange(1, 65536))
            network.inject(source, SERVER, _mutate(rng, data, seen))
            count["mutated"] += 1
        seen.append(data)
        if len(seen) > 50:
            del seen[0]
        return False

    network.dropIf = interpose
    started = time.monotonic()
    completed = 0
    for round_ in range(ROUNDS):
        budget["left"] = PER_ROUND
        address = (f"127.0.1.{1 + round_ % 250}", 10000 + round_)
        clientFactory, outcome = connect(network, PKI, port, bindAddress=address, timeout=5.0)
        network.run(6.0, step=1.0)
        if outcome.result is not None:
            completed += 1
            client = outcome.result
            client.transport.write(b"round %d" % round_)
            network.flush()
            client.transport.loseConnection()
            network.flush()
        assert port.stats.connectionsOpen <= port.maxConnections
        assert port.stats.handshakesInProgress <= port.maxHandshakes
        # The in-memory network keeps every datagram: keep it small.
        del network.sent[:]
    elapsed = time.monotonic() - started
    injecting["on"] = False
    network.run(15.0, step=1.0)

    assert count["mutated"] >= ROUNDS * PER_ROUND * 0.9
    # Mutated epoch-0 records are unauthenticated and may legitimately spoil
    # a handshake (a mutated ClientKeyExchange that arrives before the real
    # one is taken, and the Finished then fails); many still complete.
    assert completed >= ROUNDS // 4, completed
    stats = port.stats
    assert stats.connectionsOpen == 0 and stats.handshakesInProgress == 0
    assert network.reactor.getDelayedCalls() == []
    clientFactory, outcome = connect(network, PKI, port, bindAddress=("127.0.2.1", 0))
    network.flush()
    assert outcome.result is not None
    outcome.result.transport.write(b"after the storm")
    network.flush()
    assert outcome.result.received == [b"after the storm"]
    print(f"mutation run: {count['mutated']} mutated datagrams, {completed}/{ROUNDS} handshakes completed, "
          f"{elapsed:.1f} s, drops {dict(stats.drops)}")
