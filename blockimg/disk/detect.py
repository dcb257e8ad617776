"""Recognising a partitioned disk from its first sector, cheaply (pure: bytes in).

The first rule of an MBR (:func:`.table.decode_mbr`): 0x55AA at byte 510, and no
FAT boot sector (which ends the same way). ``info`` and ``check`` ask it of every
image before looking for a table, so it lives here, away from the table codecs
(:mod:`.table`, :mod:`.structs`: ~6 M instructions of start-up that a FAT volume
or a tar archive never needs).
"""
from __future__ import annotations

__all__ = ["is_boot_sector", "may_hold_table"]

MBR_SIGNATURE = b"\x55\xaa"


def is_boot_sector(sector: bytes) -> bool:
    """Whether sector 0 starts with an x86 jump and a plausible BPB (a FAT volume)."""
    bps = int.from_bytes(sector[11:13], "little")
    return sector[0] in (0xEB, 0xE9) and bps in (512, 1024, 2048, 4096) and sector[13] != 0


def may_hold_table(sector: bytes) -> bool:
    """Whether ``sector`` (the first 512 bytes) can be an MBR (a protective one for GPT):
    whole, 0x55AA at byte 510, and not a FAT boot sector."""
    return len(sector) >= 512 and sector[510:512] == MBR_SIGNATURE and \
        not is_boot_sector(sector)
