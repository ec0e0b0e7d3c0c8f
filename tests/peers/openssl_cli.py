"""
The C{openssl} command line (OpenSSL 3.0 on Debian 12) as a DTLS 1.2 peer.

  - L{OpenSSLServer}: C{openssl s_server -dtls1_2 -accept HOST:PORT -brief}.
    It prints received application data on stdout and sends its stdin; its
    stdin must stay open (EOF makes it exit). Cookie exchange is always on.
    Without C{-listen} it cannot query the MTU and sends 228-byte datagrams
    (its Certificate comes in fragments) unless C{mtu} is given.
    With C{naccept=1} it exits 0 after the client's close_notify.
  - L{OpenSSLClient}: C{openssl s_client -dtls1_2 -connect HOST:PORT -brief
    -nocommands}. It sends its stdin line by line and prints what arrives;
    EOF on stdin makes it send close_notify and exit 0.

Handshake marker, both roles, with C{-brief}: C{Ciphersuite: NAME} on
stderr (the client also prints C{CONNECTION ESTABLISHED}). C{-brief} hides
the ALPN and SRTP results: pass C{brief=False} to see
C{ALPN protocols selected: ...} / C{SRTP Extension negotiated, profile=...}
(without C{-brief}, stdin lines of C{s_server} are commands, so do not send
data then). C{mtu} counts the 28 bytes of IP+UDP; the minimum is 256.
The DEFAULT cipher list has no CCM: name the suite.

Example::

    with OpenSSLServer(cert=pem["server-ec.pem"], key=pem["server-ec.key"],
                       cipher="ECDHE-ECDSA-AES128-GCM-SHA256") as server:
        ... connect to ("127.0.0.1", server.port) ...
        server.wait_handshake()
        server.send_line("hello")
"""

from __future__ import annotations

from typing import Sequence

from tests.peers.ports import free_udp_port
from tests.peers.process import PeerProcess

__all__ = ["OpenSSLServer", "OpenSSLClient", "PSK_IDENTITY", "PSK_KEY_HEX"]

#: The PSK used throughout the interop tests (see INTEROP notes).
PSK_IDENTITY = "client1"
PSK_KEY_HEX = "000102030405060708090a0b0c0d0e0f"

#: Printed on stderr by both roles in -brief mode when the handshake is done.
HANDSHAKE_MARKER = r"^Ciphersuite: (\S+)"


def _common_args(
    cipher: str | None,
    cafile: str | None,
    psk: str | None,
    psk_identity: str,
    mtu: int | None,
    alpn: str | Sequence[str] | None,
    srtp: str | None,
    keylogfile: str | None,
    brief: bool,
) -> list[str]:
    args: list[str] = []
    if brief:
        args.append("-brief")
    if cipher:
        args += ["-cipher", cipher]
    if cafile:
        args += ["-CAfile", cafile]
    if psk:
        args += ["-psk", psk, "-psk_identity", psk_identity]
    if mtu is not None:
        args += ["-mtu", str(mtu)]
    if alpn:
        args += ["-alpn", alpn if isinstance(alpn, str) else ",".join(alpn)]
    if srtp:
        args += ["-use_srtp", srtp]
    if keylogfile:
        args += ["-keylogfile", str(keylogfile)]
    return args


class _OpenSSLPeer(PeerProcess):
    def wait_handshake(self, timeout: float = 10.0) -> str:
        """
        Block until the handshake completed (C{-brief} marker).

        @return: the negotiated suite's OpenSSL name.
        @raise tests.peers.process.PeerError: on timeout or exit.
        """
        return self.wait_for(HANDSHAKE_MARKER, timeout).group(1)

    def when_handshake(self, timeout: float = 10.0, reactor=None):
        """L{wait_handshake} as a Deferred firing with the suite name."""
        return self.when(HANDSHAKE_MARKER, timeout, reactor=reactor).addCallback(
            lambda match: match.group(1)
        )


class OpenSSLServer(_OpenSSLPeer):
    """
    C{openssl s_server} for DTLS 1.2 on loopback.

    @ivar host: C{"127.0.0.1"} or C{"::1"}.
    @ivar port: the UDP port it listens on (bound when the constructor
        returns).
    """

    name = "openssl-s_server"

    def __init__(
        self,
        *,
        port: int | None = None,
        ipv6: bool = False,
        cert: str | None = None,
        key: str | None = None,
        cipher: str | None = None,
        cafile: str | None = None,
        verify_client: bool = False,
        psk: str | None = None,
        psk_identity: str = PSK_IDENTITY,
        mtu: int | None = None,
        alpn: str | Sequence[str] | None = None,
        srtp: str | None = None,
        keylogfile: str | None = None,
        naccept: int | None = 1,
        brief: bool = True,
        extra_args: Sequence[str] = (),
        netns=None,
        lifetime: float = 60.0,
        bind_timeout: float = 10.0,
    ) -> None:
        """
        @param cert: PEM certificate file; with neither C{cert} nor C{key},
            C{-nocert} is passed (for PSK).
        @param verify_client: require a client certificate (C{-Verify 1
            -verify_return_error}); give C{cafile}.
        @param psk: PSK key as hex (e.g. L{PSK_KEY_HEX}).
        @param naccept: exit after this many connections (C{None}: never).
        @param extra_args: appended as they are (e.g. C{["-no_ticket"]}).
        @param netns: a L{tests.peers.netns.NetworkNamespace} to run in.
        """
        self.host = "::1" if ipv6 else "127.0.0.1"
        self.port = port if port is not None else free_udp_port(self.host)
        accept = f"[{self.host}]:{self.port}" if ipv6 else f"{self.host}:{self.port}"
        argv = ["openssl", "s_server", "-dtls1_2", "-accept", accept]
        if naccept is not None:
            argv += ["-naccept", str(naccept)]
        if cert or key:
            argv += ["-cert", str(cert), "-key", str(key or cert)]
        else:
            argv.append("-nocert")
        argv += _common_args(cipher, cafile, psk, psk_identity, mtu, alpn, srtp, keylogfile, brief)
        if verify_client:
            argv += ["-Verify", "1", "-verify_return_error"]
        argv += list(extra_args)
        super().__init__(argv, netns=netns, lifetime=lifetime)
        try:
            self.wait_bound(self.port, bind_timeout)
        except BaseException:
            self.stop()
            raise

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)


class OpenSSLClient(_OpenSSLPeer):
    """
    C{openssl s_client} for DTLS 1.2, connecting to a loopback port.
    """

    name = "openssl-s_client"

    def __init__(
        self,
        port: int,
        *,
        host: str | None = None,
        ipv6: bool = False,
        cipher: str | None = None,
        cafile: str | None = None,
        verify: bool = True,
        servername: str | None = None,
        cert: str | None = None,
        key: str | None = None,
        psk: str | None = None,
        psk_identity: str = PSK_IDENTITY,
        mtu: int | None = None,
        alpn: str | Sequence[str] | None = None,
        srtp: str | None = None,
        keylogfile: str | None = None,
        reconnect: bool = False,
        brief: bool = True,
        extra_args: Sequence[str] = (),
        netns=None,
        lifetime: float = 60.0,
    ) -> None:
        """
        @param host: default C{"::1"} if C{ipv6} else C{"127.0.0.1"}.
        @param verify: with C{cafile}, abort on a verification failure
            (C{-verify_return_error}).
        @param servername: SNI to send (C{-servername}); by default
            s_client sends none for an IP address.
        @param cert: client certificate file (with C{key}).
        @param reconnect: C{-reconnect}: five more connections resuming the
            session (the server needs C{naccept=6}).
        """
        self.host = host or ("::1" if ipv6 else "127.0.0.1")
        self.port = port
        connect = f"[{self.host}]:{port}" if ":" in self.host else f"{self.host}:{port}"
        argv = ["openssl", "s_client", "-dtls1_2", "-connect", connect, "-nocommands"]
        argv += _common_args(cipher, cafile, psk, psk_identity, mtu, alpn, srtp, keylogfile, brief)
        if cafile and verify:
            argv.append("-verify_return_error")
        if servername:
            argv += ["-servername", servername]
        if cert or key:
            argv += ["-cert", str(cert), "-key", str(key or cert)]
        if reconnect:
            argv.append("-reconnect")
        argv += list(extra_args)
        super().__init__(argv, netns=netns, lifetime=lifetime)
