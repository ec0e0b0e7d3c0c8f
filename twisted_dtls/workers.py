"""
C{twistd dtls-echo --workers N}: one service, N processes, one port.

A Python process uses one core. To use more, N worker processes serve the
same address and port, each on its own socket of one C{SO_REUSEPORT}
group: the kernel picks the socket for each datagram by a hash of its
source and destination, so every datagram of one peer reaches the same
worker, which holds that peer's DTLS state.

Design (the why of each piece is in C{docs/deployment.md}):

  - The supervisor binds the N sockets itself, before any worker starts,
    and hands socket I{i} to worker I{i} as file descriptor 3 (the
    C{fileDescriptor=3} endpoint keyword). It keeps its own copy of each
    socket open, so the group never changes size while the supervisor
    runs: when a worker dies, its socket stays in the group and the kernel
    keeps sending it the same peers (they queue until the restarted worker
    reads them). Peers of other workers are never re-hashed elsewhere,
    which is what would happen if the dead worker's socket left the group.
  - Workers are ordinary C{python -m twisted dtls-echo} processes (the
    C{twist} runner) started with C{reactor.spawnProcess}; their log lines
    are re-logged by the supervisor, prefixed with the worker's number and
    PID.
  - Every worker must accept the others' cookies and tickets (a restarted
    worker, the tickets of the one it replaces): the secrets come from files
    (C{cookieSecretFile=}, C{ticketKeyFile=}, see L{twisted_dtls.secretfiles}).
    Those the descriptions do not name, and the certificate when none is
    given, are generated once into a private temporary directory (mode
    0700, files 0600) that is removed when the supervisor stops.
  - A worker that exits is restarted after a delay that doubles with each
    quick failure (L{RestartPolicy}). Stopping the supervisor sends SIGTERM
    to every worker, SIGKILL to those still running after a grace period,
    and ends when all have exited. A worker also stops when its standard
    input (a pipe from the supervisor) closes, so that killing the
    supervisor outright does not leave workers behind.
  - C{--status-file PATH} makes each process write its status as JSON every
    second: a worker its counters and peers, the supervisor the list of
    workers with their status.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from typing import Callable, Optional, Sequence

from cryptography.hazmat.primitives import serialization
from twisted.application.service import Service
from twisted.internet import abstract, error, fdesc
from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python import usage

from twisted_dtls.credentials import ServerCredentials, fingerprintSHA256, generateSelfSigned
from twisted_dtls.endpoints import serverEndpointFromString, splitDescription
from twisted_dtls.secretfiles import writeSecretFile

__all__ = [
    "RestartPolicy",
    "WorkerSupervisor",
    "StatusFileWriter",
    "makeSupervisorService",
    "addWorkerServices",
    "escapeValue",
    "STATUS_INTERVAL",
    "WORKER_FD",
]

#: Seconds between two writes of a status file.
STATUS_INTERVAL = 1.0
#: The file descriptor of a worker's first socket (then 4, 5, ... for more
#: --listen descriptions).
WORKER_FD = 3
#: Peers listed per listener in a status file, at most.
MAX_STATUS_PEERS = 10000


def escapeValue(value: str) -> str:
    """
    C{value} escaped for an endpoint string (C{\\} and C{:}).
    """
    return value.replace("\\", "\\\\").replace(":", "\\:")


def _writeJSON(path: str, document: dict) -> None:
    # Readers see the old file or the new one, never half of one.
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w") as f:
        json.dump(document, f)
    os.replace(temporary, path)


def _readJSON(path: str) -> Optional[dict]:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


# -- the worker side -------------------------------------------------------------


class StatusFileWriter:
    """
    Writes a process's status as JSON to a file every C{interval} seconds:
    its PID and, per listening port, the address, the certificate's
    fingerprint, the port's counters (L{DTLSPortStatistics}) and the
    established peers.
    """

    def __init__(self, path: str, ports: Callable[[], Sequence], clock, interval: float = STATUS_INTERVAL):
        """
        @param ports: returns the L{DTLSPort}s listening now.
        """
        self.path = path
        self.interval = interval
        self._ports = ports
        self._clock = clock
        self._loop = LoopingCall(self.write)
        self._loop.clock = clock

    def start(self) -> None:
        if not self._loop.running:
            self._loop.start(self.interval, now=True)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()

    def status(self) -> dict:
        listeners = []
        for port in self._ports():
            host = port.getHost()
            chain = port.configuration.certificate_chain
            peers = []
            for transport in port.connections:
                if transport.connected:
                    peer = transport.getPeer()
                    peers.append(f"{peer.host}:{peer.port}")
                    if len(peers) >= MAX_STATUS_PEERS:
                        break
            stats = dataclasses.asdict(port.stats)
            stats["drops"] = dict(port.stats.drops)
            listeners.append(
                {
                    "host": host.host,
                    "port": host.port,
                    "fingerprint": fingerprintSHA256(chain[0]) if chain else None,
                    "stats": stats,
                    "peers": peers,
                }
            )
        return {"pid": os.getpid(), "time": self._clock.seconds(), "listeners": listeners}

    def write(self) -> None:
        try:
            _writeJSON(self.path, self.status())
        except OSError as e:
            Logger().warn("cannot write status file {path}: {error}", path=self.path, error=e)


class _StatusService(Service):
    def __init__(self, writer: StatusFileWriter):
        self._writer = writer

    def startService(self) -> None:
        super().startService()
        self._writer.start()

    def stopService(self):
        super().stopService()
        self._writer.stop()
        # A last write, so that a reader sees the final counters.
        self._writer.write()


class _SupervisorPipe(abstract.FileDescriptor):
    """
    Reads the worker's standard input, a pipe whose other end only the
    supervisor holds: end of file means the supervisor is gone.
    """

    def __init__(self, reactor, onGone: Callable[[], None], fd: int = 0):
        super().__init__(reactor)
        self._fd = fd
        self._onGone = onGone
        fdesc.setNonBlocking(fd)

    def fileno(self) -> int:
        return self._fd

    def doRead(self):
        return fdesc.readFromFD(self._fd, lambda data: None)

    def connectionLost(self, reason) -> None:
        super().connectionLost(reason)
        self._onGone()


class _SupervisedService(Service):
    _log = Logger()

    def __init__(self, reactor):
        self._reactor = reactor
        self._pipe: Optional[_SupervisorPipe] = None

    def startService(self) -> None:
        super().startService()
        self._pipe = _SupervisorPipe(self._reactor, self._supervisorGone)
        self._pipe.startReading()

    def _supervisorGone(self) -> None:
        if self.running:
            self._log.warn("the supervisor went away (standard input closed); stopping")
            self._reactor.stop()

    def stopService(self):
        super().stopService()
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            pipe.stopReading()


def _listeningPorts(service) -> list:
    # The echo service's children that listen (tap._ListenService).
    return [child._port for child in service if getattr(child, "_port", None) is not None]


def addWorkerServices(service, options, reactor) -> None:
    """
    Add to a C{dtls-echo} service what C{--status-file} and C{--supervised}
    ask for.
    """
    if options.get("status-file"):
        writer = StatusFileWriter(options["status-file"], lambda: _listeningPorts(service), reactor)
        # Started after the listeners (children start in order).
        _StatusService(writer).setServiceParent(service)
    if options.get("supervised"):
        # A process group of its own: a signal meant for the supervisor's
        # group (Ctrl-C in a terminal, timeout(1)) reaches the supervisor
        # only, which then stops every worker once, with SIGTERM.
        try:
            os.setpgid(0, 0)
        except OSError:
            pass
        _SupervisedService(reactor).setServiceParent(service)


# -- the supervisor --------------------------------------------------------------


@dataclasses.dataclass
class RestartPolicy:
    """
    When to restart a worker that exited.

    A worker that ran at least C{healthyAfter} seconds is restarted after
    C{initialDelay}; each further exit sooner than that doubles the delay,
    up to C{maxDelay}, so that a worker failing at start-up does not spin.
    """

    initialDelay: float = 0.5
    maxDelay: float = 30.0
    healthyAfter: float = 10.0

    def delay(self, quickFailures: int) -> float:
        """
        @param quickFailures: exits in a row, each sooner than
            C{healthyAfter} after its start (counting the one just seen).
        """
        return min(self.maxDelay, self.initialDelay * 2 ** max(0, quickFailures - 1))


@dataclasses.dataclass
class _Worker:
    index: int
    sockets: list
    statusFile: str
    pid: Optional[int] = None
    process: object = None
    startedAt: float = 0.0
    restarts: int = 0
    quickFailures: int = 0
    pendingRestart: object = None
    lastExit: Optional[str] = None


class _WorkerProtocol(ProcessProtocol):
    def __init__(self, supervisor: "WorkerSupervisor", worker: _Worker):
        self._supervisor = supervisor
        self._worker = worker
        self._buffers = {1: b"", 2: b""}

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        buffered = self._buffers.get(childFD, b"") + data
        *lines, rest = buffered.split(b"\n")
        # A runaway line without a newline is cut rather than held forever.
        if len(rest) > 65536:
            lines.append(rest)
            rest = b""
        self._buffers[childFD] = rest
        for line in lines:
            self._supervisor._workerSaid(self._worker, line)

    def processEnded(self, reason) -> None:
        for rest in self._buffers.values():
            if rest:
                self._supervisor._workerSaid(self._worker, rest)
        self._buffers = {}
        self._supervisor._workerEnded(self._worker, self, reason)


def _describeExit(reason) -> str:
    value = reason.value
    if getattr(value, "signal", None):
        try:
            return f"was killed by {signal.Signals(value.signal).name}"
        except ValueError:
            return f"was killed by signal {value.signal}"
    return f"exited with status {getattr(value, 'exitCode', None)}"


class WorkerSupervisor(Service):
    """
    Runs C{count} worker processes, each serving every listener through its
    own socket of a C{SO_REUSEPORT} group, restarts those that exit, and
    stops them all with itself.

    @ivar count: the number of workers.
    @ivar directory: the private directory of generated files, while
        running.
    @ivar addresses: C{(host, port)} per listener, once bound.
    """

    _log = Logger()

    def __init__(
        self,
        reactor,
        descriptions: Sequence[str],
        count: int,
        statusFile: Optional[str] = None,
        restartPolicy: Optional[RestartPolicy] = None,
        stopTimeout: float = 10.0,
        workerCommand: Optional[Callable[[Sequence[str], str], list[str]]] = None,
    ):
        """
        @param descriptions: C{dtls:} server endpoint strings, as for
            C{--listen} (without C{fileDescriptor}).
        @param statusFile: where to write the supervisor's status, or None.
        @param stopTimeout: seconds between SIGTERM and SIGKILL on stop.
        @param workerCommand: C{(descriptions, statusFile) -> argv} for one
            worker; the default runs C{python -m twisted dtls-echo}.
        @raise ValueError: for fewer than one worker.
        """
        if count < 1:
            raise ValueError(f"--workers needs at least 1 worker, not {count}")
        self._reactor = reactor
        self._descriptions = list(descriptions)
        self.count = count
        self._statusFile = statusFile
        self._policy = restartPolicy or RestartPolicy()
        self._stopTimeout = stopTimeout
        self._workerCommand = workerCommand or self._defaultCommand
        self.directory: Optional[str] = None
        self.addresses: list[tuple[str, int]] = []
        self._workers: list[_Worker] = []
        self._workerDescriptions: list[str] = []
        self._statusLoop: Optional[LoopingCall] = None
        self._stopping = False
        self._whenAllEnded: Optional[Deferred] = None
        self._killCall = None

    # -- start -----------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._stopping = False
        self.addresses = []
        self.directory = tempfile.mkdtemp(prefix="dtls-echo-workers-")
        os.chmod(self.directory, 0o700)
        try:
            self._prepare()
        except BaseException:
            self._cleanUp()
            raise
        for worker in self._workers:
            self._spawn(worker)
        if self._statusFile:
            self._statusLoop = LoopingCall(self._writeStatus)
            self._statusLoop.clock = self._reactor
            self._statusLoop.start(STATUS_INTERVAL, now=True)

    def _prepare(self) -> None:
        generated: Optional[ServerCredentials] = None
        generatedFiles: Optional[tuple[str, str]] = None
        cookieFile = ticketFile = None
        socketsPerListener: list[list[socket.socket]] = []
        self._workerDescriptions = []
        for index, description in enumerate(self._descriptions):
            args, kwargs = splitDescription(description)
            extra = []
            lowered = {k.lower() for k in kwargs}
            if "privatekey" not in lowered and not any(k.startswith("psk") for k in lowered):
                if generatedFiles is None:
                    generated = generateSelfSigned()
                    generatedFiles = self._writeCredentials(generated)
                extra += [f"privateKey={escapeValue(generatedFiles[0])}", f"certKey={escapeValue(generatedFiles[1])}"]
            if "cookieSecretFile" not in kwargs:
                if cookieFile is None:
                    cookieFile = os.path.join(self.directory, "cookie.secret")
                    writeSecretFile(cookieFile)
                extra.append(f"cookieSecretFile={escapeValue(cookieFile)}")
            if "ticketKeyFile" not in kwargs and kwargs.get("sessionTickets", "yes").strip().lower() in (
                "yes", "true", "on", "1",
            ):
                if ticketFile is None:
                    ticketFile = os.path.join(self.directory, "ticket.secret")
                    writeSecretFile(ticketFile)
                extra.append(f"ticketKeyFile={escapeValue(ticketFile)}")
            host = kwargs.get("interface", "")
            port = int(kwargs.get("port", args[1] if len(args) > 1 else "0"))
            try:
                sockets = self._bind(host, port)
            except BaseException:
                for sockets in socketsPerListener:
                    for sock in sockets:
                        sock.close()
                raise
            socketsPerListener.append(sockets)
            self.addresses.append((host or "0.0.0.0", sockets[0].getsockname()[1]))
            self._workerDescriptions.append(
                ":".join([description, *extra, f"fileDescriptor={WORKER_FD + index}"])
            )
            if generated is not None and "privatekey" not in lowered:
                from twisted_dtls.tap import connectHints

                ours, _ = connectHints(host, self.addresses[-1][1], generated.fingerprint)
                self._log.info(
                    "dtls-echo: {count} workers on {host}:{port} with a generated self-signed certificate, "
                    "SHA-256 fingerprint {fingerprint}; connect with: {command}",
                    count=self.count, host=self.addresses[-1][0], port=self.addresses[-1][1],
                    fingerprint=generated.fingerprint, command=ours,
                )
            else:
                self._log.info(
                    "dtls-echo: {count} workers on {host}:{port}",
                    count=self.count, host=self.addresses[-1][0], port=self.addresses[-1][1],
                )
        self._workers = [
            _Worker(
                index=i,
                sockets=[sockets[i] for sockets in socketsPerListener],
                statusFile=os.path.join(self.directory, f"worker-{i}.json"),
            )
            for i in range(self.count)
        ]

    def _writeCredentials(self, credentials: ServerCredentials) -> tuple[str, str]:
        keyPath = os.path.join(self.directory, "key.pem")
        certPath = os.path.join(self.directory, "cert.pem")
        key = credentials.privateKey.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in credentials.chain)
        for path, data in ((keyPath, key), (certPath, chain)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        return keyPath, certPath

    def _bind(self, host: str, port: int) -> list[socket.socket]:
        """
        The group's sockets, one per worker; port 0 becomes the port the
        first one got.
        """
        address = host or "0.0.0.0"
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sockets: list[socket.socket] = []
        try:
            for _ in range(self.count):
                sock = socket.socket(family, socket.SOCK_DGRAM)
                sockets.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                sock.bind((address, port))
                port = sock.getsockname()[1]
                sock.setblocking(False)
        except OSError as e:
            for sock in sockets:
                sock.close()
            raise error.CannotListenError(host, port, e) from None
        return sockets

    def _defaultCommand(self, descriptions: Sequence[str], statusFile: str) -> list[str]:
        argv = [sys.executable, "-m", "twisted", "--log-format=text", "dtls-echo", "--supervised",
                "--status-file", statusFile]
        for description in descriptions:
            argv += ["--listen", description]
        return argv

    def _environment(self) -> dict:
        env = dict(os.environ)
        # Let the worker find twisted_dtls and its twisted/plugins/ even
        # when the supervisor found them through its working directory.
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        if os.path.isdir(os.path.join(root, "twisted", "plugins")):
            env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _spawn(self, worker: _Worker) -> None:
        worker.pendingRestart = None
        if self._stopping:
            return
        argv = self._workerCommand(self._workerDescriptions, worker.statusFile)
        childFDs = {0: "w", 1: "r", 2: "r"}
        for offset, sock in enumerate(worker.sockets):
            childFDs[WORKER_FD + offset] = sock.fileno()
        try:
            process = self._reactor.spawnProcess(
                _WorkerProtocol(self, worker), argv[0], argv, env=self._environment(), childFDs=childFDs
            )
        except OSError as e:
            self._log.error("cannot start worker {index}: {error}", index=worker.index, error=e)
            worker.quickFailures += 1
            self._scheduleRestart(worker)
            return
        worker.process = process
        worker.pid = process.pid
        worker.startedAt = self._reactor.seconds()
        self._log.info("worker {index} started, pid {pid}", index=worker.index, pid=worker.pid)

    # -- a worker's life -------------------------------------------------------------

    def _workerSaid(self, worker: _Worker, line: bytes) -> None:
        self._log.info(
            "worker {index} [{pid}] {line}", index=worker.index, pid=worker.pid,
            line=line.decode("utf-8", "replace").rstrip(),
        )

    def _workerEnded(self, worker: _Worker, protocol: _WorkerProtocol, reason) -> None:
        how = _describeExit(reason)
        pid = worker.pid
        worker.lastExit = how
        worker.process = None
        worker.pid = None
        if self._stopping:
            self._log.info("worker {index} (pid {pid}) {how}", index=worker.index, pid=pid, how=how)
            self._checkAllEnded()
            return
        if self._reactor.seconds() - worker.startedAt < self._policy.healthyAfter:
            worker.quickFailures += 1
        else:
            worker.quickFailures = 1
        delay = self._scheduleRestart(worker)
        self._log.warn(
            "worker {index} (pid {pid}) {how}; restarting it in {delay:.1f}s",
            index=worker.index, pid=pid, how=how, delay=delay,
        )

    def _scheduleRestart(self, worker: _Worker) -> float:
        delay = self._policy.delay(worker.quickFailures)
        worker.restarts += 1
        worker.pendingRestart = self._reactor.callLater(delay, self._spawn, worker)
        return delay

    # -- status --------------------------------------------------------------------

    def status(self) -> dict:
        """
        The supervisor's status: its PID, the listeners, and per worker its
        PID (None while restarting), restarts, last exit and own status.
        """
        workers = []
        for worker in self._workers:
            own = _readJSON(worker.statusFile) if worker.pid is not None else None
            if own is not None and own.get("pid") != worker.pid:
                own = None  # the file of the previous process
            workers.append(
                {
                    "index": worker.index,
                    "pid": worker.pid,
                    "restarts": worker.restarts,
                    "lastExit": worker.lastExit,
                    "status": own,
                }
            )
        return {
            "pid": os.getpid(),
            "time": self._reactor.seconds(),
            "listening": [{"host": host, "port": port} for host, port in self.addresses],
            "workers": workers,
        }

    def _writeStatus(self) -> None:
        try:
            _writeJSON(self._statusFile, self.status())
        except OSError as e:
            self._log.warn("cannot write status file {path}: {error}", path=self._statusFile, error=e)

    # -- stop ------------------------------------------------------------------------

    def stopService(self):
        super().stopService()
        self._stopping = True
        if self._statusLoop is not None and self._statusLoop.running:
            self._statusLoop.stop()
        for worker in self._workers:
            if worker.pendingRestart is not None and worker.pendingRestart.active():
                worker.pendingRestart.cancel()
            worker.pendingRestart = None
        running = [w for w in self._workers if w.process is not None]
        if not running:
            self._cleanUp()
            return succeed(None)
        self._whenAllEnded = Deferred()
        for worker in running:
            self._signal(worker, "TERM")
        self._killCall = self._reactor.callLater(self._stopTimeout, self._killRemaining)
        return self._whenAllEnded

    def _signal(self, worker: _Worker, name: str) -> None:
        try:
            worker.process.signalProcess(name)
        except (error.ProcessExitedAlready, OSError):
            pass

    def _killRemaining(self) -> None:
        self._killCall = None
        for worker in self._workers:
            if worker.process is not None:
                self._log.warn("worker {index} (pid {pid}) did not stop; killing it", index=worker.index,
                               pid=worker.pid)
                self._signal(worker, "KILL")

    def _checkAllEnded(self) -> None:
        if any(w.process is not None for w in self._workers) or self._whenAllEnded is None:
            return
        if self._killCall is not None and self._killCall.active():
            self._killCall.cancel()
        self._killCall = None
        self._cleanUp()
        d, self._whenAllEnded = self._whenAllEnded, None
        d.callback(None)

    def _cleanUp(self) -> None:
        for worker in self._workers:
            for sock in worker.sockets:
                sock.close()
        self._workers = []
        self.addresses = []
        if self._statusFile:
            # The final state: every worker gone.
            try:
                _writeJSON(self._statusFile, dict(self.status(), stopped=time.time()))
            except OSError:
                pass
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None


def makeSupervisorService(options, reactor) -> WorkerSupervisor:
    """
    The supervisor for C{twistd dtls-echo --workers N}: checks every
    description now (so that twistd fails at start-up on a bad one).

    @raise usage.UsageError: for a description workers cannot use.
    """
    descriptions = options["listen"]
    probe = generateSelfSigned()
    for description in descriptions:
        _, kwargs = splitDescription(description)
        for keyword in ("fileDescriptor", "reusePort"):
            if keyword in kwargs:
                raise usage.UsageError(
                    f"--listen {description}: {keyword}= is set by --workers for each worker; leave it out"
                )
        try:
            serverEndpointFromString(reactor, description, defaultCredentials=probe)
        except ValueError as e:
            raise usage.UsageError(f"--listen {description}: {e}") from None
    return WorkerSupervisor(reactor, descriptions, options["workers"], statusFile=options.get("status-file"))
