# The baseline: a plain Twisted UDP echo server, run the same way as the
# DTLS one (twistd -n -y bench/plain_echo.tac), on 127.0.0.1:$BENCH_PORT.
import os

from twisted.application import internet, service
from twisted.internet.protocol import DatagramProtocol


class Echo(DatagramProtocol):
    noisy = False

    def datagramReceived(self, datagram, address):
        self.transport.write(datagram, address)


application = service.Application("plain-udp-echo")
internet.UDPServer(int(os.environ["BENCH_PORT"]), Echo(), interface="127.0.0.1", maxPacketSize=65535).setServiceParent(
    application
)
