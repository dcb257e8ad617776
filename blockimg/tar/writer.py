"""Carry a :class:`~blockimg.tar.layout.TarPlan` out on a block device.

Headers, file data, the zero padding after each file's data and the two
end-of-archive blocks are all written explicitly (the device may be a
reused disk holding old bytes); only the area after the end-of-archive
marker is left as it is (a hole in a new image file). Bytes move through
:class:`~blockimg.copy.Copier`: small writes are gathered, big files are
copied inside the kernel, memory stays bounded whatever the file sizes.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional

from ..block.base import BlockDevice
from ..copy import Copier
from ..errors import DoesNotFit
from ..source import Kind
from .header import BLOCK
from .layout import END_BLOCKS, TarPlan

__all__ = ["write"]

_ZEROS = bytes(BLOCK)


def write(plan: TarPlan, device: BlockDevice, *,
          progress: Optional[Callable[[int, int], None]] = None,
          checksum: bool = False) -> Dict[str, int]:
    """Write ``plan`` to ``device``; returns ``{path: crc32c}`` when ``checksum``."""
    if plan.image_size > device.size:
        raise DoesNotFit(f"tar image does not fit on {device.name}", needed=plan.image_size,
                         available=device.size)
    cp = Copier(device, checksum=checksum, progress=progress, total=plan.file_bytes)
    put = cp.put
    FILE = Kind.FILE
    for it in plan.items:
        put(it.offset, it.head)
        entry = it.entry
        if entry.kind is FILE:
            cp.put_file(entry, it.data_offset)
            tail = -entry.size % BLOCK
            if tail:
                put(it.data_offset + entry.size, _ZEROS[:tail])
    cp.zero(plan.end_offset, END_BLOCKS)
    cp.flush()
    return cp.crcs
