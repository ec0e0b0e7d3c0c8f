"""
What the client and server handshakes share: the transcript, the message
sequence counter, key derivation and the negotiated parameters.

Each role is one state enum plus one transition table (C{client.py},
C{server.py}); a (state, message) pair missing from the table is an
C{unexpected_message} (RFC 5246 §7.4, RFC 6347 §4.2).
"""

from __future__ import annotations

import enum
import hmac
from dataclasses import dataclass
from typing import Callable, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from . import prf
from .buffer import Buffer
from .configuration import DTLSConfiguration
from .constants import DTLS_1_2, AlertDescription, ContentType, HandshakeType
from .errors import AlertError, DecodeError, UnexpectedMessage
from .fragments import HANDSHAKE_HEADER, FlightItem
from .protection import RecordProtection
from .suites import CipherSuiteInfo

#: Pseudo message type under which ChangeCipherSpec appears in the
#: transition tables (it is a record type, not a handshake message).
CHANGE_CIPHER_SPEC = -1

# Plain ints for the per-message paths (an IntEnum class attribute costs
# several times a global name).
_FINISHED = int(HandshakeType.finished)
_HELLO_VERIFY_REQUEST = int(HandshakeType.hello_verify_request)
_HANDSHAKE = int(ContentType.handshake)
_CHANGE_CIPHER_SPEC = int(ContentType.change_cipher_spec)
_pack_header = HANDSHAKE_HEADER.pack


class HandshakeState(enum.Enum):
    """
    Base of each role's state enum (the keys of its transition table).

    Members hash by identity, which agrees with Enum equality (identity as
    well): C{Enum.__hash__} is a Python function hashing the member's name,
    and the table is looked up on every handshake message.
    """

    __hash__ = object.__hash__


@dataclass(frozen=True)
class NegotiatedParameters:
    """
    Everything the handshake settled, in one place.
    """

    cipher_suite: int
    version: int
    extended_master_secret: bool
    peer_certificates: tuple[x509.Certificate, ...] = ()
    resumed: bool = False
    alpn_protocol: str | None = None
    srtp_profile: int | None = None
    server_name: str | None = None
    psk_identity: bytes | None = None


class HandshakeHost(Protocol):
    """
    What a handshake needs from the connection that runs it.
    """

    def send_flight(self, items: list[FlightItem], final: bool) -> None: ...

    def install_write(self, epoch: int, protection: RecordProtection) -> None: ...

    def install_read(self, epoch: int, protection: RecordProtection) -> None: ...

    def handshake_complete(self, parameters: NegotiatedParameters) -> None: ...


def encode(push: Callable, message) -> bytes:
    buf = Buffer()
    push(buf, message)
    return buf.output


def decode(pull: Callable, body: bytes):
    buf = Buffer(body)
    message = pull(buf)
    buf.expect_eof()
    return message


@dataclass
class Secrets:
    """
    Key material of one session (RFC 5246 §8.1, §6.3).
    """

    client_random: bytes = b""
    server_random: bytes = b""
    master_secret: bytes = b""
    suite: CipherSuiteInfo | None = None
    extended_master_secret: bool = False


class Handshake:
    """
    Base of L{ClientHandshake} and L{ServerHandshake}.

    @ivar state: the current state, a member of the role's state enum.
    """

    #: {state: {message type: handler name}}; filled in by each role.
    TRANSITIONS: dict = {}

    def __init__(self, configuration: DTLSConfiguration, host: HandshakeHost, wall_clock: Callable[[], float]):
        self.config = configuration
        self.host = host
        self.wall_clock = wall_clock
        self.transcript = bytearray()
        #: the PRF hash over C{transcript[:_hashed]}, fed as hashes are
        #: asked for (see L{transcript_hash})
        self._transcript_hasher = None
        self._hashed = 0
        self.next_send_seq = 0
        self.secrets = Secrets()
        self.peer_certificates: tuple[x509.Certificate, ...] = ()
        self.state = None
        self.parameters: NegotiatedParameters | None = None
        self.pending_read: RecordProtection | None = None
        self.pending_write: RecordProtection | None = None
        #: the peer's RFC 8449 limit on the records we send it
        self.peer_record_size_limit: int | None = None
        self._pre_master = b""
        #: the PRF keyed with the master secret (see L{_master_prf})
        self._prf_key: prf.PRFKey | None = None
        #: our Finished verify_data and the peer's (RFC 5746 §3.1)
        self.client_verify_data = b""
        self.server_verify_data = b""

    # -- dispatch ------------------------------------------------------------

    def handle(self, msg_type: int, message_seq: int, body: bytes) -> None:
        """
        Run one complete handshake message (or L{CHANGE_CIPHER_SPEC}).

        @raise AlertError: the message is not allowed here or is invalid.
        """
        handlers = self.TRANSITIONS.get(self.state, {})
        name = handlers.get(msg_type)
        if name is None:
            label = "ChangeCipherSpec" if msg_type == CHANGE_CIPHER_SPEC else _message_name(msg_type)
            raise UnexpectedMessage(f"{label} not allowed in state {self.state.name}")
        if msg_type != CHANGE_CIPHER_SPEC:
            # RFC 6347 §4.2.6: hashed as one unfragmented message.
            length = len(body)
            raw = _pack_header((msg_type << 24) | length, message_seq, 0, length) + body
            # Finished is hashed after it is checked: its own verify_data
            # covers the messages before it only.
            if msg_type != _FINISHED:
                self.transcript += raw
            getattr(self, name)(body, raw)
        else:
            getattr(self, name)()

    def expects_change_cipher_spec(self) -> bool:
        return CHANGE_CIPHER_SPEC in self.TRANSITIONS.get(self.state, {})

    # -- building flights -----------------------------------------------------

    def message(self, msg_type: int, body: bytes, epoch: int) -> FlightItem:
        """
        Number a message we send and add it to the transcript.
        """
        seq = self.next_send_seq
        self.next_send_seq = seq + 1
        length = len(body)
        # The unfragmented header (RFC 6347 §4.2.6) goes into the transcript
        # and, kept in the item, in front of the message when it is sent whole.
        header = _pack_header((msg_type << 24) | length, seq, 0, length)
        if msg_type != _HELLO_VERIFY_REQUEST:
            transcript = self.transcript
            transcript += header
            transcript += body
        return FlightItem(epoch, _HANDSHAKE, msg_type, seq, body, header)

    @staticmethod
    def change_cipher_spec(epoch: int) -> FlightItem:
        return FlightItem(epoch, _CHANGE_CIPHER_SPEC, body=b"\x01")

    # -- secrets ----------------------------------------------------------------

    @property
    def prf_hash(self) -> type[hashes.HashAlgorithm]:
        return self.secrets.suite.prf_hash

    def transcript_hash(self) -> bytes:
        """
        The PRF hash of the transcript so far.

        A handshake asks for it up to three times (extended master secret,
        each Finished): one running hash takes in what was added since the
        last call, so no message is hashed twice. It starts on the first
        call, once the suite, and with it the hash, is known.
        """
        hasher = self._transcript_hasher
        if hasher is None:
            hasher = self._transcript_hasher = prf.new_hash(self.prf_hash)
        transcript = self.transcript
        if self._hashed < len(transcript):
            hasher.update(transcript[self._hashed :])
            self._hashed = len(transcript)
        return hasher.copy().digest()

    def reset_transcript(self) -> None:
        """
        Start the transcript over (RFC 6347 §4.2.1: the ClientHello and
        HelloVerifyRequest of a cookie exchange are not part of it).
        """
        self.transcript = bytearray()
        self._transcript_hasher = None
        self._hashed = 0

    def derive_master_secret(self, pre_master: bytes) -> None:
        """
        RFC 5246 §8.1, or RFC 7627 §4 over the transcript so far (which ends
        with ClientKeyExchange when this is called).
        """
        s = self.secrets
        if s.extended_master_secret:
            s.master_secret = prf.extended_master_secret(self.prf_hash, pre_master, self.transcript_hash())
        else:
            s.master_secret = prf.master_secret(self.prf_hash, pre_master, s.client_random, s.server_random)
        self.log_master_secret()

    def log_master_secret(self) -> None:
        s = self.secrets
        if self.config.keylog is not None:
            # NSS key log format, read by Wireshark and tshark.
            self.config.keylog(f"CLIENT_RANDOM {s.client_random.hex()} {s.master_secret.hex()}")

    def protections(self) -> tuple[RecordProtection, RecordProtection]:
        """
        @return: (client write, server write) protection from the key block.
        """
        s = self.secrets
        client_key, server_key, client_iv, server_iv = self._master_prf().key_block(
            s.suite, s.client_random, s.server_random
        )
        return RecordProtection(s.suite, client_key, client_iv), RecordProtection(s.suite, server_key, server_iv)

    def verify_data(self, label: bytes) -> bytes:
        return self._master_prf().verify_data(label, self.transcript_hash())

    def _master_prf(self) -> prf.PRFKey:
        """
        The PRF keyed with the master secret: the key block and both
        Finished messages use the same key, so it is set up once.
        """
        s = self.secrets
        key = self._prf_key
        if key is None or key.secret is not s.master_secret:
            key = self._prf_key = prf.PRFKey(s.suite.prf_hash, s.master_secret)
        return key

    def check_finished(self, body: bytes, raw: bytes, label: bytes) -> bytes:
        """
        RFC 5246 §7.4.9: compare the peer's verify_data, then add its
        Finished to the transcript.

        @raise AlertError: decrypt_error on a mismatch.
        """
        expected = self.verify_data(label)
        if len(body) != len(expected):
            raise DecodeError("Finished of the wrong length")
        if not hmac.compare_digest(body, expected):
            raise AlertError("Finished verify_data mismatch", AlertDescription.decrypt_error)
        self.transcript += raw
        return expected

    def release(self) -> None:
        """
        Drop what only the handshake needed, once it is over.
        """
        self.reset_transcript()
        self._prf_key = None


def _message_name(msg_type: int) -> str:
    try:
        return HandshakeType(msg_type).name
    except ValueError:
        return f"handshake message type {msg_type}"


def check_version(version: int) -> None:
    if version != DTLS_1_2:
        raise AlertError(f"version {version:#06x} is not DTLS 1.2", AlertDescription.protocol_version)
