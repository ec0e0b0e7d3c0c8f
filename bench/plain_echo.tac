# The baseline: a plain Twisted UDP echo server, run the same way as the
# DTLS one (twistd -n -y bench/plain_echo.tac), on 127.0.0.1:$BENCH_PORT.
#
# With BENCH_AEAD=1 it also seals and opens every datagram with a bare
# AES-128-GCM (a fixed key, nonce and additional data), and echoes what the
# open gave back: the cost of the cipher alone inside the plain echo, which
# bounds what any record layer driving that cipher from Python can reach.
import os

from twisted.application import internet, service
from twisted.internet.protocol import DatagramProtocol


class Echo(DatagramProtocol):
    noisy = False

    def datagramReceived(self, datagram, address):
        self.transport.write(datagram, address)


class AEADEcho(DatagramProtocol):
    noisy = False

    def __init__(self):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(bytes(16))
        self._nonce = bytes(12)
        self._aad = bytes(13)

    def datagramReceived(self, datagram, address):
        sealed = self._aead.encrypt(self._nonce, datagram, self._aad)
        self.transport.write(self._aead.decrypt(self._nonce, sealed, self._aad), address)


protocol = AEADEcho() if os.environ.get("BENCH_AEAD") == "1" else Echo()
application = service.Application("plain-udp-echo")
internet.UDPServer(int(os.environ["BENCH_PORT"]), protocol, interface="127.0.0.1", maxPacketSize=65535).setServiceParent(
    application
)
