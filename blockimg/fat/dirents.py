"""Directory bytes -> records (pure): short entries with their long names, as read back.

A long name is used only when its slots form a complete sequence (last
slot first, orders n..1) whose checksums all match the short entry, and its
UTF-16 decodes; otherwise the short name is used, as Windows does, and the
reason is returned as an issue. Deleted entries (0xE5) are skipped; 0x00
ends the directory. Short entries are unpacked with one ``struct`` format
laid out exactly as ``structs.DirEntry`` (this loop is the hot path).
"""
from __future__ import annotations

import struct
from typing import List, NamedTuple, Optional, Tuple

from .names import MAX_SLOTS, lfn_checksum, parse_short
from .structs import (ATTR_DIRECTORY, ATTR_LONG_NAME, ATTR_LONG_NAME_MASK, ATTR_VOLUME_ID,
                      DIR_ENTRY_SIZE, LAST_LONG_ENTRY, STRUCT_FORMATS)

__all__ = ["Record", "parse_directory", "DOT", "DOTDOT"]

# DIR_Name, Attr, NTRes, CrtTimeTenth, CrtTime, CrtDate, LstAccDate, FstClusHI,
# WrtTime, WrtDate, FstClusLO, FileSize
_ENTRY = struct.Struct(STRUCT_FORMATS["DirEntry"])
assert _ENTRY.size == DIR_ENTRY_SIZE
_UNITS = struct.Struct("<5H")
_UNITS6 = struct.Struct("<6H")
_UNITS2 = struct.Struct("<2H")

DOT = b".          "
DOTDOT = b"..         "


class Record(NamedTuple):
    """One short entry (and its long name) of a directory.

    ``kind`` is ``file``, ``dir``, ``dot``, ``dotdot`` or ``label``;
    ``offset`` is the short entry's offset in the directory data,
    ``lfn_offset`` that of its first long-name slot (== offset without one);
    ``lfn_units`` the units of its valid long name (slot 1 first), or None.
    """

    name: str
    kind: str
    short: bytes
    attr: int
    nt_res: int
    cluster: int
    size: int
    wdate: int
    wtime: int
    offset: int
    lfn_offset: int
    lfn_units: Optional[Tuple[int, ...]]
    crt: Tuple[int, int, int] = (0, 0, 0)     # DIR_CrtDate, DIR_CrtTime, DIR_CrtTimeTenth


def _slot_units(data, off: int) -> Tuple[int, ...]:
    return (_UNITS.unpack_from(data, off + 1) + _UNITS6.unpack_from(data, off + 14)
            + _UNITS2.unpack_from(data, off + 28))


def _long_name(units: Tuple[int, ...]) -> Optional[str]:
    """The name held by ``units`` (up to 0x0000), or None when it is not valid UTF-16."""
    try:
        end = units.index(0)
    except ValueError:
        end = len(units)
    if end == 0:
        return None
    raw = struct.pack(f"<{end}H", *units[:end])
    try:
        return raw.decode("utf-16-le")
    except UnicodeDecodeError:
        return None


def parse_directory(data, *, fat32: bool) -> Tuple[List[Record], List[Tuple[int, str]]]:
    """Records of one directory's bytes, and issues as ``(offset, message)``."""
    records: List[Record] = []
    issues: List[Tuple[int, str]] = []
    slots: List[Tuple[int, ...]] = []       # pending long-name slots, on-disk order
    checksum = expect = first_slot = 0
    mv = memoryview(data)
    for off in range(0, len(mv) - DIR_ENTRY_SIZE + 1, DIR_ENTRY_SIZE):
        lead = mv[off]
        if lead == 0:
            break
        attr = mv[off + 11]
        if lead == 0xE5:
            if slots:
                issues.append((first_slot, "long-name slots not followed by their short entry "
                                           "(ignored)"))
                slots = []
            continue
        if attr & ATTR_LONG_NAME_MASK == ATTR_LONG_NAME:
            order = lead & 0x3F
            chk = mv[off + 13]
            if lead & LAST_LONG_ENTRY:
                if slots:
                    issues.append((first_slot, "long-name sequence interrupted by a new one "
                                               "(ignored)"))
                if not 1 <= order <= MAX_SLOTS or lead & 0x80:
                    issues.append((off, f"long-name slot with order {order} (must be "
                                        f"1..{MAX_SLOTS}; ignored)"))
                    slots = []
                    continue
                slots = [_slot_units(mv, off)]
                checksum, expect, first_slot = chk, order - 1, off
            elif slots and order == expect and chk == checksum and order >= 1:
                slots.append(_slot_units(mv, off))
                expect -= 1
            elif slots and order == expect:
                issues.append((off, f"long-name slot {order} has checksum {chk}, the slots "
                                    f"before it {checksum} (ignored)"))
                slots = []
            else:
                issues.append((off, f"long-name slot {order} out of sequence (ignored)"))
                slots = []
            continue
        (name11, attr, nt_res, ctenth, ctime, cdate, _ad, hi, wtime, wdate, lo,
         size) = _ENTRY.unpack_from(mv, off)
        cluster = (hi << 16 | lo) if fat32 else lo
        units = None
        name = None
        lfn_off = off
        if slots:
            if expect != 0:
                issues.append((first_slot, f"long name is missing slots 1..{expect}; the "
                                           "short name is used"))
            elif checksum != lfn_checksum(name11):
                issues.append((first_slot, f"long-name checksum {checksum} does not match "
                                           f"the short name {bytes(name11)!r} "
                                           f"({lfn_checksum(name11)}); the short name is used"))
            else:
                cand = tuple(u for s in reversed(slots) for u in s)
                name = _long_name(cand)
                if name is None:
                    issues.append((first_slot, "long name is empty or not valid UTF-16; the "
                                               "short name is used"))
                else:
                    units, lfn_off = cand, first_slot
            slots = []
        if attr & ATTR_VOLUME_ID and not attr & ATTR_DIRECTORY:
            kind = "label"
        elif name11 == DOT:
            kind = "dot"
        elif name11 == DOTDOT:
            kind = "dotdot"
        else:
            kind = "dir" if attr & ATTR_DIRECTORY else "file"
        if name is None:
            name = parse_short(name11, nt_res if units is None else 0)
        records.append(Record(name, kind, bytes(name11), attr, nt_res, cluster, size, wdate,
                              wtime, off, lfn_off, units, (cdate, ctime, ctenth)))
    if slots:
        issues.append((first_slot, "long-name slots at the end of the directory (ignored)"))
    return records, issues
