"""
An in-memory datagram network behind a simulated clock.

L{MemoryNetwork.reactor} is a L{Clock} that also provides C{listenUDP} (and
C{resolve}), so L{DTLSPort} and the DTLS client run unchanged on it. Datagrams
written by any port are queued; L{MemoryNetwork.flush} delivers them (and
whatever they cause) until the network is quiet, at the current time.
Timers run only when the test advances the clock (L{MemoryNetwork.advance}).

Every datagram put on the wire is recorded in L{MemoryNetwork.sent}; a
test may drop datagrams with L{MemoryNetwork.dropIf}, and inject datagrams
from any address with L{MemoryNetwork.inject}.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Callable, Optional

from zope.interface import implementer

from twisted.internet import defer, error
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IReactorUDP, IUDPTransport
from twisted.internet.task import Clock


@dataclass(frozen=True)
class Datagram:
    source: tuple[str, int]
    destination: tuple[str, int]
    data: bytes


def _address(host: str, port: int):
    return IPv6Address("UDP", host, port) if ":" in host else IPv4Address("UDP", host, port)


@implementer(IUDPTransport)
class MemoryUDPPort:
    """
    A bound UDP socket on a L{MemoryNetwork}.
    """

    def __init__(self, network: "MemoryNetwork", protocol, host: str, port: int, maxPacketSize: int):
        self._network = network
        self.protocol = protocol
        self.host = host
        self.port = port
        self.maxPacketSize = maxPacketSize
        self.connectedTo: Optional[tuple[str, int]] = None
        self.listening = True
        self._broadcast = False

    @property
    def sourceAddress(self) -> tuple[str, int]:
        if self.host in ("", "0.0.0.0"):
            return ("127.0.0.1", self.port)
        if self.host == "::":
            return ("::1", self.port)
        return (self.host, self.port)

    def write(self, datagram: bytes, addr=None) -> None:
        if not self.listening:
            raise error.NotListeningError("the port is closed")
        if addr is None:
            if self.connectedTo is None:
                raise ValueError("write() without an address on an unconnected port")
            addr = self.connectedTo
        elif self.connectedTo is not None and tuple(addr) != self.connectedTo:
            raise ValueError("a connected port writes only to its peer")
        self._network._send(self, (addr[0], addr[1]), bytes(datagram))

    def connect(self, host: str, port: int) -> None:
        if self.connectedTo is not None:
            raise RuntimeError("already connected")
        self.connectedTo = (host, port)

    def getHost(self):
        # A connected socket reports the address the kernel chose for it.
        host, port = self.sourceAddress if self.connectedTo else (self.host or "0.0.0.0", self.port)
        return _address(host, port)

    def stopListening(self):
        if self.listening:
            self.listening = False
            self._network._unbind(self)
            self.protocol.doStop()
        return defer.succeed(None)

    loseConnection = stopListening

    def setBroadcastAllowed(self, enabled: bool) -> None:
        self._broadcast = enabled

    def getBroadcastAllowed(self) -> bool:
        return self._broadcast


@implementer(IReactorUDP)
class MemoryReactor(Clock):
    """
    A L{Clock} whose C{listenUDP} binds on a L{MemoryNetwork}.
    """

    def __init__(self, network: "MemoryNetwork"):
        super().__init__()
        self.network = network

    def listenUDP(self, port: int, protocol, interface: str = "", maxPacketSize: int = 8192):
        return self.network.bind(port, protocol, interface, maxPacketSize)

    def resolve(self, name: str, timeout=None):
        if name == "localhost":
            return defer.succeed("127.0.0.1")
        return defer.fail(error.DNSLookupError(name))


class MemoryNetwork:
    """
    @ivar reactor: the L{MemoryReactor} (a L{Clock}) of this network.
    @ivar sent: every datagram put on the wire, in order (dropped ones too).
    @ivar dropped: the datagrams L{dropIf} removed.
    @ivar unreachable: datagrams sent to an address nobody has bound.
    @ivar dropIf: C{callable(Datagram) -> bool}; true drops the datagram.
    """

    def __init__(self) -> None:
        self.reactor = MemoryReactor(self)
        self._bound: dict[tuple[str, int], MemoryUDPPort] = {}
        self._queue: collections.deque = collections.deque()
        self._nextPort = 30000
        self.sent: list[Datagram] = []
        self.dropped: list[Datagram] = []
        self.unreachable: list[Datagram] = []
        self.dropIf: Optional[Callable[[Datagram], bool]] = None

    # -- binding ----------------------------------------------------------------

    def bind(self, port: int, protocol, interface: str = "", maxPacketSize: int = 8192) -> MemoryUDPPort:
        host = interface or "0.0.0.0"
        if port == 0:
            while any(key[1] == self._nextPort for key in self._bound):
                self._nextPort += 1
            port = self._nextPort
            self._nextPort += 1
        key = (host, port)
        if key in self._bound:
            raise error.CannotListenError(interface, port, OSError(98, "Address already in use"))
        udp = MemoryUDPPort(self, protocol, host, port, maxPacketSize)
        self._bound[key] = udp
        protocol.makeConnection(udp)
        return udp

    def _unbind(self, udp: MemoryUDPPort) -> None:
        key = (udp.host, udp.port)
        if self._bound.get(key) is udp:
            del self._bound[key]

    def _lookup(self, destination: tuple[str, int]) -> Optional[MemoryUDPPort]:
        udp = self._bound.get(destination)
        if udp is None:
            wildcard = "::" if ":" in destination[0] else "0.0.0.0"
            udp = self._bound.get((wildcard, destination[1]))
        return udp

    # -- sending and delivery ---------------------------------------------------

    def _send(self, sender: MemoryUDPPort, destination: tuple[str, int], data: bytes) -> None:
        datagram = Datagram(sender.sourceAddress, destination, data)
        self.sent.append(datagram)
        if self.dropIf is not None and self.dropIf(datagram):
            self.dropped.append(datagram)
            return
        self._queue.append((datagram, sender))

    def inject(self, source: tuple[str, int], destination: tuple[str, int], data: bytes) -> None:
        """
        Queue a datagram from any address (nobody need be bound there).
        """
        datagram = Datagram(source, destination, bytes(data))
        self.sent.append(datagram)
        self._queue.append((datagram, None))

    def crash(self, host: str, port: int) -> None:
        """
        Make the socket bound at C{(host, port)} vanish without telling its
        protocol, as when a process dies.
        """
        udp = self._bound.pop((host, port))
        udp.listening = False

    def deliverOne(self) -> bool:
        """
        Deliver the oldest queued datagram only.

        @return: False if nothing was queued.
        """
        if not self._queue:
            return False
        self._deliver(*self._queue.popleft())
        return True

    def _deliver(self, datagram: Datagram, sender) -> None:
        udp = self._lookup(datagram.destination)
        if udp is None or not udp.listening:
            self.unreachable.append(datagram)
            if sender is not None and sender.connectedTo is not None and sender.listening:
                sender.protocol.connectionRefused()
            return
        if udp.connectedTo is not None and udp.connectedTo != datagram.source:
            return
        udp.protocol.datagramReceived(datagram.data[: udp.maxPacketSize], datagram.source)

    def flush(self, limit: int = 1_000_000) -> int:
        """
        Deliver queued datagrams, and those they cause, until none is left.

        @return: how many were delivered.
        """
        delivered = 0
        while self._queue:
            if delivered >= limit:
                raise RuntimeError(f"network did not go quiet after {limit} datagrams")
            delivered += 1
            self._deliver(*self._queue.popleft())
        return delivered

    def advance(self, seconds: float) -> None:
        """
        Deliver what is queued, move the clock (firing due timers), deliver
        again.
        """
        self.flush()
        self.reactor.advance(seconds)
        self.flush()

    def run(self, seconds: float, step: float = 0.1) -> None:
        """
        Let C{seconds} of simulated time pass in steps of C{step}.
        """
        elapsed = 0.0
        self.flush()
        while elapsed < seconds - 1e-9:
            delta = min(step, seconds - elapsed)
            self.advance(delta)
            elapsed += delta

    def to(self, destination: tuple[str, int]) -> list[Datagram]:
        """
        Every datagram sent to C{destination} so far.
        """
        return [d for d in self.sent if d.destination == destination]

    def isBound(self, host: str, port: int) -> bool:
        return (host, port) in self._bound
