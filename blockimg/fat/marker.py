"""The interrupted-update marker: the on-disk rule that says a FAT volume was left
half-changed (:mod:`blockimg.fat.update` sets it first and clears it last).

FAT16/32: FAT[1]'s clean-shutdown bit, clear in any copy; FAT12 (whose FAT[1] has no
such bit): the boot sector's dirty bit. Kept apart from the planner so that ``check``
and ``info`` read the marker without importing the planner and the source side.
"""
from __future__ import annotations

TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Iterable

from .table import fat_get, fat_set

__all__ = ["CLEAN_BIT", "STATE_AT", "STATE_DIRTY", "dirty", "set_clean"]

#: FAT[1]'s clean-shutdown bit (FAT16, FAT32): clear while a volume is being changed.
CLEAN_BIT = {16: 0x8000, 32: 0x08000000}
#: The boot sector's state byte (FAT12/16 at 37, FAT32 at 65) and its dirty bit.
STATE_AT = {12: 37, 16: 37, 32: 65}
STATE_DIRTY = 0x01


def dirty(fat_type: int, boot: bytes, fats: Iterable[bytes]) -> bool:
    """Whether the interrupted-update marker is set: FAT[1]'s clean bit clear in any FAT
    copy (FAT16/32; ``fats``: the first bytes of each copy), or (FAT12) the boot
    sector's dirty bit."""
    if fat_type == 12:
        return bool(boot[STATE_AT[12]] & STATE_DIRTY)
    return any(not fat_get(f, fat_type, 1) & CLEAN_BIT[fat_type] for f in fats)


def set_clean(buf: bytearray, fat_type: int, clean: bool) -> None:
    """Set or clear FAT[1]'s clean-shutdown bit (FAT16/32) in table bytes ``buf``."""
    v = fat_get(buf, fat_type, 1)
    bit = CLEAN_BIT[fat_type]
    fat_set(buf, fat_type, 1, v | bit if clean else v & ~bit)
