"""
ALPN (RFC 7301) and use_srtp (RFC 5764) configured with C{alpn=} and
C{srtp=}, both roles, against OpenSSL and GnuTLS: the protocol and profile
each side reports are the same, and the transport exposes them as
C{negotiatedProtocol} (bytes, as Twisted's C{INegotiated}) and
C{srtpProfile}.
"""

from __future__ import annotations

import pytest
import pytest_twisted

from tests.features.support import connect, deadline, listen, roundTrip
from tests.peers import require_netns, require_peer
from tests.peers.gnutls_cli import GnuTLSClient, GnuTLSServer, priority_for
from tests.peers.openssl_cli import OpenSSLClient, OpenSSLServer
from twisted_dtls.core.constants import SRTPProtectionProfile

SUITE = "ECDHE-ECDSA-AES128-GCM-SHA256"
#: OpenSSL's spelling -> RFC 5764's
OPENSSL_SRTP = {
    "SRTP_AES128_CM_SHA1_80": "SRTP_AES128_CM_HMAC_SHA1_80",
    "SRTP_AES128_CM_SHA1_32": "SRTP_AES128_CM_HMAC_SHA1_32",
    "SRTP_AEAD_AES_128_GCM": "SRTP_AEAD_AES_128_GCM",
    "SRTP_AEAD_AES_256_GCM": "SRTP_AEAD_AES_256_GCM",
}


def serverString(pem, extra: str) -> str:
    return (f"dtls:0:interface=127.0.0.1:privateKey={pem['server-ec.key']}:certKey={pem['server-ec.pem']}"
            f":{extra}")


def clientString(pem, port: int, extra: str) -> str:
    return f"dtls:127.0.0.1:{port}:trustRoots={pem['ca.pem']}:hostname=localhost:timeout=10:{extra}"


# -- ALPN ----------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
@deadline(20)
async def test_alpnOpensslClientToOurServer(pem):
    """
    The server picks the first of its own protocols that the client
    offered (C{coap}, although the client prefers C{h2}).
    """
    require_peer("openssl")
    port, factory = await listen(serverString(pem, "alpn=coap,h2"))
    try:
        with OpenSSLClient(port.getHost().port, cafile=pem["ca.pem"], cipher=SUITE, alpn="h2,coap",
                           brief=False) as client:
            await client.when(r"^ALPN protocol: coap$", stream="stdout")
            assert factory.protocols[0].transport.negotiatedProtocol == b"coap"
            client.close_stdin()
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
@deadline(20)
async def test_alpnWithoutOverlapIsRefused(pem):
    """RFC 7301 §3.2: no protocol in common is a no_application_protocol alert."""
    require_peer("openssl")
    port, factory = await listen(serverString(pem, "alpn=coap"))
    try:
        with OpenSSLClient(port.getHost().port, cafile=pem["ca.pem"], cipher=SUITE, alpn="h2") as client:
            await client.when(r"alert no application protocol", timeout=5)
        assert factory.protocols == []
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
@deadline(20)
async def test_alpnOurClientToOpensslServer(pem):
    require_peer("openssl")
    with OpenSSLServer(cert=pem["server-ec.pem"], key=pem["server-ec.key"], cipher=SUITE, alpn="coap",
                       brief=False) as server:
        client = await connect(clientString(pem, server.port, "alpn=h2,coap"))
        assert client.transport.negotiatedProtocol == b"coap"
        await server.when(r"^ALPN protocols selected: coap$", stream="stdout")
        client.transport.loseConnection()


@pytest_twisted.ensureDeferred
@deadline(20)
async def test_alpnGnutlsClientToOurServer(pem):
    require_peer("gnutls-cli")
    port, factory = await listen(serverString(pem, "alpn=coap"))
    try:
        with GnuTLSClient(port.getHost().port, cafile=pem["ca.pem"], alpn=["h2", "coap"]) as client:
            await client.when_handshake()
            await client.when(r"^- Application protocol: coap$", stream="stdout")
            assert factory.protocols[0].transport.negotiatedProtocol == b"coap"
            client.close_stdin()
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
@deadline(20)
async def test_alpnOurClientToGnutlsServer(pem):
    require_peer("gnutls-serv")
    require_netns()
    with GnuTLSServer(cert=pem["server-ec.pem"], key=pem["server-ec.key"], alpn="coap",
                      priority=priority_for(SUITE)) as server:
        client = await connect(clientString(pem, server.port, "alpn=h2,coap"), netns=server.netns)
        assert client.transport.negotiatedProtocol == b"coap"
        assert await roundTrip(client, b"coap message") == b"coap message"
        client.transport.loseConnection()


# -- use_srtp ------------------------------------------------------------------------

OURS = "srtp=SRTP_AEAD_AES_128_GCM,SRTP_AES128_CM_HMAC_SHA1_80"


def profileFromOpenSSL(peer) -> SRTPProtectionProfile:
    match = peer.search(r"^SRTP Extension negotiated, profile=(\S+)$", "stdout")
    return SRTPProtectionProfile[OPENSSL_SRTP[match.group(1)]]


@pytest.mark.parametrize("theirs", ["SRTP_AES128_CM_SHA1_80", "SRTP_AES128_CM_SHA1_80:SRTP_AEAD_AES_128_GCM"])
@pytest_twisted.ensureDeferred
@deadline(20)
async def test_srtpOpensslClientToOurServer(pem, theirs):
    require_peer("openssl")
    port, factory = await listen(serverString(pem, OURS))
    try:
        with OpenSSLClient(port.getHost().port, cafile=pem["ca.pem"], cipher=SUITE, srtp=theirs,
                           brief=False) as client:
            await client.when(r"^SRTP Extension negotiated, profile=", stream="stdout")
            ours = factory.protocols[0].transport.srtpProfile
            assert ours == profileFromOpenSSL(client)
            assert ours.name in [OPENSSL_SRTP[n] for n in theirs.split(":")]
            client.close_stdin()
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
@deadline(20)
async def test_srtpOurClientToOpensslServer(pem):
    require_peer("openssl")
    with OpenSSLServer(cert=pem["server-ec.pem"], key=pem["server-ec.key"], cipher=SUITE,
                       srtp="SRTP_AES128_CM_SHA1_80", brief=False) as server:
        client = await connect(clientString(pem, server.port, OURS))
        assert client.transport.srtpProfile == SRTPProtectionProfile.SRTP_AES128_CM_HMAC_SHA1_80
        await server.when(r"^SRTP Extension negotiated, profile=", stream="stdout")
        assert profileFromOpenSSL(server) == client.transport.srtpProfile
        client.transport.loseConnection()


@pytest_twisted.ensureDeferred
@deadline(20)
async def test_srtpGnutlsClientToOurServer(pem):
    require_peer("gnutls-cli")
    port, factory = await listen(serverString(pem, OURS))
    try:
        with GnuTLSClient(port.getHost().port, cafile=pem["ca.pem"],
                          srtp="SRTP_AES128_CM_HMAC_SHA1_32:SRTP_AES128_CM_HMAC_SHA1_80") as client:
            await client.when_handshake()
            match = await client.when(r"^- SRTP profile: (\S+)$", stream="stdout")
            assert factory.protocols[0].transport.srtpProfile == SRTPProtectionProfile[match.group(1)]
            assert match.group(1) == "SRTP_AES128_CM_HMAC_SHA1_80"  # the only profile in common
            client.close_stdin()
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
@deadline(20)
async def test_srtpOurClientToGnutlsServer(pem):
    require_peer("gnutls-serv")
    require_netns()
    with GnuTLSServer(cert=pem["server-ec.pem"], key=pem["server-ec.key"], srtp="SRTP_AES128_CM_HMAC_SHA1_80",
                      priority=priority_for(SUITE)) as server:
        client = await connect(clientString(pem, server.port, OURS), netns=server.netns)
        assert client.transport.srtpProfile == SRTPProtectionProfile.SRTP_AES128_CM_HMAC_SHA1_80
        assert client.transport.srtpProfile.name == "SRTP_AES128_CM_HMAC_SHA1_80"
        assert await roundTrip(client) == b"ping"
        client.transport.loseConnection()


@pytest_twisted.ensureDeferred
@deadline(20)
async def test_srtpNoCommonProfileIsNotNegotiated(pem):
    """
    RFC 5764 §4.1.1: without a common profile the server leaves the
    extension out and the handshake goes on without SRTP.
    """
    require_peer("openssl")
    with OpenSSLServer(cert=pem["server-ec.pem"], key=pem["server-ec.key"], cipher=SUITE,
                       srtp="SRTP_AES128_CM_SHA1_32") as server:
        client = await connect(clientString(pem, server.port, "srtp=SRTP_AEAD_AES_256_GCM"))
        assert client.transport.srtpProfile is None
        client.transport.loseConnection()
