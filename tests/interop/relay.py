"""
A recording UDP relay between a DTLS client and a DTLS server.

Both sides talk over real loopback UDP as usual; the relay only forwards and
keeps a copy of every datagram with its direction, so a test can read the
cleartext epoch-0 handshake headers (RFC 6347 §4.1 record header, §4.2.2
handshake header) and show that a handshake was, or was not, fragmented.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from twisted.internet.protocol import DatagramProtocol

__all__ = ["UDPRelay", "HandshakeFragment", "handshake_fragments"]

#: RFC 6347 §4.1: content type, version, epoch, 48-bit sequence, length.
_RECORD_HEADER = 13
#: RFC 6347 §4.2.2: type, length, message_seq, fragment_offset, fragment_length.
_HANDSHAKE_HEADER = 12
_HANDSHAKE = 22

TO_SERVER = "to-server"
TO_CLIENT = "to-client"


@dataclass(frozen=True)
class HandshakeFragment:
    msg_type: int
    length: int
    message_seq: int
    fragment_offset: int
    fragment_length: int

    @property
    def partial(self) -> bool:
        """Whether this record carries only part of its message."""
        return self.fragment_length < self.length


def handshake_fragments(datagram: bytes) -> list[HandshakeFragment]:
    """
    The epoch-0 handshake fragments in one datagram (later epochs are
    encrypted and skipped).

    @raise ValueError: a record overruns the datagram.
    """
    out: list[HandshakeFragment] = []
    offset = 0
    while offset < len(datagram):
        if len(datagram) - offset < _RECORD_HEADER:
            raise ValueError(f"truncated record header at {offset}")
        content_type, _version, epoch = struct.unpack_from("!BHH", datagram, offset)
        (length,) = struct.unpack_from("!H", datagram, offset + 11)
        body = datagram[offset + _RECORD_HEADER: offset + _RECORD_HEADER + length]
        if len(body) != length:
            raise ValueError(f"record at {offset} overruns the datagram")
        offset += _RECORD_HEADER + length
        if content_type != _HANDSHAKE or epoch != 0 or len(body) < _HANDSHAKE_HEADER:
            continue
        out.append(
            HandshakeFragment(
                msg_type=body[0],
                length=int.from_bytes(body[1:4], "big"),
                message_seq=int.from_bytes(body[4:6], "big"),
                fragment_offset=int.from_bytes(body[6:9], "big"),
                fragment_length=int.from_bytes(body[9:12], "big"),
            )
        )
    return out


class _Side(DatagramProtocol):
    def __init__(self, relay: "UDPRelay", side: str) -> None:
        self._relay = relay
        self._side = side

    def datagramReceived(self, datagram: bytes, addr) -> None:
        self._relay._received(self._side, datagram, addr)


class UDPRelay:
    """
    Listens on C{host} (the I{front}, where the client sends) and forwards
    to C{host:target_port} from a second socket (the I{back}); replies go
    to the first client address seen. Datagrams from anyone else are
    dropped.

    Create it inside L{tests.peers.netns.NetworkNamespace.entered} to relay
    inside a peer's namespace: both sockets are made in the constructor.

    @ivar port: the front port the client must send to.
    @ivar datagrams: C{(direction, bytes)} in arrival order, direction
        L{TO_SERVER} or L{TO_CLIENT}.
    """

    def __init__(self, reactor, host: str, target_port: int) -> None:
        self.host = host
        self.target = (host, target_port)
        self.datagrams: list[tuple[str, bytes]] = []
        self._client = None
        self._front = reactor.listenUDP(0, _Side(self, "front"), interface=host)
        self._back = reactor.listenUDP(0, _Side(self, "back"), interface=host)
        self.port = self._front.getHost().port

    def _received(self, side: str, datagram: bytes, addr) -> None:
        addr = (addr[0], addr[1])
        if side == "front":
            if self._client is None:
                self._client = addr
            if addr != self._client:
                return
            self.datagrams.append((TO_SERVER, datagram))
            self._back.write(datagram, self.target)
        else:
            if addr != self.target or self._client is None:
                return
            self.datagrams.append((TO_CLIENT, datagram))
            self._front.write(datagram, self._client)

    def sizes(self, direction: str) -> list[int]:
        """Sizes of the datagrams sent in C{direction}."""
        return [len(d) for way, d in self.datagrams if way == direction]

    def fragments(self, direction: str) -> list[HandshakeFragment]:
        """Every epoch-0 handshake fragment sent in C{direction}."""
        return [f for way, d in self.datagrams if way == direction for f in handshake_fragments(d)]

    def stop(self):
        """Close both sockets; a Deferred that fires when they are closed."""
        from twisted.internet import defer

        return defer.gatherResults(
            [defer.maybeDeferred(p.stopListening) for p in (self._front, self._back)]
        )
