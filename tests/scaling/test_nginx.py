"""
Several hosts behind a UDP load balancer: nginx's C{stream} module in front
of three C{dtls-echo} processes that share a certificate, a cookie secret
file and a ticket key file (docs/deployment.md shows the same
configuration).

nginx runs with a configuration of its own in a temporary directory, in
the foreground, listening on 127.0.0.1 only, and is stopped by PID. Its
info-level error log names, for every UDP session, the client and the
backend it was sent to: that is how the test knows which clients were on
the backend it stops.
"""

from __future__ import annotations

import os
import re
import shutil

from tests.certs import make_pki, write_pem_files
from tests.peers import missing_peer
from tests.peers.ports import free_udp_port
from tests.peers.process import PeerProcess
from tests.scaling.loadclient import LoadClient, loopbackSources
from tests.scaling.processes import killAll, readStatus, startEcho, waitGone, waitStatus
from twisted_dtls.core.configuration import DTLSConfiguration
from twisted_dtls.secretfiles import writeSecretFile

STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"
CLIENTS = 200

NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
load_module {module};

events {{
    worker_connections 4096;
}}

stream {{
    upstream dtls {{
        # One client address and port, one backend; when a backend fails,
        # only its clients move (consistent hashing).
        hash $remote_addr$remote_port consistent;
{servers}
    }}

    server {{
        listen 127.0.0.1:{port} udp;
        proxy_pass dtls;
        # A DTLS association is a long UDP session: keep nginx's session
        # while the client is idle less than this, and do not set
        # proxy_responses (a count would end the session mid-handshake).
        proxy_timeout 120s;
    }}
}}
"""


def _nginx() -> str:
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if binary is None:
        missing_peer("nginx is not available; install it with: apt-get install -y nginx libnginx-mod-stream")
    if not os.path.exists(STREAM_MODULE):
        missing_peer(f"nginx's stream module ({STREAM_MODULE}) is missing; "
                     "install it with: apt-get install -y libnginx-mod-stream")
    return binary


def _listeningAddresses(pid: int) -> set[str]:
    """
    The local addresses of every socket process C{pid} holds (from /proc).
    """
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    addresses = set()
    for table in ("tcp", "udp", "tcp6", "udp6"):
        try:
            with open(f"/proc/{pid}/net/{table}") as f:
                lines = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            if fields[9] in inodes:
                host = fields[1].split(":")[0]
                if len(host) == 8:
                    host = ".".join(str(int(host[i:i + 2], 16)) for i in (6, 4, 2, 0))
                addresses.add(f"{table}:{host}")
    return addresses


_SESSION = re.compile(r"\*(\d+) udp (client|proxy) (\S+) connected to (\S+)")


def _sessions(errorLog: str) -> dict[str, str]:
    """
    The backend ("127.0.0.1:PORT") each client ("ADDR:PORT") was last sent
    to, from nginx's info log.
    """
    clients: dict[str, str] = {}
    backends: dict[str, str] = {}
    order: list[str] = []
    with open(errorLog) as f:
        for line in f:
            match = _SESSION.search(line)
            if not match:
                continue
            session, kind, source, destination = match.groups()
            if kind == "client":
                clients[session] = source
            else:
                backends[session] = destination
                order.append(session)
    result: dict[str, str] = {}
    for session in order:
        if session in clients:
            result[clients[session]] = backends[session]
    return result


def _handshakesWhenSettled(backends, total: int) -> list[int]:
    """
    Each backend's completed handshakes, once their status files add up to
    C{total} (they are written every second).
    """
    def counts():
        return [(readStatus(s) or {"listeners": [{"stats": {"handshakesCompleted": -1}}]})
                ["listeners"][0]["stats"]["handshakesCompleted"] for _, s in backends]

    waitStatus(backends[0][1], lambda _: sum(counts()) == total, 10, backends[0][0], f"{total} handshakes")
    return counts()


def test_nginxInFrontOfThreeBackends(tmp_path):
    """
    200 clients through nginx to three backends all complete and echo.
    Stopping one backend moves only its clients: they complete new,
    abbreviated handshakes (the ticket key is shared) on the other two,
    while every other client keeps its first session.
    """
    nginx = _nginx()
    pem = write_pem_files(make_pki(), tmp_path / "pem")
    cookie, ticket = str(tmp_path / "cookie.secret"), str(tmp_path / "ticket.secret")
    writeSecretFile(cookie)
    writeSecretFile(ticket)
    description = (f"dtls:0:interface=127.0.0.1:privateKey={pem['server-ec.key']}:certKey={pem['server-ec.pem']}"
                   f":cookieSecretFile={cookie}:ticketKeyFile={ticket}")
    backends = []
    front = None
    pids: list[int] = []
    try:
        for i in range(3):
            statusFile = str(tmp_path / f"backend-{i}.json")
            backends.append((startEcho(tmp_path, [description], statusFile, name=f"backend-{i}"), statusFile))
        ports, backendPids = [], []
        for process, statusFile in backends:
            status = waitStatus(statusFile, lambda s: s["listeners"], 60, process, "a backend listening")
            ports.append(status["listeners"][0]["port"])
            backendPids.append(status["pid"])
        pids += backendPids

        directory = tmp_path / "nginx"
        directory.mkdir()
        port = free_udp_port()
        (directory / "nginx.conf").write_text(NGINX_CONF.format(
            dir=directory, module=STREAM_MODULE, port=port,
            servers="\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=30s;" for p in ports),
        ))
        errorLog = str(directory / "error.log")
        front = PeerProcess([nginx, "-p", str(directory), "-c", str(directory / "nginx.conf"), "-e", errorLog],
                            cwd=str(directory), lifetime=150)
        front.name = "nginx"
        front.wait_bound(port, timeout=20)
        nginxPid = int((directory / "nginx.pid").read_text())
        pids.append(nginxPid)
        assert _listeningAddresses(nginxPid) == {"udp:127.0.0.1"}, "nginx must listen on 127.0.0.1 only"

        configuration = DTLSConfiguration(trust_roots=(make_pki().ca_cert,), server_name="localhost",
                                          initial_timeout=0.5)
        with LoadClient(("127.0.0.1", port), configuration, loopbackSources(CLIENTS)) as load:
            load.handshake(deadline=60)
            load.echo("first", rehandshakeAfter=None, deadline=30)
            route = _sessions(errorLog)
            everyone = {c.local for c in load.clients}
            assert set(route) == everyone
            used = {f"127.0.0.1:{p}": {c for c, b in route.items() if b == f"127.0.0.1:{p}"} for p in ports}
            assert all(used.values()), {b: len(c) for b, c in used.items()}
            completed = _handshakesWhenSettled(backends, CLIENTS)

            stopped = f"127.0.0.1:{ports[0]}"
            backends[0][0].stop()
            assert waitGone([backendPids[0]], 10) == []
            load.echo("second", rehandshakeAfter=3.0, deadline=60)

            moved = {c.local for c in load.clients if c.handshakes > 1}
            assert moved == used[stopped]
            assert all(c.lastResumed for c in load.clients if c.local in moved)
            assert all(c.handshakes == 1 for c in load.clients if c.local not in moved)
            load.echo("third", rehandshakeAfter=None, deadline=30)
            assert sum(c.handshakes for c in load.clients) == CLIENTS + len(moved)

            after = _sessions(errorLog)
            assert all(after[c] != stopped for c in moved)
            assert all(after[c] == route[c] for c in everyone - moved)

            # The survivors completed exactly the moved clients' handshakes.
            now = _handshakesWhenSettled(backends[1:], sum(completed[1:]) + len(moved))
            assert now == [completed[1] + sum(1 for c in moved if after[c] == f"127.0.0.1:{ports[1]}"),
                           completed[2] + sum(1 for c in moved if after[c] == f"127.0.0.1:{ports[2]}")]
    finally:
        if front is not None:
            front.stop()
        for process, _ in backends:
            process.stop()
        killAll(pids)


def _directives(text: str) -> list[str]:
    lines = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def test_deploymentGuideShowsTheTestedSettings():
    """
    The nginx configuration in docs/deployment.md sets what this test's
    configuration relies on, and nothing that would break DTLS.
    """
    from tests.twisted.clitools import REPOSITORY

    with open(os.path.join(REPOSITORY, "docs", "deployment.md"), encoding="utf-8") as f:
        guide = f.read()
    block = re.search(r"^```nginx\n(.*?)^```$", guide, flags=re.S | re.M).group(1)
    documented = _directives(block)
    tested = _directives(NGINX_CONF.format(dir="/d", module="/m", port=4433, servers="server 127.0.0.1:1;"))
    for directive in ("hash $remote_addr$remote_port consistent;", "proxy_pass dtls"):
        assert any(d.startswith(directive) for d in documented) and any(d.startswith(directive) for d in tested)
    for directives in (documented, tested):
        assert any(re.fullmatch(r"listen (\S+:)?\d+ udp;", d) for d in directives)
        assert any(d.startswith("proxy_timeout ") for d in directives)
        assert not any(d.startswith("proxy_responses") for d in directives)
