"""
GnuTLS 3.7 (C{gnutls-bin}) as a DTLS 1.2 peer.

C{gnutls-serv} has no bind-address option: it binds 0.0.0.0 and [::]. So
L{GnuTLSServer} always runs inside a private network namespace that has
only C{lo} (L{tests.peers.netns.NetworkNamespace}; it creates one unless
given C{netns=}), and whatever talks to it must be in that namespace too:

  - another peer program: pass C{netns=server.netns}, e.g.
    C{GnuTLSClient(server.port, netns=server.netns, ...)} or
    C{OpenSSLClient(server.port, netns=server.netns, ...)};
  - the test's own sockets (twisted_dtls): create them inside
    C{with server.netns.entered(): ...}. Only the calling thread moves and
    only for the block; the socket stays in the namespace, so the reactor
    serves it normally afterwards. Create the socket, leave the block, then
    run the reactor;
  - a whole Python program: L{tests.peers.netns.run_in_netns}, or
    C{server.netns.argv([...])} with L{subprocess}.

Both need root (CAP_SYS_ADMIN): use L{tests.peers.require_netns}.

L{GnuTLSServer} echoes every record back (C{--echo}), serves many clients
and never exits: it is stopped by PID. It sends one handshake message per
datagram and a 16-byte cookie. It asks for a client certificate unless
C{-a} (the default here: C{require_client_cert=False}).

L{GnuTLSClient}: C{gnutls-cli --udp}. It needs no namespace (it binds an
ephemeral port and connects to 127.0.0.1) unless its server is in one.
Markers on stdout: C{- Handshake was completed}, the suite in
C{- Description: (DTLS1.2-X.509)-(ECDHE-SECP256R1)-(ECDSA-SHA256)-(AES-128-GCM)},
C{- Application protocol: coap}, C{- SRTP profile: ...},
C{*** This is a resumed session}. EOF on its stdin ends the session
(close_notify) and it exits 0.

C{mtu} is the UDP payload size for GnuTLS (unlike OpenSSL's C{-mtu}).
Key logs go through the C{SSLKEYLOGFILE} environment variable.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Sequence

from tests.peers.netns import NetworkNamespace
from tests.peers.openssl_cli import PSK_IDENTITY, PSK_KEY_HEX
from tests.peers.ports import free_udp_port
from tests.peers.process import PeerProcess

__all__ = ["GnuTLSServer", "GnuTLSClient", "priority_for", "DTLS12_PRIORITY"]

#: Priority prefix limiting GnuTLS to DTLS 1.2.
DTLS12_PRIORITY = "NORMAL:-VERS-ALL:+VERS-DTLS1.2"

# Suite (OpenSSL/IANA-style name) -> what to add after DTLS12_PRIORITY so
# that GnuTLS offers or accepts only that suite.
_SUITE_PRIORITIES = {
    "ECDHE-ECDSA-AES128-GCM-SHA256": "-KX-ALL:+ECDHE-ECDSA:-CIPHER-ALL:+AES-128-GCM",
    "ECDHE-ECDSA-AES256-GCM-SHA384": "-KX-ALL:+ECDHE-ECDSA:-CIPHER-ALL:+AES-256-GCM",
    "ECDHE-ECDSA-CHACHA20-POLY1305": "-KX-ALL:+ECDHE-ECDSA:-CIPHER-ALL:+CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-CCM8": "-KX-ALL:+ECDHE-ECDSA:-CIPHER-ALL:+AES-128-CCM-8",
    "ECDHE-ECDSA-AES128-CCM": "-KX-ALL:+ECDHE-ECDSA:-CIPHER-ALL:+AES-128-CCM",
    "ECDHE-RSA-AES128-GCM-SHA256": "-KX-ALL:+ECDHE-RSA:-CIPHER-ALL:+AES-128-GCM",
    "ECDHE-RSA-AES256-GCM-SHA384": "-KX-ALL:+ECDHE-RSA:-CIPHER-ALL:+AES-256-GCM",
    "ECDHE-RSA-CHACHA20-POLY1305": "-KX-ALL:+ECDHE-RSA:-CIPHER-ALL:+CHACHA20-POLY1305",
    "PSK-AES128-CCM8": "-KX-ALL:+PSK:-CIPHER-ALL:+AES-128-CCM-8",
    "PSK-AES128-GCM-SHA256": "-KX-ALL:+PSK:-CIPHER-ALL:+AES-128-GCM",
    "ECDHE-PSK-CHACHA20-POLY1305": "-KX-ALL:+ECDHE-PSK:-CIPHER-ALL:+CHACHA20-POLY1305",
}


def priority_for(suite: str | None = None) -> str:
    """
    A GnuTLS priority string for DTLS 1.2, limited to one suite.

    @param suite: an OpenSSL-style suite name (see the table in this
        module), or C{None} for every DTLS 1.2 suite GnuTLS enables by
        default.
    @raise KeyError: a suite not in the table.
    """
    if suite is None:
        return DTLS12_PRIORITY
    return f"{DTLS12_PRIORITY}:{_SUITE_PRIORITIES[suite]}"


def _keylog_env(keylogfile: str | None) -> dict[str, str] | None:
    if not keylogfile:
        return None
    env = dict(os.environ)
    env["SSLKEYLOGFILE"] = str(keylogfile)
    return env


class GnuTLSServer(PeerProcess):
    """
    C{gnutls-serv --udp --echo} inside a private network namespace.

    @ivar netns: the namespace it runs in (see the module docstring).
    @ivar port: its UDP port (bound on 0.0.0.0 and [::] of L{netns} when the
        constructor returns).
    """

    name = "gnutls-serv"

    def __init__(
        self,
        *,
        port: int | None = None,
        priority: str | None = None,
        cert: str | None = None,
        key: str | None = None,
        cafile: str | None = None,
        require_client_cert: bool = False,
        psk: str | None = None,
        psk_identity: str = PSK_IDENTITY,
        mtu: int | None = None,
        alpn: str | Sequence[str] | None = None,
        srtp: str | None = None,
        keylogfile: str | None = None,
        cookie: bool = True,
        extra_args: Sequence[str] = (),
        netns: NetworkNamespace | None = None,
        lifetime: float = 60.0,
        bind_timeout: float = 10.0,
    ) -> None:
        """
        @param priority: e.g. L{priority_for}C{("ECDHE-ECDSA-AES128-GCM-SHA256")};
            default L{DTLS12_PRIORITY}.
        @param require_client_cert: C{-r --verify-client-cert} (give
            C{cafile}); otherwise C{-a}.
        @param psk: PSK key as hex; written with C{psk_identity} to a
            C{--pskpasswd} file.
        @param srtp: e.g. C{"SRTP_AES128_CM_HMAC_SHA1_80"} (GnuTLS names).
        @param cookie: C{False} passes C{--nocookie}.
        @param netns: run in this namespace instead of a new one (the caller
            then owns it).
        """
        self._tempdir: str | None = None
        self._own_netns = netns is None
        ns = netns if netns is not None else NetworkNamespace(lifetime=lifetime + 30)
        try:
            self.host = "127.0.0.1"
            self.port = port if port is not None else free_udp_port()
            argv = ["gnutls-serv", "--udp", "-p", str(self.port), "--echo",
                    "--priority", priority or DTLS12_PRIORITY]
            if cert or key:
                argv += ["--x509certfile", str(cert), "--x509keyfile", str(key or cert)]
            if cafile:
                argv += ["--x509cafile", str(cafile)]
            argv += ["-r", "--verify-client-cert"] if require_client_cert else ["-a"]
            if psk:
                self._tempdir = tempfile.mkdtemp(prefix="gnutls-serv-")
                passwd = os.path.join(self._tempdir, "psk.passwd")
                with open(passwd, "w") as f:
                    f.write(f"{psk_identity}:{psk}\n")
                argv += ["--pskpasswd", passwd]
            if mtu is not None:
                argv += ["--mtu", str(mtu)]
            if alpn:
                for proto in [alpn] if isinstance(alpn, str) else alpn:
                    argv += ["--alpn", proto]
            if srtp:
                argv += ["--srtp-profiles", srtp]
            if not cookie:
                argv.append("--nocookie")
            argv += list(extra_args)
            super().__init__(argv, env=_keylog_env(keylogfile), netns=ns, lifetime=lifetime)
        except BaseException:
            self._cleanup(ns)
            raise
        try:
            self.wait_bound(self.port, bind_timeout)
        except BaseException:
            self.stop()
            raise

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def _cleanup(self, ns: NetworkNamespace) -> None:
        if self._own_netns:
            ns.close()
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None

    def stop(self, grace: float = 3.0) -> int | None:
        code = super().stop(grace)
        self._cleanup(self.netns)
        return code


class GnuTLSClient(PeerProcess):
    """
    C{gnutls-cli --udp} connecting to a loopback port.
    """

    name = "gnutls-cli"

    HANDSHAKE_MARKER = r"^- Handshake was completed"
    DESCRIPTION = r"^- Description: (\S+)"

    def __init__(
        self,
        port: int,
        *,
        host: str = "127.0.0.1",
        priority: str | None = None,
        cafile: str | None = None,
        verify_hostname: str | None = "localhost",
        insecure: bool | None = None,
        cert: str | None = None,
        key: str | None = None,
        psk: str | None = None,
        psk_identity: str = PSK_IDENTITY,
        mtu: int | None = None,
        alpn: str | Sequence[str] | None = None,
        srtp: str | None = None,
        resume: bool = False,
        keylogfile: str | None = None,
        extra_args: Sequence[str] = (),
        netns: NetworkNamespace | None = None,
        lifetime: float = 60.0,
    ) -> None:
        """
        @param cafile: trust roots; the server certificate is then verified
            (with C{verify_hostname}, if not C{None}).
        @param insecure: C{--insecure} (no certificate verification). Default:
            only when neither C{cafile} nor C{psk} is given.
        @param psk: PSK key as hex, sent with C{psk_identity}.
        @param resume: C{--resume}: connect twice, resuming the session.
        @param netns: run inside this namespace (a L{GnuTLSServer}'s).
        """
        self.host = host
        self.port = port
        argv = ["gnutls-cli", "--udp", "-p", str(port), host,
                "--priority", priority or DTLS12_PRIORITY]
        if cafile:
            argv += ["--x509cafile", str(cafile)]
            if verify_hostname:
                argv += ["--verify-hostname", verify_hostname]
        if insecure is None:
            insecure = not cafile and not psk
        if insecure:
            argv.append("--insecure")
        if cert or key:
            argv += ["--x509certfile", str(cert), "--x509keyfile", str(key or cert)]
        if psk:
            argv += ["--pskusername", psk_identity, "--pskkey", psk]
        if mtu is not None:
            argv += ["--mtu", str(mtu)]
        if alpn:
            for proto in [alpn] if isinstance(alpn, str) else alpn:
                argv += ["--alpn", proto]
        if srtp:
            argv += ["--srtp-profiles", srtp]
        if resume:
            argv.append("--resume")
        argv += list(extra_args)
        super().__init__(argv, env=_keylog_env(keylogfile), netns=netns, lifetime=lifetime)

    def wait_handshake(self, timeout: float = 10.0) -> str:
        """
        Block until C{- Handshake was completed}.

        @return: the C{- Description:} value, e.g.
            C{(DTLS1.2-X.509)-(ECDHE-SECP256R1)-(ECDSA-SHA256)-(AES-128-GCM)}.
        """
        self.wait_for(self.HANDSHAKE_MARKER, timeout, stream="stdout")
        match = self.search(self.DESCRIPTION, stream="stdout")
        return match.group(1) if match else ""

    def when_handshake(self, timeout: float = 10.0, reactor=None):
        """L{wait_handshake} as a Deferred firing with the description."""

        def described(_):
            match = self.search(self.DESCRIPTION, stream="stdout")
            return match.group(1) if match else ""

        return self.when(self.HANDSHAKE_MARKER, timeout, "stdout", reactor).addCallback(described)


__all__ += ["PSK_IDENTITY", "PSK_KEY_HEX"]
