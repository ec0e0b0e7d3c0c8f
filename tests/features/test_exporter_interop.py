"""
The RFC 5705 exporter (C{transport.exportKeyingMaterial}) gives the same
bytes as OpenSSL's and GnuTLS's for the same session (C{-keymatexport},
C{--keymatexport}), in both roles, and as our own peer on the other end
(with and without a context, which the command-line tools cannot pass).
"""

from __future__ import annotations

import pytest
import pytest_twisted

from tests.features.support import PSK_CLIENT, PSK_SERVER, connect, deadline, listen, poll, roundTrip
from tests.peers import require_peer
from tests.peers.gnutls_cli import GnuTLSClient
from tests.peers.openssl_cli import OpenSSLClient, OpenSSLServer

SUITE = "ECDHE-ECDSA-AES128-GCM-SHA256"
KEYING = r"^\s+Keying material: ([0-9A-Fa-f]+)$"


def serverString(pem, extra: str = "") -> str:
    return (f"dtls:0:interface=127.0.0.1:privateKey={pem['server-ec.key']}:certKey={pem['server-ec.pem']}"
            f"{extra}")


@pytest.mark.parametrize("label, length", [("EXTRACTOR-dtls_srtp", 60), ("EXPERIMENTAL-twisted-dtls", 32)])
@pytest_twisted.ensureDeferred
@deadline(20)
async def test_opensslClientAgreesWithOurServer(pem, label, length):
    require_peer("openssl")
    port, factory = await listen(serverString(pem))
    try:
        with OpenSSLClient(port.getHost().port, cafile=pem["ca.pem"], cipher=SUITE, brief=False,
                           extra_args=["-keymatexport", label, "-keymatexportlen", str(length)]) as client:
            match = await client.when(KEYING, stream="stdout")
            theirs = bytes.fromhex(match.group(1))
            assert len(theirs) == length
            assert factory.protocols[0].transport.exportKeyingMaterial(label.encode(), None, length) == theirs
            client.close_stdin()
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
@deadline(20)
async def test_ourClientAgreesWithOpensslServer(pem):
    require_peer("openssl")
    label = "EXTRACTOR-dtls_srtp"
    with OpenSSLServer(cert=pem["server-ec.pem"], key=pem["server-ec.key"], cipher=SUITE, brief=False,
                       extra_args=["-keymatexport", label, "-keymatexportlen", "40"]) as server:
        client = await connect(f"dtls:127.0.0.1:{server.port}:trustRoots={pem['ca.pem']}:hostname=localhost")
        match = await server.when(KEYING, stream="stdout")
        assert client.transport.exportKeyingMaterial(label.encode(), None, 40) == bytes.fromhex(match.group(1))
        client.transport.loseConnection()


@pytest_twisted.ensureDeferred
@deadline(20)
async def test_gnutlsClientAgreesWithOurServer(pem):
    require_peer("gnutls-cli")
    port, factory = await listen(serverString(pem))
    try:
        with GnuTLSClient(port.getHost().port, cafile=pem["ca.pem"],
                          extra_args=["--keymatexport=EXPERIMENTAL-gnutls", "--keymatexportsize=24"]) as client:
            match = await client.when(r"^- Key material: ([0-9a-f]+)$", stream="stdout")
            ours = factory.protocols[0].transport.exportKeyingMaterial(b"EXPERIMENTAL-gnutls", None, 24)
            assert ours == bytes.fromhex(match.group(1))
            client.close_stdin()
    finally:
        await port.stopListening()


@pytest.mark.parametrize("context", [None, b"", b"some context"], ids=["none", "empty", "given"])
@pytest_twisted.ensureDeferred
@deadline(20)
async def test_bothEndsOfOurStackAgree(context):
    """
    Both ends derive the same bytes; no context and an empty context
    differ (RFC 5705 §4), as do different labels.
    """
    port, factory = await listen(f"dtls:0:interface=127.0.0.1:{PSK_SERVER}")
    try:
        client = await connect(f"dtls:127.0.0.1:{port.getHost().port}:{PSK_CLIENT}")
        await roundTrip(client)
        await poll(lambda: factory.protocols, 5, "no server protocol")
        server = factory.protocols[0].transport
        ours = client.transport.exportKeyingMaterial(b"EXPERIMENTAL-test", context, 48)
        assert ours == server.exportKeyingMaterial(b"EXPERIMENTAL-test", context, 48)
        assert len(ours) == 48
        other = b"" if context is None else None
        assert ours != client.transport.exportKeyingMaterial(b"EXPERIMENTAL-test", other, 48)
        assert ours != client.transport.exportKeyingMaterial(b"EXPERIMENTAL-other", context, 48)
        client.transport.loseConnection()
    finally:
        await port.stopListening()
