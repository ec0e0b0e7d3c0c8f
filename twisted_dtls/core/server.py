"""
The server handshake state machine (RFC 6347 §4.2, RFC 5246 §7.3).

The cookie exchange happens before this object exists (C{listener.py}): the
first message it sees is the ClientHello whose cookie verified, and its
own C{message_seq} continues from that ClientHello's (RFC 6347 §4.2.2).

Full handshake, server side::

                           <--  ClientHello (with a valid cookie)
    ServerHello, Certificate, ServerKeyExchange,
    [CertificateRequest], ServerHelloDone -->
                           <--  [Certificate], ClientKeyExchange,
                                [CertificateVerify], ChangeCipherSpec, Finished
    ChangeCipherSpec, Finished -->
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from . import certificates, extensions as ext, prf, signatures
from .configuration import ClientAuthentication
from .constants import (
    DTLS_1_2,
    AlertDescription,
    CipherSuite,
    ClientCertificateType,
    ExtensionType,
    HandshakeType,
    NamedGroup,
)
from .errors import AlertError, IllegalParameter
from .handshake import CHANGE_CIPHER_SPEC, Handshake, HandshakeState, NegotiatedParameters, decode, encode
from .keyexchange import KeyShare
from .messages import (
    Certificate,
    CertificateRequest,
    ClientHello,
    NewSessionTicket,
    ServerECDHParams,
    ServerKeyExchangeECDHEPSK,
    ServerKeyExchangePSK,
    ecdhe_params_bytes,
    client_hello_offer_at,
    encode_server_hello_tail,
    encode_server_key_exchange_ecdhe,
    parse_client_hello,
    pull_certificate,
    pull_certificate_verify,
    pull_client_key_exchange_ecdhe,
    pull_client_key_exchange_ecdhe_psk,
    pull_client_key_exchange_psk,
    push_certificate,
    push_certificate_request,
    push_new_session_ticket,
    push_server_key_exchange_ecdhe_psk,
    push_server_key_exchange_psk,
)
from .sessions import Session
from .suites import CIPHER_SUITES, KeyExchange

#: Entries kept by the certificate body cache below, and offers remembered
#: per configuration (L{_ServerChoice}), before each starts over.
_CACHE_SIZE = 64
#: id of each certificate of a chain -> (the chain, the Certificate body).
#: Holding the chain keeps the ids from being reused by other objects.
_certificate_bodies: dict[tuple, tuple] = {}


def _certificate_body(chain) -> bytes:
    """
    The Certificate message body (RFC 5246 §7.4.2) for C{chain}: the same
    for every handshake that uses this chain, so encoded once.
    """
    key = tuple(map(id, chain))
    hit = _certificate_bodies.get(key)
    if hit is not None:
        return hit[1]
    body = encode(push_certificate, Certificate([c.public_bytes(Encoding.DER) for c in chain]))
    if len(_certificate_bodies) >= _CACHE_SIZE:
        _certificate_bodies.clear()
    _certificate_bodies[key] = (tuple(chain), body)
    return body


#: Offers longer than this are not remembered (see L{_ServerChoice}):
#: with C{_CACHE_SIZE} entries at most, what a flood of odd offers can make
#: a configuration hold stays small.
_MAX_OFFER_KEPT = 2048
#: The key under which a configuration remembers its server's choices.
_SERVER_CHOICES = "server choices"


@dataclass(frozen=True, slots=True)
class _ServerChoice:
    """
    What a full negotiation decided for one ClientHello offer (its cipher
    suites, compression methods and extensions, as bytes) with one
    configuration: remembered with the configuration (until a setting is
    assigned) and used again when the same offer comes, the checks it
    passed included.

    @ivar credential: the C{sni_credentials} entry picked by the server
        name, C{None} for the default certificate.
    @ivar server_hello_tail: the ServerHello body after its session_id.
    @ivar send_ticket: a NewSessionTicket is promised (RFC 5077 §3.2: the
        client sent an empty session_ticket extension and tickets are on;
        turning them on or off is an assignment, which forgets every
        choice).
    @ivar repeatable: whether the choice may answer the same offer again:
        not when the offer resumed a session or carried a ticket, which
        are looked up every time (a ticket refused now may open later,
        once the keys that sealed it are loaded).
    """

    suite: int
    group: int | None
    scheme: int | None
    server_name: str | None
    credential: tuple | None
    alpn_protocol: str | None
    srtp_profile: int | None
    peer_record_size_limit: int | None
    extended_master_secret: bool
    send_ticket: bool
    repeatable: bool
    server_hello_tail: bytes


def _remembered_choices(config) -> dict:
    """
    The configuration's remembered server choices, by offer bytes.
    """
    remembered = config.remembered()
    choices = remembered.get(_SERVER_CHOICES)
    if choices is None:
        choices = remembered[_SERVER_CHOICES] = {}
    return choices


_MH = HandshakeType

# Code points as plain ints: every ClientHello is looked through with them,
# and an IntEnum class attribute costs several times a global name.
_EXT_SERVER_NAME = int(ExtensionType.server_name)
_EXT_SUPPORTED_GROUPS = int(ExtensionType.supported_groups)
_EXT_EC_POINT_FORMATS = int(ExtensionType.ec_point_formats)
_EXT_SIGNATURE_ALGORITHMS = int(ExtensionType.signature_algorithms)
_EXT_USE_SRTP = int(ExtensionType.use_srtp)
_EXT_ALPN = int(ExtensionType.application_layer_protocol_negotiation)
_EXT_EXTENDED_MASTER_SECRET = int(ExtensionType.extended_master_secret)
_EXT_RECORD_SIZE_LIMIT = int(ExtensionType.record_size_limit)
_EXT_SESSION_TICKET = int(ExtensionType.session_ticket)
_EXT_RENEGOTIATION_INFO = int(ExtensionType.renegotiation_info)
_SCSV = int(CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV)
_SERVER_VERSION = DTLS_1_2.to_bytes(2, "big")
_SERVER_HELLO = int(_MH.server_hello)
_CERTIFICATE = int(_MH.certificate)
_SERVER_KEY_EXCHANGE = int(_MH.server_key_exchange)
_SERVER_HELLO_DONE = int(_MH.server_hello_done)
_FINISHED = int(_MH.finished)

#: Reply extensions whose bodies never vary: an empty renegotiation_info
#: on an initial handshake (RFC 5746 §3.6), the uncompressed point format
#: only (RFC 8422 §5.2), and the empty extended_master_secret (RFC 7627 §5.1).
_RENEGOTIATION_INFO_REPLY = (_EXT_RENEGOTIATION_INFO, ext.encode_renegotiation_info(b""))
_EC_POINT_FORMATS_REPLY = (_EXT_EC_POINT_FORMATS, ext.encode_ec_point_formats([0]))
_EXTENDED_MASTER_SECRET_REPLY = (_EXT_EXTENDED_MASTER_SECRET, ext.encode_extended_master_secret())
#: RFC 8422 §4: a client without supported_groups is taken to support
#: what the server would pick; secp256r1 is the universal choice.
_DEFAULT_CLIENT_GROUPS = (int(NamedGroup.secp256r1),)
#: The body of ServerHelloDone (RFC 5246 §7.4.5).
_EMPTY = b""
_CERTIFICATE_KEY_EXCHANGES = frozenset(k for k in KeyExchange if k.uses_certificates)


class ServerState(HandshakeState):
    WAIT_CLIENT_HELLO = "wait_client_hello"
    WAIT_CERTIFICATE = "wait_certificate"
    WAIT_CLIENT_KEY_EXCHANGE = "wait_client_key_exchange"
    WAIT_CERTIFICATE_VERIFY = "wait_certificate_verify"
    WAIT_CHANGE_CIPHER_SPEC = "wait_change_cipher_spec"
    WAIT_FINISHED = "wait_finished"
    ESTABLISHED = "established"


class ServerHandshake(Handshake):
    TRANSITIONS = {
        ServerState.WAIT_CLIENT_HELLO: {_MH.client_hello: "on_client_hello"},
        ServerState.WAIT_CERTIFICATE: {_MH.certificate: "on_certificate"},
        ServerState.WAIT_CLIENT_KEY_EXCHANGE: {_MH.client_key_exchange: "on_client_key_exchange"},
        ServerState.WAIT_CERTIFICATE_VERIFY: {_MH.certificate_verify: "on_certificate_verify"},
        ServerState.WAIT_CHANGE_CIPHER_SPEC: {CHANGE_CIPHER_SPEC: "on_change_cipher_spec"},
        ServerState.WAIT_FINISHED: {_MH.finished: "on_finished"},
        ServerState.ESTABLISHED: {},
    }

    def __init__(self, configuration, host, wall_clock):
        super().__init__(configuration, host, wall_clock)
        self.state = ServerState.WAIT_CLIENT_HELLO
        self.key_share: KeyShare | None = None
        self.requested_certificate = False
        self.server_name: str | None = None
        #: the scheme our ServerKeyExchange is signed with
        self.scheme: int | None = None
        self.chain = configuration.certificate_chain
        self.private_key = configuration.private_key
        self.alpn_protocol: str | None = None
        self.srtp_profile: int | None = None
        self.psk_identity: bytes | None = None
        self.resumed = False
        self.session_id = b""
        self.send_ticket = False

    # -- flight 3 -> flight 4 -----------------------------------------------------

    def on_client_hello(self, body: bytes, raw: bytes) -> None:
        body = bytes(body)
        # Our messages continue from the cookie-bearing ClientHello's
        # message_seq (RFC 6347 §4.2.2): the HelloVerifyRequest that came
        # before it used the one below.
        self.next_send_seq = int.from_bytes(raw[4:6], "big")
        config = self.config
        # Clients of one kind make the same offer every time: what a full
        # negotiation chose for an offer (and found valid in it) is kept
        # with the configuration and reused for the same offer bytes.
        offer_at = client_hello_offer_at(body)
        offer = body[offer_at:] if offer_at is not None else None
        choices = _remembered_choices(config)
        choice = choices.get(offer) if offer is not None else None
        if choice is not None and self._reusable(choice, body[35 : 35 + body[34]]):
            _check_client_version((body[0] << 8) | body[1])
            client_random = body[2:34]
            session = None
        else:
            hello = parse_client_hello(body)
            _check_client_version(hello.client_version)
            client_random = hello.random
            choice, session = self._negotiate(hello)
            if choice.repeatable and offer is not None and len(offer) <= _MAX_OFFER_KEPT:
                if len(choices) >= _CACHE_SIZE:
                    choices.clear()
                choices[offer] = choice
        self.server_name = choice.server_name
        if choice.credential is not None:
            self.chain, self.private_key = choice.credential
        self.scheme = choice.scheme
        self.alpn_protocol = choice.alpn_protocol
        self.srtp_profile = choice.srtp_profile
        self.peer_record_size_limit = choice.peer_record_size_limit
        self.send_ticket = choice.send_ticket
        secrets = self.secrets
        secrets.client_random = client_random
        secrets.server_random = config.random(32)
        secrets.suite = info = CIPHER_SUITES[choice.suite]
        secrets.extended_master_secret = choice.extended_master_secret
        if session is not None:
            # RFC 5246 §7.4.1.3 / RFC 5077 §3.4: echo the client's session id.
            self.session_id = hello.session_id
        elif config.session_cache is not None:
            self.session_id = config.random(32)
        session_id = self.session_id
        server_hello = (
            _SERVER_VERSION + secrets.server_random + bytes((len(session_id),)) + session_id + choice.server_hello_tail
        )
        items = [self.message(_SERVER_HELLO, server_hello, epoch=0)]
        if session is not None:
            self._send_abbreviated(session, items)
            return

        kx = info.key_exchange
        uses_certificates = kx in _CERTIFICATE_KEY_EXCHANGES
        if kx is not KeyExchange.PSK:  # every other key exchange is ECDHE
            self.key_share = KeyShare(choice.group)
            params = ServerECDHParams(choice.group, self.key_share.public_bytes)
        if uses_certificates:
            items.append(self.message(_CERTIFICATE, _certificate_body(self.chain), epoch=0))
            scheme = self.scheme
            # RFC 8422 §5.4: the signature covers both randoms and the
            # params exactly as sent.
            params_bytes = ecdhe_params_bytes(params)
            signature = signatures.sign(
                self.private_key, scheme, secrets.client_random + secrets.server_random + params_bytes
            )
            ske = encode_server_key_exchange_ecdhe(params_bytes, scheme, signature)
            items.append(self.message(_SERVER_KEY_EXCHANGE, ske, epoch=0))
        elif kx is KeyExchange.ECDHE_PSK:
            hint = config.psk_identity_hint or b""
            ske = encode(push_server_key_exchange_ecdhe_psk, ServerKeyExchangeECDHEPSK(hint, params))
            items.append(self.message(_SERVER_KEY_EXCHANGE, ske, epoch=0))
        elif config.psk_identity_hint is not None:
            # RFC 4279 §2: plain PSK sends ServerKeyExchange only for a hint.
            ske = encode(push_server_key_exchange_psk, ServerKeyExchangePSK(config.psk_identity_hint))
            items.append(self.message(_SERVER_KEY_EXCHANGE, ske, epoch=0))

        if uses_certificates and config.client_authentication is not ClientAuthentication.NONE:
            self.requested_certificate = True
            request = CertificateRequest(
                [ClientCertificateType.ecdsa_sign, ClientCertificateType.rsa_sign],
                list(config.signature_schemes),
                [root.subject.public_bytes() for root in config.trust_roots],
            )
            items.append(self.message(_MH.certificate_request, encode(push_certificate_request, request), epoch=0))
        items.append(self.message(_SERVER_HELLO_DONE, _EMPTY, epoch=0))
        self.state = ServerState.WAIT_CERTIFICATE if self.requested_certificate else ServerState.WAIT_CLIENT_KEY_EXCHANGE
        self.host.send_flight(items, final=False)

    def _reusable(self, choice: _ServerChoice, session_id: bytes) -> bool:
        """
        Whether a remembered choice holds for this ClientHello too: not if
        the client may be resuming by session id (looked up every time; an
        offer with a ticket is never remembered, see
        L{_ServerChoice.repeatable}), nor if the certificate for the name
        it asks for has changed since (L{DTLSConfiguration.sni_credentials}
        may change in place).
        """
        config = self.config
        if session_id and config.session_cache is not None:
            return False
        name = choice.server_name
        return name is None or _lookup_name(config.sni_credentials, name) is choice.credential

    def _negotiate(self, hello: ClientHello) -> tuple[_ServerChoice, Session | None]:
        """
        Everything this ClientHello's offer decides with our settings, and
        the session it resumes, if any (its suite is then the session's).

        @raise AlertError: the offer is invalid or has nothing in common
            with ours.
        """
        if 0 not in hello.compression_methods:
            raise IllegalParameter("ClientHello without the null compression method")
        config = self.config
        # The parser refuses a type that appears twice (RFC 5246 §7.4.1.4),
        # so a dict loses nothing.
        exts = dict(hello.extensions)
        ems = exts.get(_EXT_EXTENDED_MASTER_SECRET)
        if ems is not None:
            ext.decode_extended_master_secret(ems)
        elif config.require_extended_master_secret:
            raise AlertError("client does not offer extended_master_secret (RFC 7627)", AlertDescription.handshake_failure)
        reneg = exts.get(_EXT_RENEGOTIATION_INFO)
        secure_renegotiation = _SCSV in hello.cipher_suites
        if reneg is not None:
            if ext.decode_renegotiation_info(reneg) != b"":
                raise AlertError("non-empty renegotiation_info on an initial handshake", AlertDescription.handshake_failure)
            secure_renegotiation = True

        groups_data = exts.get(_EXT_SUPPORTED_GROUPS)
        client_groups = ext.decode_supported_groups(groups_data) if groups_data is not None else _DEFAULT_CLIENT_GROUPS
        group = next((g for g in config.groups if g in client_groups), None)
        formats = exts.get(_EXT_EC_POINT_FORMATS)
        if formats is not None and 0 not in ext.decode_ec_point_formats(formats):
            raise IllegalParameter("client does not accept uncompressed points")
        schemes_body = exts.get(_EXT_SIGNATURE_ALGORITHMS)
        schemes = ext.decode_signature_algorithms(schemes_body) if schemes_body is not None else []
        name_data = exts.get(_EXT_SERVER_NAME)
        server_name = credential = None
        if name_data is not None:
            server_name = ext.decode_server_name(name_data)
            # RFC 6066 §3: pick the certificate by name, else the default.
            credential = _lookup_name(config.sni_credentials, server_name)
        chain, key = credential if credential is not None else (config.certificate_chain, config.private_key)

        session = self._find_session(hello, exts, ems is not None)
        scheme = None
        if session is not None:
            suite = session.cipher_suite
        else:
            suite, scheme = _choose_suite(config, hello.cipher_suites, group, chain, key, schemes)
        reply_extensions, alpn_protocol, srtp_profile, peer_limit = _negotiate_extensions(config, exts)
        ticket = exts.get(_EXT_SESSION_TICKET)
        # RFC 5077 §3.2: an empty extension promises a NewSessionTicket.
        send_ticket = session is None and ticket is not None and config.ticket_keys is not None
        if send_ticket:
            reply_extensions.append((ExtensionType.session_ticket, ext.encode_session_ticket(b"")))
        if secure_renegotiation:
            reply_extensions.append(_RENEGOTIATION_INFO_REPLY)
        if ems is not None:
            reply_extensions.append(_EXTENDED_MASTER_SECRET_REPLY)
        if formats is not None:
            reply_extensions.append(_EC_POINT_FORMATS_REPLY)
        choice = _ServerChoice(
            suite=suite,
            group=group,
            scheme=scheme,
            server_name=server_name,
            credential=credential,
            alpn_protocol=alpn_protocol,
            srtp_profile=srtp_profile,
            peer_record_size_limit=peer_limit,
            extended_master_secret=ems is not None,
            send_ticket=send_ticket,
            repeatable=session is None and not ticket,
            server_hello_tail=encode_server_hello_tail(suite, 0, reply_extensions),
        )
        return choice, session

    def _find_session(self, hello: ClientHello, exts: dict[int, bytes], client_ems: bool) -> Session | None:
        """
        A session the client offers (by ticket, RFC 5077 §3.4, or by id)
        that we can resume; C{None} means a full handshake.

        @param exts: the ClientHello's extensions by type.
        """
        config = self.config
        ticket = exts.get(_EXT_SESSION_TICKET)
        if not (ticket and config.ticket_keys is not None) and not (hello.session_id and config.session_cache is not None):
            return None  # nothing offered that we could look up
        now = self.wall_clock()
        session = None
        if ticket and config.ticket_keys is not None:
            session = config.ticket_keys.open(ext.decode_session_ticket(ticket), hello.session_id, now)
            if session is not None and not hello.session_id:
                session = None
        if session is None and hello.session_id and config.session_cache is not None:
            session = config.session_cache.get(hello.session_id, now)
        if session is None:
            return None
        if session.cipher_suite not in hello.cipher_suites or session.cipher_suite not in config.cipher_suites:
            return None
        # RFC 7627 §5.3.
        if session.extended_master_secret and not client_ems:
            raise AlertError("resumption of an extended-master-secret session without it", AlertDescription.handshake_failure)
        if not session.extended_master_secret and (client_ems or config.require_extended_master_secret):
            return None
        return session

    def _send_abbreviated(self, session: Session, items) -> None:
        """
        RFC 5246 §7.3: ServerHello, ChangeCipherSpec, Finished; the client
        answers with its ChangeCipherSpec and Finished.
        """
        self.resumed = True
        self.secrets.master_secret = session.master_secret
        self.peer_certificates = tuple(x509.load_der_x509_certificate(d) for d in session.peer_certificates)
        self.log_master_secret()
        client_write, server_write = self.protections()
        self.pending_read = client_write
        items.append(self.change_cipher_spec(epoch=0))
        self.host.install_write(1, server_write)
        self.server_verify_data = self.verify_data(b"server finished")
        # RFC 5246 §7.4.9: the Finished body is the verify_data alone.
        items.append(self.message(_FINISHED, self.server_verify_data, epoch=1))
        self.state = ServerState.WAIT_CHANGE_CIPHER_SPEC
        self.host.send_flight(items, final=False)

    # -- flight 5 ------------------------------------------------------------------

    def on_certificate(self, body: bytes, raw: bytes) -> None:
        message = decode(pull_certificate, body)
        if not message.certificates:
            if self.config.client_authentication is ClientAuthentication.REQUIRED:
                raise AlertError("a client certificate is required", AlertDescription.handshake_failure)
            self.state = ServerState.WAIT_CLIENT_KEY_EXCHANGE
            return
        try:
            chain = tuple(x509.load_der_x509_certificate(der) for der in message.certificates)
        except ValueError as e:
            raise AlertError(f"unparseable certificate: {e}", AlertDescription.bad_certificate) from None
        certificates.verify_client_chain(
            list(chain),
            self.config.trust_roots,
            datetime.datetime.fromtimestamp(self.wall_clock(), datetime.timezone.utc),
            self.config.pinned_sha256,
        )
        self.peer_certificates = chain
        self.state = ServerState.WAIT_CLIENT_KEY_EXCHANGE

    def on_client_key_exchange(self, body: bytes, raw: bytes) -> None:
        kx = self.secrets.suite.key_exchange
        if kx is KeyExchange.PSK:
            message = decode(pull_client_key_exchange_psk, body)
            pre_master = prf.psk_premaster(self._psk_for(message.identity))
        elif kx is KeyExchange.ECDHE_PSK:
            message = decode(pull_client_key_exchange_ecdhe_psk, body)
            psk = self._psk_for(message.identity)
            pre_master = prf.psk_premaster(psk, self.key_share.exchange(message.public))
        else:
            # RFC 8422 §5.7: ClientECDiffieHellmanPublic is the point alone,
            # opaque<1..2^8-1>; anything else is refused by the decoder.
            if 1 < len(body) == body[0] + 1:
                public = body[1:]
            else:
                public = decode(pull_client_key_exchange_ecdhe, body).public
            pre_master = self.key_share.exchange(public)
        self.key_share = None
        self.derive_master_secret(pre_master)
        self.state = ServerState.WAIT_CERTIFICATE_VERIFY if self.peer_certificates else ServerState.WAIT_CHANGE_CIPHER_SPEC

    def _psk_for(self, identity: bytes) -> bytes:
        """
        RFC 4279 §2: an unknown identity is refused with unknown_psk_identity.
        """
        key = self.config.psk_lookup(identity)
        if not key:
            raise AlertError(f"unknown PSK identity {identity!r}", AlertDescription.unknown_psk_identity)
        self.psk_identity = identity
        return key

    def on_certificate_verify(self, body: bytes, raw: bytes) -> None:
        message = decode(pull_certificate_verify, body)
        if message.scheme not in self.config.signature_schemes:
            raise IllegalParameter(f"client signed with scheme {message.scheme:#06x} that we did not offer")
        # The signature covers every message before this one (RFC 5246
        # §7.4.8); the transcript already holds this one, so cut it off.
        signed = bytes(self.transcript[: len(self.transcript) - len(raw)])
        signatures.verify(self.peer_certificates[0].public_key(), message.scheme, message.signature, signed)
        self.state = ServerState.WAIT_CHANGE_CIPHER_SPEC

    def on_change_cipher_spec(self) -> None:
        if not self.resumed:
            self.pending_read, self.pending_write = self.protections()
        self.state = ServerState.WAIT_FINISHED
        self.host.install_read(1, self.pending_read)
        self.pending_read = None

    # -- flight 6 ---------------------------------------------------------------------

    def on_finished(self, body: bytes, raw: bytes) -> None:
        self.client_verify_data = self.check_finished(body, raw, prf.CLIENT_FINISHED)
        self.state = ServerState.ESTABLISHED
        config = self.config
        secrets = self.secrets
        if not self.resumed:
            items = []
            # A session is only written down where it can be resumed.
            if self.send_ticket or (config.session_cache is not None and self.session_id):
                session = self._make_session()
                if config.session_cache is not None and self.session_id:
                    config.session_cache.put(session)
                if self.send_ticket:
                    ticket = config.ticket_keys.seal(session)
                    lifetime = int(config.ticket_keys.lifetime)
                    nst = encode(push_new_session_ticket, NewSessionTicket(lifetime, ticket))
                    items.append(self.message(_MH.new_session_ticket, nst, epoch=0))
            items.append(self.change_cipher_spec(epoch=0))
            self.host.install_write(1, self.pending_write)
            self.pending_write = None
            self.server_verify_data = self.verify_data(prf.SERVER_FINISHED)
            # RFC 5246 §7.4.9: the Finished body is the verify_data alone.
            items.append(self.message(_FINISHED, self.server_verify_data, epoch=1))
        self.parameters = NegotiatedParameters(
            cipher_suite=secrets.suite.suite,
            version=DTLS_1_2,
            extended_master_secret=secrets.extended_master_secret,
            peer_certificates=self.peer_certificates,
            server_name=self.server_name,
            alpn_protocol=self.alpn_protocol,
            srtp_profile=self.srtp_profile,
            psk_identity=self.psk_identity,
            resumed=self.resumed,
        )
        if not self.resumed:
            self.host.send_flight(items, final=True)
        self.host.handshake_complete(self.parameters)

    def _make_session(self) -> Session:
        return Session(
            session_id=self.session_id,
            cipher_suite=self.secrets.suite.suite,
            master_secret=self.secrets.master_secret,
            extended_master_secret=self.secrets.extended_master_secret,
            created=self.wall_clock(),
            peer_certificates=tuple(c.public_bytes(Encoding.DER) for c in self.peer_certificates),
            alpn_protocol=self.alpn_protocol,
            server_name=self.server_name,
        )


def _check_client_version(version: int) -> None:
    # DTLS versions count down: 0xFEFD (1.2) is newer than 0xFEFF (1.0).
    if version > DTLS_1_2:
        raise AlertError(f"client offers only {version:#06x}", AlertDescription.protocol_version)


def _negotiate_extensions(config, exts: dict[int, bytes]) -> tuple[list, str | None, int | None, int | None]:
    """
    ALPN (RFC 7301), use_srtp (RFC 5764) and record_size_limit (RFC 8449).

    @param exts: the ClientHello's extensions by type.
    @return: what we answer in ServerHello, the ALPN protocol, the SRTP
        profile and the client's record size limit (each C{None} if not
        negotiated).
    @raise AlertError: no_application_protocol.
    """
    reply = []
    alpn_protocol = srtp_profile = peer_limit = None
    alpn = exts.get(_EXT_ALPN)
    if alpn is not None and config.alpn_protocols:
        offered = [p.decode("latin-1") for p in ext.decode_alpn(alpn)]
        alpn_protocol = next((p for p in config.alpn_protocols if p in offered), None)
        if alpn_protocol is None:
            raise AlertError(
                f"no ALPN protocol in common (client offers {offered})", AlertDescription.no_application_protocol
            )
        reply.append((ExtensionType.application_layer_protocol_negotiation, ext.encode_alpn([alpn_protocol.encode("latin-1")])))
    srtp = exts.get(_EXT_USE_SRTP)
    if srtp is not None and config.srtp_profiles:
        offered_srtp = ext.decode_use_srtp(srtp)
        srtp_profile = next((p for p in config.srtp_profiles if p in offered_srtp.profiles), None)
        # RFC 5764 §4.1.1: with no profile in common, leave it out.
        if srtp_profile is not None:
            reply.append((ExtensionType.use_srtp, ext.encode_use_srtp([srtp_profile], b"")))
    limit = exts.get(_EXT_RECORD_SIZE_LIMIT)
    if limit is not None:
        peer_limit = ext.decode_record_size_limit(limit)
        own = config.record_size_limit if config.record_size_limit is not None else 2**14
        reply.append((ExtensionType.record_size_limit, ext.encode_record_size_limit(own)))
    return reply, alpn_protocol, srtp_profile, peer_limit


def _choose_suite(config, offered_suites, group: int | None, chain, key, schemes: list[int]) -> tuple[int, int | None]:
    """
    Server preference order among what the client offers and what our
    credentials can do.

    @param schemes: the client's signature_algorithms (empty if it sent
        none).
    @return: the suite, and for a certificate suite the signature scheme
        it will use (else C{None}).
    @raise AlertError: handshake_failure, nothing in common.
    """
    offered = set(offered_suites)
    for suite in config.cipher_suites:
        if suite not in offered:
            continue
        kx = CIPHER_SUITES[suite].key_exchange
        if kx is not KeyExchange.PSK and group is None:
            continue  # an ECDHE suite without a group in common
        if kx in _CERTIFICATE_KEY_EXCHANGES:
            if not chain:
                continue
            if kx is KeyExchange.ECDHE_ECDSA:
                if not isinstance(key, (ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)):
                    continue
            elif not isinstance(key, rsa.RSAPrivateKey):
                continue
            try:
                return suite, signatures.choose_scheme(key, schemes, config.signature_schemes)
            except AlertError:
                continue
        elif config.psk_lookup is None:
            continue
        return suite, None
    raise AlertError("no cipher suite in common", AlertDescription.handshake_failure)


def _lookup_name(credentials, name: str | None):
    """
    Exact match first, then a single-label wildcard (C{*.example.com}).
    """
    if not name or not credentials:
        return None
    name = name.lower().rstrip(".")
    if name in credentials:
        return credentials[name]
    head, _, rest = name.partition(".")
    return credentials.get(f"*.{rest}") if rest else None
