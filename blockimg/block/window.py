"""A bounds-checked window (offset + length) over another device, e.g. a partition."""
from __future__ import annotations

TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Optional

from ..errors import InvalidInput
from .base import BlockDevice, Buffer

__all__ = ["WindowDevice"]


class WindowDevice(BlockDevice):
    """Sectors ``[offset, offset + length)`` (in bytes) of ``parent``.

    Both must be multiples of the parent's sector size; every access is
    clipped to the window and checked before it reaches the parent.
    """

    def __init__(self, parent: BlockDevice, offset: int, length: Optional[int] = None,
                 *, writable: Optional[bool] = None) -> None:
        ss = parent.sector_size
        if length is None:
            length = parent.size - offset
        if offset < 0 or length < 0 or offset % ss or length % ss:
            raise InvalidInput(f"window {offset}+{length} is not aligned to the "
                               f"{ss}-byte sectors of {parent.name}", rule="sector alignment")
        if offset + length > parent.size:
            raise InvalidInput(f"window {offset}+{length} ends past {parent.name} "
                               f"({parent.size} bytes)", rule="window inside device")
        if writable and not parent.writable:
            raise InvalidInput(f"cannot open a writable window on read-only {parent.name}")
        self.parent = parent
        self.offset = offset
        self.name = f"{parent.name}[{offset}:{offset + length}]"
        super().__init__(ss, length // ss, parent.writable if writable is None else writable)

    def _read_at(self, offset: int, length: int) -> Buffer:
        return self.parent._read_at(self.offset + offset, length)

    def _write_at(self, offset: int, data: Buffer) -> None:
        self.parent._write_at(self.offset + offset, data)

    def pread(self, offset: int, length: int) -> Buffer:
        self._check_range(offset, length, offset >= 0 and length >= 0)
        return self.parent.pread(self.offset + offset, length)

    def pwrite(self, offset: int, data: Buffer) -> None:
        self._check_writable()
        self._check_range(offset, len(data), offset >= 0)
        self.parent.pwrite(self.offset + offset, data)

    def copy_from(self, offset: int, fd: int, length: int, src_offset: int = 0) -> int:
        self._check_writable()
        self._check_range(offset, length, offset >= 0)
        return self.parent.copy_from(self.offset + offset, fd, length, src_offset)

    def copy_to(self, offset: int, length: int, fd: int) -> int:
        self._check_range(offset, length, offset >= 0 and length >= 0)
        return self.parent.copy_to(self.offset + offset, length, fd)

    def flush(self) -> None:
        self.parent.flush()

    def close(self) -> None:
        """Closing a window leaves the parent open."""
        self.closed = True
