"""
What a connection is configured with: credentials, algorithms, limits.
"""

from __future__ import annotations

import enum
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional, Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from .constants import CipherSuite, NamedGroup, SignatureScheme
from .errors import ConfigurationError
from .suites import CIPHER_SUITES, DEFAULT_CIPHER_SUITES


class ClientAuthentication(enum.Enum):
    """
    Whether a server asks its clients for certificates.
    """

    NONE = "none"
    OPTIONAL = "optional"
    REQUIRED = "required"


DEFAULT_GROUPS: tuple[NamedGroup, ...] = (NamedGroup.x25519, NamedGroup.secp256r1, NamedGroup.secp384r1)

DEFAULT_SIGNATURE_SCHEMES: tuple[SignatureScheme, ...] = (
    SignatureScheme.ecdsa_secp256r1_sha256,
    SignatureScheme.ecdsa_secp384r1_sha384,
    SignatureScheme.ed25519,
    SignatureScheme.rsa_pss_rsae_sha256,
    SignatureScheme.rsa_pss_rsae_sha384,
    SignatureScheme.rsa_pss_rsae_sha512,
    SignatureScheme.rsa_pkcs1_sha256,
    SignatureScheme.rsa_pkcs1_sha384,
    SignatureScheme.rsa_pkcs1_sha512,
    SignatureScheme.ecdsa_secp521r1_sha512,
)


@dataclass
class DTLSConfiguration:
    """
    Settings shared by every connection of an endpoint.

    @ivar certificate_chain: our certificate chain, leaf first.
    @ivar private_key: the key of the leaf certificate.
    @ivar trust_roots: CA certificates that a peer's chain must lead to.
    @ivar pinned_sha256: SHA-256 fingerprints of peer leaf certificates that
        are accepted without a chain (for self-signed peers).
    @ivar verify_peer: client only; C{False} accepts any server certificate
        (for tests and diagnostics only).
    @ivar server_name: client only; the name sent in SNI and checked against
        the server's certificate.
    @ivar client_authentication: server only; whether to request a client
        certificate.
    @ivar max_datagram_size: largest UDP payload we send (handshake
        fragmentation and record size follow from it).
    @ivar initial_timeout: first retransmission timeout (RFC 6347 §4.2.4.1).
    @ivar max_timeout: ceiling of the doubling retransmission timeout.
    @ivar max_retransmissions: retransmissions of one flight before the
        handshake fails.
    @ivar random: source of random bytes (replaceable for deterministic
        tests).
    @ivar psk_identity: client only; the PSK identity (RFC 4279 §2).
    @ivar psk: client only; the pre-shared key for C{psk_identity}.
    @ivar psk_lookup: server only; C{identity -> key or None}, so keys can
        live anywhere (a dict's C{get}, a database query).
    @ivar psk_identity_hint: server only; sent in ServerKeyExchange when set.
    @ivar alpn_protocols: ALPN protocols (RFC 7301), in preference order;
        a client offers them, a server picks the first of its own that the
        client offered.
    @ivar srtp_profiles: C{use_srtp} protection profiles (RFC 5764), in
        preference order.
    @ivar sni_credentials: server only; host name -> (chain, key), chosen by
        the client's server_name; the main certificate is the default.
    @ivar record_size_limit: the largest record plaintext we are willing to
        receive, advertised with RFC 8449's extension.
    @ivar keylog: called with one NSS key-log line per session
        (C{CLIENT_RANDOM <client random> <master secret>}, hex).

    Change a setting by assigning it: what connections work out from the
    settings once and keep (that they are valid, a server's choices for
    an offer it has seen before) is forgotten at every assignment, but a
    list or dict changed in place goes unnoticed. C{sni_credentials} is
    the exception: it is looked up for every handshake, so entries may be
    added or replaced while the server runs.
    """

    certificate_chain: Sequence[x509.Certificate] = ()
    private_key: Optional[CertificateIssuerPrivateKeyTypes] = None
    trust_roots: Sequence[x509.Certificate] = ()
    pinned_sha256: frozenset[bytes] = frozenset()
    verify_peer: bool = True
    server_name: Optional[str] = None
    client_authentication: ClientAuthentication = ClientAuthentication.NONE

    psk_identity: Optional[bytes] = None
    psk: Optional[bytes] = field(default=None, repr=False)
    psk_lookup: Optional[Callable[[bytes], Optional[bytes]]] = field(default=None, repr=False)
    psk_identity_hint: Optional[bytes] = None

    alpn_protocols: tuple[str, ...] = ()
    srtp_profiles: tuple[int, ...] = ()
    sni_credentials: Mapping[str, tuple[Sequence[x509.Certificate], CertificateIssuerPrivateKeyTypes]] = field(
        default_factory=dict, repr=False
    )
    record_size_limit: Optional[int] = None
    #: client: offer RFC 5077 session tickets.
    session_tickets: bool = True
    #: server: a L{SessionCache} for session-id resumption (shared by the
    #: connections of a port), or C{None}.
    session_cache: Optional[object] = field(default=None, repr=False)
    #: server: L{TicketKeys} for RFC 5077 tickets, or C{None}.
    ticket_keys: Optional[object] = field(default=None, repr=False)
    keylog: Optional[Callable[[str], None]] = field(default=None, repr=False)

    cipher_suites: tuple[CipherSuite, ...] = DEFAULT_CIPHER_SUITES
    groups: tuple[NamedGroup, ...] = DEFAULT_GROUPS
    signature_schemes: tuple[SignatureScheme, ...] = DEFAULT_SIGNATURE_SCHEMES
    require_extended_master_secret: bool = True

    max_datagram_size: int = 1200
    initial_timeout: float = 1.0
    max_timeout: float = 60.0
    max_retransmissions: int = 6

    #: Largest handshake message we accept (declared length); larger is
    #: refused before anything is allocated.
    max_handshake_message_size: int = 64 * 1024
    #: Bytes held for all messages under reassembly at once.
    max_reassembly_bytes: int = 128 * 1024
    #: How far ahead of the next expected message_seq we buffer.
    max_future_messages: int = 8
    #: Records of the next epoch held until its keys exist.
    max_pending_records: int = 16
    #: Records failing authentication on an established connection before
    #: it is closed (RFC 6347 §4.1.2.7 leaves the number to us; a forger
    #: gets this many tries at our keys).
    max_auth_failures: int = 1024
    #: Path MTU fallback (as mbedTLS and Californium do): after this many
    #: retransmissions of a flight without an answer, send smaller
    #: datagrams, halving down to C{min_datagram_size}. 0 turns it off.
    pmtu_fallback_after: int = 2
    min_datagram_size: int = 256

    random: Callable[[int], bytes] = field(default=os.urandom, repr=False)
    #: Wall-clock time (seconds since the epoch) for certificate validity;
    #: replaceable so that tests can run on a fixed date.
    wall_clock: Callable[[], float] = field(default=time.time, repr=False)

    def __setattr__(self, name: str, value) -> None:
        # Any change of a setting forgets what was worked out from the old
        # settings: which roles were validated, the remembered results.
        self.__dict__.pop("_validated_roles", None)
        self.__dict__.pop("_remembered", None)
        object.__setattr__(self, name, value)

    def remembered(self) -> dict:
        """
        A dict in which connections keep results worked out from these
        settings alone, emptied whenever a setting is assigned. Whoever
        stores in it bounds what it stores.
        """
        remembered = self.__dict__.get("_remembered")
        if remembered is None:
            remembered = self.__dict__["_remembered"] = {}
        return remembered

    def validate(self, is_client: bool) -> None:
        """
        @raise ConfigurationError: if the settings cannot work for this role.

        A success is remembered per role until a setting is assigned again
        (every new connection validates its configuration; the answer only
        changes with it). Sequences changed in place are not noticed.
        """
        validated = self.__dict__.get("_validated_roles")
        if validated is not None and is_client in validated:
            return
        self._validate(is_client)
        self.__dict__["_validated_roles"] = (validated or frozenset()) | {is_client}

    def _validate(self, is_client: bool) -> None:
        if not self.cipher_suites:
            raise ConfigurationError("no cipher suites configured")
        for suite in self.cipher_suites:
            if suite not in CIPHER_SUITES:
                raise ConfigurationError(f"unsupported cipher suite {suite!r}")
        if not self.groups:
            raise ConfigurationError("no groups configured")
        if self.min_datagram_size < 256 or self.min_datagram_size > self.max_datagram_size:
            raise ConfigurationError("min_datagram_size must be within 256..max_datagram_size")
        if self.max_datagram_size < 256:
            raise ConfigurationError(f"max_datagram_size {self.max_datagram_size} is below the floor of 256")
        infos = [CIPHER_SUITES[s] for s in self.cipher_suites]
        if is_client:
            if any(i.key_exchange.uses_psk for i in infos) and (self.psk_identity is None or not self.psk):
                raise ConfigurationError("PSK cipher suites need psk_identity and psk")
        else:
            has_cert = bool(self.certificate_chain) and self.private_key is not None
            usable = [
                i
                for i in infos
                if (i.key_exchange.uses_certificates and has_cert) or (i.key_exchange.uses_psk and self.psk_lookup)
            ]
            if not usable:
                raise ConfigurationError(
                    "a server needs certificate_chain and private_key for certificate suites, "
                    "or psk_lookup for PSK suites"
                )
        if self.record_size_limit is not None and not 64 <= self.record_size_limit <= 2**14:
            raise ConfigurationError("record_size_limit must be within 64..16384 (RFC 8449 §4)")
        for name in self.alpn_protocols:
            if not 0 < len(name.encode()) < 256:
                raise ConfigurationError(f"ALPN protocol name {name!r} must be 1..255 bytes")
        if bool(self.certificate_chain) != (self.private_key is not None):
            raise ConfigurationError("certificate_chain and private_key go together")
