"""Reference forms of the tar header (issue 13): the construct declaration derived from
``blockimg.tar.header.LAYOUT``, and a header built through it, which the library's
fast :func:`~blockimg.tar.header.build_header` is tested equal to. Tests only:
construct is a test dependency."""
from __future__ import annotations

import functools

from blockimg.tar.header import (BLOCK, LAYOUT, NUL, USTAR_MAGIC, decode_number,
                                 encode_octal)

__all__ = ["HEADER", "header_struct", "build_with_construct"]

_SPACES8 = b" " * 8


@functools.lru_cache(maxsize=None)
def header_struct():
    """The construct ``Struct`` of the header block, from ``LAYOUT``."""
    from construct import Adapter, Bytes, Struct

    class _Octal(Adapter):
        def _decode(self, obj, context, path):
            return decode_number(obj)

        def _encode(self, obj, context, path):
            return encode_octal(obj, self.subcon.sizeof())

    class _Text(Adapter):
        """A NUL-padded byte string (NUL-terminated unless it fills the field)."""

        def _decode(self, obj, context, path):
            return obj.split(NUL, 1)[0]

        def _encode(self, obj, context, path):
            n = self.subcon.sizeof()
            if len(obj) > n:
                raise ValueError(f"{len(obj)} bytes do not fit a {n}-byte field")
            return bytes(obj).ljust(n, NUL)

    kinds = {"text": _Text, "octal": _Octal}
    header = Struct(*[name / (kinds[kind](Bytes(n)) if kind in kinds else Bytes(n))
                      for name, n, kind in LAYOUT])
    assert header.sizeof() == BLOCK
    return header


HEADER = header_struct()


def _with_checksum(block: bytes) -> bytes:
    total = sum(block[:148]) + 256 + sum(block[156:])
    return block[:148] + b"%06o\0 " % total + block[156:]


def build_with_construct(**fields) -> bytes:
    """A header block from field values through the construct declaration (checksum
    filled in)."""
    values = dict(uid=0, gid=0, linkname=b"", magic=USTAR_MAGIC[:6], version=USTAR_MAGIC[6:],
                  uname=b"", gname=b"", devmajor=0, devminor=0, prefix=b"", pad=bytes(12))
    values.update(fields)
    values["chksum"] = _SPACES8
    return _with_checksum(header_struct().build(values))
