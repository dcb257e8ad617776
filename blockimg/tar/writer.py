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
from ..copy import Copier, file_parts
from ..errors import DoesNotFit
from ..parallel import fork_map
from ..source import Kind, SourceEntry
from .codec import plain_encoder
from .header import BLOCK
from .layout import END_BLOCKS, TarPlan

__all__ = ["write"]


def write(plan: TarPlan, device: BlockDevice, *,
          progress: Optional[Callable[[int, int], None]] = None,
          checksum: bool = False, jobs: int = 1) -> Dict[str, int]:
    """Write ``plan`` to ``device``; returns ``{path: crc32c}`` when ``checksum``.

    ``jobs`` > 1 splits the entries over that many processes
    (:mod:`blockimg.parallel`; an image file or device node only): the same bytes.
    """
    if plan.image_size > device.size:
        raise DoesNotFit(f"tar image does not fit on {device.name}", needed=plan.image_size,
                         available=device.size)
    items = plan.items
    FILE = Kind.FILE
    ranges = file_parts(items, lambda it: it.entry.size if it.entry.kind is FILE else 0,
                        jobs, device)

    total = plan.file_bytes
    solo = len(ranges) == 1

    def part(i: int, tick) -> Dict[str, int]:
        start, stop = ranges[i]
        # Split over processes, each writes in its own time (a helper thread as well
        # would be more threads than CPUs: measured slower).
        with Copier(device, checksum=checksum, total=total, behind=None if solo else False,
                    progress=None if tick is None else lambda done, total: tick(done)) as cp:
            # Every entry as one record: its header set, then (a regular file) its data
            # and the zeros up to the next 512-byte block.
            cp.put_records(_records(plan, start, stop), BLOCK)
            if i == 0:
                cp.zero(plan.end_offset, END_BLOCKS)
            cp.flush()
        return cp.crcs

    crcs: Dict[str, int] = {}
    for got in fork_map(part, len(ranges), progress=progress and (
            lambda done: progress(done, total))):
        crcs.update(got)
    return crcs


def _records(plan: TarPlan, start: int = 0,
             stop: Optional[int] = None) -> Iterator[Tuple[int, bytes, Optional[SourceEntry]]]:
    """``(offset, head, file entry or None)`` of the planned entries ``start`` to ``stop``,
    in image order.

    The heads the planner left unencoded (plain entries: one ustar header) are
    encoded here, once each, with :func:`~blockimg.tar.codec.plain_encoder`
    (what ``PlannedEntry.head`` gives, faster).
    """
    encode = plain_encoder()
    FILE = Kind.FILE
    for it in plan.items[start:stop]:
        entry = it.entry
        head = it._head
        if head is None:
            head = encode(entry)
            if head is None:                 # not plain (a hand-made PlannedEntry)
                head = it.head
            elif it.fillers:
                head = it._filler * it.fillers + head
        yield it.offset, head, (entry if entry.kind is FILE else None)
