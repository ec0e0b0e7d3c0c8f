"""
The client handshake state machine (RFC 6347 §4.2, RFC 5246 §7.3).

Full handshake, client side::

    ClientHello            -->
                           <--  HelloVerifyRequest        (optional, repeatable)
    ClientHello + cookie   -->
                           <--  ServerHello, Certificate, ServerKeyExchange,
                                [CertificateRequest], ServerHelloDone
    [Certificate], ClientKeyExchange, [CertificateVerify],
    ChangeCipherSpec, Finished -->
                           <--  ChangeCipherSpec, Finished
"""

from __future__ import annotations

import datetime
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from . import certificates, extensions as ext, prf, signatures
from .constants import (
    DTLS_1_2,
    AlertDescription,
    ExtensionType,
    HandshakeType,
)
from .errors import AlertError, IllegalParameter
from .handshake import (
    CHANGE_CIPHER_SPEC,
    Handshake,
    HandshakeState,
    NegotiatedParameters,
    check_version,
    decode,
    encode,
)
from .keyexchange import KeyShare
from .messages import (
    Certificate,
    CertificateVerify,
    ClientHello,
    ClientKeyExchangeECDHE,
    ClientKeyExchangeECDHEPSK,
    ClientKeyExchangePSK,
    Finished,
    ecdhe_signed_data,
    pull_certificate,
    pull_certificate_request,
    pull_hello_verify_request,
    pull_new_session_ticket,
    pull_server_hello,
    pull_server_key_exchange_ecdhe,
    pull_server_key_exchange_ecdhe_psk,
    pull_server_key_exchange_psk,
    push_certificate,
    push_certificate_verify,
    push_client_hello,
    push_client_key_exchange_ecdhe,
    push_client_key_exchange_ecdhe_psk,
    push_client_key_exchange_psk,
    push_finished,
)
from .sessions import Session
from .suites import CIPHER_SUITES, KeyExchange

#: How many HelloVerifyRequests we answer in one handshake; a server (or an
#: attacker) asking for more is keeping us busy for nothing.
MAX_HELLO_VERIFY_REQUESTS = 4

_MH = HandshakeType


class ClientState(HandshakeState):
    START = "start"
    WAIT_SERVER_HELLO = "wait_server_hello"
    WAIT_CERTIFICATE = "wait_certificate"
    WAIT_SERVER_KEY_EXCHANGE = "wait_server_key_exchange"
    WAIT_PSK_HINT_OR_DONE = "wait_psk_hint_or_done"
    WAIT_CERTIFICATE_REQUEST_OR_DONE = "wait_certificate_request_or_done"
    WAIT_SERVER_HELLO_DONE = "wait_server_hello_done"
    WAIT_NEW_SESSION_TICKET = "wait_new_session_ticket"
    WAIT_CHANGE_CIPHER_SPEC = "wait_change_cipher_spec"
    WAIT_FINISHED = "wait_finished"
    ESTABLISHED = "established"


class ClientHandshake(Handshake):
    TRANSITIONS = {
        ClientState.WAIT_SERVER_HELLO: {
            _MH.hello_verify_request: "on_hello_verify_request",
            _MH.server_hello: "on_server_hello",
        },
        ClientState.WAIT_CERTIFICATE: {_MH.certificate: "on_certificate"},
        ClientState.WAIT_SERVER_KEY_EXCHANGE: {_MH.server_key_exchange: "on_server_key_exchange"},
        ClientState.WAIT_PSK_HINT_OR_DONE: {
            _MH.server_key_exchange: "on_server_key_exchange",
            _MH.server_hello_done: "on_server_hello_done",
        },
        ClientState.WAIT_CERTIFICATE_REQUEST_OR_DONE: {
            _MH.certificate_request: "on_certificate_request",
            _MH.server_hello_done: "on_server_hello_done",
        },
        ClientState.WAIT_SERVER_HELLO_DONE: {_MH.server_hello_done: "on_server_hello_done"},
        # RFC 5077 §3.3: after the extension in ServerHello the ticket is
        # mandatory, so ChangeCipherSpec is not allowed in its place.
        ClientState.WAIT_NEW_SESSION_TICKET: {_MH.new_session_ticket: "on_new_session_ticket"},
        ClientState.WAIT_CHANGE_CIPHER_SPEC: {CHANGE_CIPHER_SPEC: "on_change_cipher_spec"},
        ClientState.WAIT_FINISHED: {_MH.finished: "on_finished"},
        ClientState.ESTABLISHED: {},
    }

    def __init__(self, configuration, host, wall_clock, session: Session | None = None):
        super().__init__(configuration, host, wall_clock)
        self.state = ClientState.START
        #: the session we offer to resume, and whether the server took it
        self.offered_session = session
        self.resumed = False
        self.ticket_expected = False
        self.new_ticket: tuple[bytes, float] | None = None
        self.server_session_id = b""
        #: what the caller may store to resume later (after completion)
        self.session: Session | None = None
        self.hello: ClientHello | None = None
        self.hello_verify_count = 0
        self.server_key_share: tuple[int, bytes] | None = None
        self.certificate_request = None
        self.offered_extensions: set[int] = set()
        self.alpn_protocol: str | None = None
        self.srtp_profile: int | None = None

    # -- flight 1 / 3 -------------------------------------------------------------

    def start(self) -> None:
        config = self.config
        self.secrets.client_random = config.random(32)
        extensions = [
            (ExtensionType.supported_groups, ext.encode_supported_groups(config.groups)),
            (ExtensionType.ec_point_formats, ext.encode_ec_point_formats([0])),
            (ExtensionType.signature_algorithms, ext.encode_signature_algorithms(config.signature_schemes)),
            (ExtensionType.extended_master_secret, ext.encode_extended_master_secret()),
            (ExtensionType.renegotiation_info, ext.encode_renegotiation_info(b"")),
        ]
        if config.alpn_protocols:
            extensions.append(
                (
                    ExtensionType.application_layer_protocol_negotiation,
                    ext.encode_alpn([p.encode() for p in config.alpn_protocols]),
                )
            )
        if config.srtp_profiles:
            extensions.append((ExtensionType.use_srtp, ext.encode_use_srtp(config.srtp_profiles, b"")))
        if config.record_size_limit is not None:
            extensions.append((ExtensionType.record_size_limit, ext.encode_record_size_limit(config.record_size_limit)))
        session = self.offered_session
        session_id = b""
        if session is not None:
            # RFC 5077 §3.4: with a ticket, a fresh session id lets us tell
            # from ServerHello whether the server resumed.
            session_id = session.session_id or (config.random(32) if session.ticket else b"")
        if config.session_tickets:
            ticket = session.ticket if session is not None else b""
            extensions.append((ExtensionType.session_ticket, ext.encode_session_ticket(ticket)))
        name = config.server_name
        if name and not _is_ip_literal(name):
            # RFC 6066 §3: literal IP addresses are not sent in SNI.
            extensions.insert(0, (ExtensionType.server_name, ext.encode_server_name(name)))
        self.offered_extensions = {t for t, _ in extensions}
        self.hello = ClientHello(
            client_version=DTLS_1_2,
            random=self.secrets.client_random,
            session_id=session_id,
            cookie=b"",
            cipher_suites=list(config.cipher_suites),
            compression_methods=[0],
            extensions=extensions,
        )
        self._send_client_hello()

    def _send_client_hello(self) -> None:
        self.reset_transcript()
        item = self.message(_MH.client_hello, encode(push_client_hello, self.hello), epoch=0)
        self.state = ClientState.WAIT_SERVER_HELLO
        self.host.send_flight([item], final=False)

    def on_hello_verify_request(self, body: bytes, raw: bytes) -> None:
        hvr = decode(pull_hello_verify_request, body)
        # RFC 6347 §4.2.1 (errata 4103): any DTLS version may appear here.
        if hvr.server_version not in (0xFEFF, 0xFEFD):
            raise AlertError(f"HelloVerifyRequest version {hvr.server_version:#06x}", AlertDescription.protocol_version)
        self.hello_verify_count += 1
        if self.hello_verify_count > MAX_HELLO_VERIFY_REQUESTS:
            raise AlertError("too many HelloVerifyRequests", AlertDescription.handshake_failure)
        # Same random and session, the cookie added, the next message_seq.
        self.hello.cookie = hvr.cookie
        self._send_client_hello()

    # -- flight 4 -------------------------------------------------------------------

    def on_server_hello(self, body: bytes, raw: bytes) -> None:
        hello = decode(pull_server_hello, body)
        check_version(hello.server_version)
        if hello.cipher_suite not in self.config.cipher_suites or hello.cipher_suite not in CIPHER_SUITES:
            raise IllegalParameter(f"server chose cipher suite {hello.cipher_suite:#06x} that we did not offer")
        if hello.compression_method != 0:
            raise IllegalParameter("server chose a compression method we did not offer")
        seen = {t for t, _ in hello.extensions}
        unsolicited = seen - self.offered_extensions
        if unsolicited:
            # RFC 5246 §7.4.1.4: only extensions we offered may come back.
            raise AlertError(f"unsolicited extensions {sorted(unsolicited)}", AlertDescription.unsupported_extension)
        reneg = ext.find_extension(hello.extensions, ExtensionType.renegotiation_info)
        if reneg is not None and ext.decode_renegotiation_info(reneg) != b"":
            raise AlertError("non-empty renegotiation_info on an initial handshake", AlertDescription.handshake_failure)
        ems = ext.find_extension(hello.extensions, ExtensionType.extended_master_secret)
        if ems is not None:
            ext.decode_extended_master_secret(ems)
        elif self.config.require_extended_master_secret:
            raise AlertError("server does not support extended_master_secret (RFC 7627)", AlertDescription.handshake_failure)
        alpn = ext.find_extension(hello.extensions, ExtensionType.application_layer_protocol_negotiation)
        if alpn is not None:
            chosen = ext.decode_alpn(alpn)
            # RFC 7301 §3.1: exactly one protocol, one that we offered.
            if len(chosen) != 1 or chosen[0].decode("latin-1") not in self.config.alpn_protocols:
                raise IllegalParameter("server selected an ALPN protocol we did not offer")
            self.alpn_protocol = chosen[0].decode("latin-1")
        srtp = ext.find_extension(hello.extensions, ExtensionType.use_srtp)
        if srtp is not None:
            chosen_srtp = ext.decode_use_srtp(srtp)
            # RFC 5764 §4.1.1: one profile, from our list, and our (empty) MKI.
            if len(chosen_srtp.profiles) != 1 or chosen_srtp.profiles[0] not in self.config.srtp_profiles or chosen_srtp.mki:
                raise IllegalParameter("server selected an SRTP profile we did not offer")
            self.srtp_profile = chosen_srtp.profiles[0]
        limit = ext.find_extension(hello.extensions, ExtensionType.record_size_limit)
        if limit is not None:
            self.peer_record_size_limit = ext.decode_record_size_limit(limit)
        self.secrets.server_random = hello.random
        self.secrets.suite = CIPHER_SUITES[hello.cipher_suite]
        self.secrets.extended_master_secret = ems is not None
        self.server_session_id = hello.session_id
        self.ticket_expected = ext.find_extension(hello.extensions, ExtensionType.session_ticket) is not None
        session = self.offered_session
        if session is not None and hello.session_id and hello.session_id == self.hello.session_id:
            self._resume(session, hello)
            return
        kx = self.secrets.suite.key_exchange
        if kx.uses_certificates:
            self.state = ClientState.WAIT_CERTIFICATE
        elif kx is KeyExchange.PSK:
            self.state = ClientState.WAIT_PSK_HINT_OR_DONE
        else:
            self.state = ClientState.WAIT_SERVER_KEY_EXCHANGE

    def _resume(self, session: Session, hello) -> None:
        """
        The server echoed our session id: an abbreviated handshake
        (RFC 5246 §7.3) with the old master secret.
        """
        if hello.cipher_suite != session.cipher_suite:
            raise IllegalParameter("resumed session with a different cipher suite")
        # RFC 7627 §5.3: the extension must be used exactly as before.
        if session.extended_master_secret != self.secrets.extended_master_secret:
            raise AlertError("extended_master_secret changed on resumption", AlertDescription.handshake_failure)
        self.resumed = True
        self.secrets.master_secret = session.master_secret
        self.peer_certificates = tuple(x509.load_der_x509_certificate(d) for d in session.peer_certificates)
        self.log_master_secret()
        client_write, server_write = self.protections()
        self.pending_read = server_write
        self.pending_write = client_write
        self.state = ClientState.WAIT_NEW_SESSION_TICKET if self.ticket_expected else ClientState.WAIT_CHANGE_CIPHER_SPEC

    def on_new_session_ticket(self, body: bytes, raw: bytes) -> None:
        # RFC 5077 §3.3: only when ServerHello carried the extension.
        message = decode(pull_new_session_ticket, body)
        self.new_ticket = (message.ticket, float(message.lifetime_hint))
        self.state = ClientState.WAIT_CHANGE_CIPHER_SPEC

    def on_certificate(self, body: bytes, raw: bytes) -> None:
        message = decode(pull_certificate, body)
        if not message.certificates:
            raise AlertError("server sent no certificate", AlertDescription.handshake_failure)
        try:
            chain = tuple(x509.load_der_x509_certificate(der) for der in message.certificates)
        except ValueError as e:
            raise AlertError(f"unparseable certificate: {e}", AlertDescription.bad_certificate) from None
        key = chain[0].public_key()
        kx = self.secrets.suite.key_exchange
        if kx is KeyExchange.ECDHE_ECDSA and not isinstance(key, (ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey)):
            raise AlertError("ECDSA suite but the certificate key is not ECDSA/EdDSA", AlertDescription.unsupported_certificate)
        if kx is KeyExchange.ECDHE_RSA and not isinstance(key, rsa.RSAPublicKey):
            raise AlertError("RSA suite but the certificate key is not RSA", AlertDescription.unsupported_certificate)
        if self.config.verify_peer:
            certificates.verify_server_chain(
                list(chain),
                self.config.trust_roots,
                self.config.server_name,
                datetime.datetime.fromtimestamp(self.wall_clock(), datetime.timezone.utc),
                self.config.pinned_sha256,
            )
        self.peer_certificates = chain
        self.state = ClientState.WAIT_SERVER_KEY_EXCHANGE

    def on_server_key_exchange(self, body: bytes, raw: bytes) -> None:
        kx = self.secrets.suite.key_exchange
        if kx is KeyExchange.PSK:
            # RFC 4279 §2: only a hint; we have one identity anyway.
            decode(pull_server_key_exchange_psk, body)
            self.state = ClientState.WAIT_SERVER_HELLO_DONE
            return
        if kx is KeyExchange.ECDHE_PSK:
            message = decode(pull_server_key_exchange_ecdhe_psk, body)
            if message.params.named_curve not in self.config.groups:
                raise IllegalParameter(f"server chose group {message.params.named_curve} that we did not offer")
            self.server_key_share = (message.params.named_curve, message.params.public)
            self.state = ClientState.WAIT_SERVER_HELLO_DONE
            return
        message = decode(pull_server_key_exchange_ecdhe, body)
        if message.params.named_curve not in self.config.groups:
            raise IllegalParameter(f"server chose group {message.params.named_curve} that we did not offer")
        if message.scheme not in self.config.signature_schemes:
            raise IllegalParameter(f"server signed with scheme {message.scheme:#06x} that we did not offer")
        signatures.verify(
            self.peer_certificates[0].public_key(),
            message.scheme,
            message.signature,
            ecdhe_signed_data(self.secrets.client_random, self.secrets.server_random, message.params),
        )
        self.server_key_share = (message.params.named_curve, message.params.public)
        self.state = ClientState.WAIT_CERTIFICATE_REQUEST_OR_DONE

    def on_certificate_request(self, body: bytes, raw: bytes) -> None:
        self.certificate_request = decode(pull_certificate_request, body)
        self.state = ClientState.WAIT_SERVER_HELLO_DONE

    def on_server_hello_done(self, body: bytes, raw: bytes) -> None:
        if body:
            raise AlertError("ServerHelloDone with a body", AlertDescription.decode_error)
        items = []
        send_certificate = False
        if self.certificate_request is not None:
            request = self.certificate_request
            chain = self.config.certificate_chain
            key = self.config.private_key
            send_certificate = bool(chain) and key is not None and _acceptable(key, request.signature_schemes, self.config.signature_schemes)
            # RFC 5246 §7.4.6: with nothing suitable, an empty Certificate.
            certificate = Certificate([c.public_bytes(Encoding.DER) for c in chain] if send_certificate else [])
            items.append(self.message(_MH.certificate, encode(push_certificate, certificate), epoch=0))

        items.append(self.message(_MH.client_key_exchange, self._client_key_exchange(), epoch=0))
        self.derive_master_secret(self._pre_master)
        self._pre_master = b""

        if send_certificate:
            key = self.config.private_key
            scheme = signatures.choose_scheme(key, self.certificate_request.signature_schemes, self.config.signature_schemes)
            signature = signatures.sign(key, scheme, bytes(self.transcript))
            cv = CertificateVerify(scheme, signature)
            items.append(self.message(_MH.certificate_verify, encode(push_certificate_verify, cv), epoch=0))

        client_write, server_write = self.protections()
        self.pending_read = server_write
        items.append(self.change_cipher_spec(epoch=0))
        self.host.install_write(1, client_write)
        self.client_verify_data = self.verify_data(b"client finished")
        items.append(self.message(_MH.finished, encode(push_finished, Finished(self.client_verify_data)), epoch=1))
        self.state = ClientState.WAIT_NEW_SESSION_TICKET if self.ticket_expected else ClientState.WAIT_CHANGE_CIPHER_SPEC
        self.host.send_flight(items, final=False)

    def _client_key_exchange(self) -> bytes:
        """
        Build ClientKeyExchange for the negotiated key exchange, keeping the
        premaster secret (RFC 8422 §5.7, RFC 4279 §2, RFC 5489 §2).
        """
        kx = self.secrets.suite.key_exchange
        config = self.config
        shared = None
        if kx.uses_ecdhe:
            group, server_public = self.server_key_share
            share = KeyShare(group)
            shared = share.exchange(server_public)
        if kx is KeyExchange.PSK:
            self._pre_master = prf.psk_premaster(config.psk)
            return encode(push_client_key_exchange_psk, ClientKeyExchangePSK(config.psk_identity))
        if kx is KeyExchange.ECDHE_PSK:
            self._pre_master = prf.psk_premaster(config.psk, shared)
            return encode(
                push_client_key_exchange_ecdhe_psk, ClientKeyExchangeECDHEPSK(config.psk_identity, share.public_bytes)
            )
        self._pre_master = shared
        return encode(push_client_key_exchange_ecdhe, ClientKeyExchangeECDHE(share.public_bytes))

    # -- flight 6 ---------------------------------------------------------------------

    def on_change_cipher_spec(self) -> None:
        self.state = ClientState.WAIT_FINISHED
        self.host.install_read(1, self.pending_read)
        self.pending_read = None

    def on_finished(self, body: bytes, raw: bytes) -> None:
        self.server_verify_data = self.check_finished(body, raw, b"server finished")
        if self.resumed:
            # Abbreviated handshake: our ChangeCipherSpec and Finished are
            # the last flight, kept to answer the server's retransmissions.
            items = [self.change_cipher_spec(epoch=0)]
            self.host.install_write(1, self.pending_write)
            self.pending_write = None
            self.client_verify_data = self.verify_data(b"client finished")
            items.append(self.message(_MH.finished, encode(push_finished, Finished(self.client_verify_data)), epoch=1))
            self.host.send_flight(items, final=True)
        self.state = ClientState.ESTABLISHED
        self.session = self._make_session()
        self.parameters = NegotiatedParameters(
            cipher_suite=self.secrets.suite.suite,
            version=DTLS_1_2,
            extended_master_secret=self.secrets.extended_master_secret,
            peer_certificates=self.peer_certificates,
            server_name=self.config.server_name,
            alpn_protocol=self.alpn_protocol,
            srtp_profile=self.srtp_profile,
            psk_identity=self.config.psk_identity if self.secrets.suite.key_exchange.uses_psk else None,
            resumed=self.resumed,
        )
        self.host.handshake_complete(self.parameters)

    def _make_session(self) -> Session | None:
        ticket, lifetime = self.new_ticket or (b"", 0.0)
        if self.resumed and not ticket and self.offered_session is not None:
            ticket, lifetime = self.offered_session.ticket, self.offered_session.lifetime
        if not self.server_session_id and not ticket:
            return None
        created = self.offered_session.created if self.resumed and self.offered_session else self.wall_clock()
        return Session(
            session_id=b"" if ticket else self.server_session_id,
            cipher_suite=self.secrets.suite.suite,
            master_secret=self.secrets.master_secret,
            extended_master_secret=self.secrets.extended_master_secret,
            created=created,
            peer_certificates=tuple(c.public_bytes(Encoding.DER) for c in self.peer_certificates),
            alpn_protocol=self.alpn_protocol,
            server_name=self.config.server_name,
            ticket=ticket,
            lifetime=lifetime,
        )


def _acceptable(key, offered, ours) -> bool:
    try:
        signatures.choose_scheme(key, offered, ours)
    except AlertError:
        return False
    return True


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
