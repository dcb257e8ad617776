"""Carry a :class:`~blockimg.tar.layout.TarPlan` out on a block device.

Headers, file data, the zero padding after each file's data and the two
end-of-archive blocks are all written explicitly (the device may be a
reused disk holding old bytes); only the area after the end-of-archive
marker is left as it is (a hole in a new image file). Bytes move through
:class:`~blockimg.write.copier.Copier`: small writes are gathered, big files are
copied inside the kernel, memory stays bounded whatever the file sizes.
"""
from __future__ import annotations

TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Callable, Dict, Iterator, Optional, Tuple

from ..block.base import BlockDevice
from ..write.copier import Copier, write_in_parts
from ..errors import DoesNotFit
from ..sources.directory import Kind, SourceEntry
from .codec import encode_entry
from .header import BLOCK
from .layout import END_BLOCKS, TarPlan

__all__ = ["write"]


def write(plan: TarPlan, device: BlockDevice, *,
          progress: Optional[Callable[[int, int], None]] = None,
          checksum: bool = False, jobs: int = 1) -> Dict[str, int]:
    """Write ``plan`` to ``device``; returns ``{path: crc32c}`` when ``checksum``.

    ``jobs`` > 1 splits the entries over that many processes
    (:mod:`blockimg.write.parallel`; an image file or device node only): the same bytes.
    """
    if plan.image_size > device.size:
        raise DoesNotFit(f"tar image does not fit on {device.name}", needed=plan.image_size,
                         available=device.size)
    def write_part(cp: Copier, start: int, stop: int, first: bool) -> None:
        # Every entry as one record: its header set, then (a regular file) its data and
        # the zeros up to the next 512-byte block.
        cp.put_records(_records(plan, start, stop), BLOCK)
        if first:
            cp.zero(plan.end_offset, END_BLOCKS)

    FILE = Kind.FILE
    return write_in_parts(device, plan.items,
                          lambda it: it.entry.size if it.entry.kind is FILE else 0,
                          write_part, jobs=jobs, checksum=checksum, total=plan.file_bytes,
                          progress=progress)


def _records(plan: TarPlan, start: int = 0,
             stop: Optional[int] = None) -> Iterator[Tuple[int, bytes, Optional[SourceEntry]]]:
    """``(offset, head, file entry or None)`` of the planned entries ``start`` to ``stop``,
    in image order (the heads the planner left unencoded are encoded here, once each)."""
    FILE = Kind.FILE
    mirage = plan.options.mirage
    for it in plan.items[start:stop]:
        entry = it.entry
        head = it.kept_head
        if head is None:
            head = encode_entry(entry, mirage=mirage)
            if it.fillers:
                head = it.filler * it.fillers + head
        yield it.offset, head, (entry if entry.kind is FILE else None)
