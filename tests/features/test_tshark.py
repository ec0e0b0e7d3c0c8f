"""
tshark decrypts our application data given our key log (C{keyLog=} or the
C{SSLKEYLOGFILE} environment variable) or, for plain PSK suites, the PSK
itself; and it flags no frame of our traffic as malformed.
"""

from __future__ import annotations

import pytest
import pytest_twisted

from tests.features.capture import Capture
from tests.features.support import (
    PSK_CLIENT,
    PSK_KEY_HEX,
    PSK_SERVER,
    connect,
    deadline,
    escape,
    listen,
    roundTrip,
)
from tests.peers import require_peer

MESSAGES = [b"first secret record", b"second secret record " * 10]


async def exchange(capturePath, serverDescription: str, clientDescription: str) -> Capture:
    """
    Capture a handshake, two records echoed and a close_notify between our
    client and our server.
    """
    port, factory = await listen(serverDescription)
    capture = Capture(port.getHost().port, capturePath)
    try:
        await capture.started()
        client = await connect(clientDescription.format(port=port.getHost().port))
        for message in MESSAGES:
            assert await roundTrip(client, message) == message
        client.transport.loseConnection()
        await client.lost
        await capture.finish()
    finally:
        capture.stop()
        await port.stopListening()
    return capture


def decrypted(capture: Capture, options: tuple[str, ...]) -> list[bytes]:
    rows = capture.fields("data.data", display="dtls.record.content_type == 23", options=options)
    return [bytes.fromhex(row[0]) for row in rows if row and row[0]]


def checkCapture(capture: Capture, options: tuple[str, ...]) -> None:
    # Each message went out from the client and came back from the server.
    assert decrypted(capture, options) == [m for m in MESSAGES for _ in (0, 1)]
    assert capture.malformed(options) == ""
    # Without the secrets nothing decrypts.
    assert decrypted(capture, ()) == []


# tshark 4.0 decrypts no DTLS ChaCha20-Poly1305 record, not even with
# OpenSSL's own key log of an s_client/s_server session: no ChaCha20 here.
@pytest.mark.parametrize("suite", ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-CCM8"])
@pytest_twisted.ensureDeferred
@deadline(30)
async def test_keyLogDecrypts(pem, tmp_path, suite, monkeypatch):
    require_peer("tshark")
    monkeypatch.delenv("SSLKEYLOGFILE", raising=False)
    keys = tmp_path / "keys.log"
    capture = await exchange(
        tmp_path / "cap.pcapng",
        f"dtls:0:interface=127.0.0.1:privateKey={pem['server-ec.key']}:certKey={pem['server-ec.pem']}"
        f":ciphers={suite}",
        f"dtls:127.0.0.1:{{port}}:trustRoots={pem['ca.pem']}:hostname=localhost:ciphers={suite}"
        f":keyLog={escape(keys)}",
    )
    lines = keys.read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith("CLIENT_RANDOM ")
    checkCapture(capture, ("-o", f"tls.keylog_file:{keys}"))


@pytest_twisted.ensureDeferred
@deadline(30)
async def test_sslKeyLogFileEnvironmentDecrypts(pem, tmp_path, monkeypatch):
    """
    Both endpoints append to C{$SSLKEYLOGFILE}: one line each for the same
    session.
    """
    require_peer("tshark")
    keys = tmp_path / "env-keys.log"
    keys.write_text("# lines already there are kept\n")
    monkeypatch.setenv("SSLKEYLOGFILE", str(keys))
    capture = await exchange(
        tmp_path / "cap.pcapng",
        f"dtls:0:interface=127.0.0.1:privateKey={pem['server-ec.key']}:certKey={pem['server-ec.pem']}",
        f"dtls:127.0.0.1:{{port}}:trustRoots={pem['ca.pem']}:hostname=localhost",
    )
    lines = keys.read_text().splitlines()
    assert lines[0] == "# lines already there are kept"
    assert len(lines) == 3 and lines[1] == lines[2]
    checkCapture(capture, ("-o", f"tls.keylog_file:{keys}"))


@pytest.mark.parametrize("suite", ["PSK-AES128-GCM-SHA256", "PSK-AES128-CCM8"])
@pytest_twisted.ensureDeferred
@deadline(30)
async def test_pskDecrypts(tmp_path, suite, monkeypatch):
    require_peer("tshark")
    monkeypatch.delenv("SSLKEYLOGFILE", raising=False)
    capture = await exchange(
        tmp_path / "cap.pcapng",
        f"dtls:0:interface=127.0.0.1:{PSK_SERVER}:ciphers={suite}",
        f"dtls:127.0.0.1:{{port}}:{PSK_CLIENT}:ciphers={suite}",
    )
    checkCapture(capture, ("-o", f"dtls.psk:{PSK_KEY_HEX}"))
