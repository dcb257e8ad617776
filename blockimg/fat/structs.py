"""FAT on-disk structures, each declared once (``LAYOUTS``), with the spec's field names.

Field names follow the Microsoft FAT32 File System Specification (1.03):
``BPB_*`` / ``BS_*`` for the boot sector, ``FSI_*`` for FSInfo, ``DIR_*``
for short directory entries and ``LDIR_*`` for long-name slots. Every
struct has a fixed size, asserted when they are made. Also here: the
attribute bits and the FAT date/time codec (UTC, clamped to 1980..2107).

From ``LAYOUTS`` come the :mod:`struct` formats (``STRUCT_FORMATS``), field
names (``FIELDS``), sizes, field offsets (``OFFSETS``, and the few named
offsets the hot loops index bytes with) and, for the tests, the construct
declarations (``tests/helpers/fat_construct.py``): the library packs and
unpacks with :mod:`struct` only.
"""
from __future__ import annotations

import struct as _struct
import time
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Dict, Tuple

__all__ = [
    "ATTR_READ_ONLY", "ATTR_HIDDEN", "ATTR_SYSTEM", "ATTR_VOLUME_ID", "ATTR_DIRECTORY",
    "ATTR_ARCHIVE", "ATTR_LONG_NAME", "ATTR_LONG_NAME_MASK", "LAST_LONG_ENTRY",
    "NT_LOWER_BASE", "NT_LOWER_EXT", "DIR_ENTRY_SIZE", "DOT", "DOTDOT", "SIGNATURE",
    "FSI_LEAD_SIG", "FSI_STRUC_SIG", "FSI_TRAIL_SIG", "FSI_UNKNOWN",
    "fat_datetime", "unix_time", "FAT_EPOCH", "FAT_END",
    "LAYOUTS", "STRUCT_FORMATS", "FIELDS", "SIZES", "OFFSETS", "unpack", "Decoded",
    "DIR_ATTR", "LDIR_CHKSUM", "LDIR_NAME_PIECES", "SIGNATURE_AT", "field_format", "cp437",
]

SIGNATURE = b"\x55\xaa"

FSI_LEAD_SIG = 0x41615252
FSI_STRUC_SIG = 0x61417272
FSI_TRAIL_SIG = 0xAA550000
FSI_UNKNOWN = 0xFFFFFFFF

# -- directory entry attributes ------------------------------------------------

ATTR_READ_ONLY = 0x01
ATTR_HIDDEN = 0x02
ATTR_SYSTEM = 0x04
ATTR_VOLUME_ID = 0x08
ATTR_DIRECTORY = 0x10
ATTR_ARCHIVE = 0x20
ATTR_LONG_NAME = ATTR_READ_ONLY | ATTR_HIDDEN | ATTR_SYSTEM | ATTR_VOLUME_ID
ATTR_LONG_NAME_MASK = ATTR_LONG_NAME | ATTR_DIRECTORY | ATTR_ARCHIVE
LAST_LONG_ENTRY = 0x40
#: DIR_NTRes bits (Windows NT): base name / extension stored upper case, shown lower case.
NT_LOWER_BASE = 0x08
NT_LOWER_EXT = 0x10
DIR_ENTRY_SIZE = 32
#: The DIR_Name of a subdirectory's first two entries.
DOT = b".          "
DOTDOT = b"..         "

#: Every on-disk structure, declared once: its fields in order, each with a :mod:`struct`
#: code (``B``/``H``/``I`` little-endian integers, ``Ns`` N bytes) or, in the two boot
#: sectors, the name of a structure nested there. ``STRUCT_FORMATS``, ``FIELDS``,
#: ``SIZES``, ``OFFSETS`` (and the construct declarations of the tests) are derived from it.
LAYOUTS: Dict[str, Tuple[Tuple[str, str], ...]] = {
    # The BIOS parameter block shared by FAT12/16/32: bytes 0..35 of sector 0.
    "BPB": (("BS_jmpBoot", "3s"), ("BS_OEMName", "8s"), ("BPB_BytsPerSec", "H"),
            ("BPB_SecPerClus", "B"), ("BPB_RsvdSecCnt", "H"), ("BPB_NumFATs", "B"),
            ("BPB_RootEntCnt", "H"), ("BPB_TotSec16", "H"), ("BPB_Media", "B"),
            ("BPB_FATSz16", "H"), ("BPB_SecPerTrk", "H"), ("BPB_NumHeads", "H"),
            ("BPB_HiddSec", "I"), ("BPB_TotSec32", "I")),
    # The extended fields after the BPB (bytes 36..61 on FAT12/16, 64..89 on FAT32).
    "EBPB": (("BS_DrvNum", "B"), ("BS_Reserved1", "B"), ("BS_BootSig", "B"),
             ("BS_VolID", "I"), ("BS_VolLab", "11s"), ("BS_FilSysType", "8s")),
    # The FAT32-only fields at bytes 36..63.
    "BPB32": (("BPB_FATSz32", "I"), ("BPB_ExtFlags", "H"), ("BPB_FSVer", "H"),
              ("BPB_RootClus", "I"), ("BPB_FSInfo", "H"), ("BPB_BkBootSec", "H"),
              ("BPB_Reserved", "12s")),
    # Sector 0 of a FAT12/16 volume (the first 512 bytes; larger sectors are zero after).
    "BootSector16": (("bpb", "BPB"), ("ebpb", "EBPB"), ("BS_BootCode", "448s"),
                     ("Signature_word", "2s")),
    # Sector 0 of a FAT32 volume (the first 512 bytes).
    "BootSector32": (("bpb", "BPB"), ("bpb32", "BPB32"), ("ebpb", "EBPB"),
                     ("BS_BootCode32", "420s"), ("Signature_word", "2s")),
    # FSInfo (FAT32).
    "FSInfo": (("FSI_LeadSig", "I"), ("FSI_Reserved1", "480s"), ("FSI_StrucSig", "I"),
               ("FSI_Free_Count", "I"), ("FSI_Nxt_Free", "I"), ("FSI_Reserved2", "12s"),
               ("FSI_TrailSig", "I")),
    # A short (8.3) directory entry.
    "DirEntry": (("DIR_Name", "11s"), ("DIR_Attr", "B"), ("DIR_NTRes", "B"),
                 ("DIR_CrtTimeTenth", "B"), ("DIR_CrtTime", "H"), ("DIR_CrtDate", "H"),
                 ("DIR_LstAccDate", "H"), ("DIR_FstClusHI", "H"), ("DIR_WrtTime", "H"),
                 ("DIR_WrtDate", "H"), ("DIR_FstClusLO", "H"), ("DIR_FileSize", "I")),
    # A long-name slot: 13 UTF-16LE units in three pieces.
    "LfnEntry": (("LDIR_Ord", "B"), ("LDIR_Name1", "10s"), ("LDIR_Attr", "B"),
                 ("LDIR_Type", "B"), ("LDIR_Chksum", "B"), ("LDIR_Name2", "12s"),
                 ("LDIR_FstClusLO", "H"), ("LDIR_Name3", "4s")),
}


def _codes(name: str) -> str:
    """The :mod:`struct` codes of a layout, nested layouts spelled out."""
    return "".join(_codes(code) if code in LAYOUTS else code for _, code in LAYOUTS[name])


def _size(code: str) -> int:
    return {"B": 1, "H": 2, "I": 4}.get(code) or int(code[:-1])


#: The layouts as :mod:`struct` formats (little-endian, no padding), for the hot paths.
STRUCT_FORMATS: Dict[str, str] = {name: "<" + _codes(name) for name in LAYOUTS}
#: Field names of the flat layouts, in order (``unpack`` names its results so).
FIELDS: Dict[str, Tuple[str, ...]] = {
    name: tuple(f for f, _ in fields) for name, fields in LAYOUTS.items()
    if all(code not in LAYOUTS for _, code in fields)}
SIZES: Dict[str, int] = {name: _struct.calcsize(fmt) for name, fmt in STRUCT_FORMATS.items()}


def _offsets(name: str, base: int = 0) -> Dict[str, int]:
    out: Dict[str, int] = {}
    for field, code in LAYOUTS[name]:
        if code in LAYOUTS:
            out.update(_offsets(code, base))
            base += SIZES[code]
        else:
            out[field] = base
            base += _size(code)
    return out


#: Byte offset of every field in its structure (nested fields of the boot sectors by their
#: own names): ``OFFSETS["DirEntry"]["DIR_FstClusLO"] == 26``.
OFFSETS: Dict[str, Dict[str, int]] = {name: _offsets(name) for name in LAYOUTS}
assert SIZES["DirEntry"] == SIZES["LfnEntry"] == DIR_ENTRY_SIZE
assert SIZES["BootSector16"] == SIZES["BootSector32"] == SIZES["FSInfo"] == 512


def _span(name: str, field: str) -> Tuple[int, int]:
    """``(start, end)`` of a field in its structure."""
    start = OFFSETS[name][field]
    code = next(c for f, c in LAYOUTS[name] if f == field)
    return start, start + _size(code)


def field_format(name: str, first: str, last: str) -> str:
    """The :mod:`struct` format of the fields ``first`` to ``last`` (inclusive) of the flat
    layout ``name``: ``field_format("DirEntry", "DIR_FstClusLO", "DIR_FileSize") == "<HI"``."""
    names = FIELDS[name]
    codes = [code for _, code in LAYOUTS[name]]
    return "<" + "".join(codes[names.index(first):names.index(last) + 1])


#: Byte offsets the hot loops index directory entries with (from ``LAYOUTS``): the
#: attribute byte (shared by short entries and long-name slots) and a slot's checksum.
DIR_ATTR = OFFSETS["DirEntry"]["DIR_Attr"]
assert DIR_ATTR == OFFSETS["LfnEntry"]["LDIR_Attr"]
LDIR_CHKSUM = OFFSETS["LfnEntry"]["LDIR_Chksum"]
#: ``(start, end)`` of the three pieces of a long-name slot's 13 UTF-16 units, in order.
LDIR_NAME_PIECES = tuple(_span("LfnEntry", f) for f in ("LDIR_Name1", "LDIR_Name2", "LDIR_Name3"))
#: Where the 0x55 0xAA signature sits in a boot sector.
SIGNATURE_AT = OFFSETS["BootSector16"]["Signature_word"]
assert SIGNATURE_AT == OFFSETS["BootSector32"]["Signature_word"]

class Decoded:
    """A structure :func:`unpack` decoded: each field an attribute, ``vars()`` all of them
    in layout order. (A plain class: a ``namedtuple`` per layout cost ~0.8 M instructions
    of each FAT command's start-up.)"""

    def __init__(self, fields) -> None:
        self.__dict__.update(fields)

    def __repr__(self) -> str:
        return f"Decoded({vars(self)!r})"


_CODECS: Dict[str, _struct.Struct] = {}


def unpack(name: str, data) -> Decoded:
    """Decode the first bytes of ``data`` as the flat layout ``name`` (a field in ``FIELDS``).

    The layout's fields and values (what the construct declaration's ``parse``
    gives, tested), decoded with :mod:`struct`.
    """
    codec = _CODECS.get(name)
    if codec is None:
        codec = _CODECS[name] = _struct.Struct(STRUCT_FORMATS[name])
    return Decoded(zip(FIELDS[name], codec.unpack_from(data)))


FAT_EPOCH = 315532800      # calendar.timegm((1980, 1, 1, 0, 0, 0)), tested
FAT_END = 4354819198       # calendar.timegm((2107, 12, 31, 23, 59, 58)), tested


def fat_datetime(mtime: int) -> Tuple[int, int, int]:
    """``(date, time, tenths)`` for a Unix time, in UTC, clamped to 1980..2107.

    ``tenths`` is the DIR_CrtTimeTenth value (0 or 100: the odd second that
    the 2-second time field drops).
    """
    t = min(max(int(mtime), FAT_EPOCH), FAT_END)
    tm = time.gmtime(t)
    date = ((tm.tm_year - 1980) << 9) | (tm.tm_mon << 5) | tm.tm_mday
    tod = (tm.tm_hour << 11) | (tm.tm_min << 5) | (tm.tm_sec // 2)
    return date, tod, 100 * (tm.tm_sec % 2)


_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_since_1970(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to a proleptic Gregorian date (what ``calendar.timegm`` counts)."""
    y = year - (month <= 2)
    era, yoe = divmod(y, 400)
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def unix_time(date: int, tod: int = 0, tenths: int = 0) -> int:
    """The Unix time (UTC) of a FAT date/time; invalid fields are clamped into range."""
    year = 1980 + (date >> 9)
    month = min(max((date >> 5) & 0xF, 1), 12)
    leap = month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    day = min(max(date & 0x1F, 1), _MONTH_DAYS[month - 1] + leap)
    hour = min(tod >> 11, 23)
    minute = min((tod >> 5) & 0x3F, 59)
    second = min((tod & 0x1F) * 2 + min(tenths, 199) // 100, 59)
    return _days_since_1970(year, month, day) * 86400 + hour * 3600 + minute * 60 + second


def cp437(raw: bytes) -> str:
    """``raw`` (a label, an OEM name, an 8.3 name) decoded as code page 437: ASCII, the
    usual case, without loading the cp437 codec (~1.4 M instructions of start-up)."""
    return raw.decode("ascii") if raw.isascii() else raw.decode("cp437")
