"""Encodings for files read in binary and decoded line by line, so byte offsets stay exact.

Supported: every encoding in which a newline is the single byte 0x0A and no other character
contains that byte (UTF-8, UTF-8 with BOM, Latin-1, the cp125x and ISO-8859 families, Shift-JIS,
GB18030, Big5, EUC-*), and UTF-16 / UTF-32 (LE, BE, or with a BOM that decides the order;
without a BOM, little-endian). Not supported: stateful encodings (UTF-7, ISO-2022-*, HZ), whose
lines cannot be decoded one at a time.

A BOM at byte 0 is skipped even when the encoding does not ask for one (a "utf-8" file saved with
a BOM, a "utf-16-le" file opening with FF FE), so it never lands in the first column's name.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import BinaryIO

from batchline.errors import ConfigurationError

_STATEFUL = {"utf_7", "hz"}
_BOMS = {
    "utf_8_sig": (codecs.BOM_UTF8, "utf-8", 1),
    "utf_16": (codecs.BOM_UTF16_LE, "utf-16-le", 2),
    "utf_32": (codecs.BOM_UTF32_LE, "utf-32-le", 4),
}
_DETECT_16 = ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_DETECT_32 = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"))
_WIDE = {"utf_16_le": 2, "utf_16_be": 2, "utf_32_le": 4, "utf_32_be": 4}
_SIGNATURES = {
    "utf_8": codecs.BOM_UTF8,
    "utf_16_le": codecs.BOM_UTF16_LE,
    "utf_16_be": codecs.BOM_UTF16_BE,
    "utf_32_le": codecs.BOM_UTF32_LE,
    "utf_32_be": codecs.BOM_UTF32_BE,
}


@dataclass(frozen=True, slots=True)
class TextCodec:
    """How to split and decode one file: the per-line codec, its BOM and its code unit."""

    encoding: str  # codec for one line (never a BOM-writing one)
    bom: bytes = b""  # written at the start of a new file; skipped when read
    unit: int = 1  # bytes per code unit: a line break must start on a multiple of it
    detect_bom: bool = False  # utf-16 / utf-32: the BOM found on reading decides the order
    errors: str = "strict"
    # A BOM that may open a file in this encoding although it was not asked for ("utf-8" files
    # saved by Excel): skipped at byte 0 when read, never written.
    signature: bytes = b""

    @property
    def newline(self) -> bytes:
        return "\n".encode(self.encoding)

    def decode(self, data: bytes) -> str:
        return data.decode(self.encoding, self.errors)

    @property
    def decoder(self) -> Callable[[bytes], str]:
        """``decode`` as a C function where one exists: it runs once per line."""
        if self.errors == "strict" and codecs.lookup(self.encoding).name == "utf-8":
            return bytes.decode
        return self.decode

    def encode(self, text: str) -> bytes:
        return text.encode(self.encoding, self.errors)

    def sniff(self, head: bytes) -> tuple[TextCodec, int]:
        """The codec for a file that starts with ``head``, and the length of its BOM."""
        if self.detect_bom:
            candidates = _DETECT_32 if self.unit == 4 else _DETECT_16
            for bom, enc in candidates:
                if head.startswith(bom):
                    return replace(self, encoding=enc, bom=bom), len(bom)
            return self, 0
        for bom in (self.bom, self.signature):
            if bom and head.startswith(bom):
                return self, len(bom)
        return self, 0


def text_codec(encoding: str, errors: str = "strict") -> TextCodec:
    """A TextCodec for ``encoding``; ConfigurationError for one that cannot be read by line."""
    try:
        name = codecs.lookup(encoding).name.replace("-", "_")
    except LookupError:
        raise ConfigurationError(f"unknown encoding {encoding!r}") from None
    if name in _BOMS:
        bom, per_line, unit = _BOMS[name]
        return TextCodec(per_line, bom, unit, detect_bom=unit > 1, errors=errors)
    if name in _WIDE:
        return TextCodec(encoding, b"", _WIDE[name], errors=errors, signature=_SIGNATURES[name])
    if name in _STATEFUL or name.startswith("iso2022") or "\n".encode(encoding) != b"\n":
        raise ConfigurationError(
            f"encoding {encoding!r} cannot be read line by line (stateful or not "
            "ASCII-compatible); supported: ASCII-compatible encodings, UTF-16 and UTF-32"
        )
    return TextCodec(encoding, errors=errors, signature=_SIGNATURES.get(name, b""))


class WideLines:
    """``readline``/``tell``/``seek`` over UTF-16/32 bytes: a line ends at an aligned newline."""

    def __init__(self, raw: BinaryIO, codec: TextCodec, block: int = 1 << 16) -> None:
        self._raw = raw
        self._newline = codec.newline
        self._unit = codec.unit
        self._block = block
        self._buffer = b""
        self._pos = raw.tell()  # offset of the first byte of _buffer

    def readline(self) -> bytes:
        start = 0
        while True:
            found = self._buffer.find(self._newline, start)
            while found >= 0 and found % self._unit:
                found = self._buffer.find(self._newline, found + 1)
            if found >= 0:
                end = found + len(self._newline)
                line, self._buffer = self._buffer[:end], self._buffer[end:]
                self._pos += end
                return line
            more = self._raw.read(self._block)
            if not more:
                line, self._buffer = self._buffer, b""
                self._pos += len(line)
                return line
            start = max(0, len(self._buffer) - len(self._newline) + 1)
            start -= start % self._unit
            self._buffer += more

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int) -> int:
        self._raw.seek(offset)
        self._buffer = b""
        self._pos = offset
        return offset

    def close(self) -> None:
        self._raw.close()
