"""
Drivers for real DTLS 1.2 peers, used by the interoperability tests.

Nothing here imports twisted_dtls: the drivers are checked on their own
by C{tests/test_peers_smoke.py}, so an interop failure points at our code
and not at the harness.

Modules:
  - L{tests.peers.process}: L{PeerProcess}, the base for every external
    peer: runs under C{timeout}, stdin kept open as a pipe, stdout and
    stderr read into buffers by background threads, L{PeerProcess.wait_for}
    on that output, stopped by PID.
  - L{tests.peers.openssl_cli}: C{openssl s_server} / C{s_client}.
  - L{tests.peers.gnutls_cli}: C{gnutls-serv} (inside a private network
    namespace) / C{gnutls-cli}.
  - L{tests.peers.netns}: private network namespaces, and entering one from
    this process so that sockets made by the test live beside the peer.
  - L{tests.peers.pyopenssl_peer}: an in-process OpenSSL over memory BIOs.
  - L{tests.peers.ports}: free ports, waiting until a UDP port is bound.

Missing peers: L{require_peer} skips the test locally and fails it when
C{CI=true} or C{DTLS_REQUIRE_PEERS=1}, so CI can never go green by skipping
the interop tests.

Import as C{from tests.peers import ...}; the repository root is on
C{sys.path} through C{pythonpath} in C{pyproject.toml}.
"""

from __future__ import annotations

import functools
import importlib
import os
import shutil
from typing import NoReturn

import pytest

__all__ = ["peers_required", "require_peer", "require_netns", "missing_peer"]

#: Peers that are Python modules rather than executables, by the name tests
#: use for them, mapped to the module to import.
_PYTHON_PEERS = {"pyOpenSSL": "OpenSSL.SSL", "OpenSSL": "OpenSSL.SSL"}


def peers_required() -> bool:
    """
    Whether a missing interop peer must fail the test rather than skip it.

    @return: C{True} when C{CI} is C{"true"} (any case) or
        C{DTLS_REQUIRE_PEERS} is C{"1"}.
    """
    return (
        os.environ.get("CI", "").strip().lower() == "true"
        or os.environ.get("DTLS_REQUIRE_PEERS", "").strip() == "1"
    )


def missing_peer(reason: str) -> NoReturn:
    """
    Fail (in CI) or skip (locally) the running test because a peer is
    unusable.

    @param reason: what is missing and how to get it.
    """
    if peers_required():
        pytest.fail(
            f"{reason} (interop peers are required: CI=true or DTLS_REQUIRE_PEERS=1)",
            pytrace=False,
        )
    pytest.skip(f"{reason} (set DTLS_REQUIRE_PEERS=1 to make this a failure)")


_INSTALL_HINTS = {
    "openssl": "apt-get install -y openssl",
    "gnutls-serv": "apt-get install -y gnutls-bin",
    "gnutls-cli": "apt-get install -y gnutls-bin",
    "tshark": "apt-get install -y tshark",
    "timeout": "apt-get install -y coreutils",
    "stdbuf": "apt-get install -y coreutils",
    "unshare": "apt-get install -y util-linux",
    "nsenter": "apt-get install -y util-linux",
    "ip": "apt-get install -y iproute2",
    "pyOpenSSL": "python3 -m pip install -e '.[test]'",
    "OpenSSL": "python3 -m pip install -e '.[test]'",
}


@functools.cache
def _locate(name: str) -> str | None:
    if name in _PYTHON_PEERS:
        try:
            module = importlib.import_module(_PYTHON_PEERS[name])
        except ImportError:
            return None
        return module.__name__
    return shutil.which(name)


def require_peer(name: str) -> str:
    """
    Make sure an interop peer is available, or skip/fail the running test
    (see L{missing_peer}).

    @param name: an executable (C{"openssl"}, C{"gnutls-serv"},
        C{"gnutls-cli"}, C{"tshark"}, C{"timeout"}, ...) or C{"pyOpenSSL"}.
    @return: the executable's absolute path, or the module name for a
        Python peer.
    """
    found = _locate(name)
    if found is None:
        hint = _INSTALL_HINTS.get(name)
        missing_peer(
            f"interop peer {name!r} is not available"
            + (f"; install it with: {hint}" if hint else "")
        )
    return found


def require_netns() -> None:
    """
    Make sure private network namespaces can be created here (C{unshare -n},
    C{ip}, C{nsenter}, and the privilege to use them), or skip/fail the
    running test.
    """
    for tool in ("unshare", "ip", "nsenter", "timeout"):
        require_peer(tool)
    from tests.peers.netns import netns_available

    problem = netns_available()
    if problem is not None:
        missing_peer(f"cannot create a private network namespace: {problem}")
