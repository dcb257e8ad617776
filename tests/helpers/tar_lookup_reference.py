"""The simple form of a tar lookup's pass over headers, which
:meth:`blockimg.tar.decoder.Decoder.pass_over` (a pattern per lookup, a window at a
time) is tested equal to: each header read with the header module's codecs, one at a
time, and its name compared with the path by the rules written out."""
from __future__ import annotations

from blockimg.tar.decoder import PASSABLE
from blockimg.tar.header import (BLOCK, SIZE, TYPE_AT, decode_number, header_path, padded,
                                 stored_checksum)

__all__ = ["cannot_decide", "pass_over_reference"]


def cannot_decide(name: bytes, path: bytes) -> bool:
    """Can a member named ``name`` not decide the lookup of ``path``? When its name is
    clean -- not empty, no leading ``.`` or ``/``, no ``//`` or ``/.``, so that
    ``normalize_member_path`` keeps it as it is (less one trailing ``/``) -- and it is
    neither ``path``, above it nor below it."""
    key = name[:-1] if name.endswith(b"/") else name
    if not key or name[:1] in (b".", b"/") or b"//" in name or b"/." in name:
        return False
    return not (key == path or key.startswith(path + b"/") or path.startswith(key + b"/"))


def pass_over_reference(data: bytes, pos: int, path: bytes):
    """``(offset, n)``: the ``n`` headers in a row from ``pos`` whose members cannot
    decide the lookup of ``path`` -- a file, directory or link, a valid checksum, a size
    whose data lies inside ``data``, a name :func:`cannot_decide` -- and the offset of
    the header after them."""
    n = 0
    while pos + BLOCK <= len(data):
        block = data[pos:pos + BLOCK]
        if block[TYPE_AT] not in PASSABLE:
            break
        try:
            ok = stored_checksum(block)[1]
            size = decode_number(block[SIZE])
        except ValueError:
            break
        if not ok or size < 0 or pos + BLOCK + size > len(data):
            break
        if not cannot_decide(header_path(block), path):
            break
        pos += BLOCK + padded(size)
        n += 1
    return pos, n
