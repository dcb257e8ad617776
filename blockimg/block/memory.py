"""A block device in memory (tests, small images, building before copying out)."""
from __future__ import annotations

TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Optional

from .base import FORKABLE, BlockDevice, Buffer

__all__ = ["MemoryDevice"]


class MemoryDevice(BlockDevice):
    """``MemoryDevice(size, sector_size=512, fill=0)``, or over existing ``data``.

    ``fill`` pre-fills the storage with a marker byte, so that tests can see
    regions a writer forgot. Reads are zero-copy memoryviews.
    """

    name = "memory"

    def __init__(self, size: int = 0, *, sector_size: int = 512, fill: int = 0,
                 data: Optional[Buffer] = None, writable: bool = True) -> None:
        if data is not None:
            self.buffer = bytearray(data)
        else:
            self.buffer = bytearray([fill]) * size if fill else bytearray(size)
        if len(self.buffer) % sector_size:
            from ..errors import InvalidInput
            raise InvalidInput(f"memory device size {len(self.buffer)} is not a multiple "
                               f"of the sector size {sector_size}",
                               rule="image length must be whole sectors")
        super().__init__(sector_size, len(self.buffer) // sector_size, writable)

    def _read_at(self, offset: int, length: int) -> Buffer:
        return memoryview(self.buffer)[offset:offset + length]

    def _write_at(self, offset: int, data: Buffer) -> None:
        self.buffer[offset:offset + len(data)] = data

    def pwrite(self, offset: int, data: Buffer) -> None:
        self._check_writable()
        self._check_range(offset, len(data), offset >= 0)
        self.buffer[offset:offset + len(data)] = data

    def getvalue(self) -> bytes:
        """The whole device content."""
        return bytes(self.buffer)


FORKABLE.add(MemoryDevice)
