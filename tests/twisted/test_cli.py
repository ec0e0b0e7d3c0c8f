"""
C{python -m twisted_dtls connect} against C{twist dtls-echo}, both as real
processes over loopback UDP.
"""

from __future__ import annotations

from tests.peers.ports import free_udp_port
from tests.twisted.clitools import runClient, startEchoServer


def test_echoRoundTrip(tmp_path):
    server, port, fingerprint = startEchoServer(tmp_path)
    try:
        result = runClient(f"dtls:127.0.0.1:{port}:fingerprint={fingerprint}", b"hello\nworld\nno newline")
        assert result.returncode == 0, result.stderr
        assert result.stdout == b"hello\nworld\nno newline"
        assert b"handshake complete: DTLSv1.2 TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" in result.stderr
        assert b"peer certificate: CN=localhost" in result.stderr
        assert f"peer SHA-256 fingerprint: {fingerprint}".encode() in result.stderr
    finally:
        server.stop()


def test_ipv6(tmp_path):
    server, port, fingerprint = startEchoServer(tmp_path, "dtls:{port}:interface=\\:\\:1")
    try:
        result = runClient(f"dtls:\\:\\:1:{port}:fingerprint={fingerprint}", b"six\n")
        assert result.returncode == 0, result.stderr
        assert result.stdout == b"six\n"
    finally:
        server.stop()


def test_wrongFingerprint(tmp_path):
    server, port, fingerprint = startEchoServer(tmp_path)
    try:
        wrong = ("0" if fingerprint[0] != "0" else "1") + fingerprint[1:]
        result = runClient(f"dtls:127.0.0.1:{port}:fingerprint={wrong}", b"hello\n")
        assert result.returncode == 1
        assert result.stderr.startswith(b"error: could not connect: DTLS handshake failed: we sent fatal alert")
        assert result.stdout == b""
    finally:
        server.stop()


def test_badEndpoint():
    result = runClient("dtls:127.0.0.1:4433:colour=blue")
    assert result.returncode == 2
    assert b"unknown dtls client endpoint keyword(s): colour" in result.stderr


def test_nobodyListening():
    port = free_udp_port()
    result = runClient(f"dtls:127.0.0.1:{port}:fingerprint={'0' * 64}", b"", 20.0)
    assert result.returncode == 1
    assert f"nothing is listening at 127.0.0.1:{port}".encode() in result.stderr


def test_serverClosesFirst(tmp_path):
    """
    The server goes away with close_notify (twist stopped by SIGTERM): the
    client exits 0 without waiting for stdin.
    """
    server, port, fingerprint = startEchoServer(tmp_path)
    import subprocess
    import sys

    from tests.twisted.clitools import REPOSITORY, environment

    client = subprocess.Popen(
        ["timeout", "30", sys.executable, "-m", "twisted_dtls", "connect",
         f"dtls:127.0.0.1:{port}:fingerprint={fingerprint}"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment(), cwd=REPOSITORY,
    )
    try:
        client.stdin.write(b"first\n")
        client.stdin.flush()
        assert client.stdout.readline() == b"first\n"
        server.stop()
        assert client.wait(20) == 0
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
        for stream in (client.stdin, client.stdout, client.stderr):
            stream.close()
