"""
Record seal + open through the record layer against the bare AEAD calls
(AES-128-GCM, the same key, nonce and additional-data sizes).

"ours": C{RecordLayer.seal} on one side (header, nonce, AAD, sequence
number) and C{RecordLayer.open_datagram} on the other (parse, epoch,
replay window, AAD, decrypt). "bare": C{AESGCM.encrypt} and
C{AESGCM.decrypt} with a nonce and AAD built once.
"""

from __future__ import annotations

import os
from time import process_time as perf_counter

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from twisted_dtls.core.constants import ContentType
from twisted_dtls.core.protection import RecordProtection
from twisted_dtls.core.recordlayer import RecordLayer
from twisted_dtls.core.suites import CIPHER_SUITES

from .common import SUITE


def _pair(key: bytes, salt: bytes) -> tuple[RecordLayer, RecordLayer]:
    info = CIPHER_SUITES[SUITE]
    writer, reader = RecordLayer(), RecordLayer()
    writer.install_write(1, RecordProtection(info, key, salt))
    reader.install_read(1, RecordProtection(info, key, salt))
    return writer, reader


def ours(payload: bytes, count: int) -> float:
    """
    @return: seconds per seal + open.
    """
    writer, reader = _pair(os.urandom(16), os.urandom(4))
    seal = writer.seal
    open_datagram = reader.open_datagram
    kind = ContentType.application_data
    # Check once that the loop measures real work.
    opened = open_datagram(seal(kind, payload))
    if len(opened) != 1 or opened[0].data != payload:
        raise RuntimeError("record layer round trip failed")
    t0 = perf_counter()
    for _ in range(count):
        open_datagram(seal(kind, payload))
    return (perf_counter() - t0) / count


def bare(payload: bytes, count: int) -> float:
    aead = AESGCM(os.urandom(16))
    nonce = os.urandom(12)
    aad = os.urandom(13)
    encrypt, decrypt = aead.encrypt, aead.decrypt
    if decrypt(nonce, encrypt(nonce, payload, aad), aad) != payload:
        raise RuntimeError("AEAD round trip failed")
    t0 = perf_counter()
    for _ in range(count):
        decrypt(nonce, encrypt(nonce, payload, aad), aad)
    return (perf_counter() - t0) / count


def run_pairs(size: int, pairs: int, count: int) -> list[tuple[float, float]]:
    """
    @return: per interleaved pair, (ours, bare) seconds per seal + open.
    """
    payload = os.urandom(size)
    ours(payload, count // 10)
    bare(payload, count // 10)
    results = []
    for i in range(pairs):
        if i % 2 == 0:
            a = ours(payload, count)
            b = bare(payload, count)
        else:
            b = bare(payload, count)
            a = ours(payload, count)
        results.append((a, b))
    return results
