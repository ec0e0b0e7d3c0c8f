# The DTLS echo server of `twistd dtls-echo` (the same Echo factory on a
# DTLSPort, a generated P-256 certificate), with the port's per-source
# HelloVerifyRequest rate limit lifted: every bench client comes from
# 127.0.0.1, one source host, which the default limit (helloRate, made to
# stop floods from one host) would cap at a few dozen ClientHellos per
# second. Used for the HVR, handshake and held-connection benchmarks; the
# echo benchmark runs the real `twistd dtls-echo`.
#
#   BENCH_PORT=N BENCH_PORT_OPTIONS='{"maxConnections": 20000}' twistd -n -y bench/dtls_echo.tac
import inspect
import json
import os

from twisted.application import service
from twisted.internet import reactor
from twisted.logger import Logger

from twisted_dtls.core.configuration import DTLSConfiguration
from twisted_dtls.credentials import generateSelfSigned
from twisted_dtls.port import DTLSPort
from twisted_dtls.tap import EchoFactory

_log = Logger()


class _Listen(service.Service):
    def __init__(self, options):
        self.options = options
        self.port = None

    def startService(self):
        super().startService()
        credentials = generateSelfSigned()
        configuration = DTLSConfiguration(
            certificate_chain=list(credentials.chain), private_key=credentials.privateKey
        )
        accepted = inspect.signature(DTLSPort.__init__).parameters
        options = {k: v for k, v in self.options.items() if k in accepted}
        self.port = DTLSPort(reactor, int(os.environ["BENCH_PORT"]), EchoFactory(), configuration,
                             interface="127.0.0.1", **options)
        self.port.startListening()
        _log.info("bench dtls echo listening with {options}", options=options)

    def stopService(self):
        super().stopService()
        if self.port is not None:
            return self.port.stopListening()


_options = {"helloRate": 1e9, "helloBurst": 10**9}
_options.update(json.loads(os.environ.get("BENCH_PORT_OPTIONS", "{}")))
application = service.Application("bench-dtls-echo")
_Listen(_options).setServiceParent(application)
