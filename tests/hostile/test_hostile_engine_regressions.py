"""
Engine bugs found by the hostile-peer work, kept as tests: each fails
until the engine is fixed (the fix belongs in C{twisted_dtls/core}).

1. A ClientHello whose server_name is ASCII but not a valid IDNA host name
   (an empty label such as C{a..b}, a label over 63 bytes) or longer than
   255 bytes makes a server that issues session tickets raise from
   C{receive_datagram}: C{encode_session} encodes the name with the C{idna}
   codec (C{UnicodeError}) into a one-byte length prefix (C{ValueError}
   past 255 bytes). Through a L{DTLSPort} the error is logged as an
   internal error and the handshake is dropped.
"""

from __future__ import annotations

import pytest

from tests.certs import make_pki
from tests.core.pairnet import PairNetwork
from tests.twisted.memorynet import MemoryNetwork
from tests.twisted.recording import RecordingFactory, connect, listen
from twisted_dtls.core.configuration import DTLSConfiguration
from twisted_dtls.core.sessions import TicketKeys

PKI = make_pki()
NAMES = ["a..b", "a" * 64 + ".example", ".".join(["abcdefgh"] * 40)]


def _server(**kw) -> DTLSConfiguration:
    return DTLSConfiguration(certificate_chain=tuple(PKI.server_ec.chain), private_key=PKI.server_ec.key,
                             ticket_keys=TicketKeys(b"k" * 32), **kw)


@pytest.mark.parametrize("name", NAMES, ids=["empty-label", "long-label", "300-bytes"])
def test_odd_server_name_with_session_tickets_engine(name):
    network = PairNetwork(DTLSConfiguration(verify_peer=False, server_name=name), _server())
    network.handshake()
    # Either outcome is acceptable (completing, or a fatal alert): raising
    # out of receive_datagram is not.
    assert network.client.completed is not None or network.client.closed is not None


@pytest.mark.parametrize("name", NAMES, ids=["empty-label", "long-label", "300-bytes"])
def test_odd_server_name_with_session_tickets_port(name):
    network = MemoryNetwork()
    port = listen(network, PKI, RecordingFactory(echo=True), configuration=_server())
    clientFactory, outcome = connect(network, PKI, port,
                                     configuration=DTLSConfiguration(verify_peer=False, server_name=name))
    network.flush()
    assert outcome.done


# 2. A cookie-verified ClientHello with message_seq 65535, or with record
#    sequence number 2^48-1, creates a server connection whose own numbering
#    continues from it (RFC 6347 §4.2.1/§4.2.2) and overflows at once:
#    C{push_uint16} raises OverflowError for the Certificate's message_seq
#    65536; C{RecordLayer.seal} raises ValueError("sequence numbers of epoch
#    0 exhausted") for the first record of the reply. Both escape
#    C{receive_datagram}. (Found by test_hostile_mutation.py.)


def _acceptedHello(message_seq: int = 1, record_seq: int = 1) -> bytes:
    from tests.hostile.malicious import MaliciousClient

    client = MaliciousClient()
    client._send_seq = message_seq
    client._record_seq[0] = record_seq
    return client.client_hello()


@pytest.mark.parametrize("message_seq, record_seq", [(0xFFFF, 1), (0xFFFE, 1), (1, 2**48 - 1), (1, 2**48 - 2)],
                         ids=["message_seq-65535", "message_seq-65534", "record_seq-max", "record_seq-max-1"])
def test_extreme_numbers_in_the_accepted_client_hello(message_seq, record_seq):
    from twisted_dtls.core.connection import DTLSConnection

    server = DTLSConnection(_server(), is_client=False)
    server.receive_datagram(_acceptedHello(message_seq, record_seq), 0.0)
    server.datagrams_to_send(0.0)
    # A fatal alert (or a silent drop) is fine; an exception is not.
