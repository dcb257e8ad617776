"""Tar archives built block by block for the reader's tests: headers (:func:`hdr`, GNU and
v7 variants with the checksum fixed up), archives in memory (:func:`archive`, opened by
:func:`image`; :func:`corrupt` wants the reader to refuse one), and writer output
(:func:`make`)."""
from __future__ import annotations

import pytest

from blockimg.block import MemoryDevice
from blockimg.errors import CorruptImage
from blockimg.sources.directory import from_pairs
from blockimg.tar import Options, open_image, plan, write
from blockimg.tar.header import GNU_MAGIC, build_header

Z = bytes(512)


def blocks(data: bytes) -> bytes:
    return data + bytes(-len(data) % 512)


def hdr(name, size=0, typeflag=b"0", mtime=1000, link=b"", mode=0o644, prefix=b""):
    return build_header(name, mode, size, mtime, typeflag, link, prefix)


def fix_checksum(block: bytes) -> bytes:
    b = bytearray(block)
    b[148:156] = b" " * 8
    b[148:156] = b"%06o\0 " % sum(b)
    return bytes(b)


def gnu(block: bytes) -> bytes:
    b = bytearray(block)
    b[257:265] = GNU_MAGIC
    return fix_checksum(bytes(b))


def v7(block: bytes) -> bytes:
    b = bytearray(block)
    b[257:500] = bytes(243)
    return fix_checksum(bytes(b))


def archive(*parts: bytes, end: bytes = Z + Z) -> MemoryDevice:
    data = b"".join(parts) + end
    return MemoryDevice(data=data + bytes(-len(data) % 512))


def image(*parts, **kw):
    return open_image(archive(*parts, **kw))


def corrupt(*parts, **kw) -> CorruptImage:
    with pytest.raises(CorruptImage) as exc:
        image(*parts, **kw)
    return exc.value


def make(pairs, **opts):
    p = plan(from_pairs(pairs, mtime=1700000000), Options(**opts))
    dev = MemoryDevice(p.image_size, fill=0xAA)
    write(p, dev)
    return p, dev
