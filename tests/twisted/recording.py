"""
Protocols and factories that record what happened to them, and the usual
server/client setup on a L{MemoryNetwork}.
"""

from __future__ import annotations

from typing import Optional

from zope.interface import implementer

from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Factory, Protocol

from twisted_dtls.client import connectDTLS
from twisted_dtls.core.configuration import DTLSConfiguration
from twisted_dtls.port import DTLSPort


@implementer(IHandshakeListener)
class Recorder(Protocol):
    """
    Records every callback, in order, in C{calls}.
    """

    def __init__(self, echo: bool = False):
        self.echo = echo
        self.calls: list[str] = []
        self.received: list[bytes] = []
        self.lost: list = []

    def connectionMade(self) -> None:
        self.calls.append("connectionMade")

    def handshakeCompleted(self) -> None:
        self.calls.append("handshakeCompleted")

    def dataReceived(self, data: bytes) -> None:
        self.calls.append("dataReceived")
        self.received.append(data)
        if self.echo:
            self.transport.write(data)

    def connectionLost(self, reason) -> None:
        self.calls.append("connectionLost")
        self.lost.append(reason)


class RecordingFactory(Factory):
    """
    Builds L{Recorder}s (or refuses, with C{refuse=True}) and keeps them.
    """

    def __init__(self, echo: bool = False, refuse: bool = False):
        self.echo = echo
        self.refuse = refuse
        self.protocols: list[Recorder] = []
        self.addresses: list = []
        self.started = 0
        self.stopped = 0

    def startFactory(self) -> None:
        self.started += 1

    def stopFactory(self) -> None:
        self.stopped += 1

    def buildProtocol(self, addr):
        self.addresses.append(addr)
        if self.refuse:
            return None
        protocol = Recorder(self.echo)
        protocol.factory = self
        self.protocols.append(protocol)
        return protocol


def serverConfiguration(pki, **overrides) -> DTLSConfiguration:
    return DTLSConfiguration(certificate_chain=tuple(pki.server_ec.chain), private_key=pki.server_ec.key, **overrides)


def clientConfiguration(pki, **overrides) -> DTLSConfiguration:
    overrides.setdefault("server_name", "localhost")
    return DTLSConfiguration(trust_roots=(pki.ca_cert,), **overrides)


def listen(network, pki, factory=None, port: int = 4433, interface: str = "127.0.0.1",
           configuration: Optional[DTLSConfiguration] = None, **options) -> DTLSPort:
    if factory is None:
        factory = RecordingFactory(echo=True)
    p = DTLSPort(network.reactor, port, factory, configuration or serverConfiguration(pki),
                 interface=interface, **options)
    p.startListening()
    return p


class Outcome:
    """
    Where a client connect() Deferred ended up.
    """

    def __init__(self, d):
        self.result = None
        self.failure = None
        d.addCallbacks(self._ok, self._failed)

    def _ok(self, result):
        self.result = result

    def _failed(self, failure):
        self.failure = failure

    @property
    def done(self) -> bool:
        return self.result is not None or self.failure is not None


def connect(network, pki, port: DTLSPort, factory=None, configuration=None, **options):
    """
    Start a client toward C{port}; returns (factory, Outcome).
    """
    if factory is None:
        factory = RecordingFactory()
    host = port.getHost()
    d = connectDTLS(network.reactor, host.host, host.port, factory, configuration or clientConfiguration(pki), **options)
    return factory, Outcome(d)
