"""
A wrong PSK seen from the server, in memory: GnuTLS (and this engine) send a
client's last flight (ClientKeyExchange, ChangeCipherSpec, Finished) as
records of one datagram, so the epoch-1 Finished waits in the next-epoch
queue until the ChangeCipherSpec installs the keys, and fails there.

A new-epoch record that fails authentication in the same datagram as the
ChangeCipherSpec that installed its keys is the peer's own Finished: the
handshake ends at once with bad_record_mac, so neither side waits for its
whole retransmission budget. Failing records in other datagrams may be
forged and are discarded (RFC 6347 §4.1.2.7).
"""

from __future__ import annotations


from twisted_dtls.core.configuration import DTLSConfiguration
from twisted_dtls.core.connection import DTLSConnection
from twisted_dtls.core.constants import AlertDescription, CipherSuite
from twisted_dtls.core.cookie import CookieContext
from twisted_dtls.core.events import CloseReason, ConnectionClosed
from twisted_dtls.core.listener import Verdict, examine_first_datagram

SUITE = CipherSuite.TLS_PSK_WITH_AES_128_GCM_SHA256
KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")


def _serverAfterClientFlights() -> tuple[DTLSConnection, DTLSConnection]:
    """
    A client with the wrong key against a server, every datagram delivered
    once, at time 0 (no retransmission).

    @return: the client and the server connection after the client's last
        flight (whose ClientKeyExchange, ChangeCipherSpec and Finished travel
        in one datagram, as this engine and GnuTLS send them).
    """
    client = DTLSConnection(
        DTLSConfiguration(cipher_suites=(SUITE,), psk_identity=b"client1", psk=b"\xff" * 16), is_client=True
    )
    serverConfiguration = DTLSConfiguration(cipher_suites=(SUITE,), psk_lookup={b"client1": KEY}.get)
    cookies = CookieContext()
    server = None
    client.connect(0.0)
    for _ in range(4):
        toClient = []
        for datagram in client.datagrams_to_send(0.0):
            if server is None:
                result = examine_first_datagram(datagram, ("127.0.0.1", 5000), cookies, 0.0)
                if result.verdict is Verdict.HELLO_VERIFY:
                    toClient.append(result.reply)
                    continue
                server = DTLSConnection(serverConfiguration, is_client=False)
            server.receive_datagram(datagram, 0.0)
        if server is not None:
            toClient += server.datagrams_to_send(0.0)
        for datagram in toClient:
            client.receive_datagram(datagram, 0.0)
    return client, server


def _closed(connection: DTLSConnection):
    events = []
    while (event := connection.next_event()) is not None:
        events.append(event)
    return next((e for e in events if isinstance(e, ConnectionClosed)), None)


def test_wrongKeyFinishedInTheChangeCipherSpecDatagramIsAlerted():
    client, server = _serverAfterClientFlights()
    closed = _closed(server)
    assert closed is not None, f"no alert; the server only counted {server.drops}"
    assert closed.reason is CloseReason.ALERT_SENT
    assert closed.alert == AlertDescription.bad_record_mac


def test_failingRecordInAnotherDatagramIsOnlyCounted():
    """
    Junk with the new epoch's number, in a datagram of its own, is dropped:
    a blind attacker cannot end a handshake with it.
    """
    from twisted_dtls.core.records import push_record

    client = DTLSConnection(DTLSConfiguration(cipher_suites=(SUITE,), psk_identity=b"client1", psk=KEY), is_client=True)
    serverConfiguration = DTLSConfiguration(cipher_suites=(SUITE,), psk_lookup={b"client1": KEY}.get)
    cookies = CookieContext()
    server = None
    client.connect(0.0)
    junkSent = False
    for _ in range(4):
        toClient = []
        for datagram in client.datagrams_to_send(0.0):
            if server is None:
                result = examine_first_datagram(datagram, ("127.0.0.1", 5000), cookies, 0.0)
                if result.verdict is Verdict.HELLO_VERIFY:
                    toClient.append(result.reply)
                    continue
                server = DTLSConnection(serverConfiguration, is_client=False)
            if datagram[0] == 22 and datagram[3:5] == b"\x00\x00" and b"\x14\xfe\xfd" in datagram and not junkSent:
                # the client's last flight: split it, junk first
                junkSent = True
                server.receive_datagram(push_record(23, 0xFEFD, 1, 5, bytes(40)), 0.0)
            server.receive_datagram(datagram, 0.0)
        if server is not None:
            toClient += server.datagrams_to_send(0.0)
        for datagram in toClient:
            client.receive_datagram(datagram, 0.0)
    assert junkSent
    assert server.drops.get("bad_tag") == 1
    assert server.is_established
