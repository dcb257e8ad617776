"""FAT on-disk structures, one construct ``Struct`` each, with the spec's field names.

Field names follow the Microsoft FAT32 File System Specification (1.03):
``BPB_*`` / ``BS_*`` for the boot sector, ``FSI_*`` for FSInfo, ``DIR_*``
for short directory entries and ``LDIR_*`` for long-name slots. Every
struct has a fixed size, asserted when they are made. Also here: the
attribute bits and the FAT date/time codec (UTC, clamped to 1980..2107).

The construct declarations are made on first use (``structs.BPB`` etc.,
through the module's ``__getattr__``), so building and reading an image,
which pack and unpack the same layouts with :mod:`struct` (``STRUCT_FORMATS``
and ``FIELDS``, tested field for field against these declarations), never
import construct.
"""
from __future__ import annotations

import time
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Dict, Tuple

__all__ = [
    "BPB", "EBPB", "BPB32", "BootSector16", "BootSector32", "FSInfo", "DirEntry", "LfnEntry",
    "ATTR_READ_ONLY", "ATTR_HIDDEN", "ATTR_SYSTEM", "ATTR_VOLUME_ID", "ATTR_DIRECTORY",
    "ATTR_ARCHIVE", "ATTR_LONG_NAME", "ATTR_LONG_NAME_MASK", "LAST_LONG_ENTRY",
    "NT_LOWER_BASE", "NT_LOWER_EXT", "DIR_ENTRY_SIZE", "SIGNATURE",
    "FSI_LEAD_SIG", "FSI_STRUC_SIG", "FSI_TRAIL_SIG", "FSI_UNKNOWN",
    "fat_datetime", "unix_time", "FAT_EPOCH", "FAT_END",
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

#: The same layouts as :mod:`struct` formats (little-endian, no padding), for the hot
#: paths; ``tests/unit/test_perf_fat_fastpath.py`` checks them against the declarations.
STRUCT_FORMATS: Dict[str, str] = {
    "BPB": "<3s8sHBHBHHBHHHII",
    "EBPB": "<BBBI11s8s",
    "BPB32": "<IHHIHH12s",
    "BootSector16": "<3s8sHBHBHHBHHHIIBBBI11s8s448s2s",
    "BootSector32": "<3s8sHBHBHHBHHHIIIHHIHH12sBBBI11s8s420s2s",
    "FSInfo": "<I480sIII12sI",
    "DirEntry": "<11sBBBHHHHHHHI",
    "LfnEntry": "<B10sBBB12sH4s",
}
#: Field names of the flat layouts, in declaration order (``unpack`` names its results so).
FIELDS: Dict[str, Tuple[str, ...]] = {
    "BPB": ("BS_jmpBoot", "BS_OEMName", "BPB_BytsPerSec", "BPB_SecPerClus", "BPB_RsvdSecCnt",
            "BPB_NumFATs", "BPB_RootEntCnt", "BPB_TotSec16", "BPB_Media", "BPB_FATSz16",
            "BPB_SecPerTrk", "BPB_NumHeads", "BPB_HiddSec", "BPB_TotSec32"),
    "EBPB": ("BS_DrvNum", "BS_Reserved1", "BS_BootSig", "BS_VolID", "BS_VolLab",
             "BS_FilSysType"),
    "BPB32": ("BPB_FATSz32", "BPB_ExtFlags", "BPB_FSVer", "BPB_RootClus", "BPB_FSInfo",
              "BPB_BkBootSec", "BPB_Reserved"),
    "FSInfo": ("FSI_LeadSig", "FSI_Reserved1", "FSI_StrucSig", "FSI_Free_Count",
               "FSI_Nxt_Free", "FSI_Reserved2", "FSI_TrailSig"),
    "DirEntry": ("DIR_Name", "DIR_Attr", "DIR_NTRes", "DIR_CrtTimeTenth", "DIR_CrtTime",
                 "DIR_CrtDate", "DIR_LstAccDate", "DIR_FstClusHI", "DIR_WrtTime",
                 "DIR_WrtDate", "DIR_FstClusLO", "DIR_FileSize"),
    "LfnEntry": ("LDIR_Ord", "LDIR_Name1", "LDIR_Attr", "LDIR_Type", "LDIR_Chksum",
                 "LDIR_Name2", "LDIR_FstClusLO", "LDIR_Name3"),
}
SIZES = {"BPB": 36, "EBPB": 26, "BPB32": 28, "BootSector16": 512, "BootSector32": 512,
         "FSInfo": 512, "DirEntry": 32, "LfnEntry": 32}

_DECLARED = ("BPB", "EBPB", "BPB32", "BootSector16", "BootSector32", "FSInfo", "DirEntry",
             "LfnEntry")


def _declare() -> Dict[str, object]:
    """The construct declarations (imported and made once, on first use)."""
    from construct import Bytes, Int8ul, Int16ul, Int32ul, Struct

    out: Dict[str, object] = {}
    #: The BIOS parameter block shared by FAT12/16/32: bytes 0..35 of sector 0.
    out["BPB"] = bpb = Struct(
        "BS_jmpBoot" / Bytes(3),
        "BS_OEMName" / Bytes(8),
        "BPB_BytsPerSec" / Int16ul,
        "BPB_SecPerClus" / Int8ul,
        "BPB_RsvdSecCnt" / Int16ul,
        "BPB_NumFATs" / Int8ul,
        "BPB_RootEntCnt" / Int16ul,
        "BPB_TotSec16" / Int16ul,
        "BPB_Media" / Int8ul,
        "BPB_FATSz16" / Int16ul,
        "BPB_SecPerTrk" / Int16ul,
        "BPB_NumHeads" / Int16ul,
        "BPB_HiddSec" / Int32ul,
        "BPB_TotSec32" / Int32ul,
    )
    # The extended fields after the BPB (bytes 36..61 on FAT12/16, 64..89 on FAT32).
    out["EBPB"] = ebpb = Struct(
        "BS_DrvNum" / Int8ul,
        "BS_Reserved1" / Int8ul,
        "BS_BootSig" / Int8ul,
        "BS_VolID" / Int32ul,
        "BS_VolLab" / Bytes(11),
        "BS_FilSysType" / Bytes(8),
    )
    # The FAT32-only fields at bytes 36..63.
    out["BPB32"] = bpb32 = Struct(
        "BPB_FATSz32" / Int32ul,
        "BPB_ExtFlags" / Int16ul,
        "BPB_FSVer" / Int16ul,
        "BPB_RootClus" / Int32ul,
        "BPB_FSInfo" / Int16ul,
        "BPB_BkBootSec" / Int16ul,
        "BPB_Reserved" / Bytes(12),
    )
    # Sector 0 of a FAT12/16 volume (the first 512 bytes; larger sectors are zero after).
    out["BootSector16"] = Struct(
        "bpb" / bpb,
        "ebpb" / ebpb,
        "BS_BootCode" / Bytes(448),
        "Signature_word" / Bytes(2),
    )
    # Sector 0 of a FAT32 volume (the first 512 bytes).
    out["BootSector32"] = Struct(
        "bpb" / bpb,
        "bpb32" / bpb32,
        "ebpb" / ebpb,
        "BS_BootCode32" / Bytes(420),
        "Signature_word" / Bytes(2),
    )
    # FSInfo (FAT32).
    out["FSInfo"] = Struct(
        "FSI_LeadSig" / Int32ul,
        "FSI_Reserved1" / Bytes(480),
        "FSI_StrucSig" / Int32ul,
        "FSI_Free_Count" / Int32ul,
        "FSI_Nxt_Free" / Int32ul,
        "FSI_Reserved2" / Bytes(12),
        "FSI_TrailSig" / Int32ul,
    )
    # A short (8.3) directory entry.
    out["DirEntry"] = Struct(
        "DIR_Name" / Bytes(11),
        "DIR_Attr" / Int8ul,
        "DIR_NTRes" / Int8ul,
        "DIR_CrtTimeTenth" / Int8ul,
        "DIR_CrtTime" / Int16ul,
        "DIR_CrtDate" / Int16ul,
        "DIR_LstAccDate" / Int16ul,
        "DIR_FstClusHI" / Int16ul,
        "DIR_WrtTime" / Int16ul,
        "DIR_WrtDate" / Int16ul,
        "DIR_FstClusLO" / Int16ul,
        "DIR_FileSize" / Int32ul,
    )
    # A long-name slot: 13 UTF-16LE units in three pieces.
    out["LfnEntry"] = Struct(
        "LDIR_Ord" / Int8ul,
        "LDIR_Name1" / Bytes(10),
        "LDIR_Attr" / Int8ul,
        "LDIR_Type" / Int8ul,
        "LDIR_Chksum" / Int8ul,
        "LDIR_Name2" / Bytes(12),
        "LDIR_FstClusLO" / Int16ul,
        "LDIR_Name3" / Bytes(4),
    )
    for name, s in out.items():
        assert s.sizeof() == SIZES[name], (name, s.sizeof())
    return out


_RECORDS: Dict[str, tuple] = {}


def unpack(name: str, data) -> tuple:
    """Decode the first bytes of ``data`` as the flat layout ``name`` (a field in ``FIELDS``).

    A named tuple with the declaration's field names and values (what
    ``<name>.parse`` gives, tested), decoded with :mod:`struct` so that
    reading an image does not import construct.
    """
    made = _RECORDS.get(name)
    if made is None:
        import struct
        from collections import namedtuple
        made = _RECORDS[name] = (struct.Struct(STRUCT_FORMATS[name]),
                                 namedtuple(name, FIELDS[name]))
    codec, record = made
    return record._make(codec.unpack_from(data))


def __getattr__(name: str):
    # PEP 562: BPB, EBPB, BPB32, BootSector16, BootSector32, FSInfo, DirEntry, LfnEntry.
    if name in _DECLARED:
        made = _declare()
        globals().update(made)
        return made[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- timestamps --------------------------------------------------------------

#: The range FAT timestamps can hold (UTC): 1980-01-01 00:00:00 .. 2107-12-31 23:59:58.
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
