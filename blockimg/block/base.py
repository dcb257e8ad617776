"""The BlockDevice protocol and the byte-level helpers every backend shares.

A backend implements four things: ``_read_at(offset, length)`` and
``_write_at(offset, data)`` for sector-aligned byte ranges, ``flush`` and
``close``. Everything else -- sector-numbered access with range checks,
unaligned byte reads, read-modify-write for unaligned writes, copying from a
source file (``copy_from``) or to an open file, pipe or socket (``copy_to``)
-- is built here on top of those, in bounded memory; backends on a file
override the copies to move the bytes inside the kernel.
"""
from __future__ import annotations

import os
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Union

from ..errors import DeviceError, InvalidInput
from ..units import is_power_of_two

__all__ = ["BlockDevice", "Buffer", "MIN_SECTOR", "MAX_SECTOR", "COPY_CHUNK", "FORKABLE"]

if TYPE_CHECKING:
    Buffer = Union[bytes, bytearray, memoryview]
else:   # (a name for annotations; typing not imported)
    Buffer = 'Union[bytes, bytearray, memoryview]'

MIN_SECTOR = 512
MAX_SECTOR = 1 << 16
COPY_CHUNK = 1 << 20
#: The backend classes whose devices forked children can read as the parent does (a
#: file descriptor, a shared mapping, memory copied on fork): each built-in backend adds
#: its own class when its module loads (so asking imports no backend); a plugin's is
#: not here, as it may hold a connection that must not be shared.
FORKABLE: set = set()


class BlockDevice:
    """A fixed-size array of sectors.

    Attributes: ``sector_size`` (a power of two, 512 and up), ``sector_count``,
    ``writable``. Sector access: :meth:`read`, :meth:`write`. Byte access:
    :meth:`pread`, :meth:`pwrite`, :meth:`copy_from`, :meth:`copy_to`.
    """

    sector_size: int
    sector_count: int
    writable: bool
    name: str = "device"

    def __init__(self, sector_size: int, sector_count: int, writable: bool) -> None:
        if not is_power_of_two(sector_size) or not MIN_SECTOR <= sector_size <= MAX_SECTOR:
            raise InvalidInput(f"sector size must be a power of two from {MIN_SECTOR} "
                               f"to {MAX_SECTOR}, got {sector_size}", rule="sector size")
        if sector_count < 0:
            raise InvalidInput(f"negative sector count {sector_count}")
        self.sector_size = sector_size
        self.sector_count = sector_count
        self.writable = writable
        self.closed = False

    # -- what a backend provides -------------------------------------------
    def _read_at(self, offset: int, length: int) -> Buffer:
        raise NotImplementedError

    def _write_at(self, offset: int, data: Buffer) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        """Make written data durable (no-op where that means nothing)."""

    def close(self) -> None:
        self.closed = True

    # -- sector access -----------------------------------------------------
    @property
    def size(self) -> int:
        """Size in bytes."""
        return self.sector_size * self.sector_count

    def read(self, sector: int, count: int = 1) -> Buffer:
        """Read ``count`` whole sectors starting at ``sector``."""
        self._check_range(sector * self.sector_size, count * self.sector_size,
                          sector >= 0 and count >= 0)
        return self._read_at(sector * self.sector_size, count * self.sector_size)

    def write(self, sector: int, data: Buffer) -> None:
        """Write whole sectors starting at ``sector``."""
        if len(data) % self.sector_size:
            raise InvalidInput(f"write of {len(data)} bytes is not a whole number of "
                               f"{self.sector_size}-byte sectors", rule="sector alignment")
        self._check_writable()
        self._check_range(sector * self.sector_size, len(data), sector >= 0)
        self._write_at(sector * self.sector_size, data)

    # -- byte access -------------------------------------------------------
    def pread(self, offset: int, length: int) -> Buffer:
        """Read ``length`` bytes at any byte ``offset`` (zero-copy where the backend can)."""
        self._check_range(offset, length, offset >= 0 and length >= 0)
        ss = self.sector_size
        start = offset - offset % ss
        end = -(-(offset + length) // ss) * ss
        if start == offset and end == offset + length:
            return self._read_at(offset, length)
        data = self._read_at(start, end - start)
        return memoryview(data)[offset - start:offset - start + length]

    def pwrite(self, offset: int, data: Buffer) -> None:
        """Write bytes at any byte offset; partial sectors are read, merged, rewritten."""
        self._check_writable()
        length = len(data)
        self._check_range(offset, length, offset >= 0)
        if length == 0:
            return
        ss = self.sector_size
        head = offset % ss
        tail = (offset + length) % ss
        if head == 0 and tail == 0:
            self._write_at(offset, data)
            return
        start = offset - head
        end = offset + length + ((ss - tail) % ss)
        # Merge only the first and last sector; the middle is written as is.
        first = bytearray(self._read_at(start, ss))
        if end - start == ss:
            first[head:head + length] = data
            self._write_at(start, first)
            return
        mv = memoryview(data)
        first[head:] = mv[:ss - head]
        self._write_at(start, first)
        middle_start = start + ss
        middle_end = end - ss if tail else end
        if middle_end > middle_start:
            self._write_at(middle_start, mv[middle_start - offset:middle_end - offset])
        if tail:
            last = bytearray(self._read_at(end - ss, ss))
            last[:tail] = mv[end - ss - offset:]
            self._write_at(end - ss, last)

    def copy_from(self, offset: int, fd: int, length: int, src_offset: int = 0) -> int:
        """Copy ``length`` bytes of open file ``fd`` (from ``src_offset``) to byte ``offset``.

        Returns the number of bytes copied, which is less than ``length``
        only when the source ended early. Uses a bounded buffer; backends
        override this to move data inside the kernel.
        """
        self._check_writable()
        self._check_range(offset, length, offset >= 0)
        done = 0
        while done < length:
            chunk = os.pread(fd, min(COPY_CHUNK, length - done), src_offset + done)
            if not chunk:
                break
            self.pwrite(offset + done, chunk)
            done += len(chunk)
        return done

    def copy_to(self, offset: int, length: int, fd: int) -> int:
        """Write ``length`` bytes from byte ``offset`` to open file descriptor ``fd``.

        Writes at ``fd``'s current position (as ``os.write`` does) and
        returns ``length``. Bounded memory: at most :data:`COPY_CHUNK` bytes
        are held at a time (none at all where ``pread`` is zero-copy).
        Errors writing to ``fd`` are raised as the ``OSError`` they are
        (``BrokenPipeError`` for a closed pipe).
        """
        self._check_range(offset, length, offset >= 0 and length >= 0)
        return self._copy_to_chunks(offset, length, fd)

    def _copy_to_chunks(self, offset: int, length: int, fd: int) -> int:
        done = 0
        while done < length:
            view = memoryview(self.pread(offset + done, min(COPY_CHUNK, length - done)))
            n = len(view)
            while view:
                view = view[os.write(fd, view):]
            done += n
        return done

    def zero(self, offset: int, length: int) -> None:
        """Write zeros over a byte range (bounded memory)."""
        zeros = bytes(min(length, COPY_CHUNK))
        while length > 0:
            n = min(length, len(zeros))
            self.pwrite(offset, zeros[:n] if n < len(zeros) else zeros)
            offset += n
            length -= n

    # -- helpers -----------------------------------------------------------
    def _check_writable(self) -> None:
        if self.closed:
            raise DeviceError(f"{self.name}: device is closed")
        if not self.writable:
            raise DeviceError(f"{self.name}: device is read-only (open it writable to write)")

    def _check_range(self, offset: int, length: int, ok: bool = True) -> None:
        if self.closed:
            raise DeviceError(f"{self.name}: device is closed")
        if not ok or offset + length > self.size:
            raise DeviceError(
                f"{self.name}: access of {length} bytes at byte {offset} is outside the "
                f"device ({self.size} bytes)")

    def __enter__(self) -> "BlockDevice":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.name} {self.sector_count}x{self.sector_size}"
                f"{' rw' if self.writable else ' ro'}>")
