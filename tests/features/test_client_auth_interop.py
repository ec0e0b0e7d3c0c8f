"""
Client certificates (RFC 5246 §7.4.4, §7.4.6) configured through endpoint
strings: our server with C{clientAuth=required|optional} against
C{openssl s_client} and C{gnutls-cli}, our client with C{privateKey=} /
C{certKey=} against C{openssl s_server -Verify 1} and
C{gnutls-serv --verify-client-cert}.
"""

from __future__ import annotations

import pytest
import pytest_twisted

from tests.certs import self_signed
from tests.features.support import connect, deadline, escape, listen, poll, roundTrip
from tests.peers import require_netns, require_peer
from tests.peers.gnutls_cli import GnuTLSClient, GnuTLSServer, priority_for
from tests.peers.openssl_cli import OpenSSLClient, OpenSSLServer
from twisted_dtls.core.constants import AlertDescription
from twisted_dtls.credentials import fingerprintSHA256
from twisted_dtls.transport import DTLSHandshakeError

SUITE = "ECDHE-ECDSA-AES128-GCM-SHA256"


def serverString(pem, clientAuth: str, trust: str = "") -> str:
    trust = trust or f"trustRoots={pem['ca.pem']}"
    return (f"dtls:0:interface=127.0.0.1:privateKey={pem['server-ec.key']}:certKey={pem['server-ec.pem']}"
            f":clientAuth={clientAuth}:{trust}")


@pytest.fixture(scope="module")
def stranger(tmp_path_factory):
    """A self-signed client certificate no CA vouches for."""
    directory = tmp_path_factory.mktemp("stranger")
    credential = self_signed("stranger")
    (directory / "stranger.pem").write_bytes(credential.chain_pem())
    (directory / "stranger.key").write_bytes(credential.key_pem())
    return credential, str(directory / "stranger.pem"), str(directory / "stranger.key")


@pytest.mark.parametrize("mode", ["required", "optional"])
@pytest_twisted.ensureDeferred
@deadline(20)
async def test_opensslClientPresentsCertificate(pem, pki, mode):
    require_peer("openssl")
    port, factory = await listen(serverString(pem, mode))
    try:
        with OpenSSLClient(port.getHost().port, cafile=pem["ca.pem"], cipher=SUITE,
                           cert=pem["client-ec.pem"], key=pem["client-ec.key"]) as client:
            await client.when_handshake()
            client.send_line("with a certificate")
            await client.when("^with a certificate$", stream="stdout")
            transport = factory.protocols[0].transport
            assert transport.getPeerCertificate() == pki.client_ec.cert
            client.close_stdin()
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
@deadline(20)
async def test_optionalAcceptsClientWithoutCertificate(pem):
    require_peer("openssl")
    port, factory = await listen(serverString(pem, "optional"))
    try:
        with OpenSSLClient(port.getHost().port, cafile=pem["ca.pem"], cipher=SUITE) as client:
            await client.when_handshake()
            client.send_line("anonymous")
            await client.when("^anonymous$", stream="stdout")
            assert factory.protocols[0].transport.getPeerCertificate() is None
            client.close_stdin()
    finally:
        await port.stopListening()


@pytest.mark.parametrize("case", ["missing", "untrusted"])
@pytest_twisted.ensureDeferred
@deadline(20)
async def test_requiredRefusesMissingOrUntrusted(pem, stranger, case):
    """
    Without a certificate, or with one that leads to no trusted root, the
    handshake fails with a fatal alert that s_client reports, and the
    application never sees the peer.
    """
    require_peer("openssl")
    port, factory = await listen(serverString(pem, "required"))
    certificate = {} if case == "missing" else {"cert": stranger[1], "key": stranger[2]}
    try:
        with OpenSSLClient(port.getHost().port, cafile=pem["ca.pem"], cipher=SUITE, **certificate) as client:
            expected = "handshake failure" if case == "missing" else "(bad certificate|unknown ca)"
            await client.when(rf"alert {expected}", timeout=5)
            await poll(lambda: not client.running, 5, "s_client kept going")
            assert client.returncode != 0
        assert factory.protocols == []
        assert port.stats.handshakesFailed == 1
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
@deadline(20)
async def test_pinnedSelfSignedClientCertificate(pem, stranger):
    require_peer("openssl")
    credential, certFile, keyFile = stranger
    port, factory = await listen(serverString(pem, "required", f"fingerprint={fingerprintSHA256(credential.cert)}"))
    try:
        with OpenSSLClient(port.getHost().port, cafile=pem["ca.pem"], cipher=SUITE,
                           cert=certFile, key=keyFile) as client:
            await client.when_handshake()
            client.send_line("pinned")
            await client.when("^pinned$", stream="stdout")
            assert factory.protocols[0].transport.getPeerCertificate() == credential.cert
            client.close_stdin()
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
@deadline(20)
async def test_gnutlsClientPresentsCertificate(pem, pki):
    require_peer("gnutls-cli")
    port, factory = await listen(serverString(pem, "required"))
    try:
        with GnuTLSClient(port.getHost().port, cafile=pem["ca.pem"],
                          cert=pem["client-ec.pem"], key=pem["client-ec.key"]) as client:
            await client.when_handshake()
            client.send_line("gnutls with a certificate")
            await client.when("^gnutls with a certificate$", stream="stdout")
            assert factory.protocols[0].transport.getPeerCertificate() == pki.client_ec.cert
            client.close_stdin()
    finally:
        await port.stopListening()


def clientString(pem, port: int, withCertificate: bool = True) -> str:
    description = f"dtls:127.0.0.1:{port}:trustRoots={pem['ca.pem']}:hostname=localhost:timeout=10"
    if withCertificate:
        description += f":privateKey={escape(pem['client-ec.key'])}:certKey={escape(pem['client-ec.pem'])}"
    return description


@pytest_twisted.ensureDeferred
@deadline(20)
async def test_ourClientCertificateToOpensslServer(pem):
    require_peer("openssl")
    with OpenSSLServer(cert=pem["server-ec.pem"], key=pem["server-ec.key"], cipher=SUITE, cafile=pem["ca.pem"],
                       verify_client=True, brief=False) as server:
        client = await connect(clientString(pem, server.port))
        await server.when(r"^subject=O = twisted_dtls tests, CN = client1$", stream="stdout")
        await server.when(r"^CIPHER is " + SUITE, stream="stdout")
        client.transport.loseConnection()


@pytest_twisted.ensureDeferred
@deadline(20)
async def test_ourClientWithoutCertificateRefusedByOpenssl(pem):
    require_peer("openssl")
    with OpenSSLServer(cert=pem["server-ec.pem"], key=pem["server-ec.key"], cipher=SUITE, cafile=pem["ca.pem"],
                       verify_client=True) as server:
        with pytest.raises(DTLSHandshakeError) as caught:
            await connect(clientString(pem, server.port, withCertificate=False))
        assert caught.value.alert == AlertDescription.handshake_failure


@pytest_twisted.ensureDeferred
@deadline(20)
async def test_ourClientCertificateToGnutlsServer(pem):
    require_peer("gnutls-serv")
    require_netns()
    with GnuTLSServer(cert=pem["server-ec.pem"], key=pem["server-ec.key"], cafile=pem["ca.pem"],
                      require_client_cert=True, priority=priority_for(SUITE)) as server:
        client = await connect(clientString(pem, server.port), netns=server.netns)
        assert await roundTrip(client, b"certified") == b"certified"
        client.transport.loseConnection()
