"""
SNI (RFC 6066 §3) on the server through C{sniDir=}: a directory of
C{NAME.pem}/C{NAME.key} pairs (C{_.NAME} for a wildcard), the
C{privateKey=}/C{certKey=} certificate for any other name. The name a
client sends selects the certificate it gets.
"""

from __future__ import annotations

import pytest
import pytest_twisted

from tests.features.support import connect, deadline, escape, listen, writeNamedCredential
from tests.peers import require_peer
from tests.peers.gnutls_cli import GnuTLSClient
from tests.peers.openssl_cli import OpenSSLClient

SUITE = "ECDHE-ECDSA-AES128-GCM-SHA256"


@pytest.fixture(scope="module")
def sniDir(pki, tmp_path_factory):
    directory = tmp_path_factory.mktemp("sni")
    writeNamedCredential(pki, directory, "a.example", "a.example")
    writeNamedCredential(pki, directory, "_.b.example", "*.b.example")
    (directory / "README").write_text("not a certificate")
    return str(directory)


def serverString(pem, sniDir: str) -> str:
    return (f"dtls:0:interface=127.0.0.1:privateKey={pem['server-ec.key']}:certKey={pem['server-ec.pem']}"
            f":sniDir={escape(sniDir)}")


@pytest.mark.parametrize(
    "sent, subject",
    [("a.example", "a.example"), ("www.b.example", "*.b.example"), ("other.example", "localhost"), (None, "localhost")],
)
@pytest_twisted.ensureDeferred
@deadline(20)
async def test_opensslServernameSelectsCertificate(pem, sniDir, sent, subject):
    require_peer("openssl")
    port, factory = await listen(serverString(pem, sniDir))
    try:
        extra = ["-servername", sent] if sent else ["-noservername"]
        with OpenSSLClient(port.getHost().port, cafile=pem["ca.pem"], cipher=SUITE, extra_args=extra) as client:
            await client.when_handshake()
            match = client.search(r"^Peer certificate: (.*)$", "stderr")
            assert match.group(1) == f"O = twisted_dtls tests, CN = {subject}"
            client.send_line("hello")
            await client.when("^hello$", stream="stdout")
            assert factory.protocols[0].transport.serverName == sent
            client.close_stdin()
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
@deadline(20)
async def test_gnutlsVerifiesSelectedCertificate(pem, sniDir):
    """gnutls-cli checks the certificate it gets against the name it sent."""
    require_peer("gnutls-cli")
    port, factory = await listen(serverString(pem, sniDir))
    try:
        with GnuTLSClient(port.getHost().port, cafile=pem["ca.pem"], verify_hostname="a.example",
                          extra_args=["--sni-hostname", "a.example"]) as client:
            await client.when_handshake()
            client.send_line("named")
            await client.when("^named$", stream="stdout")
            assert factory.protocols[0].transport.serverName == "a.example"
            client.close_stdin()
    finally:
        await port.stopListening()


@pytest.mark.parametrize("hostname", ["a.example", "x.b.example", "localhost"])
@pytest_twisted.ensureDeferred
@deadline(20)
async def test_ourClientHostnameSelectsAndVerifies(pem, sniDir, hostname):
    port, factory = await listen(serverString(pem, sniDir))
    try:
        client = await connect(
            f"dtls:127.0.0.1:{port.getHost().port}:trustRoots={pem['ca.pem']}:hostname={hostname}")
        names = client.transport.getPeerCertificate().subject.rfc4514_string()
        assert names.startswith(f"CN={hostname if hostname != 'x.b.example' else '*.b.example'},")
        client.transport.loseConnection()
    finally:
        await port.stopListening()
