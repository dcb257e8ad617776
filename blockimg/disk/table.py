"""MBR and GPT codecs: partition lists in, sector bytes out, and back. No I/O.

Sectors are 512 bytes (what Mirage's MBR reader and fdisk on an image file
use). Encoding is deterministic: the caller passes every identifier (MBR
disk signature, GPT GUIDs). Decoding checks what a reader relies on and
raises :class:`~blockimg.errors.CorruptImage` naming the byte offset and the
field: signatures, CRC-32s (``zlib.crc32``), entries inside the disk and
the usable area, no two partitions overlapping.
"""
from __future__ import annotations

import zlib
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    import uuid     # (imported where a GUID is decoded: uuid brings platform and re, ~36 M)
    from typing import Dict, List, Optional, Sequence, Tuple

from ..errors import CorruptImage
from ..record import record
from .detect import is_boot_sector, may_hold_table
from .structs import (GPT_ENTRY, GPT_HEADER, GPT_REVISION, GPT_SIGNATURE, MBR, MBR_ENTRY,
                      MBR_SIGNATURE, PROTECTIVE_TYPE, SECTOR)

__all__ = ["Partition", "Table", "encode_mbr", "encode_gpt", "decode_mbr", "decode_gpt_header",
           "decode_gpt_entries", "GPT_ENTRIES", "GPT_ARRAY_BYTES", "MBR_TYPES", "GPT_TYPES",
           "gpt_overhead", "is_boot_sector"]

GPT_ENTRIES = 128
GPT_ARRAY_BYTES = GPT_ENTRIES * GPT_ENTRY.size          # 16 KiB: 32 sectors
#: MBR partition types by volume kind (FAT16 with LBA addressing; 0xDA: "non-FS data").
MBR_TYPES = {"fat12": 0x01, "fat16": 0x0E, "fat32": 0x0C, "tar": 0xDA, "empty": 0xDA}
#: GPT type GUIDs (text, as ``uuid.UUID`` takes it): Microsoft basic data for FAT, Linux
#: file-system data for the rest.
GPT_TYPES = {"fat": "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",
             "data": "0FC63DAF-8483-4772-8E79-3D69D8477DE4"}
#: The most GPT entries a reader accepts (bounds the memory one table can take: 1 MiB).
MAX_GPT_ENTRIES = 8192
MAX_ENTRY_SIZE = 1024


@record(frozen=True)
class Partition:
    """One partition: ``number`` (1-based slot), byte ``start`` and ``size``, ``type``
    (MBR: ``0x0e``; GPT: the type GUID), and for GPT its ``name`` and ``guid``."""

    number: int
    start: int
    size: int
    type: str
    name: str = ""
    guid: str = ""

    @property
    def end(self) -> int:
        return self.start + self.size

    def label(self) -> str:
        return f"{self.number}" + (f" ({self.name})" if self.name else "")


@record(frozen=True)
class Table:
    """A partition table: ``kind`` ``"mbr"`` or ``"gpt"``, its partitions, the disk's
    identifier (MBR signature or GPT disk GUID)."""

    kind: str
    partitions: Tuple[Partition, ...]
    disk_id: str

    def find(self, selector: str) -> Optional[Partition]:
        """The partition numbered ``selector`` (digits) or named it."""
        for p in self.partitions:
            if (selector.isdigit() and p.number == int(selector)) or \
                    (not selector.isdigit() and p.name == selector):
                return p
        return None

    def describe(self) -> str:
        return ", ".join(f"{p.label()} at byte {p.start}, {p.size} bytes"
                         for p in self.partitions) or "no partitions"


def gpt_overhead() -> int:
    """Bytes a GPT takes at each end of the disk: a sector (MBR or header) + the entries."""
    return SECTOR + GPT_ARRAY_BYTES


def _chs(lba: int) -> bytes:
    """Cylinder/head/sector of ``lba`` for the usual 255-head, 63-sector geometry."""
    c, rest = divmod(lba, 255 * 63)
    if c > 1023:
        return bytes((254, 0xFF, 0xFF))
    h, s = divmod(rest, 63)
    return bytes((h, (s + 1) | ((c >> 2) & 0xC0), c & 0xFF))


def _mbr_entry(start_lba: int, sectors: int, os_type: int) -> bytes:
    return MBR_ENTRY.pack(BootIndicator=0, StartingCHS=_chs(start_lba), OSType=os_type,
                          EndingCHS=_chs(start_lba + sectors - 1), StartingLBA=start_lba,
                          SizeInLBA=sectors)


def encode_mbr(partitions: Sequence[Tuple[int, int, int]], signature: int) -> bytes:
    """Sector 0 of an MBR disk: ``(start byte, size, type)`` per partition (at most 4)."""
    assert len(partitions) <= 4
    records = b"".join(_mbr_entry(start // SECTOR, size // SECTOR, t)
                       for start, size, t in partitions)
    return MBR.pack(BootCode=b"", UniqueMBRDiskSignature=signature, Unknown=0,
                    PartitionRecord=records, Signature=MBR_SIGNATURE)


def _protective_mbr(disk_size: int) -> bytes:
    sectors = min(disk_size // SECTOR - 1, 0xFFFFFFFF)
    entry = MBR_ENTRY.pack(BootIndicator=0, StartingCHS=bytes((0, 2, 0)),
                           OSType=PROTECTIVE_TYPE, EndingCHS=_chs(sectors), StartingLBA=1,
                           SizeInLBA=sectors)
    return MBR.pack(BootCode=b"", UniqueMBRDiskSignature=0, Unknown=0,
                    PartitionRecord=entry, Signature=MBR_SIGNATURE)


def _gpt_name(name: str) -> bytes:
    raw = name.encode("utf-16-le")
    assert len(raw) <= 72, name
    return raw


def encode_gpt(partitions: Sequence[Tuple[int, int, uuid.UUID, uuid.UUID, str]],
               disk_guid: uuid.UUID, disk_size: int) -> Dict[int, bytes]:
    """Every byte of a GPT as ``{byte offset: bytes}``: protective MBR, primary header and
    entries at the start, backup entries and header at the end.

    ``partitions``: ``(start byte, size, type GUID, partition GUID, name)``.
    """
    last = disk_size // SECTOR - 1
    entries = b"".join(GPT_ENTRY.pack(
        PartitionTypeGUID=t.bytes_le, UniquePartitionGUID=g.bytes_le, StartingLBA=s // SECTOR,
        EndingLBA=(s + n) // SECTOR - 1, Attributes=0, PartitionName=_gpt_name(name))
        for s, n, t, g, name in partitions)
    entries += bytes(GPT_ARRAY_BYTES - len(entries))
    array_sectors = GPT_ARRAY_BYTES // SECTOR
    array_crc = zlib.crc32(entries)

    def header(my_lba: int, alternate: int, entry_lba: int) -> bytes:
        fields = dict(Signature=GPT_SIGNATURE, Revision=GPT_REVISION, HeaderSize=GPT_HEADER.size,
                      HeaderCRC32=0, Reserved=0, MyLBA=my_lba, AlternateLBA=alternate,
                      FirstUsableLBA=2 + array_sectors, LastUsableLBA=last - 1 - array_sectors,
                      DiskGUID=disk_guid.bytes_le, PartitionEntryLBA=entry_lba,
                      NumberOfPartitionEntries=GPT_ENTRIES,
                      SizeOfPartitionEntry=GPT_ENTRY.size, PartitionEntryArrayCRC32=array_crc)
        fields["HeaderCRC32"] = zlib.crc32(GPT_HEADER.pack(**fields))
        return GPT_HEADER.pack(**fields).ljust(SECTOR, b"\0")

    backup_array = last - array_sectors
    return {0: _protective_mbr(disk_size),
            SECTOR: header(1, last, 2),
            2 * SECTOR: entries,
            backup_array * SECTOR: entries,
            last * SECTOR: header(last, 1, backup_array)}


def decode_mbr(sector: bytes, disk_size: int) -> Optional[List[Tuple[int, int, int, int]]]:
    """``[(slot, start byte, size, type)]`` of an MBR's used entries, or None when
    ``sector`` is no MBR: no 0x55AA, a FAT boot sector, a status byte other than 0/0x80,
    an entry of type 0 that is not all zeros (ocaml-mbr refuses those too), or no entry
    used (a boot sector whose code leaves those bytes zero).

    An entry past the disk's end is corrupt.
    """
    if not may_hold_table(sector):
        return None
    out = []
    base = MBR.offset("PartitionRecord")
    for slot in range(4):
        off = base + slot * MBR_ENTRY.size
        raw = sector[off:off + MBR_ENTRY.size]
        e = MBR_ENTRY.unpack(raw)
        if e["BootIndicator"] not in (0, 0x80):
            return None
        if e["OSType"] == 0:
            if any(raw):
                return None
            continue
        start, size = e["StartingLBA"] * SECTOR, e["SizeInLBA"] * SECTOR
        if e["OSType"] != PROTECTIVE_TYPE and (size == 0 or start == 0 or
                                               start + size > disk_size):
            raise CorruptImage(f"partition {slot + 1} (bytes {start}..{start + size}) is not "
                               f"inside the {disk_size}-byte disk", offset=off + 8,
                               field="StartingLBA/SizeInLBA")
        out.append((slot + 1, start, size, e["OSType"]))
    return out or None


def decode_gpt_header(sector: bytes, *, offset: int, disk_size: int) -> Dict[str, object]:
    """The checked fields of a GPT header read at byte ``offset``."""
    h = GPT_HEADER.unpack(sector)
    if h["Signature"] != GPT_SIGNATURE:
        raise CorruptImage("no GPT header ('EFI PART') where the protective MBR says",
                           offset=offset, field="Signature", value=h["Signature"])
    size = h["HeaderSize"]
    if not GPT_HEADER.size <= size <= SECTOR:              # type: ignore[operator]
        raise CorruptImage("header size out of range 92..512", offset=offset + 12,
                           field="HeaderSize", value=size)
    raw = bytearray(sector[:size])                          # type: ignore[misc]
    raw[16:20] = bytes(4)
    if zlib.crc32(raw) != h["HeaderCRC32"]:
        raise CorruptImage("header CRC-32 does not match", offset=offset + 16,
                           field="HeaderCRC32", value=h["HeaderCRC32"])
    n, esize = h["NumberOfPartitionEntries"], h["SizeOfPartitionEntry"]
    if not 0 < n <= MAX_GPT_ENTRIES or esize < GPT_ENTRY.size or esize % 8 or \
            esize > MAX_ENTRY_SIZE:                         # type: ignore[operator]
        raise CorruptImage(f"{n} entries of {esize} bytes: out of range (1..{MAX_GPT_ENTRIES} "
                           f"entries of 128..{MAX_ENTRY_SIZE} bytes)", offset=offset + 80,
                           field="NumberOfPartitionEntries")
    sectors = disk_size // SECTOR
    for f in ("MyLBA", "AlternateLBA", "FirstUsableLBA", "LastUsableLBA", "PartitionEntryLBA"):
        if h[f] >= sectors:                                 # type: ignore[operator]
            raise CorruptImage(f"{f} {h[f]} is past the disk's last sector {sectors - 1}",
                               offset=offset + GPT_HEADER.offset(f), field=f, value=h[f])
    end = h["PartitionEntryLBA"] * SECTOR + n * esize     # type: ignore[operator]
    if end > disk_size:
        raise CorruptImage("the partition entry array ends past the disk",
                           offset=offset + 72, field="PartitionEntryLBA")
    return h


def decode_gpt_entries(array: bytes, header: Dict[str, object]) -> List[Partition]:
    """The used entries of the entry array ``array`` that ``header`` describes."""
    import uuid
    if zlib.crc32(array) != header["PartitionEntryArrayCRC32"]:
        raise CorruptImage("partition entry array CRC-32 does not match",
                           offset=header["PartitionEntryLBA"] * SECTOR,  # type: ignore
                           field="PartitionEntryArrayCRC32")
    esize = int(header["SizeOfPartitionEntry"])             # type: ignore[arg-type]
    first, last = header["FirstUsableLBA"], header["LastUsableLBA"]
    out = []
    for i in range(int(header["NumberOfPartitionEntries"])):  # type: ignore[arg-type]
        raw = array[i * esize:i * esize + GPT_ENTRY.size]
        if not any(raw[:16]):
            continue
        e = GPT_ENTRY.unpack(raw)
        s, l = e["StartingLBA"], e["EndingLBA"]
        where = int(header["PartitionEntryLBA"]) * SECTOR + i * esize  # type: ignore
        if not first <= s <= l <= last:                     # type: ignore[operator]
            raise CorruptImage(f"partition {i + 1} spans LBA {s}..{l}, outside the usable "
                               f"{first}..{last}", offset=where + 32, field="StartingLBA")
        name = bytes(e["PartitionName"]).decode("utf-16-le", "replace").split("\0")[0]  # type: ignore
        out.append(Partition(i + 1, s * SECTOR, (l - s + 1) * SECTOR,  # type: ignore[operator]
                             str(uuid.UUID(bytes_le=bytes(e["PartitionTypeGUID"]))),  # type: ignore
                             name, str(uuid.UUID(bytes_le=bytes(e["UniquePartitionGUID"])))))  # type: ignore
    return out


def check_overlaps(partitions: Sequence[Partition]) -> None:
    """CorruptImage when two partitions share a byte."""
    ordered = sorted(partitions, key=lambda p: p.start)
    for a, b in zip(ordered, ordered[1:]):
        if b.start < a.end:
            raise CorruptImage(f"partitions {a.number} and {b.number} overlap "
                               f"(bytes {b.start}..{min(a.end, b.end)})", offset=b.start)
