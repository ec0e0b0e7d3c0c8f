"""
C{twistd -n dtls-echo}, run the way the README says (the installed
C{twistd} console script, the installed plugin, no C{PYTHONPATH}, started
from an unrelated directory), reached by C{openssl s_client -dtls1_2} and
C{gnutls-cli --udp} over IPv4 and IPv6 loopback: each client's lines come
back, and it ends cleanly at the end of its input.

Two servers per module: one with the generated certificate (its logged
SHA-256 fingerprint is checked against the certificate GnuTLS received),
one with PEM files given in the C{--listen} strings (the clients verify
the chain and the name C{localhost}).
"""

from __future__ import annotations

import os
import re
import signal
import sys
from dataclasses import dataclass

import pytest
from cryptography import x509

from tests.interop.support import FAMILIES
from tests.peers import require_peer
from tests.peers.gnutls_cli import GnuTLSClient
from tests.peers.openssl_cli import OpenSSLClient
from tests.peers.ports import free_udp_port
from tests.peers.process import PeerProcess
from twisted_dtls.core.suites import CIPHER_SUITES, DEFAULT_CIPHER_SUITES, KeyExchange
from twisted_dtls.credentials import fingerprintSHA256

_LISTENING = re.compile(
    r"dtls-echo listening on (\S+):(\d+) with (a generated self-signed|the given) certificate, "
    r"SHA-256 fingerprint ([0-9a-f]{64})"
)


def _twistd() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "twistd")
    return beside if os.path.exists(beside) else "twistd"


def _expected_suite(key_exchange: KeyExchange) -> str:
    # The server picks in its own order (DEFAULT_CIPHER_SUITES); both clients
    # offer AES-128-GCM by default.
    for suite in DEFAULT_CIPHER_SUITES:
        if CIPHER_SUITES[suite].key_exchange is key_exchange:
            return CIPHER_SUITES[suite].openssl_name
    raise AssertionError(key_exchange)


@dataclass
class EchoServer:
    process: PeerProcess
    ports: dict[str, int]
    fingerprints: dict[str, str]


def _start(tmp_path, listen: dict[str, str]) -> EchoServer:
    """
    C{twistd -n dtls-echo} with one C{--listen} per family; C{listen} maps
    family to the keywords after C{dtls:PORT:interface=ADDRESS}.
    """
    require_peer("timeout")
    require_peer("stdbuf")
    ports = {family: free_udp_port(FAMILIES[family]) for family in listen}
    argv = [_twistd(), "-n", "--pidfile", str(tmp_path / "twistd.pid"), "dtls-echo"]
    for family, extra in listen.items():
        interface = FAMILIES[family].replace(":", "\\:")
        argv += ["--listen", f"dtls:{ports[family]}:interface={interface}{extra}"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONUNBUFFERED"] = "1"
    process = PeerProcess(argv, env=env, cwd=str(tmp_path), lifetime=300)
    process.name = "twistd-dtls-echo"
    try:
        fingerprints = {}
        for family in listen:
            pattern = re.compile(
                rf"dtls-echo listening on {re.escape(FAMILIES[family])}:{ports[family]} .*"
                r"fingerprint ([0-9a-f]{64})"
            )
            fingerprints[family] = process.wait_for(pattern, timeout=30).group(1)
            process.wait_bound(ports[family])
    except BaseException:
        process.stop()
        raise
    return EchoServer(process, ports, fingerprints)


def _stop(server: EchoServer) -> None:
    """
    SIGTERM to twistd itself, by its PID: signalling the C{timeout} wrapper
    would make it signal its whole process group too, and a second SIGTERM
    makes Twisted log C{ReactorNotRunning} at critical level.
    """
    wrapper = server.process.process.pid
    try:
        with open(f"/proc/{wrapper}/task/{wrapper}/children") as f:
            children = [int(pid) for pid in f.read().split()]
    except FileNotFoundError:
        children = []
    for child in children:
        os.kill(child, signal.SIGTERM)
    try:
        # twistd ends by re-raising the signal that stopped it.
        assert server.process.wait(15) in (0, -signal.SIGTERM, 128 + signal.SIGTERM)
        server.process.wait_for(r"Server Shut Down\.$", timeout=1, stream="stdout")
    finally:
        server.process.stop()
    output = server.process.output
    # The subprocess's twin of tests/conftest.py's rule: nothing logged at
    # error level, no traceback.
    assert not re.search(r"#(error|critical)\]|Traceback", output), server.process.describe(20000)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """dtls-echo with its generated certificate on 127.0.0.1 and ::1."""
    server = _start(tmp_path_factory.mktemp("twistd-generated"), {"ipv4": "", "ipv6": ""})
    yield server
    _stop(server)


@pytest.fixture(scope="module")
def given(tmp_path_factory, pem):
    """dtls-echo with PEM files: P-256 on 127.0.0.1, RSA-2048 on ::1."""
    server = _start(
        tmp_path_factory.mktemp("twistd-given"),
        {
            "ipv4": f":privateKey={pem['server-ec.key']}:certKey={pem['server-ec.pem']}",
            "ipv6": f":privateKey={pem['server-rsa.key']}:certKey={pem['server-rsa.pem']}",
        },
    )
    yield server
    _stop(server)


_KIND = {"ipv4": KeyExchange.ECDHE_ECDSA, "ipv6": KeyExchange.ECDHE_RSA}


def _converse(client: PeerProcess, lines: list[str]) -> None:
    for line in lines:
        client.send_line(line)
        client.wait_for(f"^{re.escape(line)}$", stream="stdout")
    client.close_stdin()
    assert client.wait(10) == 0, client.describe()


def test_generated_certificate_is_logged(generated):
    """Both listeners share the one generated certificate and say so."""
    assert generated.fingerprints["ipv4"] == generated.fingerprints["ipv6"]
    kinds = [m.group(3) for m in _LISTENING.finditer(generated.process.output)]
    assert kinds == ["a generated self-signed"] * 2


@pytest.mark.parametrize("family", FAMILIES)
def test_openssl_client_generated_certificate(generated, family):
    """
    C{openssl s_client -dtls1_2} against the generated certificate: it
    reports the self-signed certificate, carries on, and gets its lines
    back.
    """
    require_peer("openssl")
    with OpenSSLClient(generated.ports[family], host=FAMILIES[family]) as client:
        assert client.wait_handshake() == _expected_suite(KeyExchange.ECDHE_ECDSA)
        client.wait_for(r"^Peer certificate: CN = localhost$", stream="stderr")
        client.wait_for(r"verify error:num=18:self-signed certificate")
        _converse(client, [f"openssl over {family}", "a second line"])


@pytest.mark.parametrize("family", FAMILIES)
def test_gnutls_client_generated_certificate(generated, family):
    """
    C{gnutls-cli --udp} (no certificate check) against the generated
    certificate: the certificate it prints is the one whose fingerprint
    twistd logged, and its lines come back.
    """
    require_peer("gnutls-cli")
    with GnuTLSClient(
        generated.ports[family], host=FAMILIES[family], insecure=True, extra_args=["--print-cert"]
    ) as client:
        description = client.wait_handshake()
        assert description.endswith("(ECDSA-SHA256)-(AES-128-GCM)"), description
        pem = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", client.stdout, re.S)
        assert pem, client.describe()
        certificate = x509.load_pem_x509_certificate(pem.group(0).encode())
        assert fingerprintSHA256(certificate) == generated.fingerprints[family]
        _converse(client, [f"gnutls over {family}", "a second line"])


@pytest.mark.parametrize("family", FAMILIES)
def test_openssl_client_verifies_given_certificate(given, pem, family):
    """
    C{openssl s_client -dtls1_2 -CAfile ca.pem -verify_return_error
    -verify_hostname localhost} against the PEM files given to twistd.
    """
    require_peer("openssl")
    with OpenSSLClient(
        given.ports[family], host=FAMILIES[family], cafile=pem["ca.pem"],
        extra_args=["-verify_hostname", "localhost"],
    ) as client:
        assert client.wait_handshake() == _expected_suite(_KIND[family])
        client.wait_for(r"^Verification: OK$", stream="stderr")
        _converse(client, [f"verified openssl over {family}"])


@pytest.mark.parametrize("family", FAMILIES)
def test_gnutls_client_verifies_given_certificate(given, pem, family):
    """
    C{gnutls-cli --udp --x509cafile ca.pem --verify-hostname localhost}
    against the PEM files given to twistd.
    """
    require_peer("gnutls-cli")
    with GnuTLSClient(
        given.ports[family], host=FAMILIES[family], cafile=pem["ca.pem"], verify_hostname="localhost"
    ) as client:
        description = client.wait_handshake()
        kind = "ECDSA" if _KIND[family] is KeyExchange.ECDHE_ECDSA else "RSA"
        assert re.fullmatch(rf"\(DTLS1\.2-X\.509\)-\(ECDHE-[^)]+\)-\({kind}[^)]*\)-\(AES-128-GCM\)", description)
        assert client.search(r"^- Status: The certificate is trusted", stream="stdout"), client.describe()
        _converse(client, [f"verified gnutls over {family}"])
