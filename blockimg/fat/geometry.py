"""The boot sector read back: validated geometry of a FAT volume (reader side).

:func:`looks_like_fat` is the cheap test behind ``detect`` (never raises);
:func:`parse` decodes sector 0 with the writer's ``structs`` and checks each
field on its own, raising :class:`CorruptImage` with the field's byte offset.
The FAT type follows from the cluster count, as the spec says; the one
exception is a FAT32 BPB on fewer than 65525 clusters, read as FAT32 (as
Linux and fsck.fat do) with a note.
"""
from __future__ import annotations

TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Optional, Tuple

from ..errors import CorruptImage
from ..record import record
from ..units import ceil_div, is_power_of_two
from .structs import DIR_ENTRY_SIZE, OFFSETS, SIGNATURE, SIGNATURE_AT, SIZES, Decoded, unpack
from .table import MAX_CLUSTERS, MIN_CLUSTERS

__all__ = ["Geometry", "parse", "detect", "looks_like_fat", "fat_type_of", "why_not_fat"]

#: FAT12 < 4085 <= FAT16 < 65525 <= FAT32 (clusters), and FAT32's 28-bit ceiling: the
#: limits of :mod:`.table`, the one place they are written.
FAT12_LIMIT = MIN_CLUSTERS[16]
FAT16_LIMIT = MIN_CLUSTERS[32]
FAT32_LIMIT = MAX_CLUSTERS[32] + 1


#: Byte offsets of the boot sector's fields (the BPB is the same in both forms).
_AT = OFFSETS["BootSector32"]
#: Where the BPB32 fields and the EBPB start: ``_EBPB_AT[is FAT32]``.
_BPB32_AT = _AT["BPB_FATSz32"]
_EBPB_AT = (OFFSETS["BootSector16"]["BS_DrvNum"], _AT["BS_DrvNum"])


def fat_type_of(cluster_count: int) -> int:
    if cluster_count < FAT12_LIMIT:
        return 12
    return 16 if cluster_count < FAT16_LIMIT else 32


@record(frozen=True)
class Geometry:
    """Where everything is, in bytes and clusters, as the boot sector says (the reader's
    side; the planner's is :class:`.layout.PlannedGeometry`). Clusters are numbered
    2..count+1."""

    fat_type: int
    oem_name: bytes
    bytes_per_sector: int
    sectors_per_cluster: int
    reserved_sectors: int
    num_fats: int
    root_entries: int
    total_sectors: int
    sectors_per_fat: int
    media: int
    hidden_sectors: int
    cluster_count: int
    fat_offset: int
    root_offset: int          # FAT12/16: the fixed root directory region
    root_bytes: int
    data_offset: int
    root_cluster: int         # FAT32 only (0 otherwise)
    fsinfo_sector: int        # FAT32 only (0 otherwise)
    backup_boot_sector: int   # FAT32 only
    ext_flags: int            # FAT32 only
    volume_id: Optional[int]
    label: Optional[bytes]
    fs_type_text: Optional[bytes]
    note: Optional[str] = None        # something readers disagree on (see parse)

    @property
    def cluster_size(self) -> int:
        return self.bytes_per_sector * self.sectors_per_cluster

    @property
    def fat_bytes(self) -> int:
        return self.sectors_per_fat * self.bytes_per_sector

    @property
    def volume_bytes(self) -> int:
        return self.total_sectors * self.bytes_per_sector

    @property
    def max_cluster(self) -> int:
        return self.cluster_count + 1

    def fat_copy_offset(self, index: int) -> int:
        return self.fat_offset + index * self.fat_bytes

    def cluster_offset(self, cluster: int) -> int:
        return self.data_offset + (cluster - 2) * self.cluster_size

    @property
    def active_fat(self) -> int:
        """FAT32 with mirroring off (ExtFlags bit 7) uses one FAT; otherwise FAT 0."""
        if self.fat_type == 32 and self.ext_flags & 0x80:
            return self.ext_flags & 0x0F
        return 0


def detect(device) -> bool:
    """A FAT boot sector at byte 0 of ``device`` (never raises)."""
    try:
        if device.size < 512:
            return False
        return looks_like_fat(bytes(device.pread(0, 512)))
    except Exception:  # detection must not fail on any device content
        return False


def looks_like_fat(sector: bytes) -> bool:
    """A FAT boot sector: 0x55AA at 510 and a sane BPB. Never raises."""
    try:
        if len(sector) < 512 or sector[SIGNATURE_AT:SIGNATURE_AT + 2] != SIGNATURE:
            return False
        b = unpack("BPB", sector)
        if b.BPB_BytsPerSec not in (512, 1024, 2048, 4096):
            return False
        if not is_power_of_two(b.BPB_SecPerClus) or b.BPB_SecPerClus > 128:
            return False
        if b.BPB_RsvdSecCnt < 1 or not 1 <= b.BPB_NumFATs <= 16:
            return False
        if b.BPB_Media not in (0xF0,) and b.BPB_Media < 0xF8:
            return False
        total = b.BPB_TotSec16 or b.BPB_TotSec32
        fat_size = b.BPB_FATSz16 or unpack("BPB32", sector[_BPB32_AT:]).BPB_FATSz32
        return total > 0 and fat_size > 0
    except Exception:  # detect() must never raise on arbitrary bytes
        return False


def why_not_fat(sector: bytes, device_size: int) -> Optional[CorruptImage]:
    """For a sector 0 that starts like a FAT boot sector (a jump instruction, 0x55AA at
    510) but that :func:`looks_like_fat` refuses: the error naming the bad field, its
    value and the rule. None for anything else. Never raises."""
    try:
        sector = bytes(sector)
        jump = sector[:1] == b"\xe9" or (sector[:1] == b"\xeb" and sector[2:3] == b"\x90")
        if len(sector) < 512 or not jump or sector[SIGNATURE_AT:SIGNATURE_AT + 2] != SIGNATURE \
                or looks_like_fat(sector):
            return None
        try:
            parse(sector, device_size)
        except CorruptImage as e:
            bad = e
        else:
            media = sector[_AT["BPB_Media"]]
            bad = _bad("media descriptor must be 0xF0 or 0xF8..0xFF", _AT["BPB_Media"],
                       "BPB_Media", f"0x{media:02x}")
        return CorruptImage(f"a FAT boot sector, but {bad.rule}", offset=bad.offset,
                            field=bad.field, value=bad.value)
    except Exception:  # (a diagnosis must not fail on any bytes)
        return None


def _bad(rule: str, offset: int, field: str, value) -> CorruptImage:
    return CorruptImage(rule, offset=offset, field=field, value=value)


def parse(sector: bytes, device_size: int) -> Geometry:
    """Validate sector 0 and compute the geometry (raises CorruptImage naming the field)."""
    sector = bytes(sector)
    if len(sector) < 512:
        raise _bad("image is shorter than one boot sector", 0, "size", len(sector))
    if sector[SIGNATURE_AT:SIGNATURE_AT + 2] != SIGNATURE:
        raise _bad("boot sector signature must be 0x55 0xAA", SIGNATURE_AT, "Signature_word",
                   sector[SIGNATURE_AT:SIGNATURE_AT + 2].hex())
    b = unpack("BPB", sector)
    _check_bpb(b)
    b32 = unpack("BPB32", sector[_BPB32_AT:_BPB32_AT + SIZES["BPB32"]])
    fat_size = b.BPB_FATSz16 or b32.BPB_FATSz32
    if fat_size == 0:
        raise _bad("sectors per FAT is zero", _AT["BPB_FATSz16"], "BPB_FATSz16/BPB_FATSz32", 0)
    bps, total = b.BPB_BytsPerSec, b.BPB_TotSec16 or b.BPB_TotSec32
    root_sectors = ceil_div(b.BPB_RootEntCnt * DIR_ENTRY_SIZE, bps)
    meta = b.BPB_RsvdSecCnt + b.BPB_NumFATs * fat_size + root_sectors
    count = _cluster_count(b, total, meta)
    fat_type, note = _fat_type(b, count)
    if fat_size * bps * 8 < (count + 2) * fat_type:
        raise _bad(f"{fat_size} sectors per FAT cannot hold {count + 2} FAT{fat_type} entries",
                   _AT["BPB_FATSz16"] if b.BPB_FATSz16 else _AT["BPB_FATSz32"],
                   "sectors per FAT", fat_size)
    fat_offset = b.BPB_RsvdSecCnt * bps
    end_of_meta = meta * bps
    if end_of_meta > device_size:
        raise _bad(f"the FATs and root directory end at byte {end_of_meta}, past the end of "
                   f"the {device_size}-byte image", _AT["BPB_TotSec16"],
                   "BPB_TotSec16/BPB_TotSec32", total)
    is32 = fat_type == 32
    if is32:
        _check_bpb32(b32, count, b.BPB_NumFATs)
    else:
        b32 = Decoded((k, 0) for k in vars(b32))   # the FAT32 fields mean nothing here
    e_off = _EBPB_AT[is32]
    e = unpack("EBPB", sector[e_off:e_off + SIZES["EBPB"]])
    has_ext = e.BS_BootSig == 0x29
    return Geometry(
        fat_type=fat_type, oem_name=b.BS_OEMName, bytes_per_sector=bps,
        sectors_per_cluster=b.BPB_SecPerClus, reserved_sectors=b.BPB_RsvdSecCnt,
        num_fats=b.BPB_NumFATs, root_entries=b.BPB_RootEntCnt, total_sectors=total,
        sectors_per_fat=fat_size, media=b.BPB_Media, hidden_sectors=b.BPB_HiddSec,
        cluster_count=count, fat_offset=fat_offset,
        root_offset=fat_offset + b.BPB_NumFATs * fat_size * bps,
        root_bytes=b.BPB_RootEntCnt * DIR_ENTRY_SIZE, data_offset=end_of_meta,
        root_cluster=b32.BPB_RootClus, fsinfo_sector=b32.BPB_FSInfo,
        backup_boot_sector=b32.BPB_BkBootSec, ext_flags=b32.BPB_ExtFlags,
        volume_id=e.BS_VolID if has_ext else None, label=e.BS_VolLab if has_ext else None,
        fs_type_text=e.BS_FilSysType if has_ext else None, note=note)


def _check_bpb(b) -> None:
    """The BPB fields that must hold on their own (sector size and counts)."""
    bps = b.BPB_BytsPerSec
    if bps not in (512, 1024, 2048, 4096):
        raise _bad("bytes per sector must be 512, 1024, 2048 or 4096", _AT["BPB_BytsPerSec"],
                   "BPB_BytsPerSec", bps)
    spc = b.BPB_SecPerClus
    if not is_power_of_two(spc) or spc > 128:
        raise _bad("sectors per cluster must be a power of two from 1 to 128",
                   _AT["BPB_SecPerClus"], "BPB_SecPerClus", spc)
    if b.BPB_RsvdSecCnt < 1:
        raise _bad("at least one reserved sector (the boot sector)", _AT["BPB_RsvdSecCnt"],
                   "BPB_RsvdSecCnt", b.BPB_RsvdSecCnt)
    if not 1 <= b.BPB_NumFATs <= 16:
        raise _bad("number of FATs must be 1..16", _AT["BPB_NumFATs"], "BPB_NumFATs",
                   b.BPB_NumFATs)
    if (b.BPB_TotSec16 or b.BPB_TotSec32) == 0:
        raise _bad("total sector count is zero", _AT["BPB_TotSec16"],
                   "BPB_TotSec16/BPB_TotSec32", 0)
    if b.BPB_FATSz16 == 0 and b.BPB_RootEntCnt != 0:
        raise _bad("sectors per FAT is zero in a FAT12/16 BPB (one with root entries)",
                   _AT["BPB_FATSz16"], "BPB_FATSz16", 0)


def _cluster_count(b, total: int, meta: int) -> int:
    """The data clusters after ``meta`` sectors of reserved, FAT and root regions."""
    if meta >= total:
        raise _bad(f"reserved, FAT and root-directory sectors ({meta}) leave no data region "
                   f"in {total} sectors", _AT["BPB_TotSec16"], "BPB_TotSec16/BPB_TotSec32",
                   total)
    count = (total - meta) // b.BPB_SecPerClus
    if count < 1:
        raise _bad("no whole data cluster fits the volume", _AT["BPB_SecPerClus"],
                   "BPB_SecPerClus", b.BPB_SecPerClus)
    if count >= FAT32_LIMIT:
        raise _bad(f"{count} clusters is more than FAT32 can address", _AT["BPB_TotSec32"],
                   "BPB_TotSec32", total)
    return count


def _fat_type(b, count: int) -> Tuple[int, Optional[str]]:
    """The FAT type of ``count`` clusters, checked against the BPB's form, and a note."""
    fat_type = fat_type_of(count)
    note = None
    if fat_type != 32 and b.BPB_FATSz16 == 0 and b.BPB_RootEntCnt == 0:
        # A FAT32 BPB on too few clusters (mkfs.fat -F 32 on a small volume makes
        # these): read it as FAT32, as Linux and fsck.fat do, and say so.
        fat_type = 32
        note = (f"FAT32 volume with only {count} clusters (the spec's minimum is "
                f"{FAT16_LIMIT}): readers that go by the cluster count take it for "
                f"FAT{fat_type_of(count)}")
    if fat_type == 32 and b.BPB_FATSz16 != 0:
        raise _bad(f"{count} clusters make this FAT32, but the 16-bit sectors-per-FAT "
                   "field is set (a FAT32 BPB has 0 there)", _AT["BPB_FATSz16"], "BPB_FATSz16",
                   b.BPB_FATSz16)
    if fat_type == 32 and b.BPB_RootEntCnt != 0:
        raise _bad(f"{count} clusters make this FAT32, which has no fixed root directory, but "
                   "the root entry count is set", _AT["BPB_RootEntCnt"], "BPB_RootEntCnt",
                   b.BPB_RootEntCnt)
    if fat_type != 32 and b.BPB_RootEntCnt == 0:
        raise _bad(f"FAT{fat_type} needs a root directory, but the root entry count is 0",
                   _AT["BPB_RootEntCnt"], "BPB_RootEntCnt", 0)
    return fat_type, note


def _check_bpb32(b32, count: int, num_fats: int) -> None:
    """The FAT32 fields: the root cluster and the active FAT."""
    if not 2 <= b32.BPB_RootClus <= count + 1:
        raise _bad(f"FAT32 root cluster must be 2..{count + 1}", _AT["BPB_RootClus"],
                   "BPB_RootClus", b32.BPB_RootClus)
    ext_flags = b32.BPB_ExtFlags
    if ext_flags & 0x80 and (ext_flags & 0x0F) >= num_fats:
        raise _bad("active FAT number is not one of the FATs", _AT["BPB_ExtFlags"],
                   "BPB_ExtFlags", ext_flags)
