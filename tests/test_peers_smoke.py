"""
The interop drivers in L{tests.peers} work on their own, without
twisted_dtls: real peers handshake with each other and move data both ways
over loopback, so a failing interop test points at our stack, not at the
harness.
"""

from __future__ import annotations

import socket
import struct
import time

import pytest

from tests.certs import make_pki, write_pem_files
from tests.peers import require_netns, require_peer
from tests.peers.ports import free_udp_port, is_udp_bound, wait_udp_bound

SUITE = "ECDHE-ECDSA-AES128-GCM-SHA256"

# RFC 6347 §4.1 / §4.2.2 code points used to read the pyOpenSSL output.
HANDSHAKE = 22
CLIENT_HELLO = 1
HELLO_VERIFY_REQUEST = 3
SERVER_HELLO = 2


@pytest.fixture(scope="module")
def pki():
    return make_pki()


@pytest.fixture
def pem(pki, tmp_path):
    return write_pem_files(pki, tmp_path)


def test_free_port_and_bound_detection():
    """
    A port found free is not in /proc/net/udp; once a socket binds it, it
    is, for IPv4 and IPv6.
    """
    for host, family in (("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6)):
        port = free_udp_port(host)
        assert not is_udp_bound(port)
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.bind((host, port))
            wait_udp_bound(port, timeout=1)
        assert not is_udp_bound(port)
        with pytest.raises(TimeoutError):
            wait_udp_bound(port, timeout=0.1)


@pytest.mark.parametrize("ipv6", [False, True], ids=["ipv4", "ipv6"])
def test_openssl_server_and_client(pem, ipv6):
    """
    s_server and s_client complete a DTLS 1.2 handshake with the named
    suite, exchange one line each way, and both exit 0 after close_notify.
    """
    require_peer("openssl")
    require_peer("timeout")
    require_peer("stdbuf")
    from tests.peers.openssl_cli import OpenSSLClient, OpenSSLServer

    with OpenSSLServer(
        cert=pem["server-ec.pem"], key=pem["server-ec.key"], cipher=SUITE, ipv6=ipv6
    ) as server:
        assert is_udp_bound(server.port)
        with OpenSSLClient(server.port, ipv6=ipv6, cafile=pem["ca.pem"], cipher=SUITE) as client:
            assert client.wait_handshake() == SUITE
            assert server.wait_handshake() == SUITE
            client.send_line("ping from s_client")
            server.wait_for(r"^ping from s_client$", stream="stdout")
            server.send_line("pong from s_server")
            client.wait_for(r"^pong from s_server$", stream="stdout")
            client.close_stdin()
            assert client.wait() == 0
        assert server.wait() == 0


def test_openssl_client_rejects_unknown_ca(pem, pki, tmp_path):
    """
    With a CA file that did not issue the server certificate, s_client
    fails instead of completing: the driver reports a missing marker.
    """
    require_peer("openssl")
    from tests.certs import self_signed
    from tests.peers.openssl_cli import OpenSSLClient, OpenSSLServer
    from tests.peers.process import PeerError

    other = tmp_path / "other-ca.pem"
    other.write_bytes(self_signed("other").chain_pem())
    with OpenSSLServer(cert=pem["server-ec.pem"], key=pem["server-ec.key"], cipher=SUITE) as server:
        with OpenSSLClient(server.port, cafile=str(other), cipher=SUITE) as client:
            with pytest.raises(PeerError):
                client.wait_handshake(timeout=5)
            assert client.wait() != 0


def test_gnutls_server_and_client_in_netns(pem):
    """
    gnutls-serv runs in a private network namespace: its port is bound
    there and not here. gnutls-cli, joined to that namespace, completes the
    handshake with the priority-limited suite and gets its line echoed.
    """
    for tool in ("gnutls-serv", "gnutls-cli", "timeout", "stdbuf"):
        require_peer(tool)
    require_netns()
    from tests.peers.gnutls_cli import GnuTLSClient, GnuTLSServer, priority_for

    with GnuTLSServer(
        cert=pem["server-ec.pem"], key=pem["server-ec.key"], priority=priority_for(SUITE)
    ) as server:
        assert is_udp_bound(server.port, pid=server.process.pid)
        assert not is_udp_bound(server.port)
        with GnuTLSClient(
            server.port, netns=server.netns, cafile=pem["ca.pem"], verify_hostname="localhost"
        ) as client:
            description = client.wait_handshake()
            assert description.startswith("(DTLS1.2-X.509)")
            assert description.endswith("(ECDSA-SHA256)-(AES-128-GCM)")
            client.send_line("hello gnutls")
            client.wait_for(r"^hello gnutls$", stream="stdout")
            server.wait_for(r"hello gnutls")
            client.close_stdin()
            assert client.wait() == 0
    assert server.returncode is not None


def _drive_over_socket(peer, sock: socket.socket, done, deadline: float) -> None:
    """Move datagrams between an in-memory peer and a connected UDP socket."""
    sock.settimeout(0.05)
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("no progress over the socket")
        for blob in peer.datagrams():
            sock.send(blob)
        try:
            peer.receive(sock.recv(65536))
        except socket.timeout:
            timeout = peer.get_timeout()
            if timeout is not None and timeout <= 0:
                peer.handle_timeout()


def test_socket_made_inside_netns_reaches_gnutls_server(pem, pki):
    """
    A socket the test creates inside C{netns.entered()} stays in that
    namespace after the block, so the in-process pyOpenSSL peer can talk
    to gnutls-serv through it: the way twisted_dtls tests reach gnutls-serv.
    """
    for tool in ("gnutls-serv", "pyOpenSSL"):
        require_peer(tool)
    require_netns()
    from tests.peers.gnutls_cli import GnuTLSServer, priority_for
    from tests.peers.pyopenssl_peer import OpenSSLMemoryPeer

    with GnuTLSServer(
        cert=pem["server-ec.pem"], key=pem["server-ec.key"], priority=priority_for(SUITE)
    ) as server:
        with server.netns.entered():
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with sock:
            sock.bind(("127.0.0.1", 0))
            sock.connect(server.address)
            port = sock.getsockname()[1]
            assert is_udp_bound(port, pid=server.netns.pid)
            assert not is_udp_bound(port)
            client = OpenSSLMemoryPeer("client", cipher=SUITE, ca=pki.ca_cert, mtu=1200)
            deadline = time.monotonic() + 10
            _drive_over_socket(client, sock, lambda: client.handshake_done, deadline)
            assert client.cipher_name() == SUITE
            client.send(b"echo me")
            echoed: list[bytes] = []
            _drive_over_socket(client, sock, lambda: echoed.extend(client.recv()) or echoed, deadline)
            assert echoed == [b"echo me"]


def _handshake_fragments(blob: bytes):
    """(msg_type, length, fragment_offset, fragment_length) of each epoch-0 handshake record."""
    from tests.peers.pyopenssl_peer import split_records

    out = []
    for record in split_records(blob):
        content_type, _version, epoch = struct.unpack_from("!BHH", record)
        if content_type != HANDSHAKE or epoch != 0:
            continue
        body = record[13:]
        msg_type = body[0]
        length = int.from_bytes(body[1:4], "big")
        fragment_offset = int.from_bytes(body[6:9], "big")
        fragment_length = int.from_bytes(body[9:12], "big")
        out.append((msg_type, length, fragment_offset, fragment_length))
    return out


def test_pyopenssl_memory_peers_cookie_exchange_minimum_mtu(pki):
    """
    Two in-memory OpenSSL peers: the server answers the first ClientHello
    with a HelloVerifyRequest, the handshake completes in minimum-MTU mode
    (the server's Certificate arrives in fragments), application data moves
    both ways, and close_notify is seen.
    """
    require_peer("pyOpenSSL")
    from tests.peers.pyopenssl_peer import OpenSSLMemoryPeer, pump

    server = OpenSSLMemoryPeer(
        "server", cipher=SUITE, certificate=pki.server_ec.cert,
        private_key=pki.server_ec.key, mtu=None, cookie_exchange=True,
    )
    client = OpenSSLMemoryPeer("client", cipher=SUITE, ca=pki.ca_cert, mtu=None)

    (hello,) = client.datagrams()
    assert [f[0] for f in _handshake_fragments(hello)] == [CLIENT_HELLO]
    server.receive(hello)
    (hvr,) = server.datagrams()
    assert [f[0] for f in _handshake_fragments(hvr)] == [HELLO_VERIFY_REQUEST]
    assert not server.handshake_done

    client.receive(hvr)
    (hello_with_cookie,) = client.datagrams()
    server.receive(hello_with_cookie)
    flight = b"".join(server.datagrams())
    fragments = _handshake_fragments(flight)
    assert fragments[0][0] == SERVER_HELLO
    assert any(length > fragment_length for _, length, _, fragment_length in fragments)

    client.receive(flight)
    pump(client, server)
    assert client.handshake_done and server.handshake_done
    assert client.cipher_name() == server.cipher_name() == SUITE
    assert client.peer_certificate() == pki.server_ec.cert

    client.send(b"ping")
    pump(client, server)
    assert server.recv() == [b"ping"]
    server.send(b"pong")
    server.send(b"second record")
    pump(client, server)
    assert client.recv() == [b"pong", b"second record"]

    client.close()
    pump(client, server)
    assert server.closed


def test_pyopenssl_memory_peer_fixed_mtu_does_not_fragment(pki):
    """
    With mtu=1400 the server's flight has no fragmented handshake message.
    """
    require_peer("pyOpenSSL")
    from tests.peers.pyopenssl_peer import OpenSSLMemoryPeer, pump

    server = OpenSSLMemoryPeer(
        "server", cipher=SUITE, certificate=pki.server_ec.cert,
        private_key=pki.server_ec.key, mtu=1400, cookie_exchange=False,
    )
    client = OpenSSLMemoryPeer("client", cipher=SUITE, ca=pki.ca_cert, mtu=1400)
    for blob in client.datagrams():
        server.receive(blob)
    flight = b"".join(server.datagrams())
    fragments = _handshake_fragments(flight)
    assert fragments[0][0] == SERVER_HELLO
    assert all(length == fragment_length for _, length, _, fragment_length in fragments)
    client.receive(flight)
    pump(client, server)
    assert client.handshake_done and server.handshake_done
