"""
The dtls-echo twistd plugin: discovery, options, and the service it makes.
"""

from __future__ import annotations

import re
import subprocess

import pytest
from zope.interface.verify import verifyObject

from twisted.application.service import IServiceMaker
from twisted.logger import globalLogPublisher
from twisted.plugin import IPlugin, getPlugins
from twisted.python import usage

from tests.twisted.clitools import environment, program
from tests.twisted.recording import Outcome, RecordingFactory
from twisted_dtls import tap
from twisted_dtls.endpoints import clientEndpointFromString


def test_pluginIsFound():
    makers = [m for m in getPlugins(IServiceMaker) if m.tapname == "dtls-echo"]
    assert len(makers) == 1
    assert verifyObject(IServiceMaker, makers[0]) and verifyObject(IPlugin, makers[0])
    assert makers[0].module == "twisted_dtls.tap"


@pytest.mark.parametrize("command", ["twistd", "twist"])
def test_helpListsPlugin(command, tmp_path):
    result = subprocess.run(["timeout", "60", program(command), "--help"], capture_output=True, env=environment(),
                            cwd=str(tmp_path), timeout=70)
    assert result.returncode == 0, result.stderr
    assert re.search(rb"dtls-echo\s+A DTLS 1.2 echo server", result.stdout)


def test_pluginHelp(tmp_path):
    result = subprocess.run(["timeout", "60", program("twistd"), "dtls-echo", "--help"], capture_output=True,
                            env=environment(), cwd=str(tmp_path), timeout=70)
    assert result.returncode == 0
    assert b"--listen" in result.stdout and b"dtls:4433:interface=127.0.0.1" in result.stdout


def test_optionsDefault():
    options = tap.Options()
    options.parseOptions([])
    assert options["listen"] == ["dtls:4433:interface=127.0.0.1"] == [tap.DEFAULT_LISTEN]


def test_optionsRepeatable():
    options = tap.Options()
    options.parseOptions(["--listen", "dtls:1", "-l", "dtls:2:interface=\\:\\:1"])
    assert options["listen"] == ["dtls:1", "dtls:2:interface=\\:\\:1"]


def test_optionsRejectOtherEndpoints():
    with pytest.raises(usage.UsageError, match="dtls: endpoint"):
        tap.Options().parseOptions(["--listen", "tcp:80"])


def test_makeServiceRejectsBadDescription(network):
    options = tap.Options()
    options.parseOptions(["--listen", "dtls:4433:wrong=1"])
    with pytest.raises(usage.UsageError, match="wrong"):
        tap.makeService(options, network.reactor)


def test_connectHints():
    ours, openssl = tap.connectHints("::", 4433, "ab" * 32)
    assert ours == f"python -m twisted_dtls connect 'dtls:\\:\\:1:4433:fingerprint={'ab' * 32}'"
    assert openssl == "openssl s_client -dtls1_2 -connect [::1]:4433"
    assert tap.connectHints("0.0.0.0", 1, "00")[1] == "openssl s_client -dtls1_2 -connect 127.0.0.1:1"


def test_defaultServiceEchoesAndLogsHowToConnect(network):
    """
    With no options: 127.0.0.1:4433, a generated certificate, its
    fingerprint and two commands in the log; the logged command's endpoint
    string connects, and records are echoed.
    """
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        options = tap.Options()
        options.parseOptions([])
        service = tap.makeService(options, network.reactor)
        service.startService()
    finally:
        globalLogPublisher.removeObserver(events.append)
    fingerprints = [e["fingerprint"] for e in events if "fingerprint" in e]
    commands = [e["command"] for e in events if "command" in e]
    assert len(fingerprints) == 1 and re.fullmatch("[0-9a-f]{64}", fingerprints[0])
    assert commands == [
        f"python -m twisted_dtls connect 'dtls:127.0.0.1:4433:fingerprint={fingerprints[0]}'",
        "openssl s_client -dtls1_2 -connect 127.0.0.1:4433",
    ]
    assert network.isBound("127.0.0.1", 4433)
    description = commands[0].split("'")[1]
    clientFactory = RecordingFactory()
    outcome = Outcome(clientEndpointFromString(network.reactor, description).connect(clientFactory))
    network.flush()
    client = outcome.result
    assert client is not None, outcome.failure
    client.transport.write(b"one record")
    client.transport.write(b"another")
    network.flush()
    assert client.received == [b"one record", b"another"]
    service.stopService()
    network.flush()
    assert not network.isBound("127.0.0.1", 4433)


def test_givenCertificateIsUsed(network, pki, tmp_path):
    key = tmp_path / "k.pem"
    key.write_bytes(pki.server_ec.key_pem() + pki.server_ec.chain_pem())
    options = tap.Options()
    options.parseOptions(["--listen", f"dtls:5000:interface=127.0.0.1:privateKey={key}",
                          "--listen", "dtls:5001:interface=127.0.0.1"])
    service = tap.makeService(options, network.reactor)
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        service.startService()
    finally:
        globalLogPublisher.removeObserver(events.append)
    kinds = [e["kind"] for e in events if "kind" in e]
    assert kinds == ["the given", "a generated self-signed"]
    service.stopService()
