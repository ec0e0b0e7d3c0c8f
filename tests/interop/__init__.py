"""
The interoperability matrix of issue 3, through the Twisted layer over real
loopback UDP: our L{DTLSPort<twisted_dtls.port.DTLSPort>} and our client
(C{clientFromString("dtls:...")}) against OpenSSL's and GnuTLS's command-line
programs, and C{twistd -n dtls-echo} against both clients.

  - L{tests.interop.relay}: a recording UDP relay put between the two sides,
    so each case can show whether handshake messages were fragmented and
    how large the datagrams were.
  - L{tests.interop.support}: the suite table (taken from the engine), the
    recording echo protocol, endpoint strings and the per-case deadline.
"""
