"""
Shared pieces of the feature tests: PEM files, an in-process server and
client built from C{dtls:} strings on the global reactor, a hard deadline
for every test, and waiting on peer processes from inside the reactor.
"""

from __future__ import annotations

import functools
import os

from twisted.internet import defer, task
from twisted.internet.protocol import Factory, Protocol

from tests.certs import Credential, issue
from tests.peers.openssl_cli import PSK_IDENTITY, PSK_KEY_HEX
from tests.twisted.recording import RecordingFactory
from twisted_dtls.endpoints import clientEndpointFromString, serverEndpointFromString

__all__ = [
    "PSK_IDENTITY",
    "PSK_KEY_HEX",
    "PSK_CLIENT",
    "PSK_SERVER",
    "deadline",
    "listen",
    "connect",
    "Client",
    "RecordingFactory",
    "sleep",
    "escape",
    "writeNamedCredential",
]

#: Endpoint-string fragments with the interop PSK.
PSK_CLIENT = f"pskIdentity={PSK_IDENTITY}:psk={PSK_KEY_HEX}"
PSK_SERVER = f"pskIdentity={PSK_IDENTITY}:psk={PSK_KEY_HEX}"


def reactor():
    from twisted.internet import reactor as r

    return r


def deadline(seconds: float):
    """
    Fail (and cancel) an async test that has not finished within
    C{seconds}; apply under C{@pytest_twisted.ensureDeferred}.
    """

    def decorate(f):
        @functools.wraps(f)
        async def wrapper(*args, **kwargs):
            d = defer.ensureDeferred(f(*args, **kwargs))
            d.addTimeout(seconds, reactor())
            return await d

        return wrapper

    return decorate


def poll(check, timeout: float, message: str) -> defer.Deferred:
    """
    Fire with the first true C{check()}, polled on the reactor, or fail
    after C{timeout} seconds.
    """
    from tests.peers.process import poll_deferred

    return poll_deferred(check, timeout, lambda: message, reactor=reactor())


def sleep(seconds: float):
    return task.deferLater(reactor(), seconds, lambda: None)


def escape(path: str) -> str:
    """A path as an endpoint-string value (colons and backslashes escaped)."""
    return str(path).replace("\\", "\\\\").replace(":", "\\:")


async def listen(description: str, factory=None):
    """
    Listen with a C{dtls:} server string on the global reactor.

    @return: (port, factory); the default factory echoes every record and
        keeps its protocols (C{factory.protocols}).
    """
    if factory is None:
        factory = RecordingFactory(echo=True)
    endpoint = serverEndpointFromString(reactor(), description)
    port = await endpoint.listen(factory)
    return port, factory


class Client(Protocol):
    """
    Collects records; C{next()} is a Deferred for the next one.
    """

    def __init__(self):
        self.received: list[bytes] = []
        self._waiting: list[defer.Deferred] = []
        self.lost = defer.Deferred()

    def next(self) -> defer.Deferred:
        d = defer.Deferred()
        self._waiting.append(d)
        return d

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)
        if self._waiting:
            self._waiting.pop(0).callback(data)

    def connectionLost(self, reason) -> None:
        self.lost.callback(reason.value)


def connect(description: str, endpoint=None, netns=None) -> defer.Deferred:
    """
    Connect with a C{dtls:} client string (or an endpoint already made);
    with C{netns}, the socket is created inside that network namespace
    (to reach C{gnutls-serv}).

    @return: a Deferred firing with the connected L{Client}.
    """
    if endpoint is None:
        endpoint = clientEndpointFromString(reactor(), description)
    factory = Factory.forProtocol(Client)
    if netns is None:
        return endpoint.connect(factory)
    with netns.entered():
        # An IP literal: connect() creates the socket before returning.
        return endpoint.connect(factory)


async def roundTrip(client: Client, data: bytes = b"ping") -> bytes:
    """Send one record, return the next one received."""
    arriving = client.next()
    client.transport.write(data)
    return await arriving


def writeNamedCredential(pki, directory, stem: str, name: str) -> Credential:
    """
    Issue a server certificate for C{name} from the test CA and write
    C{stem.pem} and C{stem.key} into C{directory}.
    """
    ca = Credential([pki.ca_cert], pki.ca_key)
    credential = issue(ca, name, san=[name])
    with open(os.path.join(directory, f"{stem}.pem"), "wb") as f:
        f.write(credential.chain_pem())
    with open(os.path.join(directory, f"{stem}.key"), "wb") as f:
        f.write(credential.key_pem())
    return credential
