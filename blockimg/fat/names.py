"""FAT names: 8.3 short names, VFAT long-name slots, checks (pure functions).

* :func:`is_short_name` -- an all-upper-case legal 8.3 name (stored without LFN);
* :func:`short_name_bytes` / :func:`parse_short` -- the 11-byte ``DIR_Name`` field;
* :func:`exact_short` -- the short name a name that is 8.3 in any case owns;
* :func:`lfn_checksum` / :func:`lfn_checksums`, :func:`lfn_bytes` / :func:`lfn_bytes_many`
  -- the long-name slots of one name / of many names at once (the planner's hot path);
* :class:`ShortNames` -- Windows-style short-name generation for one directory
  (``LONGNA~1.HTM``, numeric tails up to ``~999999``, then a hash form);
* :func:`check_name` -- the rules a source name must follow (per target);
* :func:`fold` -- the case-insensitive key FAT compares names by.
"""
from __future__ import annotations

import struct
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Iterable, List, Optional, Tuple

from ..errors import InvalidInput
from . import structs
from .structs import (ATTR_LONG_NAME, DIR_ATTR, LAST_LONG_ENTRY, LDIR_CHKSUM, LDIR_NAME_PIECES,
                      NT_LOWER_BASE, NT_LOWER_EXT, STRUCT_FORMATS)

__all__ = ["SHORT_CHARS", "LFN_UNITS", "MAX_NAME_UNITS", "MAX_SLOTS", "is_short_name",
           "exact_short", "short_name_bytes", "parse_short", "lfn_checksum", "lfn_checksums",
           "lfn_checksums_at",
           "lfn_bytes", "lfn_bytes_many", "ShortNames", "check_name",
           "fold", "ocaml_fat_reads_as_short", "forbidden_in_joined",
           "mirage_misreads_any"]

#: Characters a short name may hold besides A-Z and 0-9 (spec section 6.1; ASCII only here).
SHORT_SPECIALS = "$%'-_@~`!(){}^#&"
SHORT_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" + SHORT_SPECIALS)
#: Characters no FAT name (long or short) may hold.
FORBIDDEN = '"*/:<>?\\|'
LFN_UNITS = 13
MAX_NAME_UNITS = 255
MAX_SLOTS = 20
#: One long-name slot, packed with the format of ``structs.LAYOUTS["LfnEntry"]``.
_LFN_1 = struct.Struct(STRUCT_FORMATS["LfnEntry"])
assert _LFN_1.size == structs.SIZES["LfnEntry"]

#: Characters a name may hold to be its own short name once upper-cased (ASCII).
_SHORT_CHARS_CI = SHORT_CHARS | frozenset("abcdefghijklmnopqrstuvwxyz")
#: ``str.translate`` tables that delete the ASCII characters no FAT name may hold
#: (control characters and :data:`FORBIDDEN`; the second keeps "/", to look at names
#: joined by "/"): a name holds none when its translation is as long. (Set and string
#: operations, not regular expressions: importing ``re`` is ~7 ms of ``create``'s start-up.)
_CONTROL = "".join(map(chr, range(0x20))) + "\x7f"
_DROP_BAD = str.maketrans("", "", _CONTROL + FORBIDDEN)
_DROP_BAD_JOINED = str.maketrans("", "", _CONTROL + FORBIDDEN.replace("/", ""))
#: An ASCII character's short-name form (its own, or "_"), made on first use.
_TO_SHORT: dict = {}


def _is_83(name: str, chars: frozenset) -> bool:
    """True when ``name`` is 1-8 of ``chars``, then optionally a dot and 1-3 of them
    (``chars`` holds no dot)."""
    base, dot, ext = name.partition(".")
    return 0 < len(base) <= 8 and len(ext) <= 3 and (bool(ext) or not dot) \
        and chars.issuperset(base) and chars.issuperset(ext)


# -- short names ---------------------------------------------------------------

def _split83(name: str) -> Optional[Tuple[str, str]]:
    base, dot, ext = name.partition(".")
    if dot and (not ext or "." in ext):
        return None
    if not 1 <= len(base) <= 8 or len(ext) > 3:
        return None
    return base, ext


def is_short_name(name: str) -> bool:
    """True for an all-upper-case legal 8.3 name (``README``, ``FAT.ML``): no LFN needed."""
    return _is_83(name, SHORT_CHARS)


def exact_short(name: str) -> Optional[bytes]:
    """The 11-byte short name of a name that is a legal 8.3 name in any case
    (``index.txt`` -> ``INDEX   TXT``): its own upper-case form; None for any other name.

    Within a directory these forms are reserved before any ``~N`` alias is
    handed out (:class:`ShortNames`).
    """
    if not _is_83(name, _SHORT_CHARS_CI):
        return None
    base, _, ext = name.upper().partition(".")
    return (base.ljust(8) + ext.ljust(3)).encode("ascii")


def short_name_bytes(name: str) -> bytes:
    """The 11-byte DIR_Name of a legal short name: base and extension padded with spaces."""
    parts = _split83(name)
    if parts is None:
        raise ValueError(f"{name!r} is not an 8.3 name")
    return (parts[0].ljust(8) + parts[1].ljust(3)).encode("ascii")


def parse_short(raw: bytes, nt_res: int = 0, encoding: str = "cp437") -> str:
    """The name a DIR_Name field shows (``0x05`` lead byte is ``0xE5``; NT lower-case flags)."""
    if type(raw) is not bytes:
        raw = bytes(raw)
    if raw[0] == 5:
        raw = b"\xe5" + raw[1:]
    elif encoding == "cp437" and raw.isascii():     # the same text, decoded faster
        encoding = "ascii"
    base = raw[:8].rstrip(b" ").decode(encoding, "replace")
    ext = raw[8:11].rstrip(b" ").decode(encoding, "replace")
    if nt_res & NT_LOWER_BASE:
        base = base.lower()
    if nt_res & NT_LOWER_EXT:
        ext = ext.lower()
    return f"{base}.{ext}" if ext else base


#: Every byte rotated right by one bit: an even byte is halved, an odd one also gets bit 7.
_ROR = bytearray(256)
_ROR[0::2], _ROR[1::2] = range(128), range(128, 256)
_ROR = bytes(_ROR)


def lfn_checksum(short: bytes) -> int:
    """The LDIR_Chksum of an 11-byte short name (rotate right, add each byte, mod 256)."""
    s = 0
    ror = _ROR
    for c in short:
        s = (ror[s] + c) & 0xFF
    return s


def lfn_checksums(shorts: bytes) -> bytes:
    """The LDIR_Chksum of every 11-byte short name in ``shorts`` (concatenated), as bytes.

    All names at once, a byte position at a time: the rotation is a
    ``bytes.translate`` of every running sum, the addition (mod 256 in each byte)
    one big-integer SWAR addition. Equal to :func:`lfn_checksum` of each (tested).
    """
    if len(shorts) % 11:
        raise ValueError("short names are 11 bytes each")
    return lfn_checksums_at(shorts, 11, len(shorts) // 11)


def lfn_checksums_at(buf: bytes, stride: int, n: int) -> bytes:
    """:func:`lfn_checksums` of the ``n`` 11-byte names that start every ``stride`` bytes
    of ``buf`` (a directory's entries: stride 32, the checksum each entry's first 11
    bytes would have as a short name)."""
    if n < 16:
        return bytes([lfn_checksum(buf[i:i + 11]) for i in range(0, stride * n, stride)])
    end = stride * n
    low7 = int.from_bytes(b"\x7f" * n, "little")
    high = int.from_bytes(b"\x80" * n, "little")
    s = buf[0:end:stride]
    ror = _ROR
    for k in range(1, 11):
        a = int.from_bytes(s.translate(ror), "little")
        b = int.from_bytes(buf[k:end:stride], "little")
        s = (((a & low7) + (b & low7)) ^ ((a ^ b) & high)).to_bytes(n, "little")
    return s


# -- long names ----------------------------------------------------------------

def _lfn_pad_str(n: int, always_terminate: bool) -> str:
    """What follows ``n`` name units in the slots, as text: the U+0000 terminator (unless
    ``n`` fills whole slots and ``always_terminate`` is false) and U+FFFF padding to whole
    slots. It depends only on ``n % 13``: one shared object per distinct text."""
    return _PAD_STRS[always_terminate][n % LFN_UNITS]


def _pad_text(r: int, always_terminate: bool) -> str:
    term = 1 if r or always_terminate else 0
    return "\0" * term + "\uffff" * (-(r + term) % LFN_UNITS)


_PAD_STRS = tuple([_pad_text(r, t) for r in range(LFN_UNITS)] for t in (False, True))


def _lfn_pad(n: int, always_terminate: bool) -> bytes:
    """:func:`_lfn_pad_str` as the UTF-16 bytes written."""
    return _lfn_pad_str(n, always_terminate).encode("utf-16-le")


_LFN_2 = struct.Struct(STRUCT_FORMATS["LfnEntry"] + STRUCT_FORMATS["LfnEntry"][1:])


def lfn_bytes(name: str, short: bytes, always_terminate: bool,
              chk: Optional[int] = None) -> bytes:
    """The LFN slots of ``name`` in on-disk order (last slot first), 32 bytes each, joined.

    The units are the name's UTF-16, a 0x0000 terminator and 0xFFFF padding
    to whole 13-unit slots; the standard form omits the terminator when the
    length is a multiple of 13, ``always_terminate`` (the Mirage form) adds a
    slot for it instead. ``chk``: ``lfn_checksum(short)`` when the caller has it.
    """
    raw = name.encode("utf-16-le", "surrogatepass")
    n = len(raw) >> 1
    raw += _lfn_pad(n, always_terminate)
    if chk is None:
        chk = lfn_checksum(short)
    if len(raw) == 26:
        return _LFN_1.pack(0x41, raw[:10], ATTR_LONG_NAME, 0, chk, raw[10:22], 0, raw[22:])
    if len(raw) == 52:
        return _LFN_2.pack(0x42, raw[26:36], ATTR_LONG_NAME, 0, chk, raw[36:48], 0, raw[48:],
                           0x01, raw[:10], ATTR_LONG_NAME, 0, chk, raw[10:22], 0, raw[22:26])
    count = len(raw) // 26
    if count > MAX_SLOTS:
        raise ValueError(f"{name!r} needs {count} LFN slots (at most {MAX_SLOTS})")
    slots = []
    for i in range(count, 0, -1):           # on-disk order: the last slot first
        part = raw[26 * (i - 1):26 * i]
        slots.append(_LFN_1.pack(i | (LAST_LONG_ENTRY if i == count else 0), part[:10],
                                 ATTR_LONG_NAME, 0, chk, part[10:22], 0, part[22:]))
    return b"".join(slots)


_SHARED: dict = {}      # one object per distinct padding text (the tables hold many refs)


def _lfn_counts(term: int) -> List[int]:
    """Slots taken by a name of n units (0..255), without or with the Mirage terminator
    (made on first use)."""
    got = _LFN_COUNTS[term]
    if not got:
        pads = _PAD_STRS[term]
        got += [(n + len(pads[n % LFN_UNITS])) // LFN_UNITS for n in range(MAX_NAME_UNITS + 1)]
    return got


_LFN_COUNTS: Tuple[List[int], List[int]] = ([], [])
#: Below this many names of one slot count, :func:`lfn_bytes_many` builds them one by one.
_LFN_BULK = 8


def lfn_bytes_many(names: List[str], shorts: List[bytes],
                   always_terminate: bool) -> List[bytes]:
    """``[lfn_bytes(n, s, always_terminate) for n, s in zip(names, shorts)]``, in bulk.

    Names taking the same number of slots are encoded as one text, their
    checksums computed together (:func:`lfn_checksums`), and their slots
    assembled field by field with strided copies; equal to :func:`lfn_bytes`
    of each (tested). Names with characters past U+FFFF, or too long, go one
    by one through :func:`lfn_bytes`.
    """
    term = 1 if always_terminate else 0
    if not names:
        return []
    text = "".join(names)
    lens = list(map(len, names))
    if max(lens) > MAX_NAME_UNITS or set(map(len, shorts)) != {11} or (
            not text.isascii() and
            len(text.encode("utf-16-le", "surrogatepass")) != 2 * len(text)):
        # Too long, odd short names, or surrogate pairs: one by one (errors in order).
        return [lfn_bytes(n, s, always_terminate) for n, s in zip(names, shorts)]
    # From here on every name is at most 255 units: at most 20 slots, nothing to refuse.
    counts = _lfn_counts(term)
    ks = [counts[n] for n in lens]
    top = max(ks)
    if top <= 2 or ks.count(top) == len(ks):
        return _lfn_block(names, lens, shorts, ks, top, term)
    # Longer names: one block per slot count (no block padded to the longest name).
    out: List[bytes] = [b""] * len(names)
    for k in set(ks):
        idx = [i for i, x in enumerate(ks) if x == k]
        got = _lfn_block([names[i] for i in idx], [lens[i] for i in idx],
                         [shorts[i] for i in idx], [k] * len(idx), k, term)
        for i, b in zip(idx, got):
            out[i] = b
    return out


#: ``(first unit byte, start, end)`` of each name piece of a slot (``LDIR_Name1..3``).
_NAME_PIECES = tuple((sum(e - s for s, e in LDIR_NAME_PIECES[:i]), start, stop)
                     for i, (start, stop) in enumerate(LDIR_NAME_PIECES))
_LFN_FILL: dict = {}    # (term, top) -> per name length: its padding, then filler slots


def _lfn_block(names: List[str], lens: List[int], shorts: List[bytes], ks: List[int],
               top: int, term: int) -> List[bytes]:
    """:func:`lfn_bytes_many` of names taking ``ks`` (at most ``top``) slots each.

    Every name gets a block of ``top`` slots; a name of k slots is the last k of
    its block, the ones before are filler that is cut off.
    """
    m = len(names)
    units = b""
    if m >= _LFN_BULK:
        pads = _LFN_FILL.get((term, top))
        if pads is None:
            counts = _lfn_counts(term)
            pads = _LFN_FILL[term, top] = [
                _SHARED.setdefault(t, t) for t in (
                    p + "\0" * (LFN_UNITS * (top - counts[n])) if counts[n] <= top else p
                    for n, p in ((n, _lfn_pad_str(n, bool(term)))
                                 for n in range(MAX_NAME_UNITS + 1)))]
        units = "".join([n + pads[k] for n, k in zip(names, lens)]).encode(
            "utf-16-le", "surrogatepass")
    if len(units) != 26 * top * m:      # few, or surrogate pairs (more units than chars)
        return [lfn_bytes(n, s, bool(term)) for n, s in zip(names, shorts)]
    chks = lfn_checksums(b"".join(shorts))
    uniform = ks.count(top) == m
    kb = bytes(ks)
    src, dst = 26 * top, 32 * top
    buf = bytearray(dst * m)
    for p in range(top):                # on-disk order: the last slot first
        o = 32 * p
        u = 26 * (top - 1 - p)          # its units in each name's block
        order = top - p
        if uniform:
            buf[o::dst] = bytes([order | (LAST_LONG_ENTRY if p == 0 else 0)]) * m
        else:
            # The first slot of a name is the one whose number is its slot count.
            table = bytearray([order]) * 256
            table[order] |= LAST_LONG_ENTRY
            buf[o::dst] = kb.translate(table)
        for at, start, stop in _NAME_PIECES:      # each byte of the three name pieces
            for j in range(stop - start):
                buf[o + start + j::dst] = units[u + at + j::src]
        buf[o + DIR_ATTR::dst] = bytes([ATTR_LONG_NAME]) * m
        buf[o + LDIR_CHKSUM::dst] = chks
    data = bytes(buf)
    if uniform:
        return [data[i:i + dst] for i in range(0, dst * m, dst)]
    skip = [32 * (top - k) for k in range(top + 1)]     # a name's filler slots, by k
    return [data[i + skip[k]:i + dst] for i, k in zip(range(0, dst * m, dst), ks)]


# -- short-name generation -----------------------------------------------------

def _basis(name: str) -> Tuple[str, str, bool]:
    """Primary part, extension, and whether anything was lost (spec basis-name algorithm)."""
    if name.isascii():
        return _basis_ascii(name)
    return _basis_general(name)


def _basis_ascii(name: str) -> Tuple[str, str, bool]:
    """:func:`_basis_general` for an ASCII name, with C-speed string operations."""
    stripped = name.replace(" ", "").lstrip(".")
    lossy = stripped != name
    dot = stripped.rfind(".")
    base, ext = (stripped[:dot], stripped[dot + 1:]) if dot >= 0 else (stripped, "")
    base = base.replace(".", "")
    if len(base) > 8 or len(ext) > 3 or base != stripped[:dot if dot >= 0 else None]:
        lossy = True
    b8, e3 = base[:8].upper(), ext[:3].upper()
    if not (SHORT_CHARS.issuperset(b8) and SHORT_CHARS.issuperset(e3)):
        lossy = True
        if not _TO_SHORT:
            _TO_SHORT.update({c: (chr(c) if chr(c) in SHORT_CHARS else "_") for c in range(128)})
        b8, e3 = b8.translate(_TO_SHORT), e3.translate(_TO_SHORT)
    return b8 or "_", e3, lossy


def _basis_general(name: str) -> Tuple[str, str, bool]:
    lossy = False

    def conv(text: str) -> str:
        nonlocal lossy
        out = []
        for c in text:
            u = c.upper() if c.isascii() else c
            if u in SHORT_CHARS:
                out.append(u)
            else:
                out.append("_")
                lossy = True
        return "".join(out)

    stripped = name.replace(" ", "").lstrip(".")
    if stripped != name:
        lossy = True
    dot = stripped.rfind(".")
    base, ext = (stripped[:dot], stripped[dot + 1:]) if dot >= 0 else (stripped, "")
    base = base.replace(".", "")
    if len(base) > 8 or len(ext) > 3 or base != stripped[:dot if dot >= 0 else None]:
        lossy = True
    primary = conv(base[:8]) or "_"
    return primary, conv(ext[:3]), lossy


class ShortNames:
    """Short-name generator for one directory; never hands out the same name twice.

    Reserve first the upper-case form of every name of the directory that is
    an 8.3 name in any case (``README``, ``index.txt``, ``longfi~3.txt``); those
    names keep it as their short name. Then call :meth:`generate` for every
    other name in directory order. An alias thus never equals another entry's
    name: Linux and mtools look a name up among the short names too, and
    would open the entry the alias belongs to. ``max_numeric`` is the largest
    numeric tail before the hash form.
    """

    def __init__(self, reserved: Iterable[bytes] = (), *, max_numeric: int = 999999) -> None:
        self.taken = set(reserved)
        self.max_numeric = max_numeric
        self._next = {}

    def reserve(self, short: bytes) -> None:
        self.taken.add(short)

    def _take(self, base: str, ext: str) -> Optional[bytes]:
        raw = (base.ljust(8) + ext.ljust(3)).encode("ascii")
        if raw in self.taken:
            return None
        self.taken.add(raw)
        return raw

    def generate(self, name: str) -> bytes:
        """An unused 11-byte short name for the long name ``name``."""
        primary, ext, lossy = _basis(name)
        if not lossy:
            got = self._take(primary, ext)
            if got is not None:
                return got
        key = (primary[:6], ext)
        n = self._next.get(key, 1)
        while n <= self.max_numeric:
            tail = f"~{n}"
            n += 1
            got = self._take(primary[:8 - len(tail)] + tail, ext)
            if got is not None:
                self._next[key] = n
                return got
        self._next[key] = n
        import zlib     # (here: few directories ever need the hash form)
        data = name.encode("utf-16-le", "surrogatepass")
        salt = 0
        while True:
            h = zlib.crc32(data + salt.to_bytes(4, "little")) & 0xFFFF
            for k in range(1, 10):
                got = self._take(f"{primary[:2]}{h:04X}~{k}", ext)
                if got is not None:
                    return got
            salt += 1


# -- checks ----------------------------------------------------------------------

def mirage_misreads_any(names: Iterable[str]) -> bool:
    """True when ocaml-fat would look one of ``names`` (ASCII) up as an 8.3 name that is not
    a legal upper-case 8.3 name (spaces, extra dots): the rule :func:`check_name` applies
    to each name with ``mirage``, for a directory at once."""
    return any(not _is_83(name, SHORT_CHARS) and ocaml_fat_reads_as_short(name)
               for name in names)


def forbidden_in_joined(joined: str) -> bool:
    """True when ``joined``, names joined by ``/``, holds an ASCII character that no FAT
    name may hold (a control character or one of ``FORBIDDEN`` other than ``/``)."""
    return len(joined.translate(_DROP_BAD_JOINED)) != len(joined)


def fold(name: str) -> str:
    """The key FAT compares names by: each character upper-cased (length kept)."""
    if name.isascii():
        return name.upper()
    return _fold_general(name)


def _fold_general(name: str) -> str:
    return "".join(u if len(u) == 1 else c for c, u in ((c, c.upper()) for c in name))


def ocaml_fat_reads_as_short(name: str) -> bool:
    """True when ocaml-fat looks ``name`` up as an 8.3 name (:func:`.mirage.is_legal_dos_name`
    of its UTF-8 bytes, the bytes the driver is given)."""
    # (Imported here: .mirage's records need collections, ~7 M instructions of start-up,
    # and most builds never ask: only an upper-case name that is not 8.3 gets here.)
    from .mirage import is_legal_dos_name
    return is_legal_dos_name(name.encode("utf-8", "surrogatepass"))


def check_name(name: str, *, path: str, mirage: bool) -> None:
    """Raise InvalidInput (naming ``path`` and the rule) unless FAT (or Mirage) can store it."""
    if name.isascii() and len(name) <= MAX_NAME_UNITS and not name.endswith((".", " ")) \
            and len(name.translate(_DROP_BAD)) == len(name):
        # The common case: nothing below can object, except Mirage's 8.3 lookup rule.
        if mirage and ocaml_fat_reads_as_short(name) and not is_short_name(name):
            _check_name_general(name, path=path, mirage=mirage)
        return
    _check_name_general(name, path=path, mirage=mirage)


def _check_name_general(name: str, *, path: str, mirage: bool) -> None:
    bad = sorted({c for c in name if c in FORBIDDEN})
    if bad:
        raise InvalidInput(f"name contains {''.join(bad)!r}, which FAT names cannot hold",
                           path=path, rule='no * ? < > | " : / \\ in FAT names')
    ctrl = [c for c in name if ord(c) < 0x20 or ord(c) == 0x7F]
    if ctrl:
        raise InvalidInput(f"name contains control character {ctrl[0]!r}", path=path,
                           rule="no control characters in FAT names")
    if name.endswith((".", " ")):
        raise InvalidInput("name ends with a dot or a space", path=path,
                           rule="no trailing dots or spaces in FAT names")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in name):
        raise InvalidInput("name is not valid Unicode (undecodable bytes in the source name)",
                           path=path, rule="FAT names are Unicode")
    units = len(name.encode("utf-16-le")) // 2
    if units > MAX_NAME_UNITS:
        raise InvalidInput(f"name is {units} UTF-16 units long", path=path,
                           rule=f"FAT names have at most {MAX_NAME_UNITS} UTF-16 units")
    if mirage:
        if not name.isascii():
            raise InvalidInput("name is not ASCII; the Mirage FAT driver only matches ASCII "
                               "names", path=path, rule="Mirage target: ASCII names only")
        if ocaml_fat_reads_as_short(name) and not is_short_name(name):
            raise InvalidInput("the Mirage FAT driver would look this name up as an 8.3 "
                               "name, which FAT cannot store (spaces or extra dots in an "
                               "upper-case name)", path=path,
                               rule="Mirage target: upper-case names must be legal 8.3")
