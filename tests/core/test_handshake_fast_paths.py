"""
The server handshake's shortcuts give what the general code gives:
L{PRFKey} against the module PRF functions, L{Reassembler.take_whole}
against add() then pop(), the unprotected L{RecordLayer.seal} and
single-record open against L{push_record} and the general path.
"""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives import hashes

from twisted_dtls.core import prf
from twisted_dtls.core.constants import CipherSuite, ContentType, HandshakeType
from twisted_dtls.core.fragments import HandshakeFragment, Reassembler
from twisted_dtls.core.recordlayer import RecordLayer
from twisted_dtls.core.records import push_record
from twisted_dtls.core.suites import CIPHER_SUITES


@pytest.mark.parametrize("hash_cls", [hashes.SHA256, hashes.SHA384, hashes.SHA512])
def test_prf_key_matches_prf(hash_cls):
    secret = os.urandom(48)
    key = prf.PRFKey(hash_cls, secret)
    for length in (0, 12, 40, 100):
        assert key(b"label", b"seed", length) == prf.prf(hash_cls, secret, b"label", b"seed", length)
    digest = os.urandom(32)
    assert key.verify_data(prf.CLIENT_FINISHED, digest) == prf.prf(
        hash_cls, secret, prf.CLIENT_FINISHED, digest, prf.VERIFY_DATA_LENGTH
    )
    with pytest.raises(ValueError):
        key.verify_data(b"other label", digest)
    with pytest.raises(ValueError):
        key(b"label", b"seed", -1)
    assert "PRFKey(<secret>)" == repr(key)


def test_prf_key_block_matches_key_block():
    info = CIPHER_SUITES[CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]
    master, client_random, server_random = os.urandom(48), os.urandom(32), os.urandom(32)
    keys = prf.key_block(info, master, client_random, server_random)
    assert prf.PRFKey(info.prf_hash, master).key_block(info, client_random, server_random) == (
        keys.client_write_key,
        keys.server_write_key,
        keys.client_write_iv,
        keys.server_write_iv,
    )
    # Independent of the key object: the PRF over the documented seed.
    block = prf.prf(info.prf_hash, master, prf.KEY_EXPANSION, server_random + client_random, 40)
    assert keys.client_write_key + keys.server_write_key + keys.client_write_iv + keys.server_write_iv == block


def _fragment(seq, body=b"x" * 10, offset=0, length=None):
    length = len(body) if length is None else length
    return HandshakeFragment(HandshakeType.certificate, length, seq, offset, body)


def test_take_whole_delivers_the_next_whole_message():
    r = Reassembler(1000, 2000, 4)
    assert r.take_whole(_fragment(0, b"abc")) == (HandshakeType.certificate, 0, b"abc")
    assert r.next_seq == 1 and r.held_bytes == 0


@pytest.mark.parametrize(
    "fragment",
    [
        _fragment(1),  # not the message due next
        _fragment(0, b"x" * 5, offset=0, length=10),  # a part only
        _fragment(0, b"x" * 5, offset=5, length=10),
        _fragment(0, b"x" * 1001),  # above the message limit
        _fragment(0, bytearray(b"abc")),  # not bytes
    ],
)
def test_take_whole_leaves_everything_else_to_add(fragment):
    r = Reassembler(1000, 2000, 4)
    assert r.take_whole(fragment) is None
    assert r.next_seq == 0 and r.held_bytes == 0 and r.drops == {}


def test_take_whole_not_while_something_is_held():
    r = Reassembler(1000, 2000, 4)
    r.add(_fragment(1))
    assert r.take_whole(_fragment(0)) is None
    assert r.take_whole(_fragment(0, b"x" * 1500)) is None  # more than the byte budget


def test_unprotected_seal_is_push_record():
    layer = RecordLayer()
    layer.set_next_write_sequence(0, 7)
    for seq in (7, 8):
        assert layer.seal(ContentType.handshake, b"body") == push_record(ContentType.handshake, layer.version, 0, seq, b"body")


def test_single_unprotected_record_opens_as_the_general_path():
    record = push_record(ContentType.handshake, 0xFEFD, 0, 5, b"hello")
    fast = RecordLayer().open_datagram(record)
    # Two records in one datagram take the general path.
    general = RecordLayer().open_datagram(record + record)
    assert fast == general[:1]
    assert fast[0].data == b"hello" and fast[0].sequence_number == 5 and fast[0].epoch == 0


def test_drops_count_like_a_counter():
    layer = RecordLayer()
    assert layer.drops == {} and layer.drops["anything"] == 0 and "anything" not in layer.drops
    layer.open_datagram(push_record(ContentType.handshake, 0xFEFD, 3, 0, b"x"))
    assert layer.drops == {"unknown_epoch": 1}
