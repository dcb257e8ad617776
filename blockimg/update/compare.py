"""Whether an image file holds a source file's bytes (``--compare``): the file's extents
read from the image device through a window read ahead (files are compared in tree
order, mostly their order in the image, so one read serves many), the source file
with ``os.pread`` (no buffered file object per file). At most CHUNK bytes of a file
and one window are held at a time."""
from __future__ import annotations

import os

TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Callable, Iterable, Tuple

from ..block.base import BlockDevice
from ..errors import DeviceError
from ..sources.directory import SourceEntry

__all__ = ["comparer", "CHUNK", "READ_AHEAD"]

CHUNK = 1 << 20
READ_AHEAD = 1 << 18
_READ = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


def comparer(device: BlockDevice, extents: "Callable[[object], Iterable[Tuple[int, int]]]"):
    """``same(info, entry)``: whether the image file ``info`` (its ``(offset, length)``
    ``extents(info)`` on ``device``, in file order) holds ``entry``'s bytes."""
    held = [0, b""]                               # the window read ahead: [offset, bytes]

    def pread(off: int, k: int):
        start, data = held
        if start <= off and off + k <= start + len(data):
            return data[off - start:off - start + k]
        n = max(k, min(READ_AHEAD, device.size - off))
        data = bytes(device.pread(off, n))
        held[0], held[1] = off, data
        return data[:k] if n > k else data

    def same(info, entry: SourceEntry) -> bool:
        if entry.data is not None:
            mine = bytes(entry.data)
            at = 0
            for off, k in extents(info):
                if pread(off, k) != mine[at:at + k]:
                    return False
                at += k
            return at == len(mine)
        try:
            fd = os.open(entry.source, _READ)
        except OSError as e:
            raise DeviceError(f"{entry.source}: cannot read: {e.strerror}",
                              errno=e.errno) from None
        try:
            at = entry.offset or 0
            for off, length in extents(info):
                end = off + length
                while off < end:
                    k = min(CHUNK, end - off)
                    if os.pread(fd, k, at) != pread(off, k):
                        return False
                    off += k
                    at += k
            return True
        except OSError as e:
            raise DeviceError(f"{entry.source}: cannot read: {e.strerror}",
                              errno=e.errno) from None
        finally:
            os.close(fd)
    return same
