"""A partition that computes the SHA-256 of its bytes while they are written.

:class:`HashingWindow` is a window over the new disk that hashes each write
as it passes, as long as the writes come in order (both writers' gathered
writes do). What it could not hash on the way -- a range copied inside the
kernel, a gap left as a hole, anything after a write out of order -- is read
back once when :meth:`~HashingWindow.hexdigest` is asked for; a write over
bytes already hashed makes it read the whole partition back. Either way the
digest is the SHA-256 of the partition's final bytes, so a partition's GUID
is the same however it was written.
"""
from __future__ import annotations

import hashlib

from ..block.base import BlockDevice, Buffer
from ..block.window import WindowDevice
from ..errors import DeviceError

__all__ = ["HashingWindow"]

_READ_CHUNK = 1 << 20


class HashingWindow(WindowDevice):
    """A writable window whose :meth:`hexdigest` is the SHA-256 of its bytes."""

    #: Its writes release the GIL while they hash and write, so a
    #: :class:`~blockimg.write.copier.Copier` writes them behind, on its helper thread.
    write_behind = True

    def __init__(self, parent: BlockDevice, offset: int, length: int) -> None:
        super().__init__(parent, offset, length, writable=True)
        self._sha = hashlib.sha256()
        self._hashed = 0          # bytes [0, _hashed) are in _sha, in order
        self._stale = False       # a write landed on bytes already hashed

    def _saw(self, offset: int, data: Buffer) -> None:
        if offset == self._hashed:
            self._sha.update(data)
            self._hashed += len(data)
        elif offset < self._hashed:
            self._stale = True
        # A write past a gap is read back with the gap.

    def _write_at(self, offset: int, data: Buffer) -> None:
        super()._write_at(offset, data)
        self._saw(offset, data)

    def pwrite(self, offset: int, data: Buffer) -> None:
        super().pwrite(offset, data)
        self._saw(offset, data)

    def copy_from(self, offset: int, fd: int, length: int, src_offset: int = 0) -> int:
        got = super().copy_from(offset, fd, length, src_offset)
        if offset < self._hashed:
            self._stale = True
        elif offset == self._hashed:
            self._read_back(got)
        return got

    def _read_back(self, length: int) -> None:
        """Hash ``length`` bytes from where hashing stopped, read from the disk."""
        end = self._hashed + length
        while self._hashed < end:
            chunk = self.pread(self._hashed, min(_READ_CHUNK, end - self._hashed))
            if not chunk:
                raise DeviceError(f"short read of the new disk at byte "
                                  f"{self.offset + self._hashed}")
            self._sha.update(chunk)
            self._hashed += len(chunk)

    def hexdigest(self) -> str:
        """The SHA-256 of the whole window as it is now (call it after the last write)."""
        if self._stale:
            self._sha, self._hashed, self._stale = hashlib.sha256(), 0, False
        self._read_back(self.size - self._hashed)
        return self._sha.hexdigest()
