"""
C{twist dtls-echo} (as a separate process, exactly as a user runs it)
against OpenSSL's C{s_client}, over loopback UDP.
"""

from __future__ import annotations

from tests.certs import write_pem_files
from tests.peers import require_peer
from tests.peers.openssl_cli import OpenSSLClient
from tests.twisted.clitools import startEchoServer


def test_opensslClientAgainstDefaultCertificate(tmp_path):
    require_peer("openssl")
    server, port, fingerprint = startEchoServer(tmp_path)
    try:
        client = OpenSSLClient(port)
        try:
            assert client.wait_handshake() == "ECDHE-ECDSA-AES128-GCM-SHA256"
            client.send_line("hello from openssl")
            client.wait_for("^hello from openssl$", stream="stdout")
            client.close_stdin()
            assert client.wait(10) == 0
        finally:
            client.stop()
    finally:
        server.stop()


def test_opensslClientVerifiesGivenChain(tmp_path, pki):
    require_peer("openssl")
    pem = write_pem_files(pki, tmp_path)
    server, port, _ = startEchoServer(
        tmp_path,
        f"dtls:{{port}}:interface=127.0.0.1:privateKey={pem['server-rsa.key']}:certKey={pem['server-rsa.pem']}",
    )
    try:
        client = OpenSSLClient(port, cafile=pem["ca.pem"], cipher="ECDHE-RSA-AES256-GCM-SHA384")
        try:
            assert client.wait_handshake() == "ECDHE-RSA-AES256-GCM-SHA384"
            client.send_line("verified")
            client.wait_for("^verified$", stream="stdout")
            client.close_stdin()
            assert client.wait(10) == 0
        finally:
            client.stop()
    finally:
        server.stop()
