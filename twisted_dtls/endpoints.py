"""
DTLS endpoints and the C{dtls:} endpoint strings.

Server::

    dtls:PORT:interface=ADDR:privateKey=KEY.pem:certKey=CERT.pem:extraCertChain=CHAIN.pem
        [:ciphers=A:B][:maxDatagramSize=N][:cookieSecretFile=PATH]
        [:maxConnections=N][:maxHandshakes=N][:handshakeTimeout=S][:idleTimeout=S]

Client::

    dtls:HOST:PORT[:trustRoots=CA.pem|DIR][:caCertsDir=DIR][:hostname=NAME][:fingerprint=SHA256HEX]
        [:ciphers=A:B][:maxDatagramSize=N][:bindAddress=ADDR][:timeout=S]

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

from twisted_dtls.client import DEFAULT_CONNECT_TIMEOUT, connectDTLS
from twisted_dtls.core.configuration import DTLSConfiguration
from twisted_dtls.core.suites import parse_cipher_list
from twisted_dtls.credentials import (
    ServerCredentials,
    loadServerCredentials,
    loadTrustRoots,
    parseFingerprint,
    systemTrustRoots,
)
from twisted_dtls.port import DEFAULT_LIMITS, DTLSPort

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
]

#: The largest UDP payload over IPv4 (65535 - 20 - 8).
MAX_DATAGRAM_SIZE = 65507
#: The smallest datagram size the engine accepts.
MIN_DATAGRAM_SIZE = 256
#: Bytes a cookie secret file must hold at least.
MIN_COOKIE_SECRET = 16

SERVER_KEYWORDS = frozenset(
    {
        "port", "interface", "privateKey", "certKey", "extraCertChain", "ciphers", "maxDatagramSize",
        "cookieSecretFile", "maxConnections", "maxHandshakes", "handshakeTimeout", "idleTimeout",
    }
)
CLIENT_KEYWORDS = frozenset(
    {
        "host", "port", "trustRoots", "caCertsDir", "hostname", "fingerprint", "ciphers", "maxDatagramSize",
        "bindAddress", "timeout",
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
        self._configuration = configuration
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
    ):
        """
        @param host: an IP address or a host name (resolved with
            C{reactor.resolve}, IPv4). A name is also the default
            C{server_name} checked against the certificate.
        @param timeout: seconds for name resolution plus handshake.
        """
        self._reactor = reactor
        self._host = host
        self._port = port
        if configuration.server_name is None:
            # A name is sent in SNI and checked; an address is only checked
            # (the certificate must carry it as an IP SAN).
            configuration = dataclasses.replace(configuration, server_name=host)
        configuration.validate(is_client=True)
        self._configuration = configuration
        self._bindAddress = bindAddress
        self._timeout = timeout

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
                bindAddress=self._bindAddress, timeout=self._timeout,
            )

        return resolved.addCallback(connect)


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


def _commonConfiguration(kwargs: dict) -> dict:
    options: dict = {}
    if "ciphers" in kwargs:
        options["cipher_suites"] = parse_cipher_list(kwargs["ciphers"])
    if "maxDatagramSize" in kwargs:
        options["max_datagram_size"] = _int("maxDatagramSize", kwargs["maxDatagramSize"], MIN_DATAGRAM_SIZE, MAX_DATAGRAM_SIZE)
    return options


def _readCookieSecret(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            secret = f.read().strip()
    except OSError as e:
        raise ValueError(f"cannot read cookieSecretFile {path!r}: {e.strerror or e}") from None
    if len(secret) < MIN_COOKIE_SECRET:
        raise ValueError(f"cookieSecretFile {path!r} holds {len(secret)} bytes; at least {MIN_COOKIE_SECRET} are needed")
    return secret


def _buildServer(reactor, args, kwargs, defaultCredentials: Optional[ServerCredentials] = None) -> DTLSServerEndpoint:
    kwargs = dict(kwargs)
    _rejectUnknown("server", kwargs, SERVER_KEYWORDS)
    args = list(args)
    if "port" in kwargs:
        args.insert(0, kwargs.pop("port"))
    if len(args) != 1:
        raise ValueError(f"a dtls server endpoint takes one positional argument, the port; got {args!r}")
    port = _port(args[0])
    if "privateKey" in kwargs:
        credentials = loadServerCredentials(kwargs["privateKey"], kwargs.get("certKey"), kwargs.get("extraCertChain"))
    elif "certKey" in kwargs or "extraCertChain" in kwargs:
        raise ValueError("certKey and extraCertChain need privateKey")
    elif defaultCredentials is not None:
        credentials = defaultCredentials
    else:
        raise ValueError("a dtls server endpoint needs privateKey=KEY.pem (and certKey=CERT.pem unless the key file holds it)")
    configuration = DTLSConfiguration(
        certificate_chain=credentials.chain, private_key=credentials.privateKey, **_commonConfiguration(kwargs)
    )
    configuration.validate(is_client=False)
    portOptions: dict = {}
    if "cookieSecretFile" in kwargs:
        portOptions["cookieSecret"] = _readCookieSecret(kwargs["cookieSecretFile"])
    for name in ("maxConnections", "maxHandshakes"):
        if name in kwargs:
            portOptions[name] = _int(name, kwargs[name], 1)
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
    roots = []
    for name in ("trustRoots", "caCertsDir"):
        if name in kwargs:
            roots.extend(loadTrustRoots(kwargs[name]))
    pins = frozenset()
    if "fingerprint" in kwargs:
        pins = frozenset(parseFingerprint(p) for p in kwargs["fingerprint"].split(",") if p.strip())
        if not pins:
            raise ValueError("fingerprint= is empty; give the server certificate's SHA-256 in hex")
    if not roots and not pins:
        roots = systemTrustRoots()
    configuration = DTLSConfiguration(
        trust_roots=tuple(roots), pinned_sha256=pins, server_name=kwargs.get("hostname"), **options
    )
    bindAddress = (kwargs["bindAddress"], 0) if "bindAddress" in kwargs else None
    timeout = _seconds("timeout", kwargs["timeout"]) if "timeout" in kwargs else DEFAULT_CONNECT_TIMEOUT
    return DTLSClientEndpoint(reactor, host, portNumber, configuration, bindAddress=bindAddress, timeout=timeout)


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
SERVER_DEFAULTS = dict(DEFAULT_LIMITS, maxDatagramSize=DTLSConfiguration.max_datagram_size)
