"""
The command-line programs with the new keywords: C{twist dtls-echo} serving
pre-shared keys only (no generated certificate), and
C{python -m twisted_dtls connect} reporting what was negotiated.
"""

from __future__ import annotations

from tests.features.support import PSK_CLIENT, PSK_SERVER
from tests.peers import require_peer
from tests.peers.openssl_cli import PSK_KEY_HEX, OpenSSLClient
from tests.peers.ports import free_udp_port
from tests.peers.process import PeerProcess
from tests.twisted.clitools import environment, program, runClient


def test_echoServerWithPskOnly(tmp_path):
    require_peer("openssl")
    port = free_udp_port()
    listen = f"dtls:{port}:interface=127.0.0.1:{PSK_SERVER}:alpn=coap:srtp=SRTP_AES128_CM_HMAC_SHA1_80"
    server = PeerProcess([program("twist"), "--log-format=text", "dtls-echo", "--listen", listen],
                         env=environment(), cwd=str(tmp_path), lifetime=60)
    try:
        server.wait_for("with pre-shared keys only", timeout=30)
        server.wait_bound(port)
        with OpenSSLClient(port, psk=PSK_KEY_HEX, cipher="PSK-AES128-CCM8") as client:
            assert client.wait_handshake() == "PSK-AES128-CCM8"
            client.send_line("psk echo")
            client.wait_for("^psk echo$", stream="stdout")
            client.close_stdin()
            assert client.wait(10) == 0
        result = runClient(f"dtls:127.0.0.1:{port}:{PSK_CLIENT}:alpn=coap:srtp=SRTP_AES128_CM_SHA1_80",
                           b"hello\n", 30)
        assert result.returncode == 0, result.stderr
        assert result.stdout == b"hello\n"
        report = result.stderr.decode()
        assert "handshake complete: DTLSv1.2 TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256" in report
        assert "ALPN: coap" in report
        assert "SRTP profile: SRTP_AES128_CM_HMAC_SHA1_80" in report
        assert "PSK identity: client1" in report
        assert "SHA-256 fingerprint" not in report
    finally:
        server.stop()
