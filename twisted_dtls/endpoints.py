"""
DTLS endpoints and the C{dtls:} endpoint strings.

Server::

    dtls:PORT:interface=ADDR:privateKey=KEY.pem:certKey=CERT.pem:extraCertChain=CHAIN.pem
        [:ciphers=A,B][:maxDatagramSize=N][:cookieSecretFile=PATH]
        [:maxConnections=N][:maxHandshakes=N][:handshakeTimeout=S][:idleTimeout=S]
        [:pskFile=PATH][:pskIdentity=ID:psk=HEX][:pskHint=TEXT]
        [:clientAuth=none|optional|required][:trustRoots=CA.pem|DIR][:caCertsDir=DIR][:fingerprint=HEX]
        [:sniDir=DIR][:alpn=P1,P2][:srtp=PROFILE,...][:keyLog=PATH][:recordSizeLimit=N]
        [:sessionCache=N][:sessionTickets=yes|no][:ticketKeyFile=PATH]
        [:reusePort=yes|no][:fileDescriptor=N]

Client::

    dtls:HOST:PORT[:trustRoots=CA.pem|DIR][:caCertsDir=DIR][:hostname=NAME][:fingerprint=SHA256HEX]
        [:ciphers=A,B][:maxDatagramSize=N][:bindAddress=ADDR][:timeout=S]
        [:pskIdentity=ID][:psk=HEX|:pskFile=PATH][:privateKey=KEY.pem][:certKey=CERT.pem]
        [:extraCertChain=CHAIN.pem][:alpn=P1,P2][:srtp=PROFILE,...][:keyLog=PATH]
        [:recordSizeLimit=N][:sessionTickets=yes|no][:resume=yes|no]

Both endpoints append key-log lines to the file named by the
C{SSLKEYLOGFILE} environment variable unless C{keyLog=} (or the
configuration's own C{keylog}) says otherwise.

The keyword names are those of Twisted's C{ssl:} endpoints where they mean
the same thing. IPv6 addresses escape their colons: C{interface=\\:\\:1},
C{dtls:\\:\\:1:4433}. See C{docs/endpoints.md} for every keyword.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from zope.interface import implementer

from twisted.internet import defer
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.interfaces import (
    IStreamClientEndpoint,
    IStreamClientEndpointStringParserWithReactor,
    IStreamServerEndpoint,
    IStreamServerEndpointStringParser,
)
from twisted.plugin import IPlugin

from twisted_dtls.client import DEFAULT_CONNECT_TIMEOUT, ClientSessionStore, connectDTLS
from twisted_dtls.core.configuration import ClientAuthentication, DTLSConfiguration
from twisted_dtls.core.constants import CipherSuite, SRTPProtectionProfile
from twisted_dtls.core.sessions import SessionCache, TicketKeys
from twisted_dtls.core.suites import CIPHER_SUITES, DEFAULT_CIPHER_SUITES, parse_cipher_list
from twisted_dtls.credentials import (
    KeyLogFile,
    ServerCredentials,
    keyLogFromEnvironment,
    loadPSKFile,
    loadPSKKey,
    loadServerCredentials,
    loadSNIDirectory,
    loadTrustRoots,
    parseFingerprint,
    parseHexKey,
    systemTrustRoots,
)
from twisted_dtls.port import DEFAULT_LIMITS, DTLSPort
from twisted_dtls.secretfiles import CookieSecretFile, TicketKeyFile, readSecretFile

__all__ = [
    "DTLSServerEndpoint",
    "DTLSClientEndpoint",
    "DTLSServerParser",
    "DTLSClientParser",
    "serverEndpointFromString",
    "clientEndpointFromString",
    "splitDescription",
    "SERVER_KEYWORDS",
    "CLIENT_KEYWORDS",
    "MAX_DATAGRAM_SIZE",
    "MIN_DATAGRAM_SIZE",
    "DEFAULT_PSK_SUITES",
    "SERVER_DEFAULTS",
    "parseSRTPProfiles",
    "parseALPN",
]

#: The largest UDP payload over IPv4 (65535 - 20 - 8).
MAX_DATAGRAM_SIZE = 65507
#: The smallest datagram size the engine accepts.
MIN_DATAGRAM_SIZE = 256
#: Bytes a cookie secret file must hold at least.
MIN_COOKIE_SECRET = 16
#: Bytes a ticket key file must hold at least.
MIN_TICKET_SECRET = 16
#: Sessions a server endpoint keeps for session-id resumption by default.
DEFAULT_SESSION_CACHE = 1000

#: The PSK suites used when a PSK is configured and C{ciphers} is not given.
DEFAULT_PSK_SUITES: tuple[CipherSuite, ...] = (
    CipherSuite.TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256,
    CipherSuite.TLS_PSK_WITH_AES_128_GCM_SHA256,
    CipherSuite.TLS_PSK_WITH_AES_128_CCM,
    CipherSuite.TLS_PSK_WITH_AES_128_CCM_8,
)

_COMMON_KEYWORDS = {
    "ciphers", "maxDatagramSize", "psk", "pskIdentity", "pskFile", "privateKey", "certKey", "extraCertChain",
    "trustRoots", "caCertsDir", "fingerprint", "alpn", "srtp", "keyLog", "recordSizeLimit", "sessionTickets",
}
SERVER_KEYWORDS = frozenset(
    _COMMON_KEYWORDS | {
        "port", "interface", "cookieSecretFile", "maxConnections", "maxHandshakes", "handshakeTimeout", "idleTimeout",
        "pskHint", "clientAuth", "sniDir", "sessionCache", "ticketKeyFile", "reusePort", "fileDescriptor",
        "helloRate", "helloBurst", "maxHelloSources",
    }
)
CLIENT_KEYWORDS = frozenset(
    _COMMON_KEYWORDS | {"host", "port", "hostname", "bindAddress", "timeout", "resume"}
)

# RFC 5764 §4.1.2 profile names, and the spellings OpenSSL uses for them.
_SRTP_NAMES = {profile.name: profile for profile in SRTPProtectionProfile}
_SRTP_NAMES.update(
    {
        "SRTP_AES128_CM_SHA1_80": SRTPProtectionProfile.SRTP_AES128_CM_HMAC_SHA1_80,
        "SRTP_AES128_CM_SHA1_32": SRTPProtectionProfile.SRTP_AES128_CM_HMAC_SHA1_32,
        "SRTP_NULL_SHA1_80": SRTPProtectionProfile.SRTP_NULL_HMAC_SHA1_80,
        "SRTP_NULL_SHA1_32": SRTPProtectionProfile.SRTP_NULL_HMAC_SHA1_32,
    }
)


@implementer(IStreamServerEndpoint)
class DTLSServerEndpoint:
    """
    Listens for DTLS on one UDP port; C{listen} fires with the
    L{DTLSPort}.
    """

    def __init__(self, reactor, port: int, configuration: DTLSConfiguration, interface: str = "", **portOptions):
        """
        @param portOptions: passed to L{DTLSPort}: C{maxConnections},
            C{maxHandshakes}, C{handshakeTimeout}, C{idleTimeout},
            C{cookieSecret}, C{cookieLifetime}, C{maxPacketSize}.
        """
        self._reactor = reactor
        self._port = port
        self._configuration = _withEnvironmentKeyLog(configuration)
        self._interface = interface
        self._portOptions = portOptions

    def __repr__(self) -> str:
        return f"<DTLSServerEndpoint port={self._port} interface={self._interface!r}>"

    def listen(self, protocolFactory):
        def start():
            port = DTLSPort(
                self._reactor, self._port, protocolFactory, self._configuration, interface=self._interface,
                **self._portOptions,
            )
            port.startListening()
            return port

        return defer.execute(start)


@implementer(IStreamClientEndpoint)
class DTLSClientEndpoint:
    """
    Connects to a DTLS server; C{connect} fires with the protocol once the
    handshake has completed.
    """

    def __init__(
        self,
        reactor,
        host: str,
        port: int,
        configuration: DTLSConfiguration,
        bindAddress: Optional[tuple[str, int]] = None,
        timeout: Optional[float] = DEFAULT_CONNECT_TIMEOUT,
        sessionStore: Optional[ClientSessionStore] = None,
        resume: bool = True,
    ):
        """
        @param host: an IP address or a host name (resolved with
            C{reactor.resolve}, IPv4). A name is also the default
            C{server_name} checked against the certificate.
        @param timeout: seconds for name resolution plus handshake.
        @param sessionStore: where sessions are kept for resumption; by
            default the endpoint keeps its own, so each later C{connect}
            resumes the session of the one before (an abbreviated
            handshake, C{transport.resumed}).
        @param resume: C{False} turns resumption off.
        """
        self._reactor = reactor
        self._host = host
        self._port = port
        if configuration.server_name is None:
            # A name is sent in SNI and checked; an address is only checked
            # (the certificate must carry it as an IP SAN).
            configuration = dataclasses.replace(configuration, server_name=host)
        configuration = _withEnvironmentKeyLog(configuration)
        configuration.validate(is_client=True)
        self._configuration = configuration
        self._bindAddress = bindAddress
        self._timeout = timeout
        if not resume:
            sessionStore = None
        elif sessionStore is None:
            sessionStore = ClientSessionStore()
        #: The L{ClientSessionStore} sessions are kept in, or None.
        self.sessionStore = sessionStore

    def __repr__(self) -> str:
        return f"<DTLSClientEndpoint {self._host}:{self._port}>"

    def connect(self, protocolFactory):
        host = self._host
        if isIPAddress(host) or isIPv6Address(host):
            resolved = defer.succeed(host)
        else:
            resolved = self._reactor.resolve(host)

        def connect(address):
            return connectDTLS(
                self._reactor, address, self._port, protocolFactory, self._configuration,
                bindAddress=self._bindAddress, timeout=self._timeout, sessionStore=self.sessionStore,
            )

        return resolved.addCallback(connect)


def _withEnvironmentKeyLog(configuration: DTLSConfiguration) -> DTLSConfiguration:
    """
    Honour C{SSLKEYLOGFILE} when the configuration has no key log of its own.
    """
    if configuration.keylog is None:
        keylog = keyLogFromEnvironment()
        if keylog is not None:
            return dataclasses.replace(configuration, keylog=keylog)
    return configuration


# -- endpoint strings -------------------------------------------------------------


def splitDescription(description: str) -> tuple[list[str], dict[str, str]]:
    """
    Split an endpoint description into positional and keyword arguments
    with Twisted's rules: C{:} separates, the first unescaped C{=} of a
    field makes it a keyword, and C{\\} escapes the next character.
    """
    args: list[str] = []
    kwargs: dict[str, str] = {}
    pieces: list[str] = []
    token: list[str] = []

    def add() -> None:
        pieces.append("".join(token))
        if len(pieces) == 1:
            args.append(pieces[0])
        else:
            kwargs[pieces[0]] = pieces[1]

    characters = iter(description)
    for ch in characters:
        if ch == "\\":
            token.append(next(characters, ""))
        elif ch == ":":
            add()
            pieces, token = [], []
        elif ch == "=" and not pieces:
            pieces.append("".join(token))
            token = []
        else:
            token.append(ch)
    add()
    return args, kwargs


def _rejectUnknown(kind: str, kwargs: dict, known: frozenset) -> None:
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise ValueError(
            f"unknown dtls {kind} endpoint keyword(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )


def _int(name: str, value: str, low: int, high: Optional[int] = None) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not an integer") from None
    if number < low or (high is not None and number > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise ValueError(f"{name}={number} is out of range ({bound})")
    return number


def _seconds(name: str, value: str) -> Optional[float]:
    if value.strip().lower() in ("none", "never", "off"):
        return None
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a number of seconds") from None
    if not number > 0:
        raise ValueError(f"{name}={value!r} must be positive (or 'none')")
    return number


def _port(value: str) -> int:
    return _int("port", value, 0, 65535)


def _bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("yes", "true", "on", "1"):
        return True
    if lowered in ("no", "false", "off", "0"):
        return False
    raise ValueError(f"{name}={value!r} must be yes or no")


def _list(value: str) -> list[str]:
    return [item.strip() for item in value.replace(":", ",").split(",") if item.strip()]


def parseALPN(value: str) -> tuple[str, ...]:
    """
    Parse C{alpn=coap,h2}: protocol names separated by C{,}, in preference
    order.

    @raise ValueError: empty, or a name longer than 255 bytes.
    """
    names = tuple(dict.fromkeys(_list(value)))
    if not names:
        raise ValueError("alpn= is empty; give protocol names separated by ','")
    for name in names:
        if len(name.encode("utf-8")) > 255:
            raise ValueError(f"alpn: protocol name {name[:20]!r}... is longer than 255 bytes")
    return names


def parseSRTPProfiles(value: str) -> tuple[SRTPProtectionProfile, ...]:
    """
    Parse C{srtp=SRTP_AES128_CM_HMAC_SHA1_80,...}: RFC 5764 / RFC 7714
    profile names (GnuTLS's spelling) or OpenSSL's (C{SRTP_AES128_CM_SHA1_80}),
    separated by C{,}, in preference order.

    @raise ValueError: naming every unknown profile.
    """
    names = _list(value)
    unknown = [n for n in names if n.upper() not in _SRTP_NAMES]
    if unknown:
        raise ValueError(
            f"srtp: unknown profile(s) {', '.join(unknown)}; known: {', '.join(p.name for p in SRTPProtectionProfile)}"
        )
    if not names:
        raise ValueError("srtp= is empty")
    return tuple(dict.fromkeys(_SRTP_NAMES[n.upper()] for n in names))


def _commonConfiguration(kwargs: dict) -> dict:
    """
    The options whose meaning is the same for both roles.
    """
    options: dict = {}
    if "ciphers" in kwargs:
        options["cipher_suites"] = parse_cipher_list(kwargs["ciphers"])
    if "maxDatagramSize" in kwargs:
        options["max_datagram_size"] = _int("maxDatagramSize", kwargs["maxDatagramSize"], MIN_DATAGRAM_SIZE, MAX_DATAGRAM_SIZE)
    if "alpn" in kwargs:
        options["alpn_protocols"] = parseALPN(kwargs["alpn"])
    if "srtp" in kwargs:
        options["srtp_profiles"] = parseSRTPProfiles(kwargs["srtp"])
    if "recordSizeLimit" in kwargs:
        options["record_size_limit"] = _int("recordSizeLimit", kwargs["recordSizeLimit"], 64, 2**14)
    if "keyLog" in kwargs:
        if not kwargs["keyLog"]:
            raise ValueError("keyLog= is empty; give a file name")
        options["keylog"] = KeyLogFile(kwargs["keyLog"])
    return options


def _peerTrust(kwargs: dict) -> tuple[list, frozenset]:
    """
    C{trustRoots}, C{caCertsDir} and C{fingerprint}: CA certificates and
    pinned leaf fingerprints that the peer's certificate is checked against.
    """
    roots = []
    for name in ("trustRoots", "caCertsDir"):
        if name in kwargs:
            roots.extend(loadTrustRoots(kwargs[name]))
    pins: frozenset = frozenset()
    if "fingerprint" in kwargs:
        pins = frozenset(parseFingerprint(p) for p in kwargs["fingerprint"].split(",") if p.strip())
        if not pins:
            raise ValueError("fingerprint= is empty; give the peer certificate's SHA-256 in hex")
    return roots, pins


def _identity(kwargs: dict) -> Optional[bytes]:
    if "pskIdentity" not in kwargs:
        return None
    identity = kwargs["pskIdentity"].encode("utf-8")
    if not 0 < len(identity) < 2**16:
        raise ValueError("pskIdentity must be 1..65535 bytes")
    return identity


def _serverPSK(kwargs: dict) -> dict[bytes, bytes]:
    keys: dict[bytes, bytes] = {}
    if "pskFile" in kwargs:
        keys.update(loadPSKFile(kwargs["pskFile"]))
    identity = _identity(kwargs)
    if "psk" in kwargs:
        if identity is None:
            raise ValueError("psk= on a server needs pskIdentity= (or use pskFile= for several identities)")
        keys[identity] = parseHexKey(kwargs["psk"], "psk=")
    elif identity is not None:
        raise ValueError("pskIdentity= on a server needs psk=HEX")
    return keys


def _clientPSK(kwargs: dict) -> tuple[Optional[bytes], Optional[bytes]]:
    identity = _identity(kwargs)
    if "psk" in kwargs and "pskFile" in kwargs:
        raise ValueError("give psk= or pskFile=, not both")
    if "psk" in kwargs:
        key = parseHexKey(kwargs["psk"], "psk=")
    elif "pskFile" in kwargs:
        found, key = loadPSKKey(kwargs["pskFile"], identity)
        identity = identity or found
    else:
        if identity is not None:
            raise ValueError("pskIdentity= needs psk=HEX or pskFile=PATH")
        return None, None
    if identity is None:
        raise ValueError("a PSK needs pskIdentity= (or a pskFile= of identity:hexkey lines)")
    return identity, key


def _usesCertificates(suites) -> bool:
    return any(CIPHER_SUITES[s].key_exchange.uses_certificates for s in suites)


def _readCookieSecret(path: str) -> bytes:
    return readSecretFile(path, "cookieSecretFile", MIN_COOKIE_SECRET)


def _buildServer(reactor, args, kwargs, defaultCredentials: Optional[ServerCredentials] = None) -> DTLSServerEndpoint:
    kwargs = dict(kwargs)
    _rejectUnknown("server", kwargs, SERVER_KEYWORDS)
    args = list(args)
    if "port" in kwargs:
        args.insert(0, kwargs.pop("port"))
    if len(args) != 1:
        raise ValueError(f"a dtls server endpoint takes one positional argument, the port; got {args!r}")
    port = _port(args[0])
    pskKeys = _serverPSK(kwargs)
    credentials: Optional[ServerCredentials]
    if "privateKey" in kwargs:
        credentials = loadServerCredentials(kwargs["privateKey"], kwargs.get("certKey"), kwargs.get("extraCertChain"))
    elif "certKey" in kwargs or "extraCertChain" in kwargs:
        raise ValueError("certKey and extraCertChain need privateKey")
    elif defaultCredentials is not None and not pskKeys:
        credentials = defaultCredentials
    elif pskKeys:
        credentials = None
    else:
        raise ValueError(
            "a dtls server endpoint needs privateKey=KEY.pem (and certKey=CERT.pem unless the key file holds it), "
            "or pskFile=PATH / pskIdentity=ID:psk=HEX for PSK suites"
        )
    options = _commonConfiguration(kwargs)
    if "cipher_suites" not in options:
        suites: tuple = ()
        if credentials is not None:
            suites += DEFAULT_CIPHER_SUITES
        if pskKeys:
            suites += DEFAULT_PSK_SUITES
        options["cipher_suites"] = suites
    if credentials is not None:
        options["certificate_chain"] = credentials.chain
        options["private_key"] = credentials.privateKey
    if pskKeys:
        options["psk_lookup"] = pskKeys.get
    if "pskHint" in kwargs:
        if not pskKeys:
            raise ValueError("pskHint= needs pskFile= or psk=")
        options["psk_identity_hint"] = kwargs["pskHint"].encode("utf-8")

    # Client certificates.
    roots, pins = _peerTrust(kwargs)
    authentication = ClientAuthentication.NONE
    if "clientAuth" in kwargs:
        try:
            authentication = ClientAuthentication(kwargs["clientAuth"].strip().lower())
        except ValueError:
            raise ValueError(f"clientAuth={kwargs['clientAuth']!r} must be none, optional or required") from None
    if authentication is ClientAuthentication.NONE and (roots or pins):
        raise ValueError("trustRoots, caCertsDir and fingerprint on a server check client certificates: "
                         "add clientAuth=optional or clientAuth=required")
    if authentication is not ClientAuthentication.NONE and not (roots or pins):
        raise ValueError(f"clientAuth={authentication.value} needs trustRoots=, caCertsDir= or fingerprint= "
                         "to check client certificates against")
    options.update(client_authentication=authentication, trust_roots=tuple(roots), pinned_sha256=pins)

    if "sniDir" in kwargs:
        if credentials is None:
            raise ValueError("sniDir= needs a default certificate: privateKey=")
        options["sni_credentials"] = loadSNIDirectory(kwargs["sniDir"])

    # Resumption: a session cache (session ids) and RFC 5077 tickets.
    cacheSize = _int("sessionCache", kwargs.get("sessionCache", str(DEFAULT_SESSION_CACHE)), 0)
    if cacheSize:
        options["session_cache"] = SessionCache(max_entries=cacheSize)
    tickets = _bool("sessionTickets", kwargs.get("sessionTickets", "yes"))
    # Secret files are re-read while the port listens, and rotated from
    # (twisted_dtls.secretfiles, docs/deployment.md).
    watchers: list = []
    if "ticketKeyFile" in kwargs:
        if not tickets:
            raise ValueError("ticketKeyFile= with sessionTickets=no: tickets are off")
        ticketFile = TicketKeyFile(kwargs["ticketKeyFile"], reactor)
        options["ticket_keys"] = ticketFile.keys
        watchers.append(ticketFile)
    elif tickets:
        options["ticket_keys"] = TicketKeys()

    configuration = DTLSConfiguration(**options)
    configuration.validate(is_client=False)
    portOptions: dict = {}
    if "cookieSecretFile" in kwargs:
        cookieFile = CookieSecretFile(kwargs["cookieSecretFile"], reactor)
        portOptions["cookieContext"] = cookieFile.context
        watchers.append(cookieFile)
    if watchers:
        portOptions["watchers"] = tuple(watchers)
    if _bool("reusePort", kwargs.get("reusePort", "no")):
        portOptions["reusePort"] = True
    if "fileDescriptor" in kwargs:
        portOptions["fileDescriptor"] = _int("fileDescriptor", kwargs["fileDescriptor"], 0)
    for name in ("maxConnections", "maxHandshakes", "helloBurst", "maxHelloSources"):
        if name in kwargs:
            portOptions[name] = _int(name, kwargs[name], 1)
    if "helloRate" in kwargs:
        rate = _seconds("helloRate", kwargs["helloRate"])
        if rate is None:
            raise ValueError("helloRate must be a positive number of ClientHellos per second")
        portOptions["helloRate"] = rate
    for name in ("handshakeTimeout", "idleTimeout"):
        if name in kwargs:
            portOptions[name] = _seconds(name, kwargs[name])
    return DTLSServerEndpoint(reactor, port, configuration, interface=kwargs.get("interface", ""), **portOptions)


def _buildClient(reactor, args, kwargs) -> DTLSClientEndpoint:
    kwargs = dict(kwargs)
    _rejectUnknown("client", kwargs, CLIENT_KEYWORDS)
    args = list(args)
    host = kwargs.pop("host", None)
    port = kwargs.pop("port", None)
    if host is None and args:
        host = args.pop(0)
    if port is None and args:
        port = args.pop(0)
    if args:
        raise ValueError(f"unexpected positional argument(s) {args!r} in a dtls client endpoint (HOST:PORT)")
    if not host or port is None:
        raise ValueError("a dtls client endpoint needs HOST:PORT")
    portNumber = _int("port", port, 1, 65535)
    options = _commonConfiguration(kwargs)
    identity, key = _clientPSK(kwargs)
    if identity is not None:
        options.update(psk_identity=identity, psk=key)
        options.setdefault("cipher_suites", DEFAULT_PSK_SUITES)
    if "privateKey" in kwargs:
        credentials = loadServerCredentials(kwargs["privateKey"], kwargs.get("certKey"), kwargs.get("extraCertChain"))
        options.update(certificate_chain=credentials.chain, private_key=credentials.privateKey)
    elif "certKey" in kwargs or "extraCertChain" in kwargs:
        raise ValueError("certKey and extraCertChain need privateKey")
    roots, pins = _peerTrust(kwargs)
    if not roots and not pins and _usesCertificates(options.get("cipher_suites", DEFAULT_CIPHER_SUITES)):
        roots = systemTrustRoots()
    options["session_tickets"] = _bool("sessionTickets", kwargs.get("sessionTickets", "yes"))
    configuration = DTLSConfiguration(
        trust_roots=tuple(roots), pinned_sha256=pins, server_name=kwargs.get("hostname"), **options
    )
    bindAddress = (kwargs["bindAddress"], 0) if "bindAddress" in kwargs else None
    timeout = _seconds("timeout", kwargs["timeout"]) if "timeout" in kwargs else DEFAULT_CONNECT_TIMEOUT
    resume = _bool("resume", kwargs.get("resume", "yes"))
    return DTLSClientEndpoint(
        reactor, host, portNumber, configuration, bindAddress=bindAddress, timeout=timeout, resume=resume
    )


def _stripPrefix(description: str) -> tuple[list[str], dict[str, str]]:
    args, kwargs = splitDescription(description)
    if not args or args[0].lower() != "dtls":
        raise ValueError(f"not a dtls endpoint description: {description!r}")
    return args[1:], kwargs


def serverEndpointFromString(reactor, description: str, defaultCredentials: Optional[ServerCredentials] = None):
    """
    Build a L{DTLSServerEndpoint} from a C{dtls:} description without the
    plugin system.

    @param defaultCredentials: used when the description names no
        C{privateKey} (C{twistd dtls-echo} passes a generated certificate).
    @raise ValueError: for an invalid description, naming the problem.
    """
    args, kwargs = _stripPrefix(description)
    return _buildServer(reactor, args, kwargs, defaultCredentials)


def clientEndpointFromString(reactor, description: str) -> DTLSClientEndpoint:
    """
    Build a L{DTLSClientEndpoint} from a C{dtls:} description without the
    plugin system.

    @raise ValueError: for an invalid description, naming the problem.
    """
    args, kwargs = _stripPrefix(description)
    return _buildClient(reactor, args, kwargs)


@implementer(IPlugin, IStreamServerEndpointStringParser)
class DTLSServerParser:
    """
    The C{dtls:} server endpoint string parser (for
    L{twisted.internet.endpoints.serverFromString}).
    """

    prefix = "dtls"

    def parseStreamServer(self, reactor, *args, **kwargs):
        return _buildServer(reactor, args, kwargs)


@implementer(IPlugin, IStreamClientEndpointStringParserWithReactor)
class DTLSClientParser:
    """
    The C{dtls:} client endpoint string parser (for
    L{twisted.internet.endpoints.clientFromString}).
    """

    prefix = "dtls"

    def parseStreamClient(self, reactor, *args, **kwargs):
        return _buildClient(reactor, args, kwargs)


#: The limits a server endpoint string may set, with their defaults.
SERVER_DEFAULTS = dict(
    DEFAULT_LIMITS, maxDatagramSize=DTLSConfiguration.max_datagram_size, sessionCache=DEFAULT_SESSION_CACHE
)
