"""
twisted_dtls: DTLS 1.2 (RFC 6347) for Twisted.
"""

__version__ = "0.1.0"
