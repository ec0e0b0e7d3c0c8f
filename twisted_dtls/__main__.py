"""
C{python -m twisted_dtls connect ENDPOINT}: a line-oriented DTLS client.

Each line read from stdin is sent as one record (newline included, as
C{openssl s_client} does); every record received is written to stdout. The
handshake (suite, peer certificate subject and SHA-256 fingerprint) is
reported on stderr. When stdin ends, the client keeps reading until the
server has been quiet for C{--linger} seconds (so replies to the last lines
are not lost), then sends close_notify. Exit status 0 after the server's
close_notify or after stdin ends; 1 with a message on stderr otherwise; 2
for a bad command line.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional

from zope.interface import implementer

from twisted.internet import error
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Factory, Protocol

from twisted_dtls.credentials import fingerprintSHA256


def _say(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


@implementer(IHalfCloseableProtocol)
class _Stdin(Protocol):
    """
    stdin and stdout, bridged to the DTLS protocol.
    """

    def __init__(self, peer: "_DTLSClientProtocol"):
        self._peer = peer
        self._buffer = b""

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            self._peer.sendRecords(line + b"\n")

    def readConnectionLost(self) -> None:
        if self._buffer:
            self._peer.sendRecords(self._buffer)
            self._buffer = b""
        self._peer.stdinClosed()

    def writeConnectionLost(self) -> None:
        self._peer.stdinClosed()

    def connectionLost(self, reason) -> None:
        self._peer.stdioLost()


class _DTLSClientProtocol(Protocol):
    def __init__(self, reactor, done: Deferred, stdioFactory, linger: float = 0.5):
        self._reactor = reactor
        self._done = done
        self._stdioFactory = stdioFactory
        self._stdio = None
        self._exitCode: Optional[int] = None
        self._linger = linger
        self._lingerCall = None

    def connectionMade(self) -> None:
        transport = self.transport
        certificate = transport.getPeerCertificate()
        _say(f"handshake complete: {transport.version} {transport.cipherSuite}")
        if certificate is not None:
            _say(f"peer certificate: {certificate.subject.rfc4514_string()}")
            _say(f"peer SHA-256 fingerprint: {fingerprintSHA256(certificate)}")
        if transport.negotiatedProtocol is not None:
            _say(f"ALPN: {transport.negotiatedProtocol.decode('ascii', 'replace')}")
        if transport.srtpProfile is not None:
            _say(f"SRTP profile: {getattr(transport.srtpProfile, 'name', transport.srtpProfile)}")
        if transport.pskIdentity is not None:
            _say(f"PSK identity: {transport.pskIdentity.decode('utf-8', 'replace')}")
        if transport.resumed:
            _say("session resumed")
        self._stdio = self._stdioFactory(_Stdin(self), self._reactor)

    def sendRecords(self, data: bytes) -> None:
        if not self.transport.connected:
            return
        limit = self.transport.maxWriteSize
        for start in range(0, len(data), limit):
            self.transport.write(data[start:start + limit])

    def stdinClosed(self) -> None:
        if self.transport.connected and self._lingerCall is None:
            self._lingerCall = self._reactor.callLater(self._linger, self._lingerOver)

    def _lingerOver(self) -> None:
        self._lingerCall = None
        if self.transport.connected:
            self.transport.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        if self._stdio is not None:
            self._stdio.write(data)
        if self._lingerCall is not None and self._lingerCall.active():
            self._lingerCall.reset(self._linger)

    def connectionLost(self, reason) -> None:
        if self._lingerCall is not None and self._lingerCall.active():
            self._lingerCall.cancel()
        if reason.check(error.ConnectionDone):
            self._exitCode = 0
        else:
            _say(f"connection lost: {reason.getErrorMessage()}")
            self._exitCode = 1
        if self._stdio is not None and not getattr(self._stdio, "disconnected", False):
            # Let stdout drain before the process ends.
            self._stdio.loseConnection()
        else:
            self._finish()

    def stdioLost(self) -> None:
        if self._exitCode is not None:
            self._finish()

    def _finish(self) -> None:
        done, self._done = self._done, None
        if done is not None:
            done.callback(self._exitCode)


async def _connect(reactor, description: str, linger: float = 0.5) -> None:
    from twisted.internet.stdio import StandardIO

    from twisted_dtls.endpoints import clientEndpointFromString

    try:
        endpoint = clientEndpointFromString(reactor, description)
    except ValueError as e:
        _say(f"error: {e}")
        raise SystemExit(2)
    done: Deferred = Deferred()
    factory = Factory.forProtocol(
        lambda: _DTLSClientProtocol(reactor, done, lambda proto, r: StandardIO(proto, reactor=r), linger)
    )
    try:
        await endpoint.connect(factory)
    except Exception as e:
        _say(f"error: could not connect: {e}")
        raise SystemExit(1)
    code = await done
    if code:
        raise SystemExit(code)


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m twisted_dtls", description="DTLS 1.2 tools over Twisted.")
    commands = parser.add_subparsers(dest="command", required=True)
    connect = commands.add_parser(
        "connect",
        help="connect to a DTLS server; stdin lines go out as records, records come out on stdout",
    )
    connect.add_argument(
        "endpoint", help="a dtls: client endpoint string, e.g. 'dtls:127.0.0.1:4433:fingerprint=HEX'"
    )
    connect.add_argument(
        "--linger", type=float, default=0.5, metavar="SECONDS",
        help="after stdin ends, wait until the server is quiet this long before closing (default 0.5)",
    )
    arguments = parser.parse_args(argv)

    from twisted.internet.defer import ensureDeferred
    from twisted.internet.task import react

    react(lambda reactor: ensureDeferred(_connect(reactor, arguments.endpoint, arguments.linger)))


if __name__ == "__main__":
    main()
