"""Reading a partitioned disk: its table, and a window on one partition."""
from __future__ import annotations

TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import List, Optional, Tuple

from ..block.base import BlockDevice
from ..block.window import WindowDevice
from ..errors import CorruptImage, InvalidInput
from .structs import PROTECTIVE_TYPE, SECTOR
from .table import (Partition, Table, check_overlaps, decode_gpt_entries, decode_gpt_header,
                    decode_mbr)

__all__ = ["read_table", "open_partition", "split_partition_url", "PartitionDevice",
           "table_problems", "partition_url", "whole_disk_message", "is_empty_space"]

_ZERO_CHUNK = 1 << 20


def read_table(device: BlockDevice) -> Optional[Table]:
    """The partition table on ``device``, or None when it has none.

    Reads at most the first sector, the GPT header and its entry array
    (bounded: 8192 entries of up to 1 KiB). A table that is there but broken
    raises :class:`CorruptImage` naming the offset and field.
    """
    if device.size < SECTOR:
        return None
    sector0 = bytes(device.pread(0, SECTOR))
    entries = decode_mbr(sector0, device.size)
    if entries is None:
        return None
    if any(t == PROTECTIVE_TYPE for _, _, _, t in entries):
        table = _read_gpt(device, SECTOR)
    else:
        parts = tuple(Partition(slot, start, size, f"0x{t:02x}")
                      for slot, start, size, t in entries)
        table = Table("mbr", parts, f"0x{int.from_bytes(sector0[440:444], 'little'):08x}")
    check_overlaps(table.partitions)
    return table


def whole_disk_message(device: BlockDevice) -> Optional[str]:
    """When ``device`` is a partitioned disk (a readable MBR or GPT), one line saying so:
    its partitions and how to read one; else None (also when the table is broken: the
    caller then says what else the bytes are)."""
    try:
        table = read_table(device)
    except CorruptImage:
        return None
    if table is None:
        return None
    parts = table.partitions
    n = len(parts)
    where = "; ".join(f"{p.number} at byte {p.start}, {p.size} bytes" for p in parts)
    text = (f"a partitioned disk ({table.kind.upper()}, {n} partition{'' if n == 1 else 's'}"
            + (f": {where}" if where else "") + "), not a FAT volume or tar archive")
    if parts:
        p = parts[0]
        text += (f": read a partition with --partition N (the library: partition:N:DISK), "
                 f"or copy one out (partition {p.number}: dd bs={SECTOR} "
                 f"skip={p.start // SECTOR} count={p.size // SECTOR} of=part{p.number}.img)")
    return text


def _read_gpt(device: BlockDevice, offset: int) -> Table:
    if device.size < 3 * SECTOR:
        raise CorruptImage("a protective MBR on a disk too small for a GPT", offset=446)
    header = decode_gpt_header(bytes(device.pread(offset, SECTOR)), offset=offset,
                               disk_size=device.size)
    n, esize = int(header["NumberOfPartitionEntries"]), int(header["SizeOfPartitionEntry"])
    array = bytes(device.pread(int(header["PartitionEntryLBA"]) * SECTOR, n * esize))
    parts = decode_gpt_entries(array, header)
    import uuid
    return Table("gpt", tuple(parts), str(uuid.UUID(bytes_le=bytes(header["DiskGUID"]))))


def table_problems(device: BlockDevice, table: Table) -> List[str]:
    """What ``check`` reports about the table itself: a GPT's backup must be readable,
    agree with the primary and sit in the last sector."""
    if table.kind != "gpt":
        return []
    last = device.size // SECTOR - 1
    primary = decode_gpt_header(bytes(device.pread(SECTOR, SECTOR)), offset=SECTOR,
                                disk_size=device.size)
    problems = []
    if primary["AlternateLBA"] != last:
        problems.append(f"the GPT backup header is at LBA {primary['AlternateLBA']}, not the "
                        f"disk's last sector {last} (was the disk resized?)")
    try:
        backup = _read_gpt(device, int(primary["AlternateLBA"]) * SECTOR)
    except CorruptImage as e:
        return problems + [f"backup GPT: {e}"]
    if backup.partitions != table.partitions or backup.disk_id != table.disk_id:
        problems.append("the backup GPT does not describe the same partitions as the primary")
    return problems


class PartitionDevice(WindowDevice):
    """A window on one partition, printed as ``DISK#N`` (``DISK#N(NAME)``) in messages."""

    def __init__(self, parent: BlockDevice, partition: Partition, disk: str) -> None:
        super().__init__(parent, partition.start, partition.size, writable=False)
        self.partition = partition
        self.name = f"{disk}#{partition.label().replace(' ', '')}"

    def __str__(self) -> str:
        return self.name

    def close(self) -> None:
        super().close()
        self.parent.close()


def open_partition(disk: BlockDevice, selector: str, name: str) -> PartitionDevice:
    """Partition ``selector`` (a number, or a GPT name) of the open ``disk`` (``name`` in
    messages). The partition owns ``disk``: closing it (or a failure here) closes it."""
    try:
        table = read_table(disk)
        if table is None:
            raise InvalidInput("has no partition table (MBR or GPT); leave out --partition",
                               path=name, rule="--partition needs a partitioned disk")
        part = table.find(selector)
        if part is None:
            raise InvalidInput(f"no partition {selector!r}; the {table.kind.upper()} has: "
                               f"{table.describe()}", path=name, rule="--partition N|NAME")
        return PartitionDevice(disk, part, name)
    except BaseException:
        disk.close()
        raise


def is_empty_space(device: BlockDevice) -> bool:
    """True when every byte of ``device`` is zero: empty space (``empty:SIZE``), not a
    volume. Reads 1 MiB at a time and stops at the first non-zero byte, so a volume (a
    FAT boot sector or tar header in its first sector) costs one read."""
    zeros = bytes(_ZERO_CHUNK)
    done, size = 0, device.size
    while done < size:
        n = min(_ZERO_CHUNK, size - done)
        if bytes(device.pread(done, n)) != zeros[:n]:
            return False
        done += n
    return True


def partition_url(disk: str, selector: str) -> str:
    """The backend URL of partition ``selector`` of ``disk`` (``partition:N:DISK``)."""
    return f"partition:{selector}:{disk}"


def split_partition_url(location: str, *, writable: bool = False) -> Tuple[str, str]:
    """``(selector, disk)`` of a ``partition:SELECTOR:DISK`` URL's location (read-only:
    ``writable`` is refused)."""
    selector, colon, disk = location.partition(":")
    if not colon or not selector or not disk:
        raise InvalidInput("a partition is named partition:N:DISK or partition:NAME:DISK",
                           path=f"partition:{location}", rule="partition URL")
    if writable:
        raise InvalidInput("partitions of a disk are opened read-only; build the disk with "
                           "blockimg disk", path=disk, rule="partition URL")
    return selector, disk
