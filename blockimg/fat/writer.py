"""Carry out a :class:`~blockimg.fat.layout.FatPlan` on a block device.

Every structural byte is written explicitly, in ascending offset order
through :class:`blockimg.write.copier.Copier` (gathered writes, kernel copies of big
files): the reserved region (boot sector, and for FAT32 the FSInfo sector
and the backups at 6/7), every FAT copy (generated 1 MiB at a time), the
whole FAT12/16 root directory, every directory cluster and the zero tail of
every file's last cluster. Free data clusters are not written (holes).
"""
from __future__ import annotations

import struct
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Callable, Dict, Optional

from ..block.base import BlockDevice
from ..write.copier import Copier, write_in_parts
from ..errors import DoesNotFit
from .layout import FatPlan
from .structs import (FSI_LEAD_SIG, FSI_STRUC_SIG, FSI_TRAIL_SIG, FSI_UNKNOWN, SIGNATURE,
                      FIELDS, STRUCT_FORMATS)
from .table import MEDIA

__all__ = ["write", "boot_sector", "fsinfo_sector", "FAT_CHUNK", "boot_values",
           "fsinfo_values"]

_BOOT16 = struct.Struct(STRUCT_FORMATS["BootSector16"])
_BOOT32 = struct.Struct(STRUCT_FORMATS["BootSector32"])
_FSINFO = struct.Struct(STRUCT_FORMATS["FSInfo"])
_BPB_FIELDS = FIELDS["BPB"]
_EBPB_FIELDS = FIELDS["EBPB"]
_BPB32_FIELDS = FIELDS["BPB32"]
_FSINFO_FIELDS = FIELDS["FSInfo"]

FAT_CHUNK = 256 << 10
OEM_NAME = b"MSWIN4.1"
#: Boot code: "int 18h" (no bootable disk: try the next device), then halt forever.
BOOT_CODE = b"\xcd\x18\xf4\xeb\xfd"
FSINFO_SECTOR = 1
BACKUP_BOOT_SECTOR = 6


def _bpb(plan: FatPlan) -> dict:
    g = plan.geometry
    total16 = g.total_sectors if g.total_sectors < 0x10000 and g.fat_type != 32 else 0
    return dict(
        BS_jmpBoot=b"\xeb\x58\x90" if g.fat_type == 32 else b"\xeb\x3c\x90",
        BS_OEMName=OEM_NAME, BPB_BytsPerSec=g.sector_size,
        BPB_SecPerClus=g.sectors_per_cluster, BPB_RsvdSecCnt=g.reserved_sectors,
        BPB_NumFATs=g.num_fats, BPB_RootEntCnt=g.root_entries, BPB_TotSec16=total16,
        BPB_Media=MEDIA, BPB_FATSz16=0 if g.fat_type == 32 else g.fat_sectors,
        BPB_SecPerTrk=32, BPB_NumHeads=64, BPB_HiddSec=0,
        BPB_TotSec32=0 if total16 else g.total_sectors)


def _ebpb(plan: FatPlan) -> dict:
    o = plan.options
    label = (o.label if o.label is not None and not o.mirage else "NO NAME").ljust(11)
    return dict(BS_DrvNum=0x80, BS_Reserved1=0, BS_BootSig=0x29, BS_VolID=o.volume_serial,
                BS_VolLab=label.encode("ascii"),
                BS_FilSysType=f"FAT{plan.fat_type}".ljust(8).encode("ascii"))


def boot_values(plan: FatPlan) -> dict:
    """Sector 0's field values, nested as the construct declaration wants them."""
    g = plan.geometry
    if g.fat_type == 32:
        code = bytearray(420)
        code[:len(BOOT_CODE)] = BOOT_CODE
        return dict(
            bpb=_bpb(plan), ebpb=_ebpb(plan), BS_BootCode32=bytes(code),
            Signature_word=SIGNATURE,
            bpb32=dict(BPB_FATSz32=g.fat_sectors, BPB_ExtFlags=0, BPB_FSVer=0,
                       BPB_RootClus=plan.root.first_cluster, BPB_FSInfo=FSINFO_SECTOR,
                       BPB_BkBootSec=BACKUP_BOOT_SECTOR, BPB_Reserved=bytes(12)))
    code = bytearray(448)
    code[:len(BOOT_CODE)] = BOOT_CODE
    return dict(bpb=_bpb(plan), ebpb=_ebpb(plan), BS_BootCode=bytes(code),
                Signature_word=SIGNATURE)


def boot_sector(plan: FatPlan) -> bytes:
    """Sector 0 (``sector_size`` bytes: the 512-byte structure, zeros after).

    Packed with :mod:`struct`; the same bytes as the construct declaration
    builds from :func:`boot_values` (tested).
    """
    v = boot_values(plan)
    bpb = [v["bpb"][k] for k in _BPB_FIELDS]
    ebpb = [v["ebpb"][k] for k in _EBPB_FIELDS]
    if plan.geometry.fat_type == 32:
        raw = _BOOT32.pack(*bpb, *[v["bpb32"][k] for k in _BPB32_FIELDS], *ebpb,
                           v["BS_BootCode32"], v["Signature_word"])
    else:
        raw = _BOOT16.pack(*bpb, *ebpb, v["BS_BootCode"], v["Signature_word"])
    return raw + bytes(plan.geometry.sector_size - len(raw))


def fsinfo_values(plan: FatPlan) -> dict:
    """The FSInfo sector's field values (FAT32)."""
    free = plan.free_clusters
    return dict(FSI_LeadSig=FSI_LEAD_SIG, FSI_Reserved1=bytes(480),
                FSI_StrucSig=FSI_STRUC_SIG, FSI_Free_Count=free,
                FSI_Nxt_Free=plan.used_end if free else FSI_UNKNOWN,
                FSI_Reserved2=bytes(12), FSI_TrailSig=FSI_TRAIL_SIG)


def fsinfo_sector(plan: FatPlan) -> bytes:
    """The FAT32 FSInfo sector: free cluster count and the first free cluster as hint."""
    v = fsinfo_values(plan)
    raw = _FSINFO.pack(*[v[k] for k in _FSINFO_FIELDS])
    return raw + bytes(plan.sector_size - len(raw))


def _file_records(plan: FatPlan, start: int, stop: int):
    """``(offset, b"", entry)`` for :meth:`Copier.put_records`, one per file in plan order
    (files ``start`` to ``stop``)."""
    g = plan.geometry
    base = g.data_offset - 2 * g.cluster_size
    csize = g.cluster_size
    head = b""
    for f in plan.files[start:stop]:
        yield (base + f.first_cluster * csize if f.clusters else 0), head, f.entry


def write(plan: FatPlan, device: BlockDevice, *,
          progress: Optional[Callable[[int, int], None]] = None,
          checksum: bool = False, jobs: int = 1) -> Dict[str, int]:
    """Write the volume; returns ``{path: crc32c}`` of the files when ``checksum``.

    ``jobs`` > 1 splits the file contents over that many processes
    (:mod:`blockimg.write.parallel`; an image file or device node only): the same bytes.
    """
    g = plan.geometry
    if device.size < g.image_size:
        raise DoesNotFit(f"FAT image does not fit on {getattr(device, 'name', 'device')}",
                         needed=g.image_size, available=device.size)
    csize = g.cluster_size

    def write_part(cp: Copier, start: int, stop: int, first: bool) -> None:
        if first:
            _metadata(plan, cp)
        # Each file at its first cluster, zeros to the end of its last; an empty file
        # writes nothing but is still checked, counted and checksummed.
        cp.put_records(_file_records(plan, start, stop), csize)

    crcs = write_in_parts(device, plan.files, lambda f: f.entry.size, write_part, jobs=jobs,
                          checksum=checksum, total=plan.file_bytes, progress=progress)
    return crcs if checksum else {}


def _metadata(plan: FatPlan, cp: Copier) -> None:
    """Everything but file contents: reserved region, FATs, root and directories."""
    g = plan.geometry
    ss = g.sector_size
    # Reserved region.
    boot = boot_sector(plan)
    cp.put(0, boot)
    if g.fat_type == 32:
        info = fsinfo_sector(plan)
        cp.put(ss, info)
        cp.zero(2 * ss, (BACKUP_BOOT_SECTOR - 2) * ss)
        cp.put(BACKUP_BOOT_SECTOR * ss, boot)
        cp.put((BACKUP_BOOT_SECTOR + 1) * ss, info)
        done = (BACKUP_BOOT_SECTOR + 2) * ss
    else:
        done = ss
    cp.zero(done, g.reserved_sectors * ss - done)
    # FATs, generated a chunk at a time.
    fat = plan.fat_table()
    for copy in range(g.num_fats):
        base = g.fat_offset(copy)
        for off, chunk in fat.chunks(FAT_CHUNK):
            if off < fat.live_bytes:
                cp.put(base + off, chunk)
            else:
                # Only free clusters from here on: zeros, written without making them.
                cp.zero(base + off, fat.size - off)
                break
    # FAT12/16 root directory region.
    if g.fat_type != 32:
        root = plan.root.data
        cp.put(g.root_offset, root)
        cp.zero(g.root_offset + len(root), g.root_sectors * ss - len(root))
    # Directory clusters (the FAT32 root among them), then file data.
    csize = g.cluster_size
    for d in plan.dirs:
        off = g.cluster_offset(d.first_cluster)
        cp.put(off, d.data)
        cp.zero(off + len(d.data), d.clusters * csize - len(d.data))

