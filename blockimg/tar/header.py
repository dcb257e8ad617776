"""The 512-byte tar header, its number fields and pax records.

``LAYOUT`` is the one declaration of the on-disk block (POSIX ustar field
names; v7 and GNU headers share the layout up to ``magic``); ``FIELDS`` (the
offsets) is derived from it, and so is the construct declaration the tests
check :func:`build_header` against (``tests/helpers/tar_reference.py``):
construct is a test dependency only.

Rules kept here:

* numbers are written in octal only (``width - 1`` digits and a NUL); what
  octal cannot hold goes to pax records, never to GNU base-256. Reading
  accepts octal (space/NUL padded) and base-256 (0x80 / 0xff lead byte).
* the checksum is the sum of the block's bytes with the checksum field
  taken as eight spaces, stored as six octal digits, NUL, space; readers
  also accept the signed-byte sum old tars wrote.
* a pax record is ``"%d %s=%s\\n"`` whose decimal length counts itself.
"""
from __future__ import annotations

import re
from zlib import adler32
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Dict, List, Mapping, Optional, Tuple

from ..errors import CorruptImage

__all__ = ["BLOCK", "LAYOUT", "FIELDS", "USTAR_MAGIC", "GNU_MAGIC", "encode_octal",
           "decode_number", "octal_fits", "checksums", "build_header",
           "split_ustar", "pax_record", "encode_pax", "decode_pax", "padded",
           "ascii_sum"]

BLOCK = 512
NUL = b"\0"
USTAR_MAGIC = b"ustar\x0000"     # magic "ustar\0" + version "00" (POSIX)
GNU_MAGIC = b"ustar  \x00"       # magic "ustar " + version " \0" (GNU, old GNU)


def padded(n: int) -> int:
    """``n`` rounded up to whole 512-byte blocks."""
    return -(-n // BLOCK) * BLOCK


# -- numbers --------------------------------------------------------------
def octal_fits(value: int, width: int) -> bool:
    """Can ``value`` be written in octal in a ``width``-byte field (with its NUL)?"""
    return 0 <= value < 8 ** (width - 1)


def encode_octal(value: int, width: int) -> bytes:
    """``width - 1`` octal digits and a NUL; OverflowError when it does not fit."""
    if not octal_fits(value, width):
        raise OverflowError(f"{value} does not fit {width - 1} octal digits")
    return b"%0*o\0" % (width - 1, value)


_OCTAL = re.compile(rb" *([0-7]*)[ \0]*\Z")


def decode_number(raw: bytes) -> int:
    """A numeric field: octal (leading spaces, NUL/space end) or GNU base-256.

    Raises ValueError naming what is wrong.
    """
    body = raw.rstrip(b" \0")
    if body.isdigit():                                   # the common case: fast
        try:
            return int(body, 8)
        except ValueError:
            pass                                         # an 8 or 9: the strict path says so
    lead = raw[0] if raw else 0
    if lead == 0x80:
        return int.from_bytes(raw[1:], "big")
    if lead == 0xFF:
        return int.from_bytes(raw, "big", signed=True)
    m = _OCTAL.match(raw)
    if m is None:
        raise ValueError(f"not an octal number: {bytes(raw)!r}")
    digits = m.group(1)
    return int(digits, 8) if digits else 0


def is_base256(raw: bytes) -> bool:
    return bool(raw) and raw[0] in (0x80, 0xFF)


# -- the declaration --------------------------------------------------------
#: ``(name, width, kind)`` of every header field, in order: ``text`` (NUL padded),
#: ``octal`` (a number) or ``bytes``.
LAYOUT: Tuple[Tuple[str, int, str], ...] = (
    ("name", 100, "text"),
    ("mode", 8, "octal"),
    ("uid", 8, "octal"),
    ("gid", 8, "octal"),
    ("size", 12, "octal"),
    ("mtime", 12, "octal"),
    ("chksum", 8, "bytes"),
    ("typeflag", 1, "bytes"),
    ("linkname", 100, "text"),
    ("magic", 6, "bytes"),
    ("version", 2, "bytes"),
    ("uname", 32, "text"),
    ("gname", 32, "text"),
    ("devmajor", 8, "octal"),
    ("devminor", 8, "octal"),
    ("prefix", 155, "text"),
    ("pad", 12, "bytes"),
)


def _field_table() -> Dict[str, Tuple[int, int]]:
    table, pos = {}, 0
    for name, n, _ in LAYOUT:
        table[name] = (pos, pos + n)
        pos += n
    assert pos == BLOCK
    return table


FIELDS: Dict[str, Tuple[int, int]] = _field_table()   # name -> (start, end) in the block
CHKSUM = FIELDS["chksum"]
assert CHKSUM == (148, 156)


_HIGH = bytes(range(128, 256))
_SPACES8 = b" " * 8


def checksums(block: bytes) -> Tuple[int, int]:
    """(unsigned, signed) header checksums of a 512-byte block."""
    b = block[:148] + _SPACES8 + block[156:]
    unsigned = sum(b)
    high = BLOCK - len(b.translate(None, _HIGH))
    return unsigned, unsigned - 256 * high


def ascii_sum(block: bytes) -> int:
    """``sum(block)`` of a header block (at most 512 bytes) whose bytes are all < 128
    (``block.isascii()``).

    zlib's Adler-32 in C, about 8 times as fast as ``sum`` (which costs most of a
    header's decoding): its low half is 1 + the byte sum modulo 65521, and the sum
    of at most 512 bytes < 128 is at most 65024, below the modulus.
    """
    return (adler32(block) & 0xFFFF) - 1


_ZERO_ID = b"0000000\0"
_PAD12 = bytes(12)
_MAX7 = 8 ** 7
_MAX11 = 8 ** 11


_MID = USTAR_MAGIC + bytes(64) + _ZERO_ID + _ZERO_ID   # magic .. devminor: constant
_CONST_SUM = 2 * sum(_ZERO_ID) + sum(_SPACES8) + sum(_MID)
_ZERO_IDS = _ZERO_ID + _ZERO_ID                          # uid, gid
_TAIL = bytes(100) + _MID + bytes(155) + _PAD12          # empty linkname .. pad
_CONST_SUM_TAIL = sum(_SPACES8) + sum(_MID)              # uid/gid are in ``nums``


def build_header(name: bytes, mode: int, size: int, mtime: int, typeflag: bytes,
                 linkname: bytes = b"", prefix: bytes = b"") -> bytes:
    """A ustar header block, fast: uid/gid 0, empty owner names, device 0/0.

    Identical to the construct reference built from :data:`LAYOUT` (tested);
    the checksum adds the variable fields to the precomputed sum of the
    constant ones. Raises OverflowError/ValueError when a value does not fit.
    """
    if len(name) > 100 or len(linkname) > 100 or len(prefix) > 155 or len(typeflag) != 1:
        raise ValueError("name, linkname, prefix or typeflag does not fit its field")
    if not (0 <= mode < _MAX7 and 0 <= size < _MAX11 and 0 <= mtime < _MAX11):
        raise OverflowError("a number does not fit its octal field")
    if not linkname and not prefix:
        # The common case: everything after typeflag is constant.
        nums = b"%07o\0%s%011o\0%011o\0" % (mode, _ZERO_IDS, size, mtime)
        chk = _CONST_SUM_TAIL + sum(name) + sum(nums) + typeflag[0]
        return b"".join((name.ljust(100, NUL), nums, b"%06o\0 " % chk, typeflag, _TAIL))
    m = b"%07o\0" % mode
    s = b"%011o\0" % size
    t = b"%011o\0" % mtime
    chk = (_CONST_SUM + sum(name) + sum(m) + sum(s) + sum(t) + typeflag[0] + sum(linkname)
           + sum(prefix))
    return b"".join((name.ljust(100, NUL), m, _ZERO_ID, _ZERO_ID, s, t, b"%06o\0 " % chk,
                     typeflag, linkname.ljust(100, NUL), _MID, prefix.ljust(155, NUL), _PAD12))


def split_ustar(path: bytes) -> Optional[Tuple[bytes, bytes]]:
    """(prefix, name) holding ``path`` in ustar's 155 + 100 byte fields, or None.

    ``path`` fits the name field alone when it can; otherwise it is split at
    the last ``/`` that leaves a prefix of at most 155 bytes and a non-empty
    name of at most 100 (a directory's trailing ``/`` stays in the name).
    """
    if len(path) <= 100:
        return b"", path
    if len(path) > 256:
        return None
    i = path.rfind(b"/", 0, min(len(path) - 1, 156))
    if i > 0 and len(path) - i - 1 <= 100:
        return path[:i], path[i + 1:]
    return None


# -- pax records ----------------------------------------------------------
def pax_record(key: bytes, value: bytes) -> bytes:
    """One record ``"<len> <key>=<value>\\n"``; ``len`` counts its own digits."""
    body = b" %s=%s\n" % (key, value)
    n = len(body) + 1
    while len(str(n)) + len(body) != n:
        n = len(str(n)) + len(body)
    return b"%d%s" % (n, body)


def encode_pax(records: Mapping[bytes, bytes]) -> bytes:
    """Records sorted by key (deterministic output)."""
    return b"".join(pax_record(k, records[k]) for k in sorted(records))


_LEN = re.compile(rb"([0-9]{1,19}) ")


def decode_pax(payload: bytes, offset: int) -> List[Tuple[bytes, bytes]]:
    """Parse a pax payload strictly; ``offset`` is its byte offset in the image.

    Trailing NUL bytes are tolerated; every other deviation raises
    CorruptImage naming the record's offset.
    """
    out = []
    pos = 0
    end = len(payload)
    while pos < end:
        if payload[pos] == 0 and not payload[pos:].strip(NUL):
            break
        m = _LEN.match(payload, pos)
        if m is None:
            raise CorruptImage("pax record does not start with '<decimal length> '",
                               offset=offset + pos, field="pax record")
        length = int(m.group(1))
        stop = pos + length
        if length < len(m.group(0)) + 3 or stop > end:
            raise CorruptImage(f"pax record length {length} is impossible (the payload has "
                               f"{end - pos} bytes left)", offset=offset + pos,
                               field="pax record length", value=length)
        if payload[stop - 1] != 0x0A:
            raise CorruptImage("pax record does not end with a newline where its length "
                               "says", offset=offset + pos, field="pax record")
        body = payload[m.end():stop - 1]
        key, eq, value = body.partition(b"=")
        if not eq or not key:
            raise CorruptImage("pax record has no 'key=' part", offset=offset + pos,
                               field="pax record")
        out.append((key, value))
        pos = stop
    return out
