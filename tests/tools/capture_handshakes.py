"""
Regenerate the handshake captures in C{tests/data/captures/}.

Run from the repository root::

    python tests/tools/capture_handshakes.py [OUTPUT_DIR]

Each fixture is a text file: C{#} comment lines (provenance), then one line
per datagram, C{<sender> <hex>}, where the sender is C{client} or C{server}.
Only 127.0.0.1 is used, and every external peer runs under C{timeout} and is
stopped by its PID.

The bytes differ on every run (randoms, keys, cookies, certificates); the
tests only rely on properties that hold for any run (structure, lengths,
offered code points), so regenerating is safe.
"""

from __future__ import annotations

import datetime
import socket
import subprocess
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import SSL, crypto

DTLS1_2_VERSION = 0xFEFD
HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = HERE.parent / "data" / "captures"


def make_certificate(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """
    A self-signed P-256 certificate with SAN localhost / 127.0.0.1.
    """
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _context(method, key=None, cert=None) -> SSL.Context:
    ctx = SSL.Context(method)
    ctx.set_min_proto_version(DTLS1_2_VERSION)
    ctx.set_max_proto_version(DTLS1_2_VERSION)
    ctx.set_cipher_list(b"ECDHE-ECDSA-AES128-GCM-SHA256")
    if key is not None:
        ctx.use_privatekey(crypto.PKey.from_cryptography_key(key))
        ctx.use_certificate(crypto.X509.from_cryptography(cert))
    return ctx


def _pump(conn: SSL.Connection) -> bytes:
    out = b""
    while True:
        try:
            chunk = conn.bio_read(65536)
        except SSL.WantReadError:
            return out
        if not chunk:
            return out
        out += chunk


def capture_pyopenssl(client_auth: bool, mtu: int | None, p256_only: bool) -> list[tuple[str, bytes]]:
    """
    A full in-memory DTLS 1.2 handshake between two pyOpenSSL connections,
    with the cookie exchange, recording every C{bio_read()} in order.

    @param client_auth: request (and send) a client certificate.
    @param p256_only: limit both sides to secp256r1 (C{set_tmp_ecdh}); otherwise
        OpenSSL's defaults pick X25519.
    @param mtu: if set, C{OP_NO_QUERY_MTU} + C{set_ciphertext_mtu(mtu)} on both
        sides; if C{None}, OpenSSL falls back to its minimum MTU and fragments.
    """
    server_key, server_cert = make_certificate("server.test")
    client_key, client_cert = make_certificate("client.test")

    server_ctx = _context(SSL.DTLS_METHOD, server_key, server_cert)
    server_ctx.set_cookie_generate_callback(lambda conn: b"0123456789abcdefghij")
    server_ctx.set_cookie_verify_callback(lambda conn, cookie: cookie == b"0123456789abcdefghij")
    if client_auth:
        server_ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, lambda *a: True)
    client_ctx = _context(SSL.DTLS_METHOD, *((client_key, client_cert) if client_auth else ()))
    client_ctx.set_verify(SSL.VERIFY_PEER, lambda *a: True)
    for ctx in (server_ctx, client_ctx):
        if mtu is not None:
            ctx.set_options(SSL.OP_NO_QUERY_MTU)
        if p256_only:
            ctx.set_tmp_ecdh(ec.SECP256R1())

    server = SSL.Connection(server_ctx)
    server.set_accept_state()
    client = SSL.Connection(client_ctx)
    client.set_connect_state()
    if mtu is not None:
        server.set_ciphertext_mtu(mtu)
        client.set_ciphertext_mtu(mtu)

    datagrams: list[tuple[str, bytes]] = []
    listening = True
    client_done = server_done = False
    for _ in range(50):
        if not client_done:
            try:
                client.do_handshake()
                client_done = True
            except SSL.WantReadError:
                pass
        data = _pump(client)
        if data:
            datagrams.append(("client", data))
            server.bio_write(data)
        if listening:
            try:
                server.DTLSv1_listen()
                listening = False
            except SSL.WantReadError:
                pass
        if not listening and not server_done:
            try:
                server.do_handshake()
                server_done = True
            except SSL.WantReadError:
                pass
        data = _pump(server)
        if data:
            datagrams.append(("server", data))
            client.bio_write(data)
        if client_done and server_done and not data:
            break
    else:
        raise RuntimeError("pyOpenSSL handshake did not complete")
    return datagrams


def _first_datagram(argv_for_port, stdin_pipe: bool) -> bytes:
    """
    Bind a UDP socket on 127.0.0.1, start a client pointed at it, return the
    first datagram it sends, then stop the client by its PID.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5.0)
    port = sock.getsockname()[1]
    proc = subprocess.Popen(
        ["timeout", "5", *argv_for_port(port)],
        stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        data, _ = sock.recvfrom(65536)
    finally:
        proc.kill()
        proc.wait()
        sock.close()
    return data


GNUTLS_EXTRAS = [
    "--sni-hostname", "localhost", "--alpn", "coap", "--alpn", "h2",
    "--srtp-profiles", "SRTP_AES128_CM_HMAC_SHA1_80:SRTP_NULL_HMAC_SHA1_80",
]
OPENSSL_EXTRAS = [
    "-servername", "localhost", "-alpn", "coap,h2",
    "-use_srtp", "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80",
]


def capture_gnutls_client_hello(extra: list[str]) -> bytes:
    return _first_datagram(
        lambda port: [
            "gnutls-cli", "--udp", "-p", str(port), "127.0.0.1",
            "--priority", "NORMAL:-VERS-ALL:+VERS-DTLS1.2", "--insecure", *extra,
        ],
        stdin_pipe=False,
    )


def capture_openssl_cli_client_hello(extra: list[str]) -> bytes:
    # s_client exits on stdin EOF; an open pipe keeps it waiting for the server.
    return _first_datagram(
        lambda port: [
            "openssl", "s_client", "-dtls1_2", "-connect", f"127.0.0.1:{port}", "-nocommands",
            *extra,
        ],
        stdin_pipe=True,
    )


def _version(argv: list[str]) -> str:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=5).stdout
    return out.splitlines()[0].strip()


def write_fixture(path: Path, header: list[str], datagrams: list[tuple[str, bytes]]) -> None:
    lines = [f"# {line}" if line else "#" for line in header]
    lines += [f"{sender} {data.hex()}" for sender, data in datagrams]
    path.write_text("\n".join(lines) + "\n")


def main(output: Path) -> None:
    output.mkdir(parents=True, exist_ok=True)
    today = datetime.date.today().isoformat()
    pyopenssl = (
        f"pyOpenSSL {__import__('OpenSSL').__version__} / "
        f"{SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode()} (bundled with cryptography), {today}"
    )
    write_fixture(
        output / "pyopenssl_ecdhe_ecdsa_client_auth.txt",
        [
            "DTLS 1.2 handshake between two in-memory pyOpenSSL connections (DTLS_METHOD,",
            "min/max 0xFEFD, ECDHE-ECDSA-AES128-GCM-SHA256, self-signed P-256 certificates),",
            "with cookie exchange, client certificate requested and sent, MTU 1400",
            "(OP_NO_QUERY_MTU + set_ciphertext_mtu), both sides limited to secp256r1 (set_tmp_ecdh).",
            "One line per bio_read().",
            pyopenssl,
            "Produced by tests/tools/capture_handshakes.py.",
        ],
        capture_pyopenssl(client_auth=True, mtu=1400, p256_only=True),
    )
    write_fixture(
        output / "pyopenssl_ecdhe_ecdsa_fragmented.txt",
        [
            "DTLS 1.2 handshake between two in-memory pyOpenSSL connections (DTLS_METHOD,",
            "min/max 0xFEFD, ECDHE-ECDSA-AES128-GCM-SHA256, self-signed P-256 server",
            "certificate), cookie exchange, no MTU set: OpenSSL falls back to its minimum",
            "and fragments the larger handshake messages. Default groups (X25519 chosen).",
            "One line per bio_read().",
            pyopenssl,
            "Produced by tests/tools/capture_handshakes.py.",
        ],
        capture_pyopenssl(client_auth=False, mtu=None, p256_only=False),
    )
    gnutls = f"{_version(['gnutls-cli', '--version'])}, {today}"
    openssl = f"{_version(['openssl', 'version'])}, {today}"
    for suffix, extra in (("", []), ("_extensions", GNUTLS_EXTRAS)):
        write_fixture(
            output / f"gnutls_cli_client_hello{suffix}.txt",
            [
                "First datagram sent by `gnutls-cli --udp -p PORT 127.0.0.1 --priority",
                "'NORMAL:-VERS-ALL:+VERS-DTLS1.2' --insecure" + "".join(f" {a}" for a in extra) + "`,",
                "read from a UDP socket bound on 127.0.0.1.",
                gnutls,
                "Produced by tests/tools/capture_handshakes.py.",
            ],
            [("client", capture_gnutls_client_hello(extra))],
        )
    for suffix, extra in (("", []), ("_extensions", OPENSSL_EXTRAS)):
        write_fixture(
            output / f"openssl_s_client_client_hello{suffix}.txt",
            [
                "First datagram sent by `openssl s_client -dtls1_2 -connect 127.0.0.1:PORT",
                "-nocommands" + "".join(f" {a}" for a in extra) + "` (stdin an open pipe),",
                "read from a UDP socket bound on 127.0.0.1.",
                openssl,
                "Produced by tests/tools/capture_handshakes.py.",
            ],
            [("client", capture_openssl_cli_client_hello(extra))],
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUTPUT)
