"""
record_size_limit (RFC 8449) with GnuTLS, which offers the extension:
C{gnutls-cli --recordsize=N} asks our server for records of at most N
bytes of plaintext, and every record our server sends stays within it
(checked on the transport and on the wire, decrypted by tshark with the
server's key log). The other way, C{recordSizeLimit=} on our client is
honoured by gnutls-serv.
"""

from __future__ import annotations

import pytest_twisted

from twisted.internet.protocol import Factory, Protocol

from tests.features.capture import Capture
from tests.features.support import connect, deadline, escape, listen, poll
from tests.peers import require_netns, require_peer
from tests.peers.gnutls_cli import GnuTLSClient, GnuTLSServer, priority_for
from twisted_dtls.transport import RecordTooLargeError

SUITE = "ECDHE-ECDSA-AES128-GCM-SHA256"
LIMIT = 512


def helloLimits(rows) -> dict[str, str]:
    """
    Handshake type of the first message of a datagram (1 ClientHello, 2
    ServerHello) -> the record_size_limit it carries.
    """
    return {types.split(",")[0]: limit for types, limit in rows if limit}


class LargestRecords(Protocol):
    """
    Answers each record with the largest record the transport allows,
    after checking that one byte more is refused.
    """

    def dataReceived(self, data: bytes) -> None:
        transport = self.transport
        self.factory.limits.append(transport.maxWriteSize)
        try:
            transport.write(b"y" * (transport.maxWriteSize + 1))
        except RecordTooLargeError:
            self.factory.refused += 1
        transport.write(b"x" * (transport.maxWriteSize - 1) + b"\n")


@pytest_twisted.ensureDeferred
@deadline(30)
async def test_ourServerStaysWithinGnutlsLimit(pem, tmp_path, monkeypatch):
    require_peer("gnutls-cli")
    require_peer("tshark")
    monkeypatch.delenv("SSLKEYLOGFILE", raising=False)
    keys = tmp_path / "keys.log"
    factory = Factory.forProtocol(LargestRecords)
    factory.limits, factory.refused = [], 0
    port, _ = await listen(
        f"dtls:0:interface=127.0.0.1:privateKey={pem['server-ec.key']}:certKey={pem['server-ec.pem']}"
        f":keyLog={escape(keys)}", factory)
    capture = Capture(port.getHost().port, tmp_path / "cap.pcapng")
    try:
        await capture.started()
        with GnuTLSClient(port.getHost().port, cafile=pem["ca.pem"], priority=priority_for(SUITE),
                          extra_args=[f"--recordsize={LIMIT}"]) as client:
            await client.when_handshake()
            client.send_line("how large may your records be?")
            await client.when(rf"^x{{{LIMIT - 1}}}$", stream="stdout")
            client.close_stdin()
        await capture.finish()
    finally:
        capture.stop()
        await port.stopListening()
    assert factory.limits == [LIMIT] and factory.refused == 1
    # gnutls-cli offered the limit as record_size_limit (28), and we
    # acknowledged it with our own (RFC 8449 §4).
    offered = capture.fields("dtls.handshake.type", "dtls.record_size_limit",
                             display="dtls.handshake.type == 1 || dtls.handshake.type == 2")
    assert helloLimits(offered) == {"1": str(LIMIT), "2": "16384"}, offered
    rows = capture.fields(
        "udp.srcport", "dtls.record.length", "data.data",
        display="dtls.record.content_type == 23", options=("-o", f"tls.keylog_file:{keys}"),
    )
    ours = [row for row in rows if int(row[0]) == port.getHost().port]
    assert ours, rows
    for _, length, data in ours:
        assert len(bytes.fromhex(data)) <= LIMIT
        assert int(length) <= LIMIT + 8 + 16  # explicit nonce and tag of AES-GCM
    assert max(len(bytes.fromhex(data)) for _, _, data in ours) == LIMIT
    assert capture.malformed(("-o", f"tls.keylog_file:{keys}")) == ""


@pytest_twisted.ensureDeferred
@deadline(30)
async def test_gnutlsServerHonoursOurLimit(pem, tmp_path):
    """
    gnutls-serv acknowledges C{recordSizeLimit=512} in its ServerHello and
    echoes a 768-byte record in records of at most 512 bytes. (GnuTLS 3.7
    ignores limits below 512: it neither acknowledges nor honours them.)
    """
    require_peer("gnutls-serv")
    require_peer("tshark")
    require_netns()
    with GnuTLSServer(cert=pem["server-ec.pem"], key=pem["server-ec.key"], priority=priority_for(SUITE)) as server:
        capture = Capture(server.port, tmp_path / "cap.pcapng", netns=server.netns)
        try:
            await capture.started()
            client = await connect(
                f"dtls:127.0.0.1:{server.port}:trustRoots={pem['ca.pem']}:hostname=localhost:recordSizeLimit=512",
                netns=server.netns)
            message = bytes(range(256)) * 3
            client.transport.write(message)
            await poll(lambda: sum(map(len, client.received)) >= len(message), 10, "no echo")
            client.transport.loseConnection()
            await capture.finish()
        finally:
            capture.stop()
        assert b"".join(client.received) == message
        assert max(map(len, client.received)) <= 512
        assert len(client.received) >= 2
        limits = capture.fields("dtls.handshake.type", "dtls.record_size_limit",
                                display="dtls.handshake.type == 1 || dtls.handshake.type == 2")
        assert helloLimits(limits) == {"1": "512", "2": "16384"}, limits
