"""MBR and GPT on-disk structures: one field table each, with the specifications' names.

Each :class:`Layout` is declared once as ``(field, struct code)`` pairs in
on-disk order; its :mod:`struct` format, offsets and size are derived from
that table and the size is asserted. ``pack(**fields)`` and
``unpack(data) -> dict`` are all the codecs need. Names follow the UEFI
specification (2.10, section 5) for GPT and the usual MBR names.
"""
from __future__ import annotations

import struct
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Dict, Mapping, Tuple

from .detect import MBR_SIGNATURE   # (with the first-sector rule, read before the codecs)

__all__ = ["Layout", "MBR", "MBR_ENTRY", "GPT_HEADER", "GPT_ENTRY", "SECTOR",
           "MBR_SIGNATURE", "GPT_SIGNATURE", "GPT_REVISION", "PROTECTIVE_TYPE"]

SECTOR = 512
GPT_SIGNATURE = b"EFI PART"
GPT_REVISION = 0x00010000
PROTECTIVE_TYPE = 0xEE


class Layout:
    """A fixed-size little-endian record declared as ``(field, struct code)`` pairs."""

    def __init__(self, name: str, size: int, fields: Tuple[Tuple[str, str], ...]) -> None:
        self.name = name
        self.fields = tuple(f for f, _ in fields)
        self._struct = struct.Struct("<" + "".join(code for _, code in fields))
        assert self._struct.size == size, (name, self._struct.size, size)
        self.size = size
        offsets: Dict[str, int] = {}
        pos = 0
        for f, code in fields:
            offsets[f] = pos
            pos += struct.calcsize("<" + code)
        self.offsets = offsets

    def pack(self, **values: object) -> bytes:
        """The record's bytes; every field must be given (bytes fields are zero-padded)."""
        missing = set(self.fields) - set(values)
        extra = set(values) - set(self.fields)
        assert not missing and not extra, (self.name, missing, extra)
        return self._struct.pack(*(values[f] for f in self.fields))

    def unpack(self, data: bytes) -> Dict[str, object]:
        """The fields of the first ``size`` bytes of ``data`` (which must be that long)."""
        return dict(zip(self.fields, self._struct.unpack_from(data, 0)))

    def offset(self, field: str) -> int:
        return self.offsets[field]


#: One of the four partition entries of an MBR (at 446 + 16 * i).
MBR_ENTRY = Layout("MBR partition entry", 16, (
    ("BootIndicator", "B"),
    ("StartingCHS", "3s"),
    ("OSType", "B"),
    ("EndingCHS", "3s"),
    ("StartingLBA", "I"),
    ("SizeInLBA", "I"),
))

#: The master boot record (sector 0).
MBR = Layout("MBR", 512, (
    ("BootCode", "440s"),
    ("UniqueMBRDiskSignature", "I"),
    ("Unknown", "H"),
    ("PartitionRecord", "64s"),
    ("Signature", "2s"),
))

#: The GPT header (LBA 1, and the backup in the last LBA); the rest of its sector is zero.
GPT_HEADER = Layout("GPT header", 92, (
    ("Signature", "8s"),
    ("Revision", "I"),
    ("HeaderSize", "I"),
    ("HeaderCRC32", "I"),
    ("Reserved", "I"),
    ("MyLBA", "Q"),
    ("AlternateLBA", "Q"),
    ("FirstUsableLBA", "Q"),
    ("LastUsableLBA", "Q"),
    ("DiskGUID", "16s"),
    ("PartitionEntryLBA", "Q"),
    ("NumberOfPartitionEntries", "I"),
    ("SizeOfPartitionEntry", "I"),
    ("PartitionEntryArrayCRC32", "I"),
))

#: One GPT partition entry (GUIDs in the mixed-endian form: ``uuid.UUID.bytes_le``).
GPT_ENTRY = Layout("GPT partition entry", 128, (
    ("PartitionTypeGUID", "16s"),
    ("UniquePartitionGUID", "16s"),
    ("StartingLBA", "Q"),
    ("EndingLBA", "Q"),
    ("Attributes", "Q"),
    ("PartitionName", "72s"),
))

STRUCTS: Mapping[str, Layout] = {s.name: s for s in (MBR_ENTRY, MBR, GPT_HEADER, GPT_ENTRY)}
