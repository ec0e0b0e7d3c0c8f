"""
The feature keywords of C{dtls:} endpoint strings: what each one puts in
the configuration, its default, and the errors for bad values; the files
they read (PSK files, SNI directories, ticket keys, key logs); and the
client session store.
"""

from __future__ import annotations

import os

import pytest
import pytest_twisted
from cryptography.hazmat.primitives import hashes

from twisted.internet.task import Clock

from tests.features.support import PSK_CLIENT, PSK_SERVER, connect, deadline, escape, listen, poll, roundTrip
from twisted_dtls.client import ClientSessionStore, sessionKey
from twisted_dtls.core.configuration import ClientAuthentication, DTLSConfiguration
from twisted_dtls.core.constants import CipherSuite, SRTPProtectionProfile
from twisted_dtls.core.sessions import Session, SessionCache, TicketKeys
from twisted_dtls.core.suites import DEFAULT_CIPHER_SUITES
from twisted_dtls.credentials import KeyLogFile, loadPSKFile, loadPSKKey, loadSNIDirectory
from twisted_dtls.endpoints import (
    CLIENT_KEYWORDS,
    DEFAULT_PSK_SUITES,
    SERVER_KEYWORDS,
    clientEndpointFromString,
    parseSRTPProfiles,
    serverEndpointFromString,
)

KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture(autouse=True)
def noEnvironmentKeyLog(monkeypatch):
    monkeypatch.delenv("SSLKEYLOGFILE", raising=False)


def server(clock, description) -> DTLSConfiguration:
    return serverEndpointFromString(clock, description)._configuration


def client(clock, description):
    endpoint = clientEndpointFromString(clock, description)
    return endpoint, endpoint._configuration


def certificate(pem) -> str:
    return f"privateKey={pem['server-ec.key']}:certKey={pem['server-ec.pem']}"


def test_newKeywordsAreKnown():
    assert {"psk", "pskIdentity", "pskFile", "pskHint", "clientAuth", "trustRoots", "caCertsDir", "fingerprint",
            "sniDir", "alpn", "srtp", "keyLog", "recordSizeLimit", "sessionCache", "sessionTickets",
            "ticketKeyFile"} <= SERVER_KEYWORDS
    assert {"psk", "pskIdentity", "pskFile", "privateKey", "certKey", "extraCertChain", "alpn", "srtp", "keyLog",
            "recordSizeLimit", "sessionTickets", "resume"} <= CLIENT_KEYWORDS


# -- defaults --------------------------------------------------------------------------


def test_serverDefaults(clock, pem):
    configuration = server(clock, f"dtls:0:{certificate(pem)}")
    assert configuration.cipher_suites == DEFAULT_CIPHER_SUITES
    assert configuration.psk_lookup is None and configuration.psk_identity_hint is None
    assert configuration.client_authentication is ClientAuthentication.NONE
    assert configuration.trust_roots == () and configuration.pinned_sha256 == frozenset()
    assert configuration.alpn_protocols == () and configuration.srtp_profiles == ()
    assert configuration.sni_credentials == {}
    assert configuration.record_size_limit is None
    assert configuration.keylog is None
    assert isinstance(configuration.session_cache, SessionCache) and configuration.session_cache.max_entries == 1000
    assert isinstance(configuration.ticket_keys, TicketKeys)


def test_clientDefaults(clock, pem):
    endpoint, configuration = client(clock, f"dtls:127.0.0.1:4433:trustRoots={pem['ca.pem']}")
    assert configuration.cipher_suites == DEFAULT_CIPHER_SUITES
    assert configuration.psk_identity is None and configuration.certificate_chain == ()
    assert configuration.session_tickets is True
    assert configuration.record_size_limit is None and configuration.keylog is None
    assert isinstance(endpoint.sessionStore, ClientSessionStore)


# -- PSK -------------------------------------------------------------------------------


def test_pskOnlyServerNeedsNoCertificate(clock):
    configuration = server(clock, f"dtls:0:{PSK_SERVER}:pskHint=the hint")
    assert configuration.cipher_suites == DEFAULT_PSK_SUITES
    assert configuration.certificate_chain == ()
    assert configuration.psk_lookup(b"client1") == KEY
    assert configuration.psk_lookup(b"other") is None
    assert configuration.psk_identity_hint == b"the hint"


def test_serverWithCertificateAndPSKOffersBoth(clock, pem):
    configuration = server(clock, f"dtls:0:{certificate(pem)}:{PSK_SERVER}")
    assert configuration.cipher_suites == DEFAULT_CIPHER_SUITES + DEFAULT_PSK_SUITES


def test_serverPskFile(clock, tmp_path):
    passwd = tmp_path / "psk.passwd"
    passwd.write_text("# gnutls psktool format\nclient1:000102030405060708090a0b0c0d0e0f\n\nuser:with:colon:ff00\n")
    configuration = server(clock, f"dtls:0:pskFile={passwd}:pskIdentity=extra:psk=aabb")
    assert configuration.psk_lookup(b"client1") == KEY
    assert configuration.psk_lookup(b"user:with:colon") == b"\xff\x00"
    assert configuration.psk_lookup(b"extra") == b"\xaa\xbb"


def test_clientPsk(clock, tmp_path):
    _, configuration = client(clock, f"dtls:127.0.0.1:4433:{PSK_CLIENT}")
    assert (configuration.psk_identity, configuration.psk) == (b"client1", KEY)
    assert configuration.cipher_suites == DEFAULT_PSK_SUITES
    assert configuration.trust_roots == ()  # no certificate suite, no CA store needed
    bare = tmp_path / "key.hex"
    bare.write_text("000102030405060708090a0b0c0d0e0f\n")
    _, configuration = client(clock, f"dtls:127.0.0.1:4433:pskIdentity=me:pskFile={bare}")
    assert (configuration.psk_identity, configuration.psk) == (b"me", KEY)
    passwd = tmp_path / "psk.passwd"
    passwd.write_text("first:01\nclient1:000102030405060708090a0b0c0d0e0f\n")
    _, configuration = client(clock, f"dtls:127.0.0.1:4433:pskFile={passwd}:pskIdentity=client1")
    assert (configuration.psk_identity, configuration.psk) == (b"client1", KEY)
    _, configuration = client(clock, f"dtls:127.0.0.1:4433:pskFile={passwd}")
    assert (configuration.psk_identity, configuration.psk) == (b"first", b"\x01")


def test_cipherNamesIncludePskAndCcm(clock):
    _, configuration = client(
        clock, f"dtls:127.0.0.1:4433:{PSK_CLIENT}:ciphers=PSK-AES128-CCM8,TLS_PSK_WITH_AES_128_CCM,"
               "PSK-AES128-GCM-SHA256,ECDHE-PSK-CHACHA20-POLY1305")
    assert configuration.cipher_suites == (
        CipherSuite.TLS_PSK_WITH_AES_128_CCM_8, CipherSuite.TLS_PSK_WITH_AES_128_CCM,
        CipherSuite.TLS_PSK_WITH_AES_128_GCM_SHA256, CipherSuite.TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256)


@pytest.mark.parametrize(
    "description, message",
    [
        ("dtls:0:psk=0001", "psk= on a server needs pskIdentity="),
        ("dtls:0:pskIdentity=a", "pskIdentity= on a server needs psk=HEX"),
        ("dtls:0:pskIdentity=a:psk=zz", "psk= is not hex"),
        ("dtls:0:pskFile=/nonexistent", "cannot read PSK file"),
        ("dtls:0:pskHint=h:privateKey=/nonexistent", "cannot read private key"),
        ("dtls:0:pskIdentity=a:psk=01:ciphers=ECDHE-ECDSA-AES128-GCM-SHA256", "needs certificate_chain"),
    ],
)
def test_serverPskErrors(clock, description, message):
    with pytest.raises(ValueError, match=message):
        serverEndpointFromString(clock, description)


@pytest.mark.parametrize(
    "extra, message",
    [
        ("psk=0001", "a PSK needs pskIdentity="),
        ("pskIdentity=a", "pskIdentity= needs psk=HEX or pskFile=PATH"),
        ("pskIdentity=a:psk=01:pskFile=x", "not both"),
        ("pskIdentity=a:ciphers=PSK-AES128-CCM8", "needs psk"),
    ],
)
def test_clientPskErrors(clock, extra, message):
    with pytest.raises(ValueError, match=message):
        clientEndpointFromString(clock, f"dtls:127.0.0.1:4433:{extra}")


def test_pskFileErrors(tmp_path):
    bad = tmp_path / "bad"
    bad.write_text("client1:00zz\n")
    with pytest.raises(ValueError, match="entry 1") as caught:
        loadPSKFile(str(bad))
    assert "00zz" not in str(caught.value)  # a key is never echoed
    twice = tmp_path / "twice"
    twice.write_text("a:01\na:02\n")
    with pytest.raises(ValueError, match="appears twice"):
        loadPSKFile(str(twice))
    good = tmp_path / "good"
    good.write_text("a:01\n")
    with pytest.raises(ValueError, match="no key for identity 'other'"):
        loadPSKKey(str(good), b"other")


# -- client certificates ----------------------------------------------------------------


def test_clientAuthKeywords(clock, pem, pki):
    configuration = server(clock, f"dtls:0:{certificate(pem)}:clientAuth=required:caCertsDir={pem['ca.pem']}")
    assert configuration.client_authentication is ClientAuthentication.REQUIRED
    assert list(configuration.trust_roots) == [pki.ca_cert]
    pin = pki.client_ec.cert.fingerprint(hashes.SHA256())
    configuration = server(clock, f"dtls:0:{certificate(pem)}:clientAuth=OPTIONAL:fingerprint={pin.hex()}")
    assert configuration.client_authentication is ClientAuthentication.OPTIONAL
    assert configuration.pinned_sha256 == {pin}


@pytest.mark.parametrize(
    "extra, message",
    [
        ("clientAuth=required", "needs trustRoots="),
        ("clientAuth=sometimes:trustRoots={ca}", "must be none, optional or required"),
        ("trustRoots={ca}", "add clientAuth=optional"),
    ],
)
def test_clientAuthErrors(clock, pem, extra, message):
    with pytest.raises(ValueError, match=message):
        serverEndpointFromString(clock, f"dtls:0:{certificate(pem)}:{extra.format(ca=pem['ca.pem'])}")


def test_clientCertificate(clock, pem, pki):
    _, configuration = client(
        clock, f"dtls:127.0.0.1:4433:trustRoots={pem['ca.pem']}:privateKey={pem['client-ec.key']}"
               f":certKey={pem['client-ec.pem']}")
    assert list(configuration.certificate_chain) == list(pki.client_ec.chain)
    with pytest.raises(ValueError, match="does not match"):
        clientEndpointFromString(clock, f"dtls:127.0.0.1:4433:trustRoots={pem['ca.pem']}"
                                        f":privateKey={pem['server-ec.key']}:certKey={pem['client-ec.pem']}")
    with pytest.raises(ValueError, match="need privateKey"):
        clientEndpointFromString(clock, f"dtls:127.0.0.1:4433:trustRoots={pem['ca.pem']}:certKey={pem['client-ec.pem']}")


# -- ALPN, SRTP, record size, key log -------------------------------------------------------


def test_alpnSrtpRecordSizeLimit(clock, pem):
    for configuration in (
        server(clock, f"dtls:0:{certificate(pem)}:alpn=coap,h2:srtp=SRTP_AES128_CM_SHA1_80,SRTP_AEAD_AES_128_GCM"
                      ":recordSizeLimit=512"),
        client(clock, f"dtls:127.0.0.1:1:trustRoots={pem['ca.pem']}:alpn=coap,h2"
                      ":srtp=SRTP_AES128_CM_HMAC_SHA1_80,SRTP_AEAD_AES_128_GCM:recordSizeLimit=512")[1],
    ):
        assert configuration.alpn_protocols == ("coap", "h2")
        assert configuration.srtp_profiles == (
            SRTPProtectionProfile.SRTP_AES128_CM_HMAC_SHA1_80, SRTPProtectionProfile.SRTP_AEAD_AES_128_GCM)
        assert configuration.record_size_limit == 512


def test_srtpNames():
    assert parseSRTPProfiles("srtp_aes128_cm_sha1_32, SRTP_NULL_HMAC_SHA1_80") == (
        SRTPProtectionProfile.SRTP_AES128_CM_HMAC_SHA1_32, SRTPProtectionProfile.SRTP_NULL_HMAC_SHA1_80)
    with pytest.raises(ValueError, match="unknown profile.*SRTP_BOGUS"):
        parseSRTPProfiles("SRTP_BOGUS")


@pytest.mark.parametrize(
    "extra, message",
    [
        ("alpn=", "alpn= is empty"),
        ("alpn=" + "x" * 256, "longer than 255 bytes"),
        ("srtp=", "srtp= is empty"),
        ("recordSizeLimit=63", r"recordSizeLimit=63 is out of range \(64..16384\)"),
        ("recordSizeLimit=16385", "out of range"),
        ("keyLog=", "keyLog= is empty"),
        ("sessionTickets=maybe", "must be yes or no"),
    ],
)
def test_commonKeywordErrors(clock, pem, extra, message):
    with pytest.raises(ValueError, match=message):
        serverEndpointFromString(clock, f"dtls:0:{certificate(pem)}:{extra}")
    with pytest.raises(ValueError, match=message):
        clientEndpointFromString(clock, f"dtls:127.0.0.1:1:trustRoots={pem['ca.pem']}:{extra}")


def test_keyLogKeywordAndEnvironment(clock, pem, tmp_path, monkeypatch):
    path = tmp_path / "keys.log"
    configuration = server(clock, f"dtls:0:{certificate(pem)}:keyLog={escape(path)}")
    assert configuration.keylog == KeyLogFile(str(path))
    monkeypatch.setenv("SSLKEYLOGFILE", str(tmp_path / "env.log"))
    assert server(clock, f"dtls:0:{certificate(pem)}").keylog == KeyLogFile(str(tmp_path / "env.log"))
    assert client(clock, f"dtls:127.0.0.1:1:{PSK_CLIENT}")[1].keylog == KeyLogFile(str(tmp_path / "env.log"))
    # keyLog= wins over the environment.
    assert server(clock, f"dtls:0:{certificate(pem)}:keyLog={escape(path)}").keylog == KeyLogFile(str(path))


def test_keyLogFileAppendsAndIsPrivate(tmp_path):
    path = tmp_path / "keys.log"
    log = KeyLogFile(str(path))
    log("CLIENT_RANDOM aa bb")
    log("CLIENT_RANDOM cc dd\n")
    assert path.read_text() == "CLIENT_RANDOM aa bb\nCLIENT_RANDOM cc dd\n"
    assert os.stat(path).st_mode & 0o077 == 0


# -- SNI ---------------------------------------------------------------------------------


def test_sniDir(clock, pem, pki, tmp_path):
    from tests.features.support import writeNamedCredential

    a = writeNamedCredential(pki, tmp_path, "A.Example", "a.example")
    wild = writeNamedCredential(pki, tmp_path, "_.b.example", "*.b.example")
    both = tmp_path / "both.example.pem"
    c = writeNamedCredential(pki, tmp_path, "c", "both.example")
    both.write_bytes((tmp_path / "c.key").read_bytes() + (tmp_path / "c.pem").read_bytes())
    (tmp_path / "c.pem").unlink()
    (tmp_path / "notes.txt").write_text("ignored")
    configuration = server(clock, f"dtls:0:{certificate(pem)}:sniDir={escape(tmp_path)}")
    names = configuration.sni_credentials
    assert set(names) == {"a.example", "*.b.example", "both.example"}
    assert list(names["a.example"][0]) == list(a.chain)
    assert list(names["*.b.example"][0]) == list(wild.chain)
    assert list(names["both.example"][0]) == list(c.chain)


def test_sniDirErrors(clock, pem, tmp_path):
    with pytest.raises(ValueError, match="holds no NAME.pem"):
        serverEndpointFromString(clock, f"dtls:0:{certificate(pem)}:sniDir={tmp_path}")
    with pytest.raises(ValueError, match="cannot read sniDir"):
        loadSNIDirectory(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="needs a default certificate"):
        serverEndpointFromString(clock, f"dtls:0:{PSK_SERVER}:sniDir={tmp_path}")


# -- resumption keywords -------------------------------------------------------------------


def test_sessionKeywords(clock, pem, tmp_path):
    configuration = server(clock, f"dtls:0:{certificate(pem)}:sessionCache=0:sessionTickets=no")
    assert configuration.session_cache is None and configuration.ticket_keys is None
    configuration = server(clock, f"dtls:0:{certificate(pem)}:sessionCache=5")
    assert configuration.session_cache.max_entries == 5
    secret = tmp_path / "ticket.key"
    secret.write_bytes(os.urandom(32))
    one = server(clock, f"dtls:0:{certificate(pem)}:ticketKeyFile={secret}").ticket_keys
    two = server(clock, f"dtls:0:{certificate(pem)}:ticketKeyFile={secret}").ticket_keys
    session = Session(b"", 0xC02B, b"m" * 48, True, 1000.0)
    # Servers given the same file accept each other's tickets.
    assert two.open(one.seal(session), b"", 1001.0).master_secret == session.master_secret
    _, configuration = client(clock, f"dtls:127.0.0.1:1:trustRoots={pem['ca.pem']}:sessionTickets=no")
    assert configuration.session_tickets is False
    assert clientEndpointFromString(clock, f"dtls:127.0.0.1:1:{PSK_CLIENT}:resume=no").sessionStore is None


@pytest.mark.parametrize(
    "extra, message",
    [
        ("sessionCache=-1", "out of range"),
        ("ticketKeyFile=/nonexistent", "cannot read ticketKeyFile"),
        ("ticketKeyFile={short}", "at least 16"),
        ("ticketKeyFile={short}:sessionTickets=no", "tickets are off"),
    ],
)
def test_sessionKeywordErrors(clock, pem, tmp_path, extra, message):
    short = tmp_path / "short"
    short.write_bytes(b"0123456789")
    with pytest.raises(ValueError, match=message):
        serverEndpointFromString(clock, f"dtls:0:{certificate(pem)}:{extra.format(short=short)}")


def test_clientSessionStore():
    now = [1000.0]
    store = ClientSessionStore(maxEntries=2, lifetime=100, clock=lambda: now[0])
    sessions = [Session(bytes([i]) * 32, 0xC02B, b"m" * 48, True, 1000.0) for i in range(3)]
    for i, session in enumerate(sessions):
        store.put(("h", i, ""), session)
    assert len(store) == 2 and store.get(("h", 0, "")) is None  # least recently used went first
    assert store.get(("h", 1, "")) is sessions[1]
    store.remove(("h", 1, ""), sessions[2])  # not the one filed: kept
    assert store.get(("h", 1, "")) is sessions[1]
    store.put(("h", 1, ""), None)
    assert store.get(("h", 1, "")) is None
    now[0] = 1100.0
    assert store.get(("h", 2, "")) is None  # expired
    ticketed = Session(b"", 0xC02B, b"m" * 48, True, 1000.0, ticket=b"t" * 40, lifetime=10.0)
    store.put("k", ticketed)
    now[0] = 1009.0
    assert store.get("k") is ticketed
    now[0] = 1010.0
    assert store.get("k") is None  # the ticket lifetime hint is shorter
    with pytest.raises(ValueError):
        ClientSessionStore(maxEntries=0)


def test_sessionKeyNamesServer():
    configuration = DTLSConfiguration(server_name="Example.COM")
    assert sessionKey("127.0.0.1", 4433, configuration) == ("127.0.0.1", 4433, "example.com")


# -- everything at once, our client against our server ----------------------------------------


@pytest_twisted.ensureDeferred
@deadline(20)
async def test_allFeaturesThroughStrings(pem, pki, tmp_path):
    from twisted.internet import reactor

    keys = tmp_path / "keys.log"
    port, factory = await listen(
        f"dtls:0:interface=127.0.0.1:{certificate(pem)}:{PSK_SERVER}:pskHint=hint:clientAuth=required"
        f":trustRoots={pem['ca.pem']}:alpn=coap:srtp=SRTP_AES128_CM_HMAC_SHA1_80:recordSizeLimit=600"
        f":keyLog={escape(keys)}")
    try:
        endpoint = clientEndpointFromString(
            reactor,
            f"dtls:127.0.0.1:{port.getHost().port}:trustRoots={pem['ca.pem']}:hostname=localhost"
            f":privateKey={pem['client-ec.key']}:certKey={pem['client-ec.pem']}:alpn=h2,coap"
            f":srtp=SRTP_AEAD_AES_128_GCM,SRTP_AES128_CM_HMAC_SHA1_80:recordSizeLimit=300")
        transports = []
        for _ in range(2):
            protocol = await connect(None, endpoint=endpoint)
            assert await roundTrip(protocol) == b"ping"
            transports.append(protocol.transport)
            protocol.transport.loseConnection()
            await protocol.lost
        await poll(lambda: len(factory.protocols) == 2, 5, "two server connections")
        for ours, theirs in zip(transports, [p.transport for p in factory.protocols]):
            assert ours.negotiatedProtocol == theirs.negotiatedProtocol == b"coap"
            assert ours.srtpProfile == theirs.srtpProfile == SRTPProtectionProfile.SRTP_AES128_CM_HMAC_SHA1_80
            assert theirs.getPeerCertificate() == pki.client_ec.cert
            assert ours.getPeerCertificate() == pki.server_ec.cert
            assert theirs.serverName == "localhost"
            assert theirs.maxWriteSize == 300 and ours.maxWriteSize <= 600
        assert [t.resumed for t in transports] == [False, True]
        assert len(keys.read_text().splitlines()) == 2  # one line per full or abbreviated handshake
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
@deadline(20)
async def test_sessionEndingInFatalAlertIsForgotten():
    """
    RFC 5246 §7.2.2: a session whose connection ends with a fatal alert is
    not resumed. Here the server's factory refuses the resumed connection
    (access_denied), so the client's store forgets the session and the next
    handshake is a full one.
    """
    from twisted.internet import reactor

    port, factory = await listen(f"dtls:0:interface=127.0.0.1:{PSK_SERVER}")
    try:
        endpoint = clientEndpointFromString(reactor, f"dtls:127.0.0.1:{port.getHost().port}:{PSK_CLIENT}")
        key = ("127.0.0.1", port.getHost().port, "127.0.0.1")
        first = await connect(None, endpoint=endpoint)
        assert endpoint.sessionStore.get(key) is not None
        first.transport.loseConnection()
        await first.lost
        factory.refuse = True
        second = await connect(None, endpoint=endpoint)
        assert second.transport.resumed
        reason = await second.lost
        assert second.transport.closeEvent.alert == 49  # access_denied
        assert reason is not None
        assert endpoint.sessionStore.get(key) is None
        factory.refuse = False
        third = await connect(None, endpoint=endpoint)
        assert not third.transport.resumed
        third.transport.loseConnection()
    finally:
        await port.stopListening()
