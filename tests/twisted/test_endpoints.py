"""
DTLS endpoints and the dtls: endpoint strings, found through Twisted's plugin
system, on the in-memory network and over real loopback UDP.
"""

from __future__ import annotations

import os
import re

import pytest
import pytest_twisted
from cryptography.hazmat.primitives import serialization
from zope.interface.verify import verifyObject

from twisted.internet import defer
from twisted.internet.address import IPv6Address
from twisted.internet.error import ConnectionDone
from twisted.internet.endpoints import _parse, clientFromString, serverFromString
from twisted.internet.interfaces import (
    IStreamClientEndpoint,
    IStreamClientEndpointStringParserWithReactor,
    IStreamServerEndpoint,
    IStreamServerEndpointStringParser,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.plugin import IPlugin, getPlugins
from twisted.protocols.basic import LineReceiver
from twisted.protocols.wire import Echo

from tests.certs import write_pem_files
from tests.twisted.recording import Outcome, RecordingFactory
from twisted_dtls.core.constants import CipherSuite
from twisted_dtls.credentials import fingerprintSHA256, generateSelfSigned
from twisted_dtls.endpoints import (
    CLIENT_KEYWORDS,
    SERVER_KEYWORDS,
    DTLSClientEndpoint,
    DTLSClientParser,
    DTLSServerEndpoint,
    DTLSServerParser,
    splitDescription,
)
from twisted_dtls.port import DTLSPort
from twisted_dtls.transport import DTLSHandshakeError


@pytest.fixture(scope="module")
def pem(pki, tmp_path_factory):
    return write_pem_files(pki, tmp_path_factory.mktemp("pem"))


def serverString(pem, port="4433", extra=""):
    return f"dtls:{port}:interface=127.0.0.1:privateKey={pem['server-ec.key']}:certKey={pem['server-ec.pem']}{extra}"


@pytest.mark.parametrize(
    "description",
    [
        "dtls:4433:interface=\\:\\:1:privateKey=a.pem",
        "dtls:\\:\\:1:4433:hostname=x",
        "dtls:host=h:port=1:fingerprint=ab\\:cd",
        "dtls:1:ciphers=a=b:x=",
        "dtls:a\\\\b:",
    ],
)
def test_splitDescriptionAgreesWithTwisted(description):
    args, kwargs = _parse(description)
    assert splitDescription(description) == (args, kwargs)


def test_pluginsAreFound():
    servers = [p for p in getPlugins(IStreamServerEndpointStringParser) if p.prefix == "dtls"]
    clients = [p for p in getPlugins(IStreamClientEndpointStringParserWithReactor) if p.prefix == "dtls"]
    assert len(servers) == 1 and isinstance(servers[0], DTLSServerParser)
    assert len(clients) == 1 and isinstance(clients[0], DTLSClientParser)
    assert verifyObject(IPlugin, servers[0]) and verifyObject(IStreamServerEndpointStringParser, servers[0])
    assert verifyObject(IPlugin, clients[0]) and verifyObject(IStreamClientEndpointStringParserWithReactor, clients[0])


def test_serverFromString(network, pem, pki):
    endpoint = serverFromString(network.reactor, serverString(pem, extra=":maxConnections=7:maxHandshakes=3"
                                                              ":handshakeTimeout=5:idleTimeout=none"
                                                              ":maxDatagramSize=600:ciphers=ECDHE-ECDSA-AES256-GCM-SHA384"))
    assert isinstance(endpoint, DTLSServerEndpoint)
    assert verifyObject(IStreamServerEndpoint, endpoint)
    ports = []
    endpoint.listen(RecordingFactory()).addCallback(ports.append)
    (port,) = ports
    assert isinstance(port, DTLSPort)
    assert (port.maxConnections, port.maxHandshakes, port.handshakeTimeout, port.idleTimeout) == (7, 3, 5.0, None)
    assert port.configuration.max_datagram_size == 600
    assert port.configuration.cipher_suites == (CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,)
    assert list(port.configuration.certificate_chain) == list(pki.server_ec.chain)


def test_serverIPv6Interface(network, pem):
    endpoint = serverFromString(network.reactor, serverString(pem).replace("interface=127.0.0.1", "interface=\\:\\:1"))
    ports = []
    endpoint.listen(RecordingFactory()).addCallback(ports.append)
    assert ports[0].getHost() == IPv6Address("UDP", "::1", 4433)


def test_serverKeyFileHoldingBoth(network, pki, tmp_path):
    both = tmp_path / "both.pem"
    both.write_bytes(pki.server_ec.key_pem() + pki.server_ec.chain_pem())
    endpoint = serverFromString(network.reactor, f"dtls:0:privateKey={both}")
    ports = []
    endpoint.listen(RecordingFactory()).addCallback(ports.append)
    assert ports[0].configuration.certificate_chain[0] == pki.server_ec.chain[0]


def test_clientFromString(network, pem, pki):
    endpoint = clientFromString(network.reactor, f"dtls:127.0.0.1:4433:trustRoots={pem['ca.pem']}:hostname=localhost")
    assert isinstance(endpoint, DTLSClientEndpoint)
    assert verifyObject(IStreamClientEndpoint, endpoint)


@pytest.mark.parametrize(
    "description, message",
    [
        ("dtls:4433:privateKey=K:bogus=1:alsoBogus=2", "alsoBogus, bogus"),
        ("dtls:4433", "needs privateKey"),
        ("dtls:70000:privateKey=K", "port=70000 is out of range"),
        ("dtls:4433:privateKey=/nonexistent.pem", "cannot read private key file"),
        ("dtls:4433:certKey=C", "need privateKey"),
    ],
)
def test_serverStringErrors(network, description, message):
    with pytest.raises(ValueError, match=message):
        serverFromString(network.reactor, description)


@pytest.mark.parametrize(
    "extra, message",
    [
        (":maxDatagramSize=100", r"maxDatagramSize=100 is out of range \(256..65507\)"),
        (":maxDatagramSize=big", "not an integer"),
        (":maxConnections=0", "maxConnections=0 is out of range"),
        (":idleTimeout=-3", "must be positive"),
        (":ciphers=RC4-MD5", "unknown cipher suite"),
        (":cookieSecretFile=/nonexistent", "cannot read cookieSecretFile"),
    ],
)
def test_serverKeywordErrors(network, pem, extra, message):
    with pytest.raises(ValueError, match=message):
        serverFromString(network.reactor, serverString(pem, extra=extra))


def test_cookieSecretFile(network, pem, tmp_path):
    short = tmp_path / "short"
    short.write_bytes(b"tiny\n")
    with pytest.raises(ValueError, match="at least 16"):
        serverFromString(network.reactor, serverString(pem, extra=f":cookieSecretFile={short}"))
    good = tmp_path / "good"
    good.write_bytes(b"0123456789abcdef0123456789abcdef\n")
    serverFromString(network.reactor, serverString(pem, extra=f":cookieSecretFile={good}"))


@pytest.mark.parametrize(
    "description, message",
    [
        ("dtls:127.0.0.1:4433:fingerprint=00:verify=no", "verify"),
        ("dtls:127.0.0.1", "needs HOST:PORT"),
        ("dtls:127.0.0.1:0:fingerprint=" + "00" * 32, "port=0 is out of range"),
        ("dtls:127.0.0.1:4433:fingerprint=abcd", "is 2 bytes"),
        ("dtls:127.0.0.1:4433:fingerprint=", "fingerprint= is empty"),
        ("dtls:127.0.0.1:4433:trustRoots=/nonexistent", "cannot read certificate file"),
        ("dtls:127.0.0.1:4433:1:fingerprint=" + "00" * 32, "unexpected positional"),
    ],
)
def test_clientStringErrors(network, description, message):
    with pytest.raises(ValueError, match=message):
        clientFromString(network.reactor, description)


def test_keywordSets():
    """
    Every keyword the parsers accept is documented in docs/endpoints.md, and
    the ones Twisted's ssl: parser has keep Twisted's names.
    """
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "endpoints.md"), encoding="utf-8") as f:
        documented = set(re.findall(r"`([A-Za-z]+)`", f.read()))
    # PORT (and HOST) are positional first; the rest appear by name.
    documented |= {"port", "host"}
    assert SERVER_KEYWORDS - documented == set()
    assert CLIENT_KEYWORDS - documented == set()
    assert {"interface", "privateKey", "certKey", "extraCertChain"} <= SERVER_KEYWORDS
    assert {"trustRoots", "caCertsDir", "bindAddress", "timeout", "hostname"} <= CLIENT_KEYWORDS


def test_helloRateKeywords(network, pem):
    endpoint = serverFromString(network.reactor, serverString(pem, extra=":helloRate=5:helloBurst=7:maxHelloSources=9"))
    port = endpoint.listen(RecordingFactory())
    assert port.result is not None
    with pytest.raises(ValueError, match="helloRate"):
        serverFromString(network.reactor, serverString(pem, extra=":helloRate=none"))


def _connectOverMemory(network, pem, clientDescription, serverExtra=""):
    serverFactory = RecordingFactory(echo=True)
    serverFromString(network.reactor, serverString(pem, extra=serverExtra)).listen(serverFactory)
    endpoint = clientFromString(network.reactor, clientDescription)
    outcome = Outcome(endpoint.connect(RecordingFactory()))
    network.flush()
    return outcome


def test_trustRootsFileAndDirectory(network, pem, pki, tmp_path):
    outcome = _connectOverMemory(network, pem, f"dtls:localhost:4433:trustRoots={pem['ca.pem']}")
    assert outcome.result is not None, outcome.failure
    directory = tmp_path / "cas"
    directory.mkdir()
    (directory / "ca.pem").write_bytes(pki.ca_cert.public_bytes(serialization.Encoding.PEM))
    (directory / "README").write_text("not a certificate")
    network.__init__()
    outcome = _connectOverMemory(network, pem, f"dtls:127.0.0.1:4433:caCertsDir={directory}:hostname=localhost")
    assert outcome.result is not None, outcome.failure


def test_hostnameMismatchFromString(network, pem):
    outcome = _connectOverMemory(network, pem, f"dtls:127.0.0.1:4433:trustRoots={pem['ca.pem']}:hostname=evil.example")
    assert outcome.failure.check(DTLSHandshakeError)


def test_ipAddressIsCheckedAgainstCertificate(network, pem):
    # The test certificates carry 127.0.0.1 as an IP SAN.
    outcome = _connectOverMemory(network, pem, f"dtls:127.0.0.1:4433:trustRoots={pem['ca.pem']}")
    assert outcome.result is not None, outcome.failure


def test_fingerprintPinWithColons(network, pem, pki):
    fingerprint = fingerprintSHA256(pki.server_ec.chain[0])
    colons = "\\:".join(fingerprint[i:i + 2] for i in range(0, 64, 2)).upper()
    outcome = _connectOverMemory(network, pem, f"dtls:127.0.0.1:4433:fingerprint={colons}")
    assert outcome.result is not None, outcome.failure
    network.__init__()
    outcome = _connectOverMemory(network, pem, f"dtls:127.0.0.1:4433:fingerprint={'0' * 64}")
    assert outcome.failure.check(DTLSHandshakeError)


def test_clientIPv6Host(network, pem):
    serverFactory = RecordingFactory(echo=True)
    serverFromString(network.reactor, serverString(pem).replace("interface=127.0.0.1", "interface=\\:\\:1")
                     ).listen(serverFactory)
    endpoint = clientFromString(network.reactor, f"dtls:\\:\\:1:4433:trustRoots={pem['ca.pem']}")
    outcome = Outcome(endpoint.connect(RecordingFactory()))
    network.flush()
    assert outcome.result is not None, outcome.failure
    assert outcome.result.transport.getPeer() == IPv6Address("UDP", "::1", 4433)


def test_clientBindAddressAndTimeout(network, pem):
    endpoint = clientFromString(network.reactor, f"dtls:127.0.0.1:4433:fingerprint={'0' * 64}"
                                                 ":bindAddress=127.0.0.7:timeout=2")
    outcome = Outcome(endpoint.connect(RecordingFactory()))
    network.flush()  # nobody listens, but the memory network is told only for connected sends
    assert outcome.done
    assert network.sent[0].source[0] == "127.0.0.7"


# -- real loopback UDP ---------------------------------------------------------------


class Collector(Protocol):
    def __init__(self):
        self.received = []
        self.lost = defer.Deferred()
        self.arrived = None

    def expect(self):
        self.arrived = defer.Deferred()
        return self.arrived

    def dataReceived(self, data):
        self.received.append(data)
        if self.arrived is not None:
            d, self.arrived = self.arrived, None
            d.callback(data)

    def connectionLost(self, reason):
        self.lost.callback(reason.value)


class LineCollector(LineReceiver):
    delimiter = b"\n"

    def __init__(self):
        self.lines = []
        self.waiting = []

    def lineReceived(self, line):
        if self.factory.server:
            self.sendLine(line.upper())
        else:
            self.lines.append(line)
            if self.waiting:
                self.waiting.pop(0).callback(line)


async def _realRoundTrip(reactor, serverDescription, clientDescription):
    port = await serverFromString(reactor, serverDescription).listen(Factory.forProtocol(Echo))
    try:
        host = port.getHost()
        client = await clientFromString(reactor, clientDescription.format(port=host.port)).connect(
            Factory.forProtocol(Collector))
        arrived = client.expect()
        client.transport.write(b"ping over real UDP")
        assert await arrived == b"ping over real UDP"
        client.transport.loseConnection()
        reason = await client.lost
        assert isinstance(reason, ConnectionDone)
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_realLoopbackEcho(pem):
    from twisted.internet import reactor

    await _realRoundTrip(reactor, serverString(pem, port="0"),
                         f"dtls:127.0.0.1:{{port}}:trustRoots={pem['ca.pem']}:hostname=localhost")


@pytest_twisted.ensureDeferred
async def test_realLoopbackEchoIPv6(pem):
    from twisted.internet import reactor

    await _realRoundTrip(reactor, serverString(pem, port="0").replace("interface=127.0.0.1", "interface=\\:\\:1"),
                         f"dtls:\\:\\:1:{{port}}:trustRoots={pem['ca.pem']}")


@pytest_twisted.ensureDeferred
async def test_realLoopbackLineReceiver(tmp_path):
    from twisted.internet import reactor

    credentials = generateSelfSigned()
    key = tmp_path / "key.pem"
    key.write_bytes(credentials.privateKey.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + credentials.chain[0].public_bytes(serialization.Encoding.PEM))
    serverFactory = Factory.forProtocol(LineCollector)
    serverFactory.server = True
    clientFactory = Factory.forProtocol(LineCollector)
    clientFactory.server = False
    port = await serverFromString(reactor, f"dtls:0:interface=127.0.0.1:privateKey={key}").listen(serverFactory)
    try:
        client = await clientFromString(
            reactor, f"dtls:127.0.0.1:{port.getHost().port}:fingerprint={credentials.fingerprint}"
        ).connect(clientFactory)
        waits = [defer.Deferred() for _ in range(3)]
        client.waiting.extend(waits)
        client.sendLine(b"first")
        client.sendLine(b"second")
        client.sendLine(b"third")
        assert await defer.gatherResults(waits) == [b"FIRST", b"SECOND", b"THIRD"]
        assert port.stats.handshakesCompleted == 1
        client.transport.loseConnection()
    finally:
        await port.stopListening()
