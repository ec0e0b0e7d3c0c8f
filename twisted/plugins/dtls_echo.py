# Declaration only: twistd finds "dtls-echo" here; the code is twisted_dtls.tap.
from twisted.application.service import ServiceMaker

dtlsEcho = ServiceMaker(
    "DTLS echo server",
    "twisted_dtls.tap",
    "A DTLS 1.2 echo server (each record is echoed as one record).",
    "dtls-echo",
)
