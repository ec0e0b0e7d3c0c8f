"""
Tests of the features of issue 4 in the Twisted layer: endpoint-string
keywords, the transport's negotiated parameters, client-side resumption,
and interoperability of each feature with OpenSSL and GnuTLS over real
loopback UDP.
"""
