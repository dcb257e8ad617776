"""A memory-mapped image file: reads are zero-copy memoryview slices.

Copies out (``copy_to``) go through the file itself, inside the kernel:
faulting the mapping in page by page only to write it out again would be
slower and would count the pages against the process.
"""
from __future__ import annotations

import mmap as _mmap

from ..errors import DeviceError
from .base import FORKABLE, BlockDevice, Buffer
from .file import FileDevice

__all__ = ["MmapDevice"]


class MmapDevice(BlockDevice):
    """Maps the whole image; ``pread`` returns a slice of the mapping, no copy.

    Mapped pages are page cache, not process memory. Writable when opened so.
    """

    def __init__(self, path: str, *, writable: bool = False, sector_size: int = 512) -> None:
        self._file = FileDevice(path, writable=writable, sector_size=sector_size)
        self.path = self._file.path
        self.name = self.path
        super().__init__(sector_size, self._file.sector_count, writable)
        if self._file.size:
            access = _mmap.ACCESS_WRITE if writable else _mmap.ACCESS_READ
            try:
                self._map = _mmap.mmap(self._file.fd, self._file.size, access=access)
            except (OSError, ValueError) as e:
                self._file.close()
                raise DeviceError(f"{self.path}: cannot map: {e}") from None
            self._view = memoryview(self._map)
        else:
            self._map = None
            self._view = memoryview(b"")

    def _read_at(self, offset: int, length: int) -> Buffer:
        return self._view[offset:offset + length]

    def pread(self, offset: int, length: int) -> Buffer:
        self._check_range(offset, length, offset >= 0 and length >= 0)
        return self._view[offset:offset + length]

    def copy_to(self, offset: int, length: int, fd: int) -> int:
        self._check_range(offset, length, offset >= 0 and length >= 0)
        return self._file.copy_to(offset, length, fd)

    def _write_at(self, offset: int, data: Buffer) -> None:
        self._view[offset:offset + len(data)] = data

    def pwrite(self, offset: int, data: Buffer) -> None:
        self._check_writable()
        self._check_range(offset, len(data), offset >= 0)
        self._view[offset:offset + len(data)] = data

    def flush(self) -> None:
        if self.writable and self._map is not None:
            self._map.flush()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._view.release()
            if self._map is not None:
                try:
                    self._map.close()
                except BufferError:
                    # Slices handed out are still alive; the mapping goes with them.
                    pass
            self._file.close()


FORKABLE.add(MmapDevice)
