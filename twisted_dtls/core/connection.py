"""
L{DTLSConnection}: one DTLS 1.2 association, sans-IO.

Time and datagrams come in; datagrams, one timer deadline and events go
out. The caller (the Twisted layer, or a test) runs::

    conn.receive_datagram(data, now)      # or connect / send / close / handle_timer
    for datagram in conn.datagrams_to_send(now): sock.send(datagram)
    deadline = conn.get_timer()
    while (event := conn.next_event()) is not None: ...
"""

from __future__ import annotations


from .configuration import DTLSConfiguration
from .constants import (
    MAX_PLAINTEXT,
    MAX_SEQUENCE_NUMBER,
    AlertDescription,
    AlertLevel,
    ContentType,
    HandshakeType,
)
from .errors import AlertError, DecodeError, HandshakeTimeout, ProtocolMisuseError
from .events import (
    AlertReceived,
    CloseReason,
    ConnectionClosed,
    DataReceived,
    Event,
    HandshakeCompleted,
)
from .fragments import FlightItem, Reassembler, pack_flight
from .flights import RetransmitTimer
from .client import ClientHandshake
from .handshake import CHANGE_CIPHER_SPEC, NegotiatedParameters
from .server import ServerHandshake
from .messages import pull_handshake_fragments
from .protection import RecordProtection
from .recordlayer import OpenedRecord, RecordLayer
from . import prf

#: Application records authenticated under the new keys but arriving before
#: the handshake completes (reordering) are held, up to this many.
MAX_EARLY_RECORDS = 8

# A plain int: compared on every application record, where an enum
# member's lookup and comparison would cost more than the test itself.
_APPLICATION_DATA = int(ContentType.application_data)
_HANDSHAKE = int(ContentType.handshake)
_ALERT = int(ContentType.alert)
_CHANGE_CIPHER_SPEC = int(ContentType.change_cipher_spec)


class DTLSConnection:
    """
    One DTLS association in one role.

    @ivar negotiated: the L{NegotiatedParameters} once established.
    @ivar drops: reason -> count of everything dropped silently, records and
        handshake fragments alike.
    """

    __slots__ = (
        "configuration",
        "is_client",
        "negotiated",
        "_records",
        "_reassembler",
        "_timer",
        "_handshake",
        "_events",
        "_outgoing",
        "_flight",
        "_flight_final",
        "_peer_flight_end",
        "_current_seq",
        "_early",
        "_work",
        "_now",
        "_started",
        "_server_started",
        "_closed",
        "_close_notify_sent",
        "_max_datagram_size",
        "_peer_limit",
        "_session",
        "_secrets",
        "_switched_here",
        "_send_limit",
    )

    def __init__(self, configuration: DTLSConfiguration, is_client: bool, session=None):
        """
        @param session: client only; a L{Session} from an earlier connection
            (L{DTLSConnection.session}) to offer for resumption.
        """
        configuration.validate(is_client)
        self.configuration = configuration
        self.is_client = is_client
        self._records = RecordLayer(configuration.max_pending_records)
        self._reassembler = Reassembler(
            configuration.max_handshake_message_size,
            configuration.max_reassembly_bytes,
            configuration.max_future_messages,
        )
        self._timer = RetransmitTimer(
            configuration.initial_timeout, configuration.max_timeout, configuration.max_retransmissions
        )
        if is_client:
            self._handshake = ClientHandshake(configuration, self, configuration.wall_clock, session)
        else:
            if session is not None:
                raise ProtocolMisuseError("only a client offers a session")
            self._handshake = ServerHandshake(configuration, self, configuration.wall_clock)
        # Plain lists, not deques: they hold a handful of items at most, and
        # an idle connection should cost as little memory as possible.
        self._events: list[Event] = []
        self._outgoing: list[bytes] = []
        self._flight: list[FlightItem] = []
        self._flight_final = False
        self._peer_flight_end = -1
        self._current_seq = -1
        self._early: list[bytes] = []
        self._work: list[OpenedRecord] = []
        self._now = 0.0
        self._started = False
        self._server_started = False
        self._closed = False
        self._close_notify_sent = False
        self._max_datagram_size = configuration.max_datagram_size
        self.negotiated: NegotiatedParameters | None = None
        #: the peer's RFC 8449 limit, copied out of the handshake at its end
        self._peer_limit = MAX_PLAINTEXT
        self._session = None
        #: (prf hash, master secret, client random, server random), kept for
        #: the exporter once the handshake object is gone
        self._secrets: tuple | None = None
        #: whether the datagram being processed installed new read keys
        self._switched_here = False
        #: L{max_send_size} once the handshake is over (-1: not computed);
        #: reset when the write epoch or the datagram size changes
        self._send_limit = -1

    # -- state ------------------------------------------------------------------------

    @property
    def is_established(self) -> bool:
        return self.negotiated is not None and not self._closed

    @property
    def is_closed(self) -> bool:
        return self._closed

    @property
    def session(self):
        """
        Client: the L{Session} to store for resumption once established
        (C{None} when the server offered no way to resume).
        """
        return self._session

    @property
    def drops(self) -> dict[str, int]:
        merged = dict(self._records.drops)
        for reason, n in self._reassembler.drops.items():
            merged[reason] = merged.get(reason, 0) + n
        return merged

    @property
    def max_send_size(self) -> int:
        """
        The largest application write that fits one record in one datagram.
        """
        limit = self._send_limit
        if limit >= 0:
            return limit
        limit = min(self._peer_record_limit(), self._records.max_payload(self._max_datagram_size))
        if self._handshake is None:
            # Until the handshake is over the peer's record size limit may
            # still arrive; after it only the epoch and datagram size move.
            self._send_limit = limit
        return limit

    def _peer_record_limit(self) -> int:
        handshake = self._handshake
        if handshake is None or handshake.peer_record_size_limit is None:
            return self._peer_limit
        return min(handshake.peer_record_size_limit, MAX_PLAINTEXT)

    # -- input ------------------------------------------------------------------------

    def connect(self, now: float) -> None:
        """
        Client: queue the first flight (the ClientHello).

        @raise ProtocolMisuseError: on a server, or called twice.
        """
        if not self.is_client:
            raise ProtocolMisuseError("connect() is for client connections")
        if self._started:
            raise ProtocolMisuseError("connect() called twice")
        self._started = True
        self._now = now
        if self._handshake is not None:
            self._handshake.start()

    def receive_datagram(self, data: bytes, now: float) -> None:
        """
        Take one UDP payload. Never raises on anything the peer sends.
        """
        if self._closed:
            return
        if not self.is_client:
            self._started = True
        self._now = now
        failures = self._records.auth_failures
        self._switched_here = False
        self._process(self._records.open_datagram(data), failures)

    def receive_application_datagram(self, data: bytes, now: float) -> bytes | None:
        """
        L{receive_datagram} for the datagram an established association
        receives nearly always, one application-data record of the current
        epoch: its plaintext is returned rather than queued as a
        L{DataReceived} event.

        @return: the plaintext; or None for any other datagram, which has
            then been handled exactly as L{receive_datagram} handles it
            (L{next_event} and L{drops} say what happened).
        """
        if self.negotiated is None or self._closed or self._work:
            self.receive_datagram(data, now)
            return None
        self._now = now
        records = self._records
        failures = records.auth_failures
        opened = records.open_application_datagram(data)
        if type(opened) is bytes:
            return opened
        self._switched_here = False
        self._process(opened, failures)
        return None

    def _process(self, opened: list, failures: int) -> None:
        """
        Act on the records opened from one datagram; C{failures} is the
        record layer's authentication failure count before it was opened.
        """
        try:
            self._work.extend(opened)
            # Records queued for the next epoch are opened while draining,
            # when the ChangeCipherSpec installs their keys: count those too.
            self._drain()
            if self._records.auth_failures != failures and not self._closed:
                if self._awaiting_finished() and self._switched_here and self._records.switch_failures:
                    # A record of the new epoch that came in the same
                    # datagram as the ChangeCipherSpec installing it is the
                    # peer's own Finished, and it does not decrypt under the
                    # keys we derived: a wrong PSK or a broken key exchange.
                    # Silence would leave both sides retransmitting until
                    # they time out. Failures in other datagrams may be
                    # forged, and are discarded (RFC 6347 §4.1.2.7).
                    raise AlertError("peer's Finished failed authentication", AlertDescription.bad_record_mac)
                if self._records.auth_failures > self.configuration.max_auth_failures:
                    raise AlertError("too many records failed authentication", AlertDescription.bad_record_mac)
        except AlertError as e:
            self._fail(e)

    def _awaiting_finished(self) -> bool:
        return self.negotiated is None and self._records.read_epoch > 0

    def handle_timer(self, now: float) -> None:
        """
        Call when the deadline from L{get_timer} has passed.
        """
        self._now = now
        if self._closed or not self._timer.expired(now):
            return
        try:
            self._timer.back_off(now)
        except HandshakeTimeout as e:
            self._terminate(ConnectionClosed(CloseReason.TIMEOUT, None, str(e), e))
            return
        config = self.configuration
        if config.pmtu_fallback_after and self._timer.retransmissions >= config.pmtu_fallback_after:
            # Repeated silence may mean our datagrams exceed the path MTU
            # and are being lost whole: halve them, down to the floor.
            self._max_datagram_size = max(config.min_datagram_size, self._max_datagram_size // 2)
            self._send_limit = -1
        self._transmit_flight()

    def send(self, data: bytes) -> None:
        """
        Send C{data} as one application-data record.

        @raise ProtocolMisuseError: before the handshake completes or after
            the connection closed.
        @raise ValueError: C{data} does not fit one datagram
            (see L{max_send_size}).
        """
        if self._closed or self.negotiated is None:
            self._refuse_send()
        limit = self.max_send_size
        if len(data) > limit:
            raise ValueError(
                f"a write of {len(data)} bytes does not fit one datagram: the limit is {limit} bytes"
            )
        self._outgoing.append(
            self._records.seal(ContentType.application_data, data if type(data) is bytes else bytes(data))
        )

    def send_unchecked(self, data: bytes) -> None:
        """
        L{send} for a caller that has just checked C{data} (bytes) against
        L{max_send_size} itself, such as the Twisted transport.

        @raise ProtocolMisuseError: before the handshake completes or after
            the connection closed.
        """
        if self._closed or self.negotiated is None:
            self._refuse_send()
        self._outgoing.append(self._records.seal(_APPLICATION_DATA, data))

    def seal_application_datagram(self, data: bytes) -> bytes | None:
        """
        L{send_unchecked} for a caller that sends the datagram itself, at
        once: the record is returned instead of queued. If datagrams are
        still waiting in L{datagrams_to_send}, the record is queued behind
        them (so nothing overtakes them) and None is returned.

        @raise ProtocolMisuseError: before the handshake completes or after
            the connection closed.
        """
        if self._closed or self.negotiated is None:
            self._refuse_send()
        datagram = self._records.seal(_APPLICATION_DATA, data)
        if self._outgoing:
            self._outgoing.append(datagram)
            return None
        return datagram

    def _refuse_send(self) -> None:
        if self._closed:
            raise ProtocolMisuseError("the connection is closed")
        raise ProtocolMisuseError("the handshake has not completed")

    def release_ciphers(self) -> None:
        """
        Drop the AEAD contexts of an idle association to save memory; each
        is rebuilt when a record next needs it (see
        L{RecordLayer.release_ciphers}).
        """
        self._records.release_ciphers()

    def close(self, alert: AlertDescription | None = None) -> None:
        """
        End the connection: with close_notify (RFC 5246 §7.2.1), or with the
        fatal C{alert} given (for example C{access_denied} for a peer the
        application refuses).
        """
        if self._closed:
            return
        if alert is not None and alert != AlertDescription.close_notify:
            self._fail(AlertError("closed locally", AlertDescription(alert)))
            return
        self._send_alert(AlertLevel.warning, AlertDescription.close_notify)
        self._terminate(ConnectionClosed(CloseReason.CLOSE_NOTIFY, AlertDescription.close_notify, "closed locally"))

    def abort(self) -> None:
        """
        End the connection at once, without telling the peer.
        """
        if self._closed:
            return
        self._terminate(ConnectionClosed(CloseReason.ABORTED, None, "aborted locally"))

    # -- output -----------------------------------------------------------------------

    def datagrams_to_send(self, now: float) -> list[bytes]:
        out, self._outgoing = self._outgoing, []
        return out

    def get_timer(self) -> float | None:
        return None if self._closed else self._timer.deadline

    def next_event(self) -> Event | None:
        return self._events.pop(0) if self._events else None

    def export_keying_material(self, label: bytes, context: bytes | None, length: int) -> bytes:
        """
        RFC 5705 keying material exporter.

        @raise ProtocolMisuseError: before the handshake completes.
        """
        if self._secrets is None:
            raise ProtocolMisuseError("no keys before the handshake completes")
        prf_hash, master_secret, client_random, server_random = self._secrets
        return prf.export_keying_material(prf_hash, master_secret, client_random, server_random, label, context, length)

    # -- record processing ------------------------------------------------------------

    def _drain(self) -> None:
        while self._work and not self._closed:
            record = self._work.pop(0)
            kind = record.content_type
            if kind == _HANDSHAKE:
                self._on_handshake_record(record)
            elif kind == _APPLICATION_DATA:
                self._on_application_data(record)
            elif kind == _ALERT:
                self._on_alert(record)
            elif kind == _CHANGE_CIPHER_SPEC:
                self._on_change_cipher_spec(record)

    def _count(self, reason: str) -> None:
        self._records.drops[reason] += 1

    def _on_handshake_record(self, record: OpenedRecord) -> None:
        try:
            fragments = pull_handshake_fragments(record.data)
        except DecodeError:
            # Unauthenticated epoch-0 garbage must not kill a handshake
            # (RFC 6347 §4.1.2.7); drop the record.
            self._count("malformed_handshake")
            return
        current_epoch = record.epoch == self._records.read_epoch
        reassembler = self._reassembler
        for fragment in fragments:
            if fragment.message_seq < reassembler.next_seq:
                self._on_old_fragment(fragment)
                continue
            if not current_epoch:
                self._count("stale_epoch_handshake")
                continue
            if self.negotiated is not None:
                self._on_post_handshake_fragment(fragment)
                continue
            if not self._server_started and not self.is_client:
                self._begin_server(record, fragment)
            message = reassembler.take_whole(fragment)
            if message is None:
                reassembler.add(fragment)
                message = reassembler.pop()
            while message is not None and not self._closed:
                msg_type, seq, body = message
                self._current_seq = seq
                self._handshake.handle(msg_type, seq, body)
                if self.negotiated is not None:
                    break
                message = reassembler.pop()

    def _begin_server(self, record: OpenedRecord, fragment) -> None:
        """
        The first fragment a server connection sees is the ClientHello whose
        cookie the port verified: our message_seq and record sequence
        numbers continue from it (RFC 6347 §4.2.1, §4.2.2).
        """
        self._server_started = True
        if fragment.msg_type != HandshakeType.client_hello:
            raise AlertError("a connection must start with a ClientHello", AlertDescription.unexpected_message)
        # The cookie does not cover these numbers and we continue from them:
        # leave room for our own messages and records above them.
        if fragment.message_seq > 0xFFFF - 16 or record.sequence_number > MAX_SEQUENCE_NUMBER - 0xFFFF:
            raise AlertError("ClientHello numbering leaves no room to answer", AlertDescription.illegal_parameter)
        self._reassembler.next_seq = fragment.message_seq
        self._records.set_next_write_sequence(0, record.sequence_number)

    def _on_old_fragment(self, fragment) -> None:
        # The peer retransmits a flight we already have, so it has not seen
        # our answer: send it again (RFC 6347 §4.2.4), once per peer flight.
        if (
            fragment.message_seq == self._peer_flight_end
            and fragment.fragment_offset + len(fragment.body) == fragment.length
            and self._flight
        ):
            self._transmit_flight()

    def _on_post_handshake_fragment(self, fragment) -> None:
        renegotiation = HandshakeType.hello_request if self.is_client else HandshakeType.client_hello
        if fragment.msg_type == renegotiation:
            # RFC 5746 §4.5 / RFC 5246 §7.2.2: refuse, and carry on.
            self._reassembler.next_seq = fragment.message_seq + 1
            self._send_alert(AlertLevel.warning, AlertDescription.no_renegotiation)
            return
        raise AlertError(
            f"handshake message type {fragment.msg_type} after the handshake", AlertDescription.unexpected_message
        )

    def _on_change_cipher_spec(self, record: OpenedRecord) -> None:
        if record.epoch != self._records.read_epoch:
            self._count("stale_change_cipher_spec")
            return
        if record.data != b"\x01":
            if record.epoch == 0:
                # Unauthenticated: anyone can send it, so it cannot be fatal.
                self._count("malformed_change_cipher_spec")
                return
            raise DecodeError("malformed ChangeCipherSpec")
        if self._handshake is not None and self._handshake.expects_change_cipher_spec():
            self._handshake.handle(CHANGE_CIPHER_SPEC, 0, b"")
        elif record.epoch == 0 and self.negotiated is None:
            # Reordered ahead of the handshake messages it follows; the peer
            # retransmits it with its flight.
            self._count("early_change_cipher_spec")
        else:
            raise AlertError("unexpected ChangeCipherSpec", AlertDescription.unexpected_message)

    def _on_application_data(self, record: OpenedRecord) -> None:
        if record.epoch == 0:
            # Never accept unprotected application data (RFC 6347 §4.1).
            self._count("plaintext_application_data")
            return
        if record.epoch != self._records.read_epoch:
            self._count("stale_epoch_application_data")
            return
        if self.negotiated is None:
            if len(self._early) < MAX_EARLY_RECORDS:
                self._early.append(record.data)
            else:
                self._count("early_application_data")
            return
        self._events.append(DataReceived(record.data))

    def _on_alert(self, record: OpenedRecord) -> None:
        if record.epoch != self._records.read_epoch:
            # An alert in an old epoch is unauthenticated or stale.
            self._count("stale_epoch_alert")
            return
        if len(record.data) != 2:
            self._count("malformed_alert")
            return
        level, description = record.data[0], record.data[1]
        if description == AlertDescription.close_notify:
            if not self._close_notify_sent:
                self._send_alert(AlertLevel.warning, AlertDescription.close_notify)
            self._terminate(ConnectionClosed(CloseReason.CLOSE_NOTIFY, AlertDescription.close_notify, "peer closed"))
        elif level == AlertLevel.fatal:
            from .errors import PeerAlert

            error = PeerAlert(description)
            self._terminate(ConnectionClosed(CloseReason.ALERT_RECEIVED, error.description, str(error), error))
        else:
            self._events.append(AlertReceived(description))

    # -- HandshakeHost ------------------------------------------------------------------

    def send_flight(self, items: list[FlightItem], final: bool) -> None:
        self._flight = items
        self._flight_final = final
        self._peer_flight_end = self._current_seq
        if final:
            self._timer.stop()
        else:
            self._timer.start(self._now)
        self._transmit_flight()

    def install_write(self, epoch: int, protection: RecordProtection) -> None:
        self._records.install_write(epoch, protection)
        self._send_limit = -1

    def install_read(self, epoch: int, protection: RecordProtection) -> None:
        # Fragments buffered for later messages came in the old epoch; the
        # messages after ChangeCipherSpec must come in the new one.
        self._reassembler.clear()
        self._switched_here = True
        self._work[0:0] = self._records.install_read(epoch, protection)

    def handshake_complete(self, parameters: NegotiatedParameters) -> None:
        self.negotiated = parameters
        handshake = self._handshake
        secrets = handshake.secrets
        self._secrets = (secrets.suite.prf_hash, secrets.master_secret, secrets.client_random, secrets.server_random)
        if handshake.peer_record_size_limit is not None:
            self._peer_limit = min(handshake.peer_record_size_limit, MAX_PLAINTEXT)
        self._session = getattr(handshake, "session", None)
        if not self._flight_final:
            # We received the last flight: nothing of ours is awaiting an answer.
            self._timer.stop()
            self._flight = []
        # Transcript, key shares, certificates beyond the peer's, buffers:
        # none of it is needed once the handshake is over.
        handshake.release()
        self._handshake = None
        self._reassembler.clear()
        self._events.append(
            HandshakeCompleted(
                cipher_suite=parameters.cipher_suite,
                version=parameters.version,
                peer_certificates=parameters.peer_certificates,
                resumed=parameters.resumed,
                alpn_protocol=parameters.alpn_protocol,
                srtp_profile=parameters.srtp_profile,
                server_name=parameters.server_name,
                psk_identity=parameters.psk_identity,
            )
        )
        early, self._early = self._early, []
        for data in early:
            self._events.append(DataReceived(data))

    # -- output helpers -----------------------------------------------------------------

    def _transmit_flight(self) -> None:
        records = self._records
        self._outgoing.extend(
            pack_flight(
                self._flight, records.seal, self._max_datagram_size, records.overhead, self._peer_record_limit()
            )
        )

    def _send_alert(self, level: int, description: int) -> None:
        if description == AlertDescription.close_notify:
            self._close_notify_sent = True
        try:
            self._outgoing.append(self._records.seal(ContentType.alert, bytes((level, description))))
        except ValueError:
            # sequence space exhausted: nothing more can be sent at all
            pass

    def _fail(self, error: AlertError) -> None:
        self._send_alert(AlertLevel.fatal, error.description)
        self._terminate(ConnectionClosed(CloseReason.ALERT_SENT, error.description, error.message, error))

    def _terminate(self, event: ConnectionClosed) -> None:
        self._closed = True
        self._timer.stop()
        self._flight = []
        self._reassembler.clear()
        if self._handshake is not None:
            self._handshake.release()
            self._handshake = None
        self._work = []
        self._events.append(event)
