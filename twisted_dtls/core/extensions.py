"""
Hello extensions: the raw extension list (RFC 5246 §7.4.1.4) and one
C{encode_X}/C{decode_X} pair per extension body this engine understands.

An extension list is kept as C{[(extension_type, extension_data), ...]} in
wire order; unknown extensions stay in it as raw bytes, so a message
re-encodes to exactly the bytes that were received. Every C{decode_X}
consumes the whole body and raises only L{DecodeError} — with the
C{illegal_parameter} description where the body parses but holds a value
the RFC forbids.
"""

from __future__ import annotations

import struct
from typing import Iterable, NamedTuple, Sequence

from .buffer import Buffer
from .constants import AlertDescription
from .errors import DecodeError

#: RFC 6066 §3: the only NameType defined.
NAME_TYPE_HOST_NAME = 0
#: RFC 8449 §4: the smallest record_size_limit a peer may announce.
MIN_RECORD_SIZE_LIMIT = 64


def _illegal(message: str) -> DecodeError:
    return DecodeError(message, AlertDescription.illegal_parameter)


# -- the extension list ----------------------------------------------------


def pull_extensions(buf: Buffer) -> list[tuple[int, bytes]]:
    """
    Read C{Extension extensions<0..2^16-1>} (RFC 5246 §7.4.1.2).

    @return: C{(extension_type, extension_data)} pairs in wire order.
    @raise DecodeError: on truncation, or (with C{illegal_parameter}) when a
        type appears twice: RFC 5246 §7.4.1.4 forbids more than one
        extension of the same type.
    """
    block = buf.pull_vector(2)
    extensions: list[tuple[int, bytes]] = []
    seen: set[int] = set()
    while not block.eof():
        ext_type = block.pull_uint16()
        data = block.pull_opaque(2)
        if ext_type in seen:
            raise _illegal(f"duplicate extension {ext_type}")
        seen.add(ext_type)
        extensions.append((ext_type, data))
    return extensions


def push_extensions(buf: Buffer, extensions: Iterable[tuple[int, bytes]]) -> None:
    """
    Write C{Extension extensions<0..2^16-1>}, including its length prefix.
    """
    buf.push_bytes(encode_extensions(extensions))


def encode_extensions(extensions: Iterable[tuple[int, bytes]]) -> bytes:
    """
    C{Extension extensions<0..2^16-1>} with its length prefix, as bytes:
    each extension is C{uint16 extension_type; opaque extension_data<0..2^16-1>}.

    @raise ValueError: if the block outgrows its 16-bit length.
    """
    block = b"".join(
        [ext_type.to_bytes(2, "big") + len(data).to_bytes(2, "big") + data for ext_type, data in extensions]
    )
    if len(block) > 0xFFFF:
        raise ValueError(f"block of {len(block)} bytes does not fit a 2-byte length")
    return len(block).to_bytes(2, "big") + block


def find_extension(extensions: Iterable[tuple[int, bytes]], ext_type: int) -> bytes | None:
    """
    @return: the body of the extension of type C{ext_type}, or C{None} if the
        list does not hold one.
    """
    for t, data in extensions:
        if t == ext_type:
            return data
    return None


def _decode(data: bytes, pull):
    buf = Buffer(data)
    value = pull(buf)
    buf.expect_eof()
    return value


def _encode(push) -> bytes:
    buf = Buffer()
    push(buf)
    return buf.output


def _uint16_list(data: bytes) -> list[int] | None:
    """
    A non-empty C{uint16 list<2..2^16-2>} filling C{data} exactly, read in
    one unpack; C{None} when it is anything else, for the general decoder
    to refuse with the precise error. The ClientHello's lists go through
    here on every handshake.
    """
    n = len(data) - 2
    if n < 2 or n & 1 or (data[0] << 8) | data[1] != n:
        return None
    return list(struct.unpack_from(f">{n >> 1}H", data, 2))


def _pull_uint16_list(buf: Buffer, minimum: int, name: str) -> list[int]:
    values = buf.pull_list(2, 2)
    if len(values) * 2 < minimum:
        raise DecodeError(f"{name} shorter than {minimum} bytes")
    return values


# -- server_name (RFC 6066 §3) ----------------------------------------------


def encode_server_name(host_name: str) -> bytes:
    """
    The ClientHello body: a ServerNameList holding one C{host_name}.
    (The server's acknowledgement is an empty body, RFC 6066 §3.)
    """
    name = host_name.encode("ascii")

    def push(buf: Buffer) -> None:
        with buf.push_block(2):
            buf.push_uint8(NAME_TYPE_HOST_NAME)
            buf.push_opaque(2, name)

    return _encode(push)


def decode_server_name(data: bytes) -> str | None:
    """
    Parse a ClientHello C{server_name} body.

    @return: the host name, or C{None} if the list holds only other name
        types.
    @raise DecodeError: on a malformed list, an empty or non-ASCII host
        name, or two names of the same type (RFC 6066 §3).
    """

    def pull(buf: Buffer) -> str | None:
        names = buf.pull_vector(2)
        if names.eof():
            raise DecodeError("empty server_name list")
        host_name = None
        seen: set[int] = set()
        while not names.eof():
            name_type = names.pull_uint8()
            name = names.pull_opaque(2, minimum=1)
            if name_type in seen:
                raise _illegal(f"two server names of type {name_type}")
            seen.add(name_type)
            if name_type == NAME_TYPE_HOST_NAME:
                try:
                    host_name = name.decode("ascii")
                except UnicodeDecodeError:
                    raise _illegal("host_name is not ASCII") from None
        return host_name

    return _decode(data, pull)


# -- supported_groups / ec_point_formats (RFC 8422 §5.1) -------------------


def encode_supported_groups(groups: Sequence[int]) -> bytes:
    return _encode(lambda buf: buf.push_list(2, 2, groups))


def decode_supported_groups(data: bytes) -> list[int]:
    """
    C{NamedGroup named_group_list<2..2^16-1>} (RFC 8422 §5.1.1).
    """
    return _uint16_list(data) or _decode(data, lambda buf: _pull_uint16_list(buf, 2, "named_group_list"))


def encode_ec_point_formats(formats: Sequence[int]) -> bytes:
    return _encode(lambda buf: buf.push_list(1, 1, formats))


def decode_ec_point_formats(data: bytes) -> list[int]:
    """
    C{ECPointFormat ec_point_format_list<1..2^8-1>} (RFC 8422 §5.1.2).
    """

    if len(data) > 1 and data[0] == len(data) - 1:
        return list(data[1:])

    def pull(buf: Buffer) -> list[int]:
        formats = buf.pull_list(1, 1)
        if not formats:
            raise DecodeError("empty ec_point_format_list")
        return formats

    return _decode(data, pull)


# -- signature_algorithms (RFC 5246 §7.4.1.4.1) -----------------------------


def encode_signature_algorithms(schemes: Sequence[int]) -> bytes:
    return _encode(lambda buf: buf.push_list(2, 2, schemes))


def decode_signature_algorithms(data: bytes) -> list[int]:
    """
    C{SignatureAndHashAlgorithm supported_signature_algorithms<2..2^16-2>},
    read as the 16-bit SignatureScheme code points of RFC 8446 §4.2.3.
    """
    return _uint16_list(data) or _decode(
        data, lambda buf: _pull_uint16_list(buf, 2, "supported_signature_algorithms")
    )


# -- application_layer_protocol_negotiation (RFC 7301 §3.1) ----------------


def encode_alpn(protocols: Sequence[bytes]) -> bytes:
    def push(buf: Buffer) -> None:
        with buf.push_block(2):
            for name in protocols:
                buf.push_opaque(1, name)

    return _encode(push)


def decode_alpn(data: bytes) -> list[bytes]:
    """
    C{ProtocolName protocol_name_list<2..2^16-1>}, each name
    C{opaque<1..2^8-1>}. The server's answer has the same shape with exactly
    one name; checking that is the caller's job.
    """

    def pull(buf: Buffer) -> list[bytes]:
        names = buf.pull_vector(2)
        if names.eof():
            raise DecodeError("empty protocol_name_list")
        protocols = []
        while not names.eof():
            protocols.append(names.pull_opaque(1, minimum=1))
        return protocols

    return _decode(data, pull)


# -- use_srtp (RFC 5764 §4.1.1) ---------------------------------------------


class UseSRTP(NamedTuple):
    """
    @ivar profiles: SRTPProtectionProfile code points, in preference order.
    @ivar mki: the SRTP master key identifier, usually empty.
    """

    profiles: list[int]
    mki: bytes = b""


def encode_use_srtp(profiles: Sequence[int], mki: bytes = b"") -> bytes:
    def push(buf: Buffer) -> None:
        buf.push_list(2, 2, profiles)
        buf.push_opaque(1, mki)

    return _encode(push)


def decode_use_srtp(data: bytes) -> UseSRTP:
    """
    C{SRTPProtectionProfiles profiles<2..2^16-1>; opaque srtp_mki<0..255>}.
    """

    def pull(buf: Buffer) -> UseSRTP:
        profiles = _pull_uint16_list(buf, 2, "SRTPProtectionProfiles")
        return UseSRTP(profiles, buf.pull_opaque(1))

    return _decode(data, pull)


# -- renegotiation_info (RFC 5746 §3.2) -------------------------------------


def encode_renegotiation_info(renegotiated_connection: bytes = b"") -> bytes:
    """
    Empty C{renegotiated_connection} on an initial handshake (RFC 5746 §3.4).
    """
    return _encode(lambda buf: buf.push_opaque(1, renegotiated_connection))


def decode_renegotiation_info(data: bytes) -> bytes:
    """
    @return: C{renegotiated_connection<0..255>}.
    """
    if data == b"\x00":
        return b""  # what every initial handshake carries (RFC 5746 §3.4)
    return _decode(data, lambda buf: buf.pull_opaque(1))


# -- extended_master_secret (RFC 7627 §5.1) ---------------------------------


def encode_extended_master_secret() -> bytes:
    return b""


def decode_extended_master_secret(data: bytes) -> None:
    """
    @raise DecodeError: if the body is not empty (RFC 7627 §5.1).
    """
    if data:
        raise DecodeError("extended_master_secret body must be empty")


# -- record_size_limit (RFC 8449 §4) ----------------------------------------


def encode_record_size_limit(limit: int) -> bytes:
    return _encode(lambda buf: buf.push_uint16(limit))


def decode_record_size_limit(data: bytes) -> int:
    """
    @raise DecodeError: with C{illegal_parameter} for a limit under 64
        (RFC 8449 §4).
    """
    limit = _decode(data, Buffer.pull_uint16)
    if limit < MIN_RECORD_SIZE_LIMIT:
        raise _illegal(f"record_size_limit {limit} < {MIN_RECORD_SIZE_LIMIT}")
    return limit


# -- session_ticket (RFC 5077 §3.2) -----------------------------------------


def encode_session_ticket(ticket: bytes = b"") -> bytes:
    """
    The body is the ticket itself, without a length (RFC 5077 §3.2); empty
    asks for a new ticket, and is the server's acknowledgement.
    """
    return bytes(ticket)


def decode_session_ticket(data: bytes) -> bytes:
    return bytes(data)


# -- connection_id (RFC 9146 §3) --------------------------------------------


def encode_connection_id(cid: bytes) -> bytes:
    """
    An empty C{cid} means "send me records without a CID" (RFC 9146 §3).
    """
    return _encode(lambda buf: buf.push_opaque(1, cid))


def decode_connection_id(data: bytes) -> bytes:
    """
    @return: C{opaque cid<0..2^8-1>}.
    """
    return _decode(data, lambda buf: buf.pull_opaque(1))
