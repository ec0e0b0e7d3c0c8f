"""
OpenSSL DTLS 1.2 endpoints over memory BIOs (pyOpenSSL), for the bench:
a client that drives handshakes, and the baseline server the engine is
compared with.

Both sides are set up to do the same work as ours: no session tickets, no
session cache, extended master secret (OpenSSL's default), an MTU large
enough that nothing is fragmented.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec
from OpenSSL import SSL

from .common import OPENSSL_CIPHER, Credential

DTLS1_2_VERSION = 0xFEFD
MTU = 1400

_CURVES = {"P-256": ec.SECP256R1()}


def _context(group: str | None) -> SSL.Context:
    ctx = SSL.Context(SSL.DTLS_METHOD)
    ctx.set_min_proto_version(DTLS1_2_VERSION)
    ctx.set_max_proto_version(DTLS1_2_VERSION)
    ctx.set_cipher_list(OPENSSL_CIPHER.encode())
    ctx.set_options(SSL.OP_NO_TICKET | SSL.OP_NO_QUERY_MTU)
    ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    if group in _CURVES:
        # Limits the group list to this one curve.
        ctx.set_tmp_ecdh(_CURVES[group])
    # x25519 is first in OpenSSL's default list, so it needs no setting.
    return ctx


def client_context(group: str | None = None) -> SSL.Context:
    return _context(group)


def server_context(credential: Credential, group: str | None = None) -> SSL.Context:
    ctx = _context(group)
    ctx.use_certificate(credential.cert)
    ctx.use_privatekey(credential.key)
    return ctx


class MemoryEndpoint:
    """
    One OpenSSL connection: C{feed(datagram)} in, C{drain()} out.
    """

    __slots__ = ("conn", "done")

    def __init__(self, ctx: SSL.Context, client: bool):
        conn = SSL.Connection(ctx, None)
        conn.set_ciphertext_mtu(MTU)
        if client:
            conn.set_connect_state()
        else:
            conn.set_accept_state()
        self.conn = conn
        self.done = False

    def step(self) -> None:
        if self.done:
            return
        try:
            self.conn.do_handshake()
            self.done = True
        except SSL.WantReadError:
            pass

    def feed(self, datagram: bytes) -> None:
        self.conn.bio_write(datagram)
        self.step()

    def drain(self) -> list[bytes]:
        out = []
        while True:
            try:
                blob = self.conn.bio_read(65536)
            except SSL.WantReadError:
                return out
            if not blob:
                return out
            out.append(blob)
