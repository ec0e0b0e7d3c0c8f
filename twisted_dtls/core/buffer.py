"""
A read/write cursor over bytes for the TLS presentation language
(RFC 5246 §4): fixed-width big-endian integers and length-prefixed vectors.

Reading past the end raises L{DecodeError}; a short slice is never returned.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from .errors import DecodeError


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

    def _take(self, n: int) -> int:
        pos = self._pos
        if n < 0 or pos + n > self._end:
            raise DecodeError(f"need {n} bytes, {self._end - pos} left")
        self._pos = pos + n
        return pos

    def pull_bytes(self, n: int) -> bytes:
        pos = self._take(n)
        return self._data[pos : pos + n]

    def pull_rest(self) -> bytes:
        return self.pull_bytes(self.remaining)

    def pull_uint8(self) -> int:
        pos = self._take(1)
        return self._data[pos]

    def pull_uint16(self) -> int:
        pos = self._take(2)
        return int.from_bytes(self._data[pos : pos + 2], "big")

    def pull_uint24(self) -> int:
        pos = self._take(3)
        return int.from_bytes(self._data[pos : pos + 3], "big")

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
        n = self._pull_length(length_size)
        if n < minimum or (maximum is not None and n > maximum):
            raise DecodeError(f"vector length {n} outside {minimum}..{maximum}")
        return self.pull_bytes(n)

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
        inner = self.pull_vector(length_size)
        if inner.remaining % item_size:
            raise DecodeError("list length not a multiple of its item size")
        pull = {1: inner.pull_uint8, 2: inner.pull_uint16, 3: inner.pull_uint24}[item_size]
        return [pull() for _ in range(inner.remaining // item_size)]

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
