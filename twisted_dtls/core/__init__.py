"""
The sans-IO DTLS 1.2 protocol engine.

Nothing in this package imports Twisted, reads a clock or touches a socket:
time and datagrams come in; datagrams, one timer deadline and events go out.
"""
