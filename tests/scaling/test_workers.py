"""
C{twistd dtls-echo --workers N}: the supervisor on a fake reactor (what it
binds, writes and spawns; restarts with backoff; stopping), then for real:
four workers on one port serving 200 peers, one killed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat

import pytest
from twisted.internet.error import CannotListenError, ProcessDone, ProcessTerminated
from twisted.internet.task import Clock
from twisted.python import usage
from twisted.python.failure import Failure

from tests.scaling.loadclient import LoadClient, loopbackSources
from tests.scaling.processes import killAll, peersByPid, readStatus, startEcho, waitGone, waitStatus, workerPids
from twisted_dtls import tap
from twisted_dtls.core.configuration import DTLSConfiguration
from twisted_dtls.endpoints import splitDescription
from twisted_dtls.secretfiles import readSecretFile
from twisted_dtls.workers import RestartPolicy, WorkerSupervisor, escapeValue, makeSupervisorService

# -- the supervisor on a fake reactor ------------------------------------------------


class FakeProcess:
    def __init__(self, pid, protocol, argv, childFDs):
        self.pid = pid
        self.protocol = protocol
        self.argv = argv
        self.childFDs = childFDs
        self.signals = []
        self.ended = False

    def signalProcess(self, name):
        self.signals.append(name)

    def end(self, reason=None):
        assert not self.ended
        self.ended = True
        self.protocol.processEnded(Failure(reason or ProcessDone(0)))


class FakeReactor(Clock):
    def __init__(self):
        super().__init__()
        self.spawned: list[FakeProcess] = []

    def spawnProcess(self, protocol, executable, args, env=None, path=None, childFDs=None, **kw):
        process = FakeProcess(1000 + len(self.spawned), protocol, list(args), dict(childFDs))
        self.spawned.append(process)
        protocol.makeConnection(process)
        return process


def _boundPort(fd: int) -> tuple:
    sock = socket.socket(fileno=os.dup(fd))
    try:
        return sock.getsockname(), sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
    finally:
        sock.close()


def _listenArgument(argv: list[str]) -> dict:
    description = argv[argv.index("--listen") + 1]
    return splitDescription(description)[1]


@pytest.fixture
def supervised():
    reactor = FakeReactor()
    supervisor = WorkerSupervisor(reactor, ["dtls:0:interface=127.0.0.1"], 3,
                                  restartPolicy=RestartPolicy(initialDelay=0.5, maxDelay=4.0, healthyAfter=10.0))
    supervisor.startService()
    yield reactor, supervisor
    if supervisor.running:
        stopped = supervisor.stopService()
        for process in reactor.spawned:
            if not process.ended:
                process.end(ProcessTerminated(signal=15))
        assert stopped.called


def test_supervisorBindsOneGroupAndSpawnsWorkers(supervised):
    reactor, supervisor = supervised
    assert len(reactor.spawned) == 3
    directory = supervisor.directory
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    addresses = set()
    for process in reactor.spawned:
        argv = process.argv
        assert argv[1:5] == ["-m", "twisted", "--log-format=text", "dtls-echo"] and "--supervised" in argv
        keywords = _listenArgument(argv)
        assert keywords["fileDescriptor"] == "3"
        address, reuse = _boundPort(process.childFDs[3])
        assert reuse == 1
        addresses.add(address)
        for name in ("cookieSecretFile", "ticketKeyFile", "privateKey", "certKey"):
            path = keywords[name]
            assert os.path.dirname(path) == directory
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert len(readSecretFile(keywords["cookieSecretFile"])) == 64
        assert readSecretFile(keywords["cookieSecretFile"]) != readSecretFile(keywords["ticketKeyFile"])
    # Three sockets, one address and port: an SO_REUSEPORT group.
    assert len(addresses) == 1
    host, port = addresses.pop()
    assert host == "127.0.0.1" and port != 0 and supervisor.addresses == [("127.0.0.1", port)]
    # Every worker was given the same files.
    assert len({tuple(sorted(_listenArgument(p.argv).items()))for p in reactor.spawned}) == 1
    # The descriptors differ (one socket per worker).
    assert len({p.childFDs[3] for p in reactor.spawned}) == 3


def test_workerRestartedWithBackoff(supervised):
    reactor, supervisor = supervised
    first = reactor.spawned[0]
    reactor.advance(20)  # a healthy run
    first.end(ProcessTerminated(signal=9))
    assert len(reactor.spawned) == 3
    reactor.advance(0.49)
    assert len(reactor.spawned) == 3
    reactor.advance(0.01)
    assert len(reactor.spawned) == 4
    replacement = reactor.spawned[3]
    assert replacement.childFDs[3] == first.childFDs[3]  # the same socket
    # Quick failures double the delay, up to maxDelay.
    delays = []
    for _ in range(5):
        process = reactor.spawned[-1]
        process.end(ProcessTerminated(exitCode=1))
        before = len(reactor.spawned)
        waited = 0.0
        while len(reactor.spawned) == before:
            reactor.advance(0.25)
            waited += 0.25
        delays.append(waited)
    assert delays == [1.0, 2.0, 4.0, 4.0, 4.0]
    status = supervisor.status()
    assert status["workers"][0]["restarts"] == 6 and status["workers"][0]["lastExit"] == "exited with status 1"
    assert status["workers"][1]["restarts"] == 0


def test_stopSendsSIGTERMThenSIGKILL(supervised):
    reactor, supervisor = supervised
    directory = supervisor.directory
    fds = [p.childFDs[3] for p in reactor.spawned]
    reactor.spawned[2].end(ProcessTerminated(signal=9))  # a restart is pending
    stopped = supervisor.stopService()
    assert [p.signals for p in reactor.spawned] == [["TERM"], ["TERM"], []]
    reactor.spawned[0].end(ProcessTerminated(signal=15))
    reactor.advance(9.9)
    assert not stopped.called and len(reactor.spawned) == 3  # no restart while stopping
    reactor.advance(0.1)
    assert reactor.spawned[1].signals == ["TERM", "KILL"]
    reactor.spawned[1].end(ProcessTerminated(signal=9))
    assert stopped.called
    assert not os.path.exists(directory)
    for fd in fds:
        with pytest.raises(OSError):
            os.fstat(fd)
    assert not reactor.getDelayedCalls()


def test_givenSecretsAndCertificateAreUsed(tmp_path):
    cookie, ticket = tmp_path / "c:ookie", tmp_path / "ticket"
    cookie.write_text("c" * 32)
    ticket.write_text("t" * 32)
    reactor = FakeReactor()
    description = (f"dtls:0:interface=127.0.0.1:cookieSecretFile={escapeValue(str(cookie))}"
                   f":ticketKeyFile={ticket}:privateKey=/k.pem")
    supervisor = WorkerSupervisor(reactor, [description, "dtls:0:interface=127.0.0.1:sessionTickets=no"], 1)
    supervisor.startService()
    try:
        argv = reactor.spawned[0].argv
        listens = [splitDescription(argv[i + 1])[1] for i, a in enumerate(argv) if a == "--listen"]
        assert listens[0]["cookieSecretFile"] == str(cookie) and listens[0]["ticketKeyFile"] == str(ticket)
        assert listens[0]["privateKey"] == "/k.pem" and "certKey" not in listens[0]
        assert listens[0]["fileDescriptor"] == "3" and listens[1]["fileDescriptor"] == "4"
        assert "ticketKeyFile" not in listens[1]
        assert os.path.dirname(listens[1]["cookieSecretFile"]) == supervisor.directory
        assert len(supervisor.addresses) == 2
    finally:
        d = supervisor.stopService()
        reactor.spawned[0].end()
        assert d.called


@pytest.mark.parametrize(
    "listen, message",
    [("dtls:0:fileDescriptor=3", "fileDescriptor= is set by --workers"),
     ("dtls:0:reusePort=yes", "reusePort= is set by --workers"),
     ("dtls:0:nonsense=1", "nonsense")],
)
def test_makeSupervisorServiceRejects(listen, message):
    options = tap.Options()
    options.parseOptions(["--workers", "2", "--listen", listen])
    with pytest.raises(usage.UsageError, match=message):
        makeSupervisorService(options, FakeReactor())


def test_tapOptions():
    options = tap.Options()
    options.parseOptions([])
    assert options["workers"] == 0 and options["status-file"] is None and not options["supervised"]
    options.parseOptions(["--workers", "4", "--status-file", "/tmp/s.json"])
    assert options["workers"] == 4 and options["status-file"] == "/tmp/s.json"
    with pytest.raises(usage.UsageError):
        tap.Options().parseOptions(["--workers", "-1"])
    service = tap.makeService(_parsed(["--workers", "2", "--listen", "dtls:0:interface=127.0.0.1"]), FakeReactor())
    assert isinstance(service, WorkerSupervisor) and service.count == 2


def _parsed(argv):
    options = tap.Options()
    options.parseOptions(argv)
    return options


# -- for real ----------------------------------------------------------------------

CLIENTS = 200


def _up(count):
    def check(status):
        return (len(status["workers"]) == count and all(w["pid"] and w["status"] for w in status["workers"])
                and status["listening"])
    return check


def test_fourWorkersOnOnePort(tmp_path):
    """
    Four workers behind one port; 200 peers from 200 loopback addresses all
    complete a handshake and echo, and every worker serves some. One worker
    is SIGKILLed: exactly its peers start a new handshake (abbreviated: the
    workers share the ticket key) and are served again, by its restarted
    successor; every other peer goes on echoing on its first session.
    SIGTERM to the supervisor stops every worker and removes the secrets.
    """
    statusFile = str(tmp_path / "status.json")
    supervisor = startEcho(tmp_path, ["dtls:0:interface=127.0.0.1"], statusFile, "--workers", "4",
                           name="supervisor")
    pids: list[int] = []
    try:
        status = waitStatus(statusFile, _up(4), 60, supervisor, "four workers")
        pids = [status["pid"], *workerPids(status)]
        port = status["listening"][0]["port"]
        fingerprints = {w["status"]["listeners"][0]["fingerprint"] for w in status["workers"]}
        assert len(fingerprints) == 1  # one generated certificate for all
        configuration = DTLSConfiguration(pinned_sha256=frozenset({bytes.fromhex(fingerprints.pop())}),
                                          initial_timeout=0.5)
        with LoadClient(("127.0.0.1", port), configuration, loopbackSources(CLIENTS)) as load:
            load.handshake(deadline=60)
            load.echo("first", rehandshakeAfter=None, deadline=30)
            everyone = {c.local for c in load.clients}
            status = waitStatus(
                statusFile, lambda s: set().union(*peersByPid(s).values()) >= everyone, 20, supervisor,
                "every peer in some worker's status",
            )
            owners = peersByPid(status)
            assert sum(len(p) for p in owners.values()) == CLIENTS  # each peer on exactly one worker
            assert len(owners) == 4 and all(len(p) > 0 for p in owners.values()), {
                pid: len(p) for pid, p in owners.items()}
            handshakes = sum(w["status"]["listeners"][0]["stats"]["handshakesCompleted"] for w in status["workers"])
            assert handshakes == CLIENTS

            victim = max(owners, key=lambda pid: len(owners[pid]))
            victimIndex = next(w["index"] for w in status["workers"] if w["pid"] == victim)
            orphans = owners[victim]
            os.kill(victim, signal.SIGKILL)
            load.echo("second", rehandshakeAfter=3.0, deadline=60)

            moved = {c.local for c in load.clients if c.handshakes > 1}
            assert moved == orphans
            assert all(c.handshakes == 2 and c.lastResumed for c in load.clients if c.local in moved)
            assert all(c.handshakes == 1 for c in load.clients if c.local not in moved)
            # Everybody keeps echoing without a new handshake.
            load.echo("third", rehandshakeAfter=None, deadline=30)
            assert sum(c.handshakes for c in load.clients) == CLIENTS + len(orphans)

            status = waitStatus(
                statusFile,
                lambda s: s["workers"][victimIndex]["pid"] not in (None, victim)
                and s["workers"][victimIndex]["status"] is not None
                and set().union(*peersByPid(s).values()) >= everyone,
                20, supervisor, "the restarted worker",
            )
            replaced = status["workers"][victimIndex]
            assert replaced["restarts"] == 1 and replaced["lastExit"] == "was killed by SIGKILL"
            pids.append(replaced["pid"])
            assert victim not in peersByPid(status)
            for pid, peers in peersByPid(status).items():
                if pid != replaced["pid"]:
                    assert peers == owners[pid]  # undisturbed

        supervisorPid = status["pid"]
        workers = workerPids(status)
        directory = os.path.dirname(_statusFileOf(workers[0]))
        os.kill(supervisorPid, signal.SIGTERM)
        assert waitGone([supervisorPid, *workers], 20) == []
        assert not os.path.exists(directory)
        final = readStatus(statusFile)
        assert final["stopped"] and final["workers"] == []
    finally:
        supervisor.stop()
        killAll(pids)


def _statusFileOf(pid: int) -> str:
    """
    The status file a worker was told to write (from its command line).
    """
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        argv = f.read().split(b"\0")
    return argv[argv.index(b"--status-file") + 1].decode()


def test_workersStopWhenTheSupervisorIsKilled(tmp_path):
    """
    SIGKILL leaves the supervisor no chance to stop its workers: they see
    their standard input close and stop by themselves.
    """
    statusFile = str(tmp_path / "status.json")
    supervisor = startEcho(tmp_path, ["dtls:0:interface=127.0.0.1"], statusFile, "--workers", "2",
                           name="supervisor")
    pids: list[int] = []
    try:
        status = waitStatus(statusFile, _up(2), 60, supervisor, "two workers")
        workers = workerPids(status)
        pids = [status["pid"], *workers]
        directory = os.path.dirname(_statusFileOf(workers[0]))
        os.kill(status["pid"], signal.SIGKILL)
        assert waitGone(workers, 20) == []
        # Nobody was left to remove the generated secrets (documented).
        assert os.path.isdir(directory)
        shutil.rmtree(directory)
    finally:
        supervisor.stop()
        killAll(pids)


def test_portInUseFailsStartAndLeavesNothing(tmp_path):
    """
    A port already taken (without SO_REUSEPORT) fails the start, like a
    single dtls-echo: no worker is spawned, no socket or file is left.
    """
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    try:
        reactor = FakeReactor()
        supervisor = WorkerSupervisor(
            reactor, ["dtls:0:interface=127.0.0.1", f"dtls:{taken.getsockname()[1]}:interface=127.0.0.1"], 2)
        before = set(os.listdir("/proc/self/fd"))
        with pytest.raises(CannotListenError):
            supervisor.startService()
        assert reactor.spawned == [] and supervisor.directory is None
        assert set(os.listdir("/proc/self/fd")) <= before
    finally:
        taken.close()
