"""A partition that computes the SHA-256 of its bytes while they are written.

:class:`HashingWindow` is a window over the new disk that hashes each write
as it passes, as long as the writes come in order (both writers' gathered
writes do). A copy from a file into it in that order (a big file, an image
volume) is read through a buffer rather than moved by the kernel: each piece
is written from the buffer and hashed on a helper thread while the next is
read, so the hash -- the costliest part of a disk of big files -- overlaps
the copy, and no byte is read twice. What was not hashed on the way -- a gap
left as a hole, anything after a write out of order (then moved by the
kernel) -- is read back once when :meth:`~HashingWindow.hexdigest` is asked
for; a write over bytes already hashed makes it read the whole partition
back. Either way the digest is the SHA-256 of the partition's final bytes,
so a partition's GUID is the same however it was written.
"""
from __future__ import annotations

import hashlib
import os
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import List, Optional

from ..block.base import BlockDevice, Buffer
from ..block.window import WindowDevice
from ..errors import DeviceError
from ..write.write_behind import WriteBehind

__all__ = ["HashingWindow", "PIECE"]

_READ_CHUNK = 1 << 20
#: The size of each of the two buffers a copy is read through (one is hashed while the
#: other is read and written).
PIECE = 1 << 20


class HashingWindow(WindowDevice):
    """A writable window whose :meth:`hexdigest` is the SHA-256 of its bytes.

    :meth:`close` ends the helper thread of a window whose digest is not wanted.
    """

    #: Its writes release the GIL while they hash and write, so a
    #: :class:`~blockimg.write.copier.Copier` writes them behind, on its helper thread.
    write_behind = True

    def __init__(self, parent: BlockDevice, offset: int, length: int) -> None:
        super().__init__(parent, offset, length, writable=True)
        self._sha = hashlib.sha256()
        self._hashed = 0          # bytes [0, _hashed) are in _sha, in order
        self._stale = False       # a write landed on bytes already hashed
        self._hasher: Optional[WriteBehind] = None   # made by the first copy
        self._pieces: List[memoryview] = []

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
        if offset != self._hashed:        # out of order: the kernel copies, read back later
            if offset < self._hashed:
                self._stale = True
            return super().copy_from(offset, fd, length, src_offset)
        self._check_range(offset, length, offset >= 0)
        if self._hasher is None:
            self._hasher = WriteBehind(lambda _, data: self._sha.update(data))
            self._pieces = [memoryview(bytearray(PIECE)) for _ in range(2)]
        hasher, done, turn = self._hasher, 0, 0
        try:
            while done < length:
                piece = self._pieces[turn][:min(PIECE, length - done)]
                try:
                    n = os.preadv(fd, [piece], src_offset + done)
                except OSError as e:
                    raise DeviceError(f"reading source failed: {e.strerror}",
                                      errno=e.errno) from None
                if not n:
                    break
                super().pwrite(offset + done, piece[:n])
                hasher.submit(offset + done, piece[:n])   # once the other piece is hashed
                done += n
                turn ^= 1
            hasher.wait()
        except BaseException:
            self._stale = True            # whatever was hashed, hexdigest starts again
            raise
        self._hashed += done
        return done

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
        self._end_hasher()
        if self._stale:
            self._sha, self._hashed, self._stale = hashlib.sha256(), 0, False
        self._read_back(self.size - self._hashed)
        return self._sha.hexdigest()

    def _end_hasher(self) -> None:
        if self._hasher is not None:
            self._hasher.close()
            self._hasher, self._pieces = None, []

    def close(self) -> None:
        """End the helper thread and close the window."""
        self._end_hasher()
        super().close()
