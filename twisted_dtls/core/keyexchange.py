"""
Ephemeral (EC)DH key shares for the ECDHE suites: x25519, secp256r1 and
secp384r1 (RFC 8422 §5.4, §5.7, §5.10, §5.11).

Keys come from C{cryptography}'s generators, which read the operating
system's random source. That is the one place the engine uses randomness
the caller cannot replace (L{DTLSConfiguration.random} covers the hello
randoms and everything else); a test that needs fixed keys passes
C{private_key} to L{KeyShare}.
"""

from __future__ import annotations

from typing import Union

from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .constants import NamedGroup
from .errors import IllegalParameter

PrivateKey = Union[x25519.X25519PrivateKey, ec.EllipticCurvePrivateKey]

_CURVES: dict[NamedGroup, type[ec.EllipticCurve]] = {
    NamedGroup.secp256r1: ec.SECP256R1,
    NamedGroup.secp384r1: ec.SECP384R1,
}

#: The groups L{KeyShare} implements, in our order of preference.
SUPPORTED_GROUPS: tuple[NamedGroup, ...] = (NamedGroup.x25519, NamedGroup.secp256r1, NamedGroup.secp384r1)

#: code point -> member, for a check and a conversion in one lookup (a
#: group may come from the peer as a plain int).
_MEMBERS = {group: group for group in SUPPORTED_GROUPS}
_X25519 = NamedGroup.x25519
#: Curve and ECDH objects are immutable: built once, not per exchange.
_CURVE_OBJECTS = {group: curve() for group, curve in _CURVES.items()}
_ECDH = ec.ECDH()

# Length of an uncompressed point (0x04 || X || Y) per curve, RFC 8422 §5.4.1.
_POINT_LENGTHS = {NamedGroup.secp256r1: 65, NamedGroup.secp384r1: 97}
_X25519_LENGTH = 32


class KeyShare:
    """
    One ephemeral key of a named group; use it for one handshake only.

    @ivar group: the L{NamedGroup}.
    @ivar public_bytes: our public value as sent in ServerKeyExchange /
        ClientKeyExchange: 32 raw bytes for x25519 (RFC 8422 §5.11), the
        uncompressed X9.62 point for the NIST curves (RFC 8422 §5.4.1).
    """

    __slots__ = ("group", "public_bytes", "_private_key")

    def __init__(self, group: int, private_key: PrivateKey | None = None):
        """
        @param group: a L{NamedGroup} code point; it may come from the peer.
        @param private_key: a fixed key for tests; generated when C{None}.
        @raise IllegalParameter: if C{group} is not one we implement (a peer
            naming a group we never offered).
        @raise ValueError: if C{private_key} does not belong to C{group}.
        """
        member = _MEMBERS.get(group)
        if member is None:
            raise IllegalParameter(f"unsupported group {group}")
        self.group = member
        if member is _X25519:
            if private_key is None:
                private_key = x25519.X25519PrivateKey.generate()
            elif not isinstance(private_key, x25519.X25519PrivateKey):
                raise ValueError("x25519 needs an X25519PrivateKey")
            self.public_bytes = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        else:
            curve = _CURVES[member]
            if private_key is None:
                private_key = ec.generate_private_key(_CURVE_OBJECTS[member])
            elif not (isinstance(private_key, ec.EllipticCurvePrivateKey) and isinstance(private_key.curve, curve)):
                raise ValueError(f"{self.group.name} needs a key on that curve")
            self.public_bytes = private_key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        self._private_key = private_key

    def __repr__(self) -> str:
        return f"KeyShare({self.group.name})"

    def exchange(self, peer_public: bytes) -> bytes:
        """
        Compute the shared secret with the peer's public value; it is the
        premaster secret of ECDHE suites (RFC 8422 §5.10) or the
        other_secret of ECDHE_PSK (RFC 5489 §2).

        @raise IllegalParameter: if C{peer_public} is not a valid public
            value of our group: wrong length, a compressed or infinity point,
            a point off the curve, or an x25519 value giving the all-zero
            secret (RFC 8422 §5.11, RFC 7748 §6.1).
        """
        if self.group is _X25519:
            return self._exchange_x25519(peer_public)
        return self._exchange_ecdh(peer_public)

    def _exchange_x25519(self, peer_public: bytes) -> bytes:
        if len(peer_public) != _X25519_LENGTH:
            raise IllegalParameter(f"x25519 public value of {len(peer_public)} bytes")
        try:
            peer = x25519.X25519PublicKey.from_public_bytes(bytes(peer_public))
            shared = self._private_key.exchange(peer)  # type: ignore[arg-type]
        except ValueError as e:
            # OpenSSL refuses low-order points whose result is all zero.
            raise IllegalParameter(f"invalid x25519 public value: {e}") from None
        if not any(shared):
            raise IllegalParameter("x25519 shared secret is all zero")
        return shared

    def _exchange_ecdh(self, peer_public: bytes) -> bytes:
        # RFC 8422 §5.1.2: only the uncompressed format is allowed, so a
        # compressed point or the 1-byte point at infinity is refused here
        # rather than being decoded by from_encoded_point.
        if len(peer_public) != _POINT_LENGTHS[self.group] or peer_public[0] != 0x04:
            raise IllegalParameter(f"{self.group.name} point is not an uncompressed point of the right length")
        try:
            peer = ec.EllipticCurvePublicKey.from_encoded_point(_CURVE_OBJECTS[self.group], bytes(peer_public))
            return self._private_key.exchange(_ECDH, peer)  # type: ignore[call-arg, arg-type]
        except ValueError as e:
            raise IllegalParameter(f"invalid {self.group.name} point: {e}") from None
