"""
Server CPU per full handshake, in process and without sockets: our server
(L{DTLSConnection}) and OpenSSL's (pyOpenSSL over memory BIOs) each
complete handshakes with the same OpenSSL client. Only the server's calls
are timed (C{time.process_time}), so the client's cost does not count.

No cookie exchange on either side: the HelloVerifyRequest is measured
separately (the HVR benchmark), and OpenSSL's cookie callbacks would be
Python calls.
"""

from __future__ import annotations

from time import process_time

from twisted_dtls.core.connection import DTLSConnection
from twisted_dtls.core.events import HandshakeCompleted

from .common import Credential, server_configuration
from .openssl_side import MemoryEndpoint, client_context, server_context

_MAX_ROUNDS = 10


class HandshakeError(RuntimeError):
    pass


def ours_once(configuration, client_ctx) -> float:
    """
    One handshake against our server; return the server's CPU seconds.
    """
    client = MemoryEndpoint(client_ctx, client=True)
    client.step()
    spent = 0.0
    t0 = process_time()
    server = DTLSConnection(configuration, is_client=False)
    spent += process_time() - t0
    completed = False
    now = 0.0
    for _ in range(_MAX_ROUNDS):
        blobs = client.drain()
        t0 = process_time()
        for blob in blobs:
            server.receive_datagram(blob, now)
        out = server.datagrams_to_send(now)
        while (event := server.next_event()) is not None:
            if isinstance(event, HandshakeCompleted):
                completed = True
            else:
                raise HandshakeError(f"our server: {event}")
        spent += process_time() - t0
        for datagram in out:
            client.feed(datagram)
        if completed and client.done:
            return spent
    raise HandshakeError("our server did not complete the handshake")


def openssl_once(server_ctx, client_ctx) -> float:
    """
    One handshake against OpenSSL's server; return the server's CPU seconds.
    """
    client = MemoryEndpoint(client_ctx, client=True)
    client.step()
    spent = 0.0
    t0 = process_time()
    server = MemoryEndpoint(server_ctx, client=False)
    spent += process_time() - t0
    for _ in range(_MAX_ROUNDS):
        blobs = client.drain()
        t0 = process_time()
        for blob in blobs:
            server.feed(blob)
        out = server.drain()
        spent += process_time() - t0
        for datagram in out:
            client.feed(datagram)
        if server.done and client.done:
            return spent
    raise HandshakeError("OpenSSL's server did not complete the handshake")


def ours_once_keep(configuration, client_ctx) -> DTLSConnection:
    """
    One handshake against our server; return the established server
    connection (the client is dropped).
    """
    client = MemoryEndpoint(client_ctx, client=True)
    client.step()
    server = DTLSConnection(configuration, is_client=False)
    for _ in range(_MAX_ROUNDS):
        for blob in client.drain():
            server.receive_datagram(blob, 0.0)
        for datagram in server.datagrams_to_send(0.0):
            client.feed(datagram)
        while server.next_event() is not None:
            pass
        if server.is_established and client.done:
            return server
    raise HandshakeError("our server did not complete the handshake")


def openssl_once_keep(server_ctx, client_ctx) -> MemoryEndpoint:
    """
    One handshake against OpenSSL's server; return the established server
    endpoint.
    """
    client = MemoryEndpoint(client_ctx, client=True)
    client.step()
    server = MemoryEndpoint(server_ctx, client=False)
    for _ in range(_MAX_ROUNDS):
        for blob in client.drain():
            server.feed(blob)
        for datagram in server.drain():
            client.feed(datagram)
        if server.done and client.done:
            return server
    raise HandshakeError("OpenSSL's server did not complete the handshake")


def negotiated_group_check(credential: Credential, group: str) -> None:
    """
    Make sure both servers really use C{group}: the named curve in the
    ServerKeyExchange (RFC 8422 §5.4: curve_type 3, then the group id).
    """
    from twisted_dtls.core.records import pull_records
    from .common import GROUPS

    expected = int(GROUPS[group])
    for name, make in (
        ("ours", lambda: DTLSConnection(server_configuration(credential, group), is_client=False)),
        ("openssl", lambda: MemoryEndpoint(server_context(credential, group), client=False)),
    ):
        client = MemoryEndpoint(client_context(group), client=True)
        client.step()
        server = make()
        hello = b"".join(client.drain())
        if name == "ours":
            server.receive_datagram(hello, 0.0)
            flight = server.datagrams_to_send(0.0)
        else:
            server.feed(hello)
            flight = server.drain()
        found = None
        for datagram in flight:
            records, _ = pull_records(datagram)
            for record in records:
                body = record.fragment
                if record.content_type == 22 and body[0] == 12:  # server_key_exchange
                    found = int.from_bytes(body[12 + 1 : 12 + 3], "big")
        if found != expected:
            raise HandshakeError(f"{name} server negotiated group {found}, expected {expected}")


def run_pairs(credential: Credential, group: str, pairs: int, batch: int) -> list[tuple[float, float]]:
    """
    C{pairs} interleaved A/B repetitions (order alternating); each side does
    C{batch} handshakes per repetition.

    @return: per pair, (ours, OpenSSL's) mean server CPU seconds per handshake.
    """
    negotiated_group_check(credential, group)
    configuration = server_configuration(credential, group)
    client_ctx = client_context(group)
    server_ctx = server_context(credential, group)
    # Warm up both (imports, caches, first-call costs).
    for _ in range(3):
        ours_once(configuration, client_ctx)
        openssl_once(server_ctx, client_ctx)
    results = []
    for i in range(pairs):
        measured = {}
        order = ("ours", "openssl") if i % 2 == 0 else ("openssl", "ours")
        for side in order:
            if side == "ours":
                measured[side] = sum(ours_once(configuration, client_ctx) for _ in range(batch)) / batch
            else:
                measured[side] = sum(openssl_once(server_ctx, client_ctx) for _ in range(batch)) / batch
        results.append((measured["ours"], measured["openssl"]))
    return results
