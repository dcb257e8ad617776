"""Reference forms of the tar header (issue 13): the construct declaration derived from
``blockimg.tar.header.LAYOUT``, and a header built through it, which the library's
fast :func:`~blockimg.tar.header.build_header` is tested equal to, and the header set of
a source entry written out plainly (:func:`reference_encode`, which
:func:`~blockimg.tar.codec.encode_entry` is tested equal to). Tests only:
construct is a test dependency."""
from __future__ import annotations

import functools

from blockimg.tar.header import (BLOCK, LAYOUT, NUL, USTAR_MAGIC, decode_number,
                                 encode_octal)

__all__ = ["HEADER", "header_struct", "build_with_construct", "reference_encode"]

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


def _split(path: bytes):
    """(prefix, name) of ``path`` in ustar's fields, the plain way: every ``/`` tried from
    the right; None when no split fits."""
    if len(path) <= 100:
        return b"", path
    for i in range(len(path) - 1, 0, -1):
        if path[i:i + 1] == b"/" and i <= 155 and 0 < len(path) - i - 1 <= 100:
            return path[:i], path[i + 1:]
    return None


def _pax(records) -> bytes:
    out = b""
    for key in sorted(records):
        body = b" " + key + b"=" + records[key] + b"\n"
        n = len(body)
        while len(str(n)) + len(body) != n:       # the length counts its own digits
            n += 1
        out += str(n).encode() + body
    return out


def reference_encode(entry) -> bytes:
    """The header set of a source entry (generic target), written out plainly through
    the construct declaration: what :func:`blockimg.tar.codec.encode_entry` must give."""
    from blockimg.sources.directory import Kind
    flag = {Kind.FILE: b"0", Kind.DIR: b"5", Kind.SYMLINK: b"2", Kind.HARDLINK: b"1"}
    name = entry.path_bytes + (b"/" if entry.kind is Kind.DIR else b"")
    link = entry.link_target.encode("utf-8", "surrogateescape") \
        if entry.link_target is not None and entry.kind in (Kind.SYMLINK, Kind.HARDLINK) \
        else b""
    size = entry.size if entry.kind is Kind.FILE else 0
    mtime = int(entry.mtime)
    records = {}
    split = _split(name)
    if split is None:
        records[b"path"], split = name, (b"", name[:100])
    if len(link) > 100:
        records[b"linkpath"], link = link, link[:100]
    if records:
        try:
            (name + records.get(b"linkpath", link)).decode("utf-8")
        except UnicodeDecodeError:
            records[b"hdrcharset"] = b"BINARY"
    if not 0 <= size < 8 ** 11:
        records[b"size"], size = str(size).encode(), 0
    if not 0 <= mtime < 8 ** 11:
        records[b"mtime"], mtime = str(mtime).encode(), (0 if mtime < 0 else 8 ** 11 - 1)
    header = build_with_construct(name=split[1], prefix=split[0], mode=entry.mode & 0o7777,
                                  size=size, mtime=mtime, typeflag=flag[entry.kind],
                                  linkname=link)
    if not records:
        return header
    payload = _pax(records)
    xheader = build_with_construct(name=b"././@PaxHeader", mode=0o644, size=len(payload),
                                   mtime=0, typeflag=b"x")
    return xheader + payload + bytes(-len(payload) % BLOCK) + header
