"""
C{twistd dtls-echo}: a DTLS echo server.

With no options it listens on C{127.0.0.1:4433} with a freshly generated
self-signed certificate, and logs the certificate's SHA-256 fingerprint and
commands that connect to it. C{--listen} (repeatable) takes C{dtls:}
server endpoint strings; those without C{privateKey=} use the generated
certificate.
"""

from __future__ import annotations

from typing import Optional

from twisted.application.service import MultiService, Service
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.wire import Echo
from twisted.python import usage

from twisted_dtls.credentials import ServerCredentials, fingerprintSHA256, generateSelfSigned
from twisted_dtls.endpoints import serverEndpointFromString

__all__ = ["Options", "makeService", "DEFAULT_LISTEN", "EchoFactory", "connectHints"]

#: Loopback only: a demonstration server with a throwaway certificate should
#: not be reachable from the network unless asked to.
DEFAULT_LISTEN = "dtls:4433:interface=127.0.0.1"


class Options(usage.Options):
    synopsis = "[--listen ENDPOINT]..."
    longdesc = (
        "Run a DTLS 1.2 echo server: every record received is sent back as one record. "
        f"Without --listen it serves {DEFAULT_LISTEN} with a freshly generated self-signed "
        "certificate and logs its SHA-256 fingerprint and how to connect."
    )

    optParameters = [
        ["workers", None, 0, "Run N worker processes sharing each --listen port (SO_REUSEPORT), supervised: "
         "restarted when they exit, stopped together (docs/deployment.md). 0: serve in this process.", int],
        ["status-file", None, None, "Write this process's status (counters, peers; with --workers, every "
         "worker's) as JSON to this file every second."],
    ]
    optFlags = [
        ["supervised", None, "Run as a worker of --workers: stop when standard input (the supervisor's pipe) closes."],
    ]

    def __init__(self):
        super().__init__()
        self["listen"] = []

    def opt_listen(self, description: str) -> None:
        """
        A dtls: server endpoint to listen on (repeatable), for example
        dtls:4433:interface=127.0.0.1:privateKey=key.pem:certKey=cert.pem.
        Without privateKey the generated certificate is used.
        """
        if not description.lower().startswith("dtls:"):
            raise usage.UsageError(f"--listen takes a dtls: endpoint string, not {description!r}")
        self["listen"].append(description)

    opt_l = opt_listen

    def postOptions(self) -> None:
        if not self["listen"]:
            self["listen"] = [DEFAULT_LISTEN]
        if self["workers"] < 0:
            raise usage.UsageError(f"--workers must be 0 or more, not {self['workers']}")


class EchoFactory(Factory):
    """
    Builds L{Echo}: each record is echoed as one record.
    """

    protocol = Echo


def connectHints(host: str, port: int, fingerprint: str) -> tuple[str, str]:
    """
    Commands that reach a server listening on C{host:port}: ours (pinning
    the fingerprint) and OpenSSL's.
    """
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    escaped = host.replace(":", "\\:")
    ours = f"python -m twisted_dtls connect 'dtls:{escaped}:{port}:fingerprint={fingerprint}'"
    bracketed = f"[{host}]" if ":" in host else host
    openssl = f"openssl s_client -dtls1_2 -connect {bracketed}:{port}"
    return ours, openssl


class _ListenService(Service):
    """
    Listens on one endpoint while running and logs how to connect.
    """

    _log = Logger()

    def __init__(self, endpoint, factory, credentials: Optional[ServerCredentials], generated: bool):
        self._endpoint = endpoint
        self._factory = factory
        self._credentials = credentials
        self._generated = generated
        self._port = None

    def startService(self) -> None:
        super().startService()
        failures: list = []
        d = self._endpoint.listen(self._factory)
        d.addCallbacks(self._listening, failures.append)
        if failures:
            # Fail twistd at start-up (port in use, bad interface), as
            # StreamServerEndpointService does.
            failures[0].raiseException()

    def _listening(self, port) -> None:
        self._port = port
        host = port.getHost()
        if not port.configuration.certificate_chain:
            self._log.info(
                "dtls-echo listening on {host}:{port} with pre-shared keys only", host=host.host, port=host.port
            )
            return
        fingerprint = fingerprintSHA256(port.configuration.certificate_chain[0])
        ours, openssl = connectHints(host.host, host.port, fingerprint)
        self._log.info(
            "dtls-echo listening on {host}:{port} with {kind} certificate, SHA-256 fingerprint {fingerprint}",
            host=host.host, port=host.port, fingerprint=fingerprint,
            kind="a generated self-signed" if self._generated else "the given",
        )
        self._log.info("connect with: {command}", command=ours)
        self._log.info("or with: {command}", command=openssl)

    def stopService(self):
        super().stopService()
        port, self._port = self._port, None
        if port is not None:
            return port.stopListening()


def makeService(options: Options, reactor=None) -> MultiService:
    """
    The echo service for C{options}.

    @param reactor: the reactor to use; the global one (as installed by
        twistd) if None.
    """
    if reactor is None:
        from twisted.internet import reactor  # noqa: F811 -- twistd has installed it by now
    if options["workers"]:
        from twisted_dtls.workers import makeSupervisorService

        return makeSupervisorService(options, reactor)
    service = MultiService()
    generated: Optional[ServerCredentials] = None
    factory = EchoFactory()
    for description in options["listen"]:
        lowered = description.lower()
        # A description with its own key, or with pre-shared keys only,
        # needs no generated certificate.
        needsDefault = "privatekey=" not in lowered and ":psk" not in lowered
        if needsDefault and generated is None:
            generated = generateSelfSigned()
        try:
            endpoint = serverEndpointFromString(reactor, description, defaultCredentials=generated)
        except ValueError as e:
            raise usage.UsageError(f"--listen {description}: {e}") from None
        _ListenService(endpoint, factory, generated, needsDefault).setServiceParent(service)
    if options["status-file"] or options["supervised"]:
        from twisted_dtls.workers import addWorkerServices

        addWorkerServices(service, options, reactor)
    return service
