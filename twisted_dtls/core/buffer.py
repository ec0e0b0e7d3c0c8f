"""
A read/write cursor over bytes for the TLS presentation language
(RFC 5246 §4): fixed-width big-endian integers and length-prefixed vectors.

Reading past the end raises L{DecodeError}; a short slice is never returned.
"""

from __future__ import annotations

import functools
import struct
from contextlib import contextmanager
from typing import Iterator

from .errors import DecodeError


@functools.lru_cache(maxsize=64)
def _unpack_uint16s(count: int) -> struct.Struct:
    return struct.Struct(f">{count}H")


class Buffer:
    """
    A cursor over immutable input (C{Buffer(data)}) or a growing output
    (C{Buffer()}).
    """

    __slots__ = ("_data", "_pos", "_end", "_out")

    def __init__(self, data: bytes = b"", start: int = 0, end: int | None = None):
        self._data = data
        self._pos = start
        self._end = len(data) if end is None else end
        self._out = bytearray()

    # -- reading -----------------------------------------------------------

    def eof(self) -> bool:
        return self._pos >= self._end

    @property
    def remaining(self) -> int:
        return self._end - self._pos

    def tell(self) -> int:
        return self._pos

    # Every handshake message and every ClientHello a listener answers is
    # parsed through these, so each one does its bounds check and slicing
    # inline rather than through a helper call.

    def _short(self, n: int) -> DecodeError:
        return DecodeError(f"need {n} bytes, {self._end - self._pos} left")

    def _take(self, n: int) -> int:
        pos = self._pos
        if n < 0 or pos + n > self._end:
            raise self._short(n)
        self._pos = pos + n
        return pos

    def pull_bytes(self, n: int) -> bytes:
        pos = self._pos
        end = pos + n
        if n < 0 or end > self._end:
            raise self._short(n)
        self._pos = end
        return self._data[pos:end]

    def pull_rest(self) -> bytes:
        return self.pull_bytes(self.remaining)

    def pull_uint8(self) -> int:
        pos = self._pos
        if pos >= self._end:
            raise self._short(1)
        self._pos = pos + 1
        return self._data[pos]

    def pull_uint16(self) -> int:
        pos = self._pos
        if pos + 2 > self._end:
            raise self._short(2)
        self._pos = pos + 2
        data = self._data
        return (data[pos] << 8) | data[pos + 1]

    def pull_uint24(self) -> int:
        pos = self._pos
        if pos + 3 > self._end:
            raise self._short(3)
        self._pos = pos + 3
        data = self._data
        return (data[pos] << 16) | (data[pos + 1] << 8) | data[pos + 2]

    def pull_uint32(self) -> int:
        pos = self._take(4)
        return int.from_bytes(self._data[pos : pos + 4], "big")

    def pull_uint48(self) -> int:
        pos = self._take(6)
        return int.from_bytes(self._data[pos : pos + 6], "big")

    def _pull_length(self, length_size: int) -> int:
        if length_size == 1:
            return self.pull_uint8()
        if length_size == 2:
            return self.pull_uint16()
        if length_size == 3:
            return self.pull_uint24()
        raise ValueError(f"unsupported length prefix size {length_size}")

    def pull_opaque(self, length_size: int, minimum: int = 0, maximum: int | None = None) -> bytes:
        """
        Read a vector C{opaque x<minimum..maximum>} with a C{length_size}-byte
        length prefix.
        """
        pos = self._pos
        data = self._data
        if length_size == 2:
            if pos + 2 > self._end:
                raise self._short(2)
            n = (data[pos] << 8) | data[pos + 1]
            pos += 2
        elif length_size == 1:
            if pos >= self._end:
                raise self._short(1)
            n = data[pos]
            pos += 1
        else:
            n = self._pull_length(length_size)
            pos = self._pos
        self._pos = pos
        if n < minimum or (maximum is not None and n > maximum):
            raise DecodeError(f"vector length {n} outside {minimum}..{maximum}")
        end = pos + n
        if end > self._end:
            raise self._short(n)
        self._pos = end
        return data[pos:end]

    def pull_vector(self, length_size: int) -> "Buffer":
        """
        Read a length-prefixed vector and return a cursor confined to it.
        """
        n = self._pull_length(length_size)
        pos = self._take(n)
        return Buffer(self._data, pos, pos + n)

    def pull_list(self, length_size: int, item_size: int) -> list[int]:
        """
        Read a length-prefixed list of fixed-width integers.
        """
        n = self._pull_length(length_size)
        if n % item_size:
            # Consume the vector first, so that a short one reports as short.
            self._take(n)
            raise DecodeError("list length not a multiple of its item size")
        pos = self._take(n)
        count = n // item_size
        if item_size == 2:
            return list(_unpack_uint16s(count).unpack_from(self._data, pos))
        if item_size == 1:
            return list(self._data[pos : pos + n])
        if item_size == 3:
            data = self._data
            return [int.from_bytes(data[i : i + 3], "big") for i in range(pos, pos + n, 3)]
        raise KeyError(item_size)

    def expect_eof(self) -> None:
        if self._pos != self._end:
            raise DecodeError(f"{self._end - self._pos} trailing bytes")

    # -- writing -----------------------------------------------------------

    @property
    def output(self) -> bytes:
        return bytes(self._out)

    def push_bytes(self, data: bytes) -> None:
        self._out += data

    def push_uint8(self, v: int) -> None:
        self._out.append(v)

    def push_uint16(self, v: int) -> None:
        self._out += v.to_bytes(2, "big")

    def push_uint24(self, v: int) -> None:
        self._out += v.to_bytes(3, "big")

    def push_uint32(self, v: int) -> None:
        self._out += v.to_bytes(4, "big")

    def push_uint48(self, v: int) -> None:
        self._out += v.to_bytes(6, "big")

    def push_opaque(self, length_size: int, data: bytes) -> None:
        self._out += len(data).to_bytes(length_size, "big")
        self._out += data

    def push_list(self, length_size: int, item_size: int, values) -> None:
        values = list(values)
        self._out += (len(values) * item_size).to_bytes(length_size, "big")
        for v in values:
            self._out += int(v).to_bytes(item_size, "big")

    @contextmanager
    def push_block(self, length_size: int) -> Iterator[None]:
        """
        Write a length-prefixed block: the length is filled in on exit.
        """
        start = len(self._out)
        self._out += bytes(length_size)
        yield
        n = len(self._out) - start - length_size
        if n >= 1 << (8 * length_size):
            raise ValueError(f"block of {n} bytes does not fit a {length_size}-byte length")
        self._out[start : start + length_size] = n.to_bytes(length_size, "big")
