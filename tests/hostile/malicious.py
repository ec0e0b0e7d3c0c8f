"""
A scriptable, misbehaving DTLS 1.2 client built from the engine's own wire
pieces (C{messages}, C{records}, C{protection}, C{prf}, C{keyexchange},
C{signatures}), not from its state machine.

L{MaliciousClient} performs a real ECDHE-ECDSA handshake: it builds a
ClientHello, answers a HelloVerifyRequest, reads the server's flight, and
derives the keys. What it sends after the server's flight is up to the test:
L{MaliciousClient.build} turns a script of steps into records, in the order
given, so that a test can omit, duplicate, reorder or misplace messages and
ChangeCipherSpec. The transcript follows what was actually sent, so a
refusal is the state machine's doing, never a Finished that happens not to
match.

Steps (strings)::

    "certificate"          our chain (empty when the client has no credential)
    "empty_certificate"    a Certificate with no certificates
    "client_key_exchange"  ECDHE public value; derives the master secret
    "certificate_verify"   signature over the transcript so far
    "ccs"                  ChangeCipherSpec; later handshake messages use epoch 1
    "finished"             correct verify_data over the transcript so far
    "bad_finished"         twelve wrong bytes
    "client_hello"         our ClientHello again, as a new message
    "app"                  application data (b"attack")
    "fatal_alert"          alert(fatal, handshake_failure)
    "msg:<type>"           a handshake message of that HandshakeType number
                           with a plausible body (another message's bytes)

A step may end in C{"@0"} or C{"@1"} to force its record's epoch (by
default: epoch 0 until our ChangeCipherSpec, epoch 1 after it once the
keys exist).

The class is sans-IO: L{client_hello} and L{build} return datagrams,
L{receive} takes the server's.
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
from twisted_dtls.core.fragments import Reassembler
from twisted_dtls.core.keyexchange import KeyShare
from twisted_dtls.core.messages import (
    Certificate,
    CertificateVerify,
    ClientHello,
    ClientKeyExchangeECDHE,
    Finished,
    HandshakeFragment,
    encode_handshake,
    pull_certificate,
    pull_certificate_request,
    pull_handshake_fragments,
    pull_hello_verify_request,
    pull_server_hello,
    pull_server_key_exchange_ecdhe,
    push_certificate,
    push_certificate_verify,
    push_client_hello,
    push_client_key_exchange_ecdhe,
    push_finished,
    push_handshake_fragment,
)
from twisted_dtls.core.protection import RecordProtection
from twisted_dtls.core.records import pull_records, push_record
from twisted_dtls.core.suites import CIPHER_SUITES
from twisted_dtls.core.handshake import decode as _decode, encode as _encode

SUITE = CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
APPLICATION_DATA = b"attack"


@dataclass
class ServerView:
    """
    What the malicious client has seen from the server.
    """

    hello_verify_requests: int = 0
    messages: list[int] = field(default_factory=list)
    alerts: list[tuple[int, int]] = field(default_factory=list)
    change_cipher_spec: bool = False
    finished_ok: bool | None = None
    application_data: list[bytes] = field(default_factory=list)


class MaliciousClient:
    """
    @ivar view: the L{ServerView}.
    @ivar credential: C{(chain, key)} to answer a CertificateRequest, or
        None.
    """

    def __init__(self, credential=None, random: bytes | None = None):
        self.credential = credential
        self.random = random or os.urandom(32)
        self.view = ServerView()
        self.cookie = b""
        self.info = CIPHER_SUITES[SUITE]
        self._send_seq = 0
        self._record_seq = {0: 0, 1: 0}
        self._hello_seq = 0
        self.transcript = bytearray()
        self._reassembler: Reassembler | None = None
        self.server_random = b""
        self.server_certificates: list[bytes] = []
        self.server_share: tuple[int, bytes] | None = None
        self.certificate_requested = False
        self.server_done = False
        self.master_secret = b""
        self.client_write: RecordProtection | None = None
        self.server_write: RecordProtection | None = None
        self._ccs_sent = False
        self._server_read_epoch = 0
        self._ems = False
        self._hello_body = b""
        #: when a list, L{handshake} and ChangeCipherSpec steps append
        #: C{(msg_type, message_seq, body, epoch)} / C{("ccs", epoch)} here
        self.captured: list | None = None

    # -- records --------------------------------------------------------------

    def record(self, content_type: int, payload: bytes, epoch: int) -> bytes:
        seq = self._record_seq[epoch]
        self._record_seq[epoch] = seq + 1
        if epoch == 0:
            return push_record(content_type, DTLS_1_2, 0, seq, payload)
        if self.client_write is None:
            raise RuntimeError("script error: epoch 1 before the keys exist (no client_key_exchange yet)")
        fragment = self.client_write.seal(content_type, DTLS_1_2, epoch, seq, payload)
        return push_record(content_type, DTLS_1_2, epoch, seq, fragment)

    def handshake(self, msg_type: int, body: bytes, epoch: int, transcript: bool = True) -> bytes:
        """
        One whole handshake message with the next message_seq, in a record.
        """
        raw = encode_handshake(msg_type, self._send_seq, body)
        if self.captured is not None:
            self.captured.append((msg_type, self._send_seq, body, epoch))
        self._send_seq += 1
        if transcript:
            self.transcript += raw
        return self.record(ContentType.handshake, raw, epoch)

    # -- flight 1 / 3 -----------------------------------------------------------

    def hello_body(self) -> bytes:
        hello = ClientHello(
            client_version=DTLS_1_2,
            random=self.random,
            session_id=b"",
            cookie=self.cookie,
            cipher_suites=[SUITE],
            compression_methods=[0],
            extensions=[
                (ExtensionType.supported_groups, ext.encode_supported_groups([NamedGroup.x25519, NamedGroup.secp256r1])),
                (ExtensionType.ec_point_formats, ext.encode_ec_point_formats([0])),
                (
                    ExtensionType.signature_algorithms,
                    ext.encode_signature_algorithms(
                        [SignatureScheme.ecdsa_secp256r1_sha256, SignatureScheme.ecdsa_secp384r1_sha384]
                    ),
                ),
                (ExtensionType.extended_master_secret, ext.encode_extended_master_secret()),
                (ExtensionType.renegotiation_info, ext.encode_renegotiation_info(b"")),
            ],
        )
        return _encode(push_client_hello, hello)

    def client_hello(self) -> bytes:
        """
        The (next) ClientHello datagram: the first one, or the one carrying
        the cookie of the last HelloVerifyRequest. The transcript starts
        over with it (RFC 6347 §4.2.6).
        """
        self.transcript = bytearray()
        self._hello_seq = self._send_seq
        self._hello_body = self.hello_body()
        self._reassembler = Reassembler(1 << 16, 1 << 18, 16)
        self._reassembler.next_seq = self._hello_seq
        return self.handshake(HandshakeType.client_hello, self._hello_body, 0)

    # -- input ------------------------------------------------------------------

    def receive(self, datagram: bytes) -> None:
        records, _ = pull_records(datagram)
        for record in records:
            data = record.fragment
            if record.epoch == 1:
                if self.server_write is None:
                    continue
                data = self.server_write.open(record.content_type, record.version, 1, record.sequence_number, data)
                if data is None:
                    continue
            elif record.epoch != 0:
                continue
            if record.content_type == ContentType.alert and len(data) == 2:
                self.view.alerts.append((data[0], data[1]))
            elif record.content_type == ContentType.change_cipher_spec:
                self.view.change_cipher_spec = True
                self._server_read_epoch = 1
            elif record.content_type == ContentType.application_data and record.epoch == 1:
                self.view.application_data.append(data)
            elif record.content_type == ContentType.handshake:
                self._handshake_record(data, record.epoch)

    def _handshake_record(self, data: bytes, epoch: int) -> None:
        try:
            fragments = pull_handshake_fragments(data)
        except Exception:
            return
        for fragment in fragments:
            if fragment.msg_type == HandshakeType.hello_verify_request and not self.server_random:
                hvr = _decode(pull_hello_verify_request, fragment.body)
                self.view.hello_verify_requests += 1
                self.cookie = hvr.cookie
                continue
            if self._reassembler is None:
                continue
            self._reassembler.add(fragment)
            while (message := self._reassembler.pop()) is not None:
                self._server_message(*message)

    def _server_message(self, msg_type: int, seq: int, body: bytes) -> None:
        self.view.messages.append(msg_type)
        raw = encode_handshake(msg_type, seq, body)
        if msg_type == HandshakeType.finished:
            expected = self._verify_data(b"server finished")
            self.view.finished_ok = body == expected
            return
        self.transcript += raw
        if msg_type == HandshakeType.server_hello:
            hello = _decode(pull_server_hello, body)
            self.server_random = hello.random
            self._ems = ext.find_extension(hello.extensions, ExtensionType.extended_master_secret) is not None
        elif msg_type == HandshakeType.certificate:
            self.server_certificates = _decode(pull_certificate, body).certificates
        elif msg_type == HandshakeType.server_key_exchange:
            ske = _decode(pull_server_key_exchange_ecdhe, body)
            self.server_share = (ske.params.named_curve, ske.params.public)
        elif msg_type == HandshakeType.certificate_request:
            _decode(pull_certificate_request, body)
            self.certificate_requested = True
        elif msg_type == HandshakeType.server_hello_done:
            self.server_done = True

    # -- secrets ----------------------------------------------------------------

    def _transcript_hash(self) -> bytes:
        h = hashes.Hash(self.info.prf_hash())
        h.update(bytes(self.transcript))
        return h.finalize()

    def _verify_data(self, label: bytes) -> bytes:
        return prf.verify_data(self.info.prf_hash, self.master_secret, label, self._transcript_hash())

    def _derive(self, pre_master: bytes) -> None:
        if self._ems:
            self.master_secret = prf.extended_master_secret(self.info.prf_hash, pre_master, self._transcript_hash())
        else:
            self.master_secret = prf.master_secret(self.info.prf_hash, pre_master, self.random, self.server_random)
        keys = prf.key_block(self.info, self.master_secret, self.random, self.server_random)
        self.client_write = RecordProtection(self.info, keys.client_write_key, keys.client_write_iv)
        self.server_write = RecordProtection(self.info, keys.server_write_key, keys.server_write_iv)

    # -- flight 5, scripted ------------------------------------------------------

    def normal_flight(self) -> list[str]:
        """
        The script of a correct client flight for what the server asked.
        """
        steps = []
        if self.certificate_requested:
            steps.append("certificate")
        steps.append("client_key_exchange")
        if self.certificate_requested and self.credential is not None:
            steps.append("certificate_verify")
        steps += ["ccs", "finished"]
        return steps

    def step(self, step: str) -> list[bytes]:
        """
        The records of one script step.
        """
        name, _, forced = step.partition("@")
        # After our ChangeCipherSpec, epoch 1 -- once there are keys for it.
        epoch = int(forced) if forced else (1 if self._ccs_sent and self.client_write is not None else 0)
        HT = HandshakeType
        if name == "certificate":
            chain = [c.public_bytes(Encoding.DER) for c in self.credential[0]] if self.credential else []
            return [self.handshake(HT.certificate, _encode(push_certificate, Certificate(chain)), epoch)]
        if name == "empty_certificate":
            return [self.handshake(HT.certificate, _encode(push_certificate, Certificate([])), epoch)]
        if name == "client_key_exchange":
            group, public = self.server_share
            share = KeyShare(group)
            pre_master = share.exchange(public)
            record = self.handshake(
                HT.client_key_exchange,
                _encode(push_client_key_exchange_ecdhe, ClientKeyExchangeECDHE(share.public_bytes)),
                epoch,
            )
            self._derive(pre_master)
            return [record]
        if name == "certificate_verify":
            key = self.credential[1]
            scheme = signatures.choose_scheme(key, [SignatureScheme.ecdsa_secp256r1_sha256])
            signature = signatures.sign(key, scheme, bytes(self.transcript))
            body = _encode(push_certificate_verify, CertificateVerify(scheme, signature))
            return [self.handshake(HT.certificate_verify, body, epoch)]
        if name == "ccs":
            if self.captured is not None:
                self.captured.append(("ccs", epoch))
            record = self.record(ContentType.change_cipher_spec, b"\x01", epoch)
            self._ccs_sent = True
            return [record]
        if name == "finished":
            body = _encode(push_finished, Finished(self._verify_data(b"client finished")))
            return [self.handshake(HT.finished, body, epoch)]
        if name == "bad_finished":
            body = bytes(a ^ 0x55 for a in self._verify_data(b"client finished"))
            return [self.handshake(HT.finished, body, epoch)]
        if name == "client_hello":
            return [self.handshake(HT.client_hello, self._hello_body, epoch)]
        if name == "app":
            return [self.record(ContentType.application_data, APPLICATION_DATA, epoch)]
        if name == "fatal_alert":
            alert = bytes((AlertLevel.fatal, AlertDescription.handshake_failure))
            return [self.record(ContentType.alert, alert, epoch)]
        if name.startswith("msg:"):
            msg_type = int(name[4:])
            # Plausible bytes for any type: our ClientHello's body.
            return [self.handshake(msg_type, self._hello_body, epoch)]
        raise ValueError(f"unknown step {step!r}")

    def messages(self, script: list[str]) -> list[tuple]:
        """
        Run C{script} for its effect on the transcript and keys only, and
        return its handshake messages and ChangeCipherSpecs (see
        L{captured}) for L{fragment_records}.
        """
        self.captured = []
        try:
            self.build(script)
            return self.captured
        finally:
            self.captured = None

    def fragment_records(self, items: list[tuple], size: int) -> list[bytes]:
        """
        The messages of L{messages} cut into C{size}-byte fragments, one
        record each, with fresh record sequence numbers (so this is also a
        retransmission of the flight).
        """
        out = []
        for item in items:
            if item[0] == "ccs":
                out.append(self.record(ContentType.change_cipher_spec, b"\x01", item[1]))
                continue
            msg_type, seq, body, epoch = item
            for offset in range(0, max(len(body), 1), size):
                piece = HandshakeFragment(msg_type, len(body), seq, offset, body[offset : offset + size])
                out.append(self.record(ContentType.handshake, push_handshake_fragment(piece), epoch))
        return out

    def build(self, script: list[str]) -> list[bytes]:
        """
        One datagram per step, in script order.
        """
        return [b"".join(self.step(step)) for step in script]
