"""
A scriptable, misbehaving DTLS 1.2 server built from the engine's own wire
pieces (C{messages}, C{extensions}, C{records}, C{protection}, C{prf},
C{keyexchange}, C{signatures}), not from its state machine: the mirror of
L{tests.hostile.malicious.MaliciousClient} for testing our client role.

L{MaliciousServer} performs a real ECDHE-ECDSA handshake: it reads the
ClientHello, signs a ServerKeyExchange over both randoms, reads the client's
flight (ClientKeyExchange, ChangeCipherSpec, Finished under the new keys)
and derives the same keys. What it sends is up to the test: L{build} turns
steps into records, in the order given, so that a test can omit, repeat,
reorder or misplace messages and ChangeCipherSpec. The transcript follows
what was actually sent, so a refusal is the client's state machine at work,
never a Finished that happens not to match.

Steps (strings)::

    "hello_verify_request"  a HelloVerifyRequest carrying L{cookie}
    "server_hello"          ServerHello for L{suite} / L{version}, echoing
                            renegotiation_info, extended_master_secret,
                            ec_point_formats, plus L{extra_extensions}
                            (and session_ticket when L{ticket_extension})
    "certificate"           L{chain}
    "server_key_exchange"   ECDHE share on L{group}, signed with
                            L{signing_key} under L{scheme}
    "certificate_request"   asks for an ECDSA certificate
    "server_hello_done"
    "new_session_ticket"    RFC 5077 ticket (opaque bytes)
    "ccs"                   ChangeCipherSpec; later steps use epoch 1 once
                            the keys exist
    "finished"              correct verify_data over the transcript so far
    "bad_finished"          twelve wrong bytes
    "app"                   application data (L{APPLICATION_DATA})
    "fatal_alert"           alert(fatal, handshake_failure)
    "msg:<type>"            a message of that HandshakeType number with a
                            plausible body (our ServerHello's bytes)

A step may end in C{"@0"} or C{"@1"} to force its record's epoch. A step
that cannot be built because the client never gave us what it needs (a
Finished, or an epoch-1 record, without a ClientKeyExchange) produces no
record and is listed in L{ClientView.skipped}: an attacker could not send
it either.

The class is sans-IO: L{receive} takes the client's datagrams, L{build}
returns ours.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from twisted_dtls.core import extensions as ext
from twisted_dtls.core import prf, signatures
from twisted_dtls.core.constants import (
    DTLS_1_2,
    AlertDescription,
    AlertLevel,
    CipherSuite,
    ContentType,
    ExtensionType,
    HandshakeType,
    NamedGroup,
    SignatureScheme,
)
from twisted_dtls.core.errors import DecodeError
from twisted_dtls.core.fragments import Reassembler
from twisted_dtls.core.keyexchange import KeyShare
from twisted_dtls.core.messages import (
    Certificate,
    CertificateRequest,
    Finished,
    HelloVerifyRequest,
    NewSessionTicket,
    ServerECDHParams,
    ServerHello,
    ServerKeyExchangeECDHE,
    ecdhe_signed_data,
    encode_handshake,
    pull_client_hello,
    pull_client_key_exchange_ecdhe,
    pull_handshake_fragments,
    push_certificate,
    push_certificate_request,
    push_finished,
    push_hello_verify_request,
    push_new_session_ticket,
    push_server_hello,
    push_server_key_exchange_ecdhe,
)
from twisted_dtls.core.protection import RecordProtection
from twisted_dtls.core.records import pull_records, push_record
from twisted_dtls.core.suites import CIPHER_SUITES
from twisted_dtls.core.handshake import decode as _decode, encode as _encode

SUITE = CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
APPLICATION_DATA = b"from a hostile server"

#: The correct server flights of a full ECDHE-ECDSA handshake.
FLIGHT_4 = ["server_hello", "certificate", "server_key_exchange", "server_hello_done"]
FLIGHT_6 = ["ccs", "finished"]


@dataclass
class ClientView:
    """
    What the malicious server has seen from the client.

    @ivar client_hellos: how many ClientHellos (a new one after each
        HelloVerifyRequest).
    @ivar messages: handshake types in order of arrival (after reassembly).
    @ivar alerts: C{(level, description)} the client sent, in any epoch.
    @ivar finished_ok: whether the client's Finished verified (None: none).
    @ivar application_data: what the client sent under the new keys.
    @ivar skipped: steps that could not be built (see the module doc).
    """

    client_hellos: int = 0
    messages: list[int] = field(default_factory=list)
    alerts: list[tuple[int, int]] = field(default_factory=list)
    change_cipher_spec: bool = False
    finished_ok: bool | None = None
    application_data: list[bytes] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


class MaliciousServer:
    """
    @ivar chain: the certificates of the Certificate step (leaf first).
    @ivar key: the private key of the leaf.
    @ivar signing_key: what ServerKeyExchange is signed with (C{key} by
        default; another key makes a bad signature).
    @ivar suite / version / group / scheme: what ServerHello and
        ServerKeyExchange claim; change them to deviate.
    @ivar claimed_scheme: when set, the scheme ServerKeyExchange names
        instead of the one it was signed under (C{scheme}).
    @ivar extra_extensions: appended to ServerHello's extensions.
    @ivar ticket_extension: echo session_ticket in ServerHello.
    @ivar resume_master_secret: when set, ServerHello echoes the client's
        session id and the keys come from this master secret at once: an
        abbreviated handshake (RFC 5246 §7.3, RFC 5077 §3.1), whose correct
        script is C{server_hello, [new_session_ticket], ccs, finished}.
    @ivar cookie / hello_verify_version: what a HelloVerifyRequest carries.
    """

    def __init__(self, credential, random: bytes | None = None):
        chain, key = credential
        self.chain = list(chain)
        self.key = key
        self.signing_key = key
        self.random = random or os.urandom(32)
        self.suite = SUITE
        self.version = DTLS_1_2
        self.group = NamedGroup.x25519
        self.scheme = SignatureScheme.ecdsa_secp256r1_sha256
        self.claimed_scheme: int | None = None
        self.extra_extensions: list[tuple[int, bytes]] = []
        self.ticket_extension = False
        self.resume_master_secret: bytes | None = None
        self.client_session_id = b""
        self.cookie = b"hostile-cookie-" + os.urandom(8)
        self.hello_verify_version = DTLS_1_2
        self.view = ClientView()
        self._send_seq = 0
        self._record_seq = {0: 0, 1: 0}
        self.transcript = bytearray()
        self._reassembler = Reassembler(1 << 16, 1 << 18, 16)
        self.client_random = b""
        self._ems = False
        self._share: KeyShare | None = None
        self.master_secret = b""
        self.client_write: RecordProtection | None = None
        self.server_write: RecordProtection | None = None
        self._ccs_sent = False
        self._hello_body = b""

    @property
    def info(self):
        return CIPHER_SUITES.get(self.suite, CIPHER_SUITES[SUITE])

    @property
    def has_keys(self) -> bool:
        return self.server_write is not None

    # -- records --------------------------------------------------------------

    def record(self, content_type: int, payload: bytes, epoch: int) -> bytes:
        seq = self._record_seq[epoch]
        self._record_seq[epoch] = seq + 1
        if epoch == 0:
            return push_record(content_type, DTLS_1_2, 0, seq, payload)
        fragment = self.server_write.seal(content_type, DTLS_1_2, epoch, seq, payload)
        return push_record(content_type, DTLS_1_2, epoch, seq, fragment)

    def handshake(self, msg_type: int, body: bytes, epoch: int, transcript: bool = True) -> bytes:
        """
        One whole handshake message with the next message_seq, in a record.
        """
        raw = encode_handshake(msg_type, self._send_seq, body)
        self._send_seq += 1
        if transcript:
            self.transcript += raw
        return self.record(ContentType.handshake, raw, epoch)

    # -- input ------------------------------------------------------------------

    def receive(self, datagram: bytes) -> None:
        records, _ = pull_records(datagram)
        for record in records:
            data = record.fragment
            if record.epoch == 1:
                if self.client_write is None:
                    continue
                data = self.client_write.open(record.content_type, record.version, 1, record.sequence_number, data)
                if data is None:
                    continue
            elif record.epoch != 0:
                continue
            if record.content_type == ContentType.alert and len(data) == 2:
                self.view.alerts.append((data[0], data[1]))
            elif record.content_type == ContentType.change_cipher_spec:
                self.view.change_cipher_spec = True
            elif record.content_type == ContentType.application_data and record.epoch == 1:
                self.view.application_data.append(data)
            elif record.content_type == ContentType.handshake:
                self._handshake_record(data)

    def _handshake_record(self, data: bytes) -> None:
        try:
            fragments = pull_handshake_fragments(data)
        except DecodeError:
            return
        for fragment in fragments:
            self._reassembler.add(fragment)
            while (message := self._reassembler.pop()) is not None:
                self._client_message(*message)

    def _client_message(self, msg_type: int, seq: int, body: bytes) -> None:
        self.view.messages.append(msg_type)
        raw = encode_handshake(msg_type, seq, body)
        if msg_type == HandshakeType.client_hello:
            hello = _decode(pull_client_hello, body)
            self.view.client_hellos += 1
            # RFC 6347 §4.2.6: the transcript starts with the ClientHello
            # that follows the last HelloVerifyRequest.
            self.transcript = bytearray(raw)
            self.client_random = hello.random
            self.client_session_id = hello.session_id
            self._ems = ext.find_extension(hello.extensions, ExtensionType.extended_master_secret) is not None
            return
        if msg_type == HandshakeType.finished:
            self.view.finished_ok = bool(self.master_secret) and body == self._verify_data(b"client finished")
            self.transcript += raw
            return
        self.transcript += raw
        if msg_type == HandshakeType.client_key_exchange and self._share is not None and not self.master_secret:
            public = _decode(pull_client_key_exchange_ecdhe, body).public
            self._derive(self._share.exchange(public))

    # -- secrets ----------------------------------------------------------------

    def _transcript_hash(self) -> bytes:
        h = hashes.Hash(self.info.prf_hash())
        h.update(bytes(self.transcript))
        return h.finalize()

    def _verify_data(self, label: bytes) -> bytes:
        return prf.verify_data(self.info.prf_hash, self.master_secret, label, self._transcript_hash())

    def _derive(self, pre_master: bytes) -> None:
        info = self.info
        if self._ems:
            self.master_secret = prf.extended_master_secret(info.prf_hash, pre_master, self._transcript_hash())
        else:
            self.master_secret = prf.master_secret(info.prf_hash, pre_master, self.client_random, self.random)
        self._install_keys()

    def _install_keys(self) -> None:
        info = self.info
        keys = prf.key_block(info, self.master_secret, self.client_random, self.random)
        self.client_write = RecordProtection(info, keys.client_write_key, keys.client_write_iv)
        self.server_write = RecordProtection(info, keys.server_write_key, keys.server_write_iv)

    # -- message bodies -----------------------------------------------------------

    def server_hello_body(self) -> bytes:
        extensions = [
            (ExtensionType.renegotiation_info, ext.encode_renegotiation_info(b"")),
            (ExtensionType.extended_master_secret, ext.encode_extended_master_secret()),
            (ExtensionType.ec_point_formats, ext.encode_ec_point_formats([0])),
        ]
        if self.ticket_extension:
            extensions.append((ExtensionType.session_ticket, ext.encode_session_ticket(b"")))
        extensions += self.extra_extensions
        session_id = self.client_session_id if self.resume_master_secret is not None else b""
        hello = ServerHello(self.version, self.random, session_id, self.suite, 0, extensions)
        return _encode(push_server_hello, hello)

    def server_key_exchange_body(self) -> bytes:
        self._share = KeyShare(self.group)
        params = ServerECDHParams(self.group, self._share.public_bytes)
        signed = ecdhe_signed_data(self.client_random, self.random, params)
        signature = signatures.sign(self.signing_key, self.scheme, signed)
        named = self.scheme if self.claimed_scheme is None else self.claimed_scheme
        return _encode(push_server_key_exchange_ecdhe, ServerKeyExchangeECDHE(params, named, signature))

    # -- output, scripted -----------------------------------------------------------

    def step(self, step: str) -> list[bytes]:
        """
        The records of one script step (none if it cannot be built).
        """
        name, _, forced = step.partition("@")
        epoch = int(forced) if forced else (1 if self._ccs_sent and self.has_keys else 0)
        if epoch == 1 and not self.has_keys:
            self.view.skipped.append(step)
            return []
        HT = HandshakeType
        if name == "hello_verify_request":
            body = _encode(push_hello_verify_request, HelloVerifyRequest(self.hello_verify_version, self.cookie))
            # RFC 6347 §4.2.6: neither HelloVerifyRequest nor the ClientHello
            # before it is hashed.
            return [self.handshake(HT.hello_verify_request, body, epoch, transcript=False)]
        if name == "server_hello":
            self._hello_body = self.server_hello_body()
            record = self.handshake(HT.server_hello, self._hello_body, epoch)
            if self.resume_master_secret is not None and not self.master_secret:
                self.master_secret = self.resume_master_secret
                self._install_keys()
            return [record]
        if name == "certificate":
            chain = [c.public_bytes(Encoding.DER) for c in self.chain]
            return [self.handshake(HT.certificate, _encode(push_certificate, Certificate(chain)), epoch)]
        if name == "server_key_exchange":
            return [self.handshake(HT.server_key_exchange, self.server_key_exchange_body(), epoch)]
        if name == "certificate_request":
            request = CertificateRequest([64], [SignatureScheme.ecdsa_secp256r1_sha256], [])
            return [self.handshake(HT.certificate_request, _encode(push_certificate_request, request), epoch)]
        if name == "server_hello_done":
            return [self.handshake(HT.server_hello_done, b"", epoch)]
        if name == "new_session_ticket":
            ticket = NewSessionTicket(3600, b"opaque hostile ticket")
            return [self.handshake(HT.new_session_ticket, _encode(push_new_session_ticket, ticket), epoch)]
        if name == "ccs":
            record = self.record(ContentType.change_cipher_spec, b"\x01", epoch)
            self._ccs_sent = True
            return [record]
        if name in ("finished", "bad_finished"):
            if not self.master_secret:
                self.view.skipped.append(step)
                return []
            verify_data = self._verify_data(b"server finished")
            if name == "bad_finished":
                verify_data = bytes(b ^ 0x55 for b in verify_data)
            return [self.handshake(HT.finished, _encode(push_finished, Finished(verify_data)), epoch)]
        if name == "app":
            return [self.record(ContentType.application_data, APPLICATION_DATA, epoch)]
        if name == "fatal_alert":
            return [self.record(ContentType.alert, bytes((AlertLevel.fatal, AlertDescription.handshake_failure)), epoch)]
        if name.startswith("msg:"):
            body = self._hello_body or self.server_hello_body()
            return [self.handshake(int(name[4:]), body, epoch)]
        raise ValueError(f"unknown step {step!r}")

    def build(self, script: list[str]) -> list[bytes]:
        """
        One datagram per step that could be built, in script order.
        """
        out = []
        for step in script:
            records = self.step(step)
            if records:
                out.append(b"".join(records))
        return out


__all__ = ["APPLICATION_DATA", "FLIGHT_4", "FLIGHT_6", "SUITE", "ClientView", "MaliciousServer"]
