"""
Where a L{MaliciousClient} sends its datagrams: a server L{DTLSConnection}
behind the stateless listener (engine level), or a L{DTLSPort} on a
L{MemoryNetwork} (the Twisted layer). Both expose the same small surface so
that one scenario runs against both.
"""

from __future__ import annotations

from twisted.internet.protocol import DatagramProtocol

from tests.hostile.malicious import MaliciousClient
from tests.twisted.recording import RecordingFactory, clientConfiguration, connect, listen
from twisted_dtls.core.configuration import DTLSConfiguration
from twisted_dtls.core.connection import DTLSConnection
from twisted_dtls.core.cookie import CookieContext
from twisted_dtls.core.events import ConnectionClosed, DataReceived, HandshakeCompleted
from twisted_dtls.core.listener import Verdict, examine_first_datagram

CLIENT = ("127.0.0.66", 6666)
SERVER = ("127.0.0.1", 4433)


class EngineTarget:
    """
    A server engine created, as the port does, only once a cookie verifies.
    """

    def __init__(self, configuration: DTLSConfiguration):
        self.configuration = configuration
        self.cookies = CookieContext(b"c" * 32)
        self.now = 0.0
        self.connection: DTLSConnection | None = None
        self.events: list = []
        self.client: MaliciousClient | None = None

    def attach(self, client: MaliciousClient) -> None:
        self.client = client

    def send(self, datagram: bytes) -> None:
        if self.connection is None:
            verdict = examine_first_datagram(datagram, CLIENT, self.cookies, self.now)
            if verdict.verdict is Verdict.HELLO_VERIFY:
                self.client.receive(verdict.reply)
                return
            if verdict.verdict is Verdict.DROP:
                return
            self.connection = DTLSConnection(self.configuration, is_client=False)
        self.connection.receive_datagram(datagram, self.now)
        self._pump()

    def _pump(self) -> None:
        conn = self.connection
        for out in conn.datagrams_to_send(self.now):
            self.client.receive(out)
        while (event := conn.next_event()) is not None:
            self.events.append(event)

    def run(self, seconds: float) -> None:
        """
        Let the server's retransmission timer run for C{seconds}.
        """
        end = self.now + seconds
        while self.connection is not None:
            deadline = self.connection.get_timer()
            if deadline is None or deadline > end:
                break
            self.now = deadline
            self.connection.handle_timer(self.now)
            self._pump()
        self.now = end

    @property
    def completed(self) -> bool:
        return any(isinstance(e, HandshakeCompleted) for e in self.events)

    @property
    def delivered(self) -> list[bytes]:
        return [e.data for e in self.events if isinstance(e, DataReceived)]

    @property
    def closed(self) -> ConnectionClosed | None:
        return next((e for e in self.events if isinstance(e, ConnectionClosed)), None)


class _Collector(DatagramProtocol):
    def __init__(self, client: MaliciousClient):
        self.client = client

    def datagramReceived(self, datagram, addr):
        self.client.receive(datagram)


class PortTarget:
    """
    A L{DTLSPort} (echo protocols from a L{RecordingFactory}) on a
    L{MemoryNetwork}; the malicious client has a socket of its own there.
    """

    def __init__(self, network, pki, address=CLIENT, port=None, **options):
        self.network = network
        self.pki = pki
        self.address = address
        if port is None:
            self.factory = RecordingFactory(echo=True)
            port = listen(network, pki, self.factory, **options)
        else:
            self.factory = port.factory
        self.port = port
        self.udp = None

    def attach(self, client: MaliciousClient) -> None:
        self.udp = self.network.bind(self.address[1], _Collector(client), interface=self.address[0])

    def send(self, datagram: bytes) -> None:
        self.udp.write(datagram, SERVER)
        self.network.flush()

    def run(self, seconds: float) -> None:
        self.network.run(seconds, step=0.5)

    @property
    def completed(self) -> bool:
        return any(a.host == self.address[0] and a.port == self.address[1] for a in self.factory.addresses)

    @property
    def delivered(self) -> list[bytes]:
        out = []
        for protocol in self.factory.protocols:
            if protocol.transport.getPeer().host == self.address[0]:
                out += protocol.received
        return out

    def normal_client_works(self, bindAddress=("127.0.0.77", 0), **options) -> bool:
        """
        A well-behaved client completes a handshake and gets its data echoed.
        """
        clientFactory, outcome = connect(self.network, self.pki, self.port, bindAddress=bindAddress, **options)
        self.network.flush()
        if outcome.result is None:
            return False
        outcome.result.transport.write(b"still serving")
        self.network.flush()
        ok = outcome.result.received == [b"still serving"]
        outcome.result.transport.loseConnection()
        self.network.flush()
        return ok


def start(client: MaliciousClient, target) -> None:
    """
    ClientHello, the cookie exchange, and the server's first flight.
    """
    target.attach(client)
    target.send(client.client_hello())
    if client.view.hello_verify_requests:
        target.send(client.client_hello())
    if not client.server_done:
        raise AssertionError(f"no server flight: saw {client.view}")


def play(client: MaliciousClient, target, script: list[str], then_app: bool = True) -> None:
    """
    Send the scripted client flight, then application data under the new
    keys (if they exist), then let the server's timers run.
    """
    for datagram in client.build(script):
        target.send(datagram)
    if then_app and client.client_write is not None:
        for datagram in client.build(["app@1"]):
            target.send(datagram)
    target.run(5.0)


def server_configuration(pki, **kw) -> DTLSConfiguration:
    return DTLSConfiguration(certificate_chain=tuple(pki.server_ec.chain), private_key=pki.server_ec.key, **kw)


__all__ = ["EngineTarget", "PortTarget", "start", "play", "server_configuration", "clientConfiguration"]
