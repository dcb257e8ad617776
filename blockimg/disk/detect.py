"""Recognising a partitioned disk (MBR or GPT) from its first bytes (pure: bytes in).

blockimg reads a FAT volume or a tar archive that starts at byte 0; a whole
disk with a partition table holds them inside partitions. :func:`describe`
says what the table holds, so that the error can name it and say what to do.
"""
from __future__ import annotations

import struct
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import List, Optional, Tuple

__all__ = ["Partition", "describe", "message"]

#: (number, first byte, length in bytes)
if TYPE_CHECKING:
    Partition = Tuple[int, int, int]
else:   # (a name for annotations; typing not imported)
    Partition = 'Tuple[int, int, int]'

_MBR_ENTRIES = 446
_GPT_SIGNATURE = b"EFI PART"
_PROTECTIVE = 0xEE


def _mbr(head: bytes) -> Optional[List[Tuple[int, int, int, int]]]:
    """The MBR's used entries as ``(number, type, first LBA, sectors)``, or None when
    sector 0 is not a partition table (every entry empty or well-formed, one used)."""
    if len(head) < 512 or head[510:512] != b"\x55\xaa":
        return None
    used = []
    for i in range(4):
        e = head[_MBR_ENTRIES + 16 * i:_MBR_ENTRIES + 16 * (i + 1)]
        status, ptype = e[0], e[4]
        start, count = struct.unpack_from("<II", e, 8)
        if not any(e):
            continue
        if status not in (0x00, 0x80) or ptype == 0 or start == 0 or count == 0:
            return None
        used.append((i + 1, ptype, start, count))
    return used or None


def _gpt(head: bytes) -> Optional[Tuple[int, List[Partition]]]:
    """``(sector size, partitions)`` of a GPT whose header and entries lie in ``head``
    (partitions empty when the entries lie further on), or None."""
    for sector in (512, 4096):
        if head[sector:sector + 8] != _GPT_SIGNATURE:
            continue
        lba, count, size = struct.unpack_from("<QII", head, sector + 72)
        parts: List[Partition] = []
        if size >= 128 and count <= 1024:
            for k in range(count):
                off = lba * sector + k * size
                if off + 48 > len(head):
                    break
                if any(head[off:off + 16]):
                    first, last = struct.unpack_from("<QQ", head, off + 32)
                    if last >= first:
                        parts.append((k + 1, first * sector, (last - first + 1) * sector))
        return sector, parts
    return None


def describe(head: bytes) -> Optional[Tuple[str, int, List[Partition]]]:
    """``(scheme, sector size, partitions)`` when ``head`` (the disk's first bytes, 64 KiB
    is plenty) starts with a partition table, else None. Never raises."""
    try:
        used = _mbr(head)
        if used is None:
            return None
        if any(ptype == _PROTECTIVE for _, ptype, _, _ in used):
            gpt = _gpt(head)
            if gpt is not None:
                return ("GPT",) + gpt
        return "MBR", 512, [(n, start * 512, count * 512) for n, _t, start, count in used]
    except (struct.error, IndexError, ValueError):
        return None


def message(scheme: str, sector: int, parts: List[Partition]) -> str:
    """One line: what the disk holds, and how to read a partition of it."""
    n = len(parts)
    where = "; ".join(f"{num} at byte {start}, {length} bytes" for num, start, length in parts)
    text = (f"a partitioned disk ({scheme}, {n} partition{'' if n == 1 else 's'}"
            + (f": {where}" if where else "") + "), not a FAT volume or tar archive")
    if parts:
        num, start, length = parts[0]
        text += (f": copy a partition out and read that (partition {num}: dd bs={sector} "
                 f"skip={start // sector} count={length // sector} of=part{num}.img), "
                 "or attach the disk with losetup --partscan")
    return text
