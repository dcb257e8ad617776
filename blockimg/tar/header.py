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

from zlib import adler32
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Dict, List, Mapping, Optional, Tuple

from ..errors import CorruptImage

__all__ = ["BLOCK", "LAYOUT", "FIELDS", "NAME", "MODE", "UID", "GID", "SIZE", "MTIME",
           "CHKSUM", "TYPEFLAG", "LINKNAME", "MAGIC", "VERSION", "UNAME", "GNAME", "DEVMAJOR",
           "DEVMINOR", "PREFIX", "PAD", "MAGIC_VERSION", "TYPE_AT", "USTAR_MAGIC", "GNU_MAGIC",
           "encode_octal", "decode_number", "is_base256", "octal_fits", "checksums",
           "ascii_sum", "stored_checksum", "build_header", "header_path", "split_ustar",
           "pax_record", "encode_pax", "decode_pax", "padded"]

BLOCK = 512
NUL = b"\0"
USTAR_MAGIC = b"ustar\x0000"     # magic "ustar\0" + version "00" (POSIX)
GNU_MAGIC = b"ustar  \x00"       # magic "ustar " + version " \0" (GNU, old GNU)


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
#: Each field as a ``slice`` of the block (``block[SIZE]``), from :data:`FIELDS`.
(NAME, MODE, UID, GID, SIZE, MTIME, CHKSUM, TYPEFLAG, LINKNAME, MAGIC, VERSION, UNAME,
 GNAME, DEVMAJOR, DEVMINOR, PREFIX, PAD) = [slice(*FIELDS[name]) for name, _, _ in LAYOUT]
#: ``magic`` and ``version`` together (what tells ustar, GNU and v7 apart).
MAGIC_VERSION = slice(MAGIC.start, VERSION.stop)
#: The typeflag's offset: ``block[TYPE_AT]`` is the flag as an int.
TYPE_AT = TYPEFLAG.start


def padded(n: int) -> int:
    """``n`` rounded up to whole 512-byte blocks."""
    return -(-n // BLOCK) * BLOCK


# -- numbers: the one octal / base-256 codec ------------------------------
def octal_fits(value: int, width: int) -> bool:
    """Can ``value`` be written in octal in a ``width``-byte field (with its NUL)?"""
    return 0 <= value < 8 ** (width - 1)


def _octal_format(width: int) -> bytes:
    """The ``%``-format of a ``width``-byte octal field: ``width - 1`` digits and a NUL."""
    return b"%%0%do\0" % (width - 1)


def encode_octal(value: int, width: int) -> bytes:
    """``width - 1`` octal digits and a NUL; OverflowError when it does not fit."""
    if not octal_fits(value, width):
        raise OverflowError(f"{value} does not fit {width - 1} octal digits")
    return _octal_format(width) % value


#: The compiled expressions, made on first use (:func:`_compile`): the usual octal field
#: and an archive without pax records need none (``re`` is a third of a tar reader's
#: start-up).
_OCTAL = _LEN = None


def _compile() -> None:
    """Compile ``_OCTAL`` (an octal field's strict form) and ``_LEN`` (a pax record's
    length)."""
    global _OCTAL, _LEN
    import re
    _OCTAL = re.compile(rb" *([0-7]*)[ \0]*\Z")
    _LEN = re.compile(rb"([0-9]{1,19}) ")


def decode_number(raw: bytes) -> int:
    """A numeric field: octal (leading spaces, NUL/space end) or GNU base-256
    (a 0x80 or 0xff lead byte: see :func:`is_base256`).

    Raises ValueError naming what is wrong.
    """
    body = raw.rstrip(b" \0")
    if body.isdigit():                                   # plain octal: the usual case
        try:
            return int(body, 8)
        except ValueError:
            pass                                         # an 8 or 9: the strict path says so
    if not body:                                         # spaces and NULs only
        return 0
    if is_base256(raw):
        if raw[0] == 0x80:
            return int.from_bytes(raw[1:], "big")
        return int.from_bytes(raw, "big", signed=True)
    if _OCTAL is None:
        _compile()
    m = _OCTAL.match(raw)
    if m is None:
        raise ValueError(f"not an octal number: {bytes(raw)!r}")
    digits = m.group(1)
    return int(digits, 8) if digits else 0


def is_base256(raw: bytes) -> bool:
    """Is the numeric field ``raw`` in GNU base-256 (lead byte 0x80, or 0xff negative)?"""
    return bool(raw) and raw[0] in (0x80, 0xFF)


# -- the checksum -----------------------------------------------------------
_HIGH = bytes(range(128, 256))
_SPACES8 = b" " * 8


def checksums(block: bytes) -> Tuple[int, int]:
    """(unsigned, signed) header checksums of a 512-byte block."""
    b = block[:CHKSUM.start] + _SPACES8 + block[CHKSUM.stop:]
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


def stored_checksum(block: bytes) -> Tuple[int, bool]:
    """``(stored, matches)``: the checksum ``block`` holds and whether it is its
    unsigned or signed sum. ValueError when the field is not a number.

    ``block`` is ``bytes``: when all its bytes are < 128 (the usual header) the two
    sums agree and :func:`ascii_sum` gives them fast.
    """
    raw = block[CHKSUM]
    stored = decode_number(raw)
    if block.isascii():
        return stored, stored == ascii_sum(block) + 256 - sum(raw)
    return stored, stored in checksums(block)


# -- building a header --------------------------------------------------------
def width(field: slice) -> int:
    """Bytes of a field (one of the slices above)."""
    return field.stop - field.start


_ZERO_ID = encode_octal(0, width(UID))
_MID = USTAR_MAGIC + bytes(width(UNAME) + width(GNAME)) + _ZERO_ID + _ZERO_ID  # magic..devminor
_CONST_SUM = sum(_SPACES8) + sum(_MID)                     # chksum as spaces, magic..devminor
#: mode, uid, gid (0), size and mtime in one format, from the fields' widths
_NUMBERS = (_octal_format(width(MODE)) + _ZERO_ID + _ZERO_ID + _octal_format(width(SIZE))
            + _octal_format(width(MTIME)))
_MAX_MODE = 8 ** (width(MODE) - 1)
_MAX_NUMBER = 8 ** (width(SIZE) - 1)                       # size and mtime (same width)
_PAD = bytes(width(PAD))
_NAME_MAX = width(NAME)                                   # also the linkname's width
_PREFIX_MAX = width(PREFIX)
assert width(LINKNAME) == _NAME_MAX
_EMPTY_TAIL = bytes(_NAME_MAX) + _MID + bytes(_PREFIX_MAX) + _PAD   # empty linkname .. pad
assert (MODE.stop, UID.stop, GID.stop, SIZE.stop) == (UID.start, GID.start, SIZE.start, MTIME.start)
assert width(MTIME) == width(SIZE) and MTIME.stop == CHKSUM.start
assert TYPEFLAG.stop == LINKNAME.start and LINKNAME.stop == MAGIC.start
assert DEVMINOR.stop == PREFIX.start and PREFIX.stop == PAD.start


def build_header(name: bytes, mode: int, size: int, mtime: int, typeflag: bytes,
                 linkname: bytes = b"", prefix: bytes = b"") -> bytes:
    """A ustar header block: uid/gid 0, empty owner names, device 0/0.

    The one header encoder: equal to the construct reference built from
    :data:`LAYOUT` (tests/helpers/tar_reference.py, tested). The checksum adds
    the variable fields to the precomputed sum of the constant ones. Raises
    OverflowError/ValueError when a value does not fit.
    """
    if len(name) > _NAME_MAX or len(linkname) > _NAME_MAX or len(prefix) > _PREFIX_MAX or \
            len(typeflag) != 1:
        raise ValueError("name, linkname, prefix or typeflag does not fit its field")
    if not (0 <= mode < _MAX_MODE and 0 <= size < _MAX_NUMBER and 0 <= mtime < _MAX_NUMBER):
        raise OverflowError("a number does not fit its octal field")
    numbers = _NUMBERS % (mode, size, mtime)
    if not linkname and not prefix:       # the usual header: what follows typeflag is constant
        # sum(name + numbers) by zlib's Adler-32 (:func:`ascii_sum`): at most 148 bytes,
        # so even bytes of 255 sum to 37,740, below its modulus, 65,521.
        chk = _CONST_SUM + (adler32(name + numbers) & 0xFFFF) - 1 + typeflag[0]
        return b"".join((name.ljust(_NAME_MAX, NUL), numbers, b"%06o\0 " % chk, typeflag,
                         _EMPTY_TAIL))
    chk = _CONST_SUM + sum(name) + sum(numbers) + typeflag[0] + sum(linkname) + sum(prefix)
    return b"".join((name.ljust(_NAME_MAX, NUL), numbers, b"%06o\0 " % chk, typeflag,
                     linkname.ljust(_NAME_MAX, NUL), _MID, prefix.ljust(_PREFIX_MAX, NUL), _PAD))


def header_path(block: bytes) -> bytes:
    """The member path a header block names: ``name``, after ``prefix/`` when the block
    is ustar (the GNU and v7 headers hold other things there)."""
    i = block.find(NUL, 0, NAME.stop)
    name = block[:i] if i >= 0 else block[NAME]
    if block[PREFIX.start] and block[MAGIC] == USTAR_MAGIC[:width(MAGIC)]:
        i = block.find(NUL, PREFIX.start, PREFIX.stop)
        return (block[PREFIX.start:i] if i >= 0 else block[PREFIX]) + b"/" + name
    return name


def split_ustar(path: bytes) -> Optional[Tuple[bytes, bytes]]:
    """(prefix, name) holding ``path`` in ustar's 155 + 100 byte fields, or None.

    ``path`` fits the name field alone when it can; otherwise it is split at
    the last ``/`` that leaves a prefix of at most 155 bytes and a non-empty
    name of at most 100 (a directory's trailing ``/`` stays in the name).
    """
    if len(path) <= _NAME_MAX:
        return b"", path
    if len(path) > _PREFIX_MAX + 1 + _NAME_MAX:
        return None
    i = path.rfind(b"/", 0, min(len(path) - 1, _PREFIX_MAX + 1))
    if i > 0 and len(path) - i - 1 <= _NAME_MAX:
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


def decode_pax(payload: bytes, offset: int) -> List[Tuple[bytes, bytes]]:
    """Parse a pax payload strictly; ``offset`` is its byte offset in the image.

    Trailing NUL bytes are tolerated; every other deviation raises
    CorruptImage naming the record's offset.
    """
    if _LEN is None:
        _compile()
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
