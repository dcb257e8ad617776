"""Carry a :class:`~blockimg.tar.layout.TarPlan` out on a block device.

Headers, file data, the zero padding after each file's data and the two
end-of-archive blocks are all written explicitly (the device may be a
reused disk holding old bytes); only the area after the end-of-archive
marker is left as it is (a hole in a new image file). Bytes move through
:class:`~blockimg.copy.Copier`: small writes are gathered, big files are
copied inside the kernel, memory stays bounded whatever the file sizes.
"""
from __future__ import annotations

from typing import Callable, Dict, Iterator, Optional, Tuple

from ..block.base import BlockDevice
from ..copy import Copier
from ..errors import DoesNotFit
from ..source import Kind, SourceEntry
from .codec import plain_encoder
from .header import BLOCK
from .layout import END_BLOCKS, TarPlan

__all__ = ["write"]


def write(plan: TarPlan, device: BlockDevice, *,
          progress: Optional[Callable[[int, int], None]] = None,
          checksum: bool = False) -> Dict[str, int]:
    """Write ``plan`` to ``device``; returns ``{path: crc32c}`` when ``checksum``."""
    if plan.image_size > device.size:
        raise DoesNotFit(f"tar image does not fit on {device.name}", needed=plan.image_size,
                         available=device.size)
    with Copier(device, checksum=checksum, progress=progress, total=plan.file_bytes) as cp:
        # Every entry as one record: its header set, then (a regular file) its data and
        # the zeros up to the next 512-byte block.
        cp.put_records(_records(plan), BLOCK)
        cp.zero(plan.end_offset, END_BLOCKS)
        cp.flush()
    return cp.crcs


def _records(plan: TarPlan) -> Iterator[Tuple[int, bytes, Optional[SourceEntry]]]:
    """``(offset, head, file entry or None)`` of every planned entry, in image order.

    The heads the planner left unencoded (plain entries: one ustar header) are
    encoded here, once each, with :func:`~blockimg.tar.codec.plain_encoder`
    (what ``PlannedEntry.head`` gives, faster).
    """
    encode = plain_encoder()
    FILE = Kind.FILE
    for it in plan.items:
        entry = it.entry
        head = it._head
        if head is None:
            head = encode(entry)
            if head is None:                 # not plain (a hand-made PlannedEntry)
                head = it.head
            elif it.fillers:
                head = it._filler * it.fillers + head
        yield it.offset, head, (entry if entry.kind is FILE else None)
