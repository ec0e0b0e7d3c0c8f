"""
Handshake messages: the DTLS handshake header (RFC 6347 §4.2.2) and one
dataclass with a C{pull_X(buf)}/C{push_X(buf, msg)} pair per message body
(RFC 5246 §7.4, RFC 6347 §4.2.1, RFC 4279, RFC 5077, RFC 5489, RFC 8422).

Every C{pull_X} for a message body expects C{buf} to hold exactly that body:
it raises L{DecodeError} on truncation, on a vector length outside its
bounds and on trailing bytes, and on nothing else. Where a message parses but
holds a value the RFC forbids, the L{DecodeError} carries the
C{illegal_parameter} description. The C{push_X} functions trust their
input: they are for messages this side builds.

ServerKeyExchange and ClientKeyExchange have no single shape: which one
applies depends on the negotiated key exchange, so the state machine picks
the pull function for its suite.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .buffer import Buffer
from .constants import AlertDescription, ECCurveType
from .errors import DecodeError
from .extensions import encode_extensions, pull_extensions, push_extensions

#: RFC 5246 §7.4.1.2: Random is 32 bytes.
RANDOM_SIZE = 32
#: RFC 5246 §7.4.1.2: SessionID session_id<0..32>.
MAX_SESSION_ID_SIZE = 32


def _illegal(message: str) -> DecodeError:
    return DecodeError(message, AlertDescription.illegal_parameter)


# -- the handshake header (RFC 6347 §4.2.2) ---------------------------------


@dataclass(slots=True)
class HandshakeFragment:
    """
    One handshake fragment as carried in a record.

    @ivar msg_type: the HandshakeType.
    @ivar length: the length of the whole message body.
    @ivar message_seq: the message's sequence number in this handshake.
    @ivar fragment_offset: where C{body} starts within the message body.
    @ivar body: the fragment's bytes; its length is the wire
        C{fragment_length}.
    """

    msg_type: int
    length: int
    message_seq: int
    fragment_offset: int
    body: bytes

    @property
    def fragment_length(self) -> int:
        return len(self.body)

    @property
    def is_complete(self) -> bool:
        """
        Whether this fragment is a whole, unfragmented message.
        """
        return self.fragment_offset == 0 and len(self.body) == self.length


def pull_handshake_fragment(buf: Buffer) -> HandshakeFragment:
    """
    Read one handshake header and its fragment.

    @raise DecodeError: on truncation, or if the fragment reaches past the
        message length.
    """
    msg_type = buf.pull_uint8()
    length = buf.pull_uint24()
    message_seq = buf.pull_uint16()
    fragment_offset = buf.pull_uint24()
    body = buf.pull_opaque(3)
    if fragment_offset + len(body) > length:
        raise DecodeError(
            f"fragment {fragment_offset}+{len(body)} beyond message length {length}"
        )
    return HandshakeFragment(msg_type, length, message_seq, fragment_offset, body)


# The 12-byte handshake header as four fields: msg_type and the uint24
# length; message_seq; the top 16 bits of fragment_offset; its low byte and
# the uint24 fragment_length.
_FRAGMENT_HEADER = struct.Struct(">IHHI")
_FRAGMENT_HEADER_SIZE = _FRAGMENT_HEADER.size


def pull_handshake_fragments(data: bytes) -> list[HandshakeFragment]:
    """
    Parse every handshake fragment in one record's payload.

    A record may carry several fragments but never a partial header
    (RFC 6347 §4.2.3), and a handshake record is never empty (RFC 5246
    §6.2.1).

    @raise DecodeError: on an empty payload, truncation, or a fragment
        reaching past its message length.
    """
    if not data:
        raise DecodeError("empty handshake record")
    # Every handshake record goes through here: well-formed fragments are
    # cut out with one struct unpack each, and anything irregular is parsed
    # again by L{pull_handshake_fragment}, which raises the precise error.
    fragments = []
    unpack = _FRAGMENT_HEADER.unpack_from
    pos = 0
    end = len(data)
    while pos < end:
        start = pos + _FRAGMENT_HEADER_SIZE
        if start > end:
            return _pull_handshake_fragments(data)
        type_and_length, message_seq, offset_high, offset_low_and_length = unpack(data, pos)
        length = type_and_length & 0xFFFFFF
        offset = (offset_high << 8) | (offset_low_and_length >> 24)
        pos = start + (offset_low_and_length & 0xFFFFFF)
        if pos > end or offset + pos - start > length:
            return _pull_handshake_fragments(data)
        fragments.append(HandshakeFragment(type_and_length >> 24, length, message_seq, offset, data[start:pos]))
    return fragments


def _pull_handshake_fragments(data: bytes) -> list[HandshakeFragment]:
    buf = Buffer(data)
    fragments = []
    while not buf.eof():
        fragments.append(pull_handshake_fragment(buf))
    return fragments


def push_handshake_fragment(fragment: HandshakeFragment) -> bytes:
    """
    @return: the 12-byte header followed by the fragment body.
    """
    buf = Buffer()
    buf.push_uint8(fragment.msg_type)
    buf.push_uint24(fragment.length)
    buf.push_uint16(fragment.message_seq)
    buf.push_uint24(fragment.fragment_offset)
    buf.push_opaque(3, fragment.body)
    return buf.output


def encode_handshake(msg_type: int, message_seq: int, body: bytes) -> bytes:
    """
    The whole message with an unfragmented header, as it enters the
    handshake transcript: RFC 6347 §4.2.6 hashes the DTLS header with
    C{fragment_offset} 0 and C{fragment_length} equal to C{length}, whatever
    fragmentation was used on the wire.
    """
    return push_handshake_fragment(HandshakeFragment(msg_type, len(body), message_seq, 0, body))


def _pull_random(buf: Buffer) -> bytes:
    return buf.pull_bytes(RANDOM_SIZE)


def _pull_session_id(buf: Buffer) -> bytes:
    return buf.pull_opaque(1, maximum=MAX_SESSION_ID_SIZE)


def _pull_even_uint16_list(buf: Buffer, name: str) -> list[int]:
    # <2..2^16-2> lists of uint16: a multiple of two, and not empty.
    values = buf.pull_list(2, 2)
    if not values:
        raise DecodeError(f"empty {name}")
    return values


# -- ClientHello (RFC 5246 §7.4.1.2, RFC 6347 §4.2.1) -----------------------


@dataclass(slots=True)
class ClientHello:
    """
    @ivar cookie: empty on a first ClientHello; the HelloVerifyRequest cookie
        on the second (RFC 6347 §4.2.1).
    @ivar extensions: C{(type, data)} pairs in wire order; an absent
        extension block reads as C{[]}, and C{[]} is written as no block.
    """

    client_version: int
    random: bytes
    session_id: bytes = b""
    cookie: bytes = b""
    cipher_suites: list[int] = field(default_factory=list)
    compression_methods: list[int] = field(default_factory=lambda: [0])
    extensions: list[tuple[int, bytes]] = field(default_factory=list)


def pull_client_hello(buf: Buffer) -> ClientHello:
    client_version = buf.pull_uint16()
    random = _pull_random(buf)
    session_id = _pull_session_id(buf)
    cookie = buf.pull_opaque(1)
    cipher_suites = _pull_even_uint16_list(buf, "cipher_suites")
    compression_methods = buf.pull_list(1, 1)
    if not compression_methods:
        raise DecodeError("empty compression_methods")
    # RFC 5246 §7.4.1.2: the extensions block may be absent altogether.
    extensions = [] if buf.eof() else pull_extensions(buf)
    buf.expect_eof()
    return ClientHello(
        client_version, random, session_id, cookie, cipher_suites, compression_methods, extensions
    )


def parse_client_hello(body: bytes) -> ClientHello:
    """
    A whole ClientHello body: C{pull_client_hello} over exactly C{body}.

    A server parses one per handshake, so a well-formed body is read by
    index arithmetic here; anything irregular (truncation, bad lengths,
    trailing bytes, a duplicate extension) goes through
    L{pull_client_hello}, which raises the precise L{DecodeError}.
    """
    body = bytes(body)
    end = len(body)
    cookie_end = client_hello_offer_at(body)
    if cookie_end is not None and cookie_end + 2 <= end:
        suites_length = (body[cookie_end] << 8) | body[cookie_end + 1]
        suites_end = cookie_end + 2 + suites_length
        if suites_length and not suites_length & 1 and suites_end < end and body[suites_end]:
            methods_end = suites_end + 1 + body[suites_end]
            extensions = split_extension_block(body, methods_end, end)
            if extensions is not None:
                session_end = 35 + body[34]
                return ClientHello(
                    (body[0] << 8) | body[1],
                    body[2:34],
                    body[35:session_end],
                    body[session_end + 1 : cookie_end],
                    list(struct.unpack_from(f">{suites_length >> 1}H", body, cookie_end + 2)),
                    list(body[suites_end + 1 : methods_end]),
                    extensions,
                )
    buf = Buffer(body)
    hello = pull_client_hello(buf)
    buf.expect_eof()
    return hello


def client_hello_offer_at(body: bytes) -> int | None:
    """
    Where the offer starts in a ClientHello body: the index of
    cipher_suites, after client_version, random, session_id (at most 32
    bytes, RFC 5246 §7.4.1.2) and cookie, whose framing is checked. C{None}
    if that framing does not fit in C{body}.

    A server's choices depend on the offer (cipher_suites,
    compression_methods, extensions) and its own settings, never on the
    random, session_id or cookie before it.
    """
    # version(2) random(32) session_id<0..32> cookie<0..2^8-1>
    end = len(body)
    if end <= 34 or body[34] > MAX_SESSION_ID_SIZE:
        return None
    session_end = 35 + body[34]
    if session_end >= end:
        return None
    cookie_end = session_end + 1 + body[session_end]
    return cookie_end if cookie_end <= end else None


def split_extension_block(body: bytes, pos: int, end: int) -> list[tuple[int, bytes]] | None:
    """
    The hello extension block at C{body[pos:end]}, which must end there
    exactly (or be absent: C{pos == end}), as (type, data) pairs; C{None}
    for anything L{pull_extensions} would refuse as malformed (framing, a
    type twice). Used by L{parse_client_hello} and by the stateless
    listener before it creates a connection.
    """
    if pos == end:
        return []  # RFC 5246 §7.4.1.2: the block may be absent
    if pos + 2 > end or pos + 2 + ((body[pos] << 8) | body[pos + 1]) != end:
        return None  # truncated, overlong, or followed by trailing bytes
    pos += 2
    extensions = []
    seen = set()
    unpack = _EXTENSION_HEADER.unpack_from
    while pos < end:
        data_start = pos + 4
        if data_start > end:
            return None
        ext_type, size = unpack(body, pos)
        pos = data_start + size
        if pos > end or ext_type in seen:
            return None
        seen.add(ext_type)
        extensions.append((ext_type, body[data_start:pos]))
    return extensions


# An extension's type and the length of its data (RFC 5246 §7.4.1.4).
_EXTENSION_HEADER = struct.Struct(">HH")


def push_client_hello(buf: Buffer, msg: ClientHello) -> None:
    buf.push_uint16(msg.client_version)
    buf.push_bytes(msg.random)
    buf.push_opaque(1, msg.session_id)
    buf.push_opaque(1, msg.cookie)
    buf.push_list(2, 2, msg.cipher_suites)
    buf.push_list(1, 1, msg.compression_methods)
    if msg.extensions:
        push_extensions(buf, msg.extensions)


# -- ServerHello (RFC 5246 §7.4.1.3) -----------------------------------------


@dataclass(slots=True)
class ServerHello:
    server_version: int
    random: bytes
    session_id: bytes
    cipher_suite: int
    compression_method: int = 0
    extensions: list[tuple[int, bytes]] = field(default_factory=list)


def pull_server_hello(buf: Buffer) -> ServerHello:
    server_version = buf.pull_uint16()
    random = _pull_random(buf)
    session_id = _pull_session_id(buf)
    cipher_suite = buf.pull_uint16()
    compression_method = buf.pull_uint8()
    extensions = [] if buf.eof() else pull_extensions(buf)
    buf.expect_eof()
    return ServerHello(
        server_version, random, session_id, cipher_suite, compression_method, extensions
    )


_SUITE_AND_COMPRESSION = struct.Struct(">HB")


def push_server_hello(buf: Buffer, msg: ServerHello) -> None:
    buf.push_bytes(encode_server_hello(msg))


def encode_server_hello(msg: ServerHello) -> bytes:
    """
    The ServerHello body (what L{push_server_hello} writes), built in one
    expression: a server sends one per handshake.
    """
    session_id = msg.session_id
    return (
        msg.server_version.to_bytes(2, "big")
        + msg.random
        + len(session_id).to_bytes(1, "big")
        + session_id
        + encode_server_hello_tail(msg.cipher_suite, msg.compression_method, msg.extensions)
    )


def encode_server_hello_tail(cipher_suite: int, compression_method: int, extensions: list[tuple[int, bytes]]) -> bytes:
    """
    What follows the session_id in a ServerHello body: the same for every
    handshake in which a server makes the same choices.
    """
    tail = _SUITE_AND_COMPRESSION.pack(cipher_suite, compression_method)
    return tail + encode_extensions(extensions) if extensions else tail


# -- HelloVerifyRequest (RFC 6347 §4.2.1) ------------------------------------


@dataclass(slots=True)
class HelloVerifyRequest:
    """
    @ivar server_version: 0xFEFF (DTLS 1.0) whatever version is negotiated
        later (RFC 6347 §4.2.1, errata 4103).
    """

    server_version: int
    cookie: bytes


def pull_hello_verify_request(buf: Buffer) -> HelloVerifyRequest:
    server_version = buf.pull_uint16()
    cookie = buf.pull_opaque(1)
    buf.expect_eof()
    return HelloVerifyRequest(server_version, cookie)


def push_hello_verify_request(buf: Buffer, msg: HelloVerifyRequest) -> None:
    buf.push_uint16(msg.server_version)
    buf.push_opaque(1, msg.cookie)


# -- Certificate (RFC 5246 §7.4.2) -------------------------------------------


@dataclass(slots=True)
class Certificate:
    """
    @ivar certificates: DER certificates, the sender's own first; empty when a
        client has no certificate to send (RFC 5246 §7.4.6).
    """

    certificates: list[bytes] = field(default_factory=list)


def pull_certificate(buf: Buffer) -> Certificate:
    chain = buf.pull_vector(3)
    certificates = []
    while not chain.eof():
        certificates.append(chain.pull_opaque(3, minimum=1))
    buf.expect_eof()
    return Certificate(certificates)


def push_certificate(buf: Buffer, msg: Certificate) -> None:
    with buf.push_block(3):
        for der in msg.certificates:
            buf.push_opaque(3, der)


# -- CertificateRequest (RFC 5246 §7.4.4) ------------------------------------


@dataclass(slots=True)
class CertificateRequest:
    """
    @ivar certificate_types: ClientCertificateType values.
    @ivar signature_schemes: C{supported_signature_algorithms} as 16-bit
        SignatureScheme code points.
    @ivar authorities: DER-encoded DistinguishedNames of acceptable CAs.
    """

    certificate_types: list[int]
    signature_schemes: list[int]
    authorities: list[bytes] = field(default_factory=list)


def pull_certificate_request(buf: Buffer) -> CertificateRequest:
    certificate_types = buf.pull_list(1, 1)
    if not certificate_types:
        raise DecodeError("empty certificate_types")
    signature_schemes = _pull_even_uint16_list(buf, "supported_signature_algorithms")
    names = buf.pull_vector(2)
    authorities = []
    while not names.eof():
        authorities.append(names.pull_opaque(2, minimum=1))
    buf.expect_eof()
    return CertificateRequest(certificate_types, signature_schemes, authorities)


def push_certificate_request(buf: Buffer, msg: CertificateRequest) -> None:
    buf.push_list(1, 1, msg.certificate_types)
    buf.push_list(2, 2, msg.signature_schemes)
    with buf.push_block(2):
        for name in msg.authorities:
            buf.push_opaque(2, name)


# -- ServerHelloDone (RFC 5246 §7.4.5) ---------------------------------------


@dataclass(slots=True)
class ServerHelloDone:
    pass


def pull_server_hello_done(buf: Buffer) -> ServerHelloDone:
    buf.expect_eof()
    return ServerHelloDone()


def push_server_hello_done(buf: Buffer, msg: ServerHelloDone) -> None:
    pass


# -- CertificateVerify (RFC 5246 §7.4.8) -------------------------------------


@dataclass(slots=True)
class CertificateVerify:
    """
    @ivar scheme: the SignatureScheme (RFC 5246 §4.7 SignatureAndHashAlgorithm).
    """

    scheme: int
    signature: bytes


def _pull_signed(buf: Buffer) -> tuple[int, bytes]:
    # RFC 5246 §4.7 digitally-signed: algorithm, then opaque<0..2^16-1>.
    return buf.pull_uint16(), buf.pull_opaque(2)


def pull_certificate_verify(buf: Buffer) -> CertificateVerify:
    scheme, signature = _pull_signed(buf)
    buf.expect_eof()
    return CertificateVerify(scheme, signature)


def push_certificate_verify(buf: Buffer, msg: CertificateVerify) -> None:
    buf.push_uint16(msg.scheme)
    buf.push_opaque(2, msg.signature)


# -- Finished (RFC 5246 §7.4.9) ----------------------------------------------


@dataclass(slots=True)
class Finished:
    """
    @ivar verify_data: the whole body: 12 bytes for every TLS 1.2 suite here;
        a wrong length simply fails the comparison with the expected value.
    """

    verify_data: bytes


def pull_finished(buf: Buffer) -> Finished:
    return Finished(buf.pull_rest())


def push_finished(buf: Buffer, msg: Finished) -> None:
    buf.push_bytes(msg.verify_data)


# -- NewSessionTicket (RFC 5077 §3.3) ----------------------------------------


@dataclass(slots=True)
class NewSessionTicket:
    """
    @ivar lifetime_hint: seconds; 0 means unspecified.
    """

    lifetime_hint: int
    ticket: bytes


def pull_new_session_ticket(buf: Buffer) -> NewSessionTicket:
    lifetime_hint = buf.pull_uint32()
    ticket = buf.pull_opaque(2)
    buf.expect_eof()
    return NewSessionTicket(lifetime_hint, ticket)


def push_new_session_ticket(buf: Buffer, msg: NewSessionTicket) -> None:
    buf.push_uint32(msg.lifetime_hint)
    buf.push_opaque(2, msg.ticket)


# -- ServerKeyExchange (RFC 8422 §5.4, RFC 4279 §2, RFC 5489 §2) -------------


#: ServerECDHParams up to the point: curve_type, named_curve, point length.
_ECDH_PARAMS_HEADER = struct.Struct(">BHB")
#: RFC 5246 §4.7 digitally-signed: the SignatureScheme and the length of
#: the signature that follows.
_SIGNED_HEADER = struct.Struct(">HH")


@dataclass(slots=True)
class ServerECDHParams:
    """
    C{ServerECDHParams} with C{curve_type} named_curve (the only type allowed,
    RFC 8422 §5.4).

    @ivar named_curve: the NamedGroup.
    @ivar public: the encoded point (or X25519/X448 key).
    """

    named_curve: int
    public: bytes


def pull_server_ecdh_params(buf: Buffer) -> ServerECDHParams:
    """
    Read a C{ServerECDHParams} embedded in a larger message; unlike the
    message pulls this leaves what follows in C{buf}.

    @raise DecodeError: with C{illegal_parameter} for a curve type other than
        named_curve (RFC 8422 §5.4 deprecates the explicit ones).
    """
    curve_type = buf.pull_uint8()
    if curve_type != ECCurveType.named_curve:
        raise _illegal(f"ECCurveType {curve_type} is not named_curve")
    named_curve = buf.pull_uint16()
    public = buf.pull_opaque(1, minimum=1)
    return ServerECDHParams(named_curve, public)


def push_server_ecdh_params(buf: Buffer, params: ServerECDHParams) -> None:
    buf.push_uint8(ECCurveType.named_curve)
    buf.push_uint16(params.named_curve)
    buf.push_opaque(1, params.public)


@dataclass(slots=True)
class ServerKeyExchangeECDHE:
    """
    The signed ServerKeyExchange of ECDHE_ECDSA and ECDHE_RSA
    (RFC 8422 §5.4, RFC 5246 §7.4.3).

    @ivar scheme: the SignatureScheme of C{signature}.
    @ivar signature: over C{client_random + server_random + params bytes};
        see L{ecdhe_signed_data}.
    """

    params: ServerECDHParams
    scheme: int
    signature: bytes


def ecdhe_params_bytes(msg: ServerKeyExchangeECDHE | ServerECDHParams) -> bytes:
    """
    The exact C{ServerECDHParams} bytes the signature covers.

    Re-encoding gives back the received bytes: with curve_type fixed to
    named_curve every field has exactly one encoding.
    """
    params = msg.params if isinstance(msg, ServerKeyExchangeECDHE) else msg
    return _ECDH_PARAMS_HEADER.pack(ECCurveType.named_curve, params.named_curve, len(params.public)) + params.public


def ecdhe_signed_data(client_random: bytes, server_random: bytes, params: ServerECDHParams) -> bytes:
    """
    What a ServerKeyExchange signature covers (RFC 8422 §5.4 C{signed_params}).
    """
    return client_random + server_random + ecdhe_params_bytes(params)


def encode_server_key_exchange_ecdhe(params_bytes: bytes, scheme: int, signature: bytes) -> bytes:
    """
    The signed ServerKeyExchange body (what L{push_server_key_exchange_ecdhe}
    writes) from the L{ecdhe_params_bytes} that were signed: a server signs
    and sends one per handshake, and encodes its params only once.
    """
    return params_bytes + _SIGNED_HEADER.pack(scheme, len(signature)) + signature


def pull_server_key_exchange_ecdhe(buf: Buffer) -> ServerKeyExchangeECDHE:
    params = pull_server_ecdh_params(buf)
    scheme, signature = _pull_signed(buf)
    buf.expect_eof()
    return ServerKeyExchangeECDHE(params, scheme, signature)


def push_server_key_exchange_ecdhe(buf: Buffer, msg: ServerKeyExchangeECDHE) -> None:
    push_server_ecdh_params(buf, msg.params)
    buf.push_uint16(msg.scheme)
    buf.push_opaque(2, msg.signature)


@dataclass(slots=True)
class ServerKeyExchangePSK:
    """
    RFC 4279 §2: sent only when the server has an identity hint.
    """

    identity_hint: bytes


def pull_server_key_exchange_psk(buf: Buffer) -> ServerKeyExchangePSK:
    hint = buf.pull_opaque(2)
    buf.expect_eof()
    return ServerKeyExchangePSK(hint)


def push_server_key_exchange_psk(buf: Buffer, msg: ServerKeyExchangePSK) -> None:
    buf.push_opaque(2, msg.identity_hint)


@dataclass(slots=True)
class ServerKeyExchangeECDHEPSK:
    """
    RFC 5489 §2: an identity hint (possibly empty) and unsigned ECDH params.
    """

    identity_hint: bytes
    params: ServerECDHParams


def pull_server_key_exchange_ecdhe_psk(buf: Buffer) -> ServerKeyExchangeECDHEPSK:
    hint = buf.pull_opaque(2)
    params = pull_server_ecdh_params(buf)
    buf.expect_eof()
    return ServerKeyExchangeECDHEPSK(hint, params)


def push_server_key_exchange_ecdhe_psk(buf: Buffer, msg: ServerKeyExchangeECDHEPSK) -> None:
    buf.push_opaque(2, msg.identity_hint)
    push_server_ecdh_params(buf, msg.params)


# -- ClientKeyExchange (RFC 8422 §5.7, RFC 4279 §2, RFC 5489 §2) -------------


@dataclass(slots=True)
class ClientKeyExchangeECDHE:
    """
    @ivar public: C{ecdh_Yc}, the client's ephemeral public value.
    """

    public: bytes


def pull_client_key_exchange_ecdhe(buf: Buffer) -> ClientKeyExchangeECDHE:
    public = buf.pull_opaque(1, minimum=1)
    buf.expect_eof()
    return ClientKeyExchangeECDHE(public)


def push_client_key_exchange_ecdhe(buf: Buffer, msg: ClientKeyExchangeECDHE) -> None:
    buf.push_opaque(1, msg.public)


@dataclass(slots=True)
class ClientKeyExchangePSK:
    identity: bytes


def pull_client_key_exchange_psk(buf: Buffer) -> ClientKeyExchangePSK:
    identity = buf.pull_opaque(2)
    buf.expect_eof()
    return ClientKeyExchangePSK(identity)


def push_client_key_exchange_psk(buf: Buffer, msg: ClientKeyExchangePSK) -> None:
    buf.push_opaque(2, msg.identity)


@dataclass(slots=True)
class ClientKeyExchangeECDHEPSK:
    identity: bytes
    public: bytes


def pull_client_key_exchange_ecdhe_psk(buf: Buffer) -> ClientKeyExchangeECDHEPSK:
    identity = buf.pull_opaque(2)
    public = buf.pull_opaque(1, minimum=1)
    buf.expect_eof()
    return ClientKeyExchangeECDHEPSK(identity, public)


def push_client_key_exchange_ecdhe_psk(buf: Buffer, msg: ClientKeyExchangeECDHEPSK) -> None:
    buf.push_opaque(2, msg.identity)
    buf.push_opaque(1, msg.public)
