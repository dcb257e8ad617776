"""A partition that computes the SHA-256 of its bytes while they are written.

:class:`HashingWindow` is a window over the new disk that hashes each write
as it passes, as long as the writes come in order (both writers' gathered
writes do). A range copied inside the kernel (``copy_file_range``: a big
file, an image volume) is copied in pieces, and a helper thread reads each
piece back from the disk and hashes it while the next one is copied: the
hash, the costliest part of a disk of big files, overlaps the copy instead
of following it. What was not hashed on the way -- a gap left as a hole,
anything after a write out of order -- is read back when
:meth:`~HashingWindow.hexdigest` is asked for; a write over bytes already
hashed or waiting to be read back makes it read the whole partition back.
Either way the digest is the SHA-256 of the partition's final bytes, so a
partition's GUID is the same however it was written.
"""
from __future__ import annotations

import hashlib
from _thread import allocate_lock as _Lock     # threading.Lock itself
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Optional

from ..block.base import BlockDevice, Buffer
from ..block.window import WindowDevice
from ..errors import DeviceError

__all__ = ["HashingWindow", "COPY_PIECE"]

_READ_CHUNK = 1 << 20
#: A kernel copy into the window is made in pieces of this many bytes, each read back
#: and hashed on the helper thread while the next is copied. Measured (1 GiB of big
#: files): copying a piece takes ~0.4 ms per MiB, hashing it ~0.6 ms per MiB, so the
#: helper thread lags by at most a piece plus what it cannot keep up with.
COPY_PIECE = 16 << 20


class HashingWindow(WindowDevice):
    """A writable window whose :meth:`hexdigest` is the SHA-256 of its bytes.

    Writes may come from two threads in turn (the caller's and a
    :class:`~blockimg.write.copier.Copier`'s write-behind thread); :meth:`close`
    ends the read-back thread of a window whose digest is not wanted.
    """

    #: Its writes release the GIL while they hash and write, so a
    #: :class:`~blockimg.write.copier.Copier` writes them behind, on its helper thread.
    write_behind = True

    def __init__(self, parent: BlockDevice, offset: int, length: int) -> None:
        super().__init__(parent, offset, length, writable=True)
        self._sha = hashlib.sha256()
        self._hashed = 0          # bytes [0, _hashed) are in _sha, in order
        self._known = 0           # bytes [0, _known) are written: hashed, or to read back
        self._stale = False       # a write landed on bytes already hashed or queued
        self._lock = _Lock()      # guards the three above
        self._cond = None         # a Condition on _lock, made with the read-back thread
        self._reader = None       # that thread, started by the first kernel copy
        self._ending = False
        self._error: Optional[BaseException] = None

    def _saw(self, offset: int, data: Buffer) -> None:
        with self._lock:
            if offset == self._known:
                if self._hashed == offset:        # nothing waits to be read back
                    self._sha.update(data)
                    self._hashed += len(data)
                self._known += len(data)          # else the reader reads it back in turn
            elif offset < self._known:
                self._stale = True
            # A write past a gap is read back with the gap.

    def _write_at(self, offset: int, data: Buffer) -> None:
        super()._write_at(offset, data)
        self._saw(offset, data)

    def pwrite(self, offset: int, data: Buffer) -> None:
        super().pwrite(offset, data)
        self._saw(offset, data)

    def copy_from(self, offset: int, fd: int, length: int, src_offset: int = 0) -> int:
        done = 0
        while done < length:
            n = min(COPY_PIECE, length - done)
            got = super().copy_from(offset + done, fd, n, src_offset + done)
            self._copied(offset + done, got)
            done += got
            if got < n:
                break
        return done

    def _copied(self, offset: int, length: int) -> None:
        """``length`` bytes at ``offset`` were written without passing through here:
        queue them for the read-back thread (started now if need be)."""
        if self._cond is None:
            import threading
            self._cond = threading.Condition(self._lock)
            self._reader = threading.Thread(target=self._read_behind, daemon=True,
                                            name="blockimg partition digest")
            self._reader.start()
        with self._cond:
            if offset == self._known:
                self._known += length
                self._cond.notify()
            elif offset < self._known:
                self._stale = True

    def _read_behind(self) -> None:
        """The read-back thread: hash ``[_hashed, _known)`` from the disk as it grows,
        until :meth:`_end_reader` and nothing is left."""
        cond = self._cond
        try:
            while True:
                with cond:
                    while self._hashed == self._known and not self._ending:
                        cond.wait()
                    start, end = self._hashed, self._known
                    if start >= end:               # caught up (or dropped by close)
                        return
                end = min(end, start + _READ_CHUNK)
                chunk = self.pread(start, end - start)
                if len(chunk) != end - start:
                    raise DeviceError(f"short read of the new disk at byte "
                                      f"{self.offset + start}")
                self._sha.update(chunk)           # _saw leaves _sha alone meanwhile
                with cond:
                    self._hashed = end
        except BaseException as e:               # raised again by hexdigest
            self._error = e

    def _end_reader(self) -> None:
        """Let the read-back thread finish what is queued, and wait for it."""
        if self._reader is None:
            return
        with self._cond:
            self._ending = True
            self._cond.notify()
        self._reader.join()
        self._reader = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

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
        self._end_reader()
        if self._stale:
            self._sha, self._hashed, self._stale = hashlib.sha256(), 0, False
        self._read_back(self.size - self._hashed)
        self._known = self._hashed
        return self._sha.hexdigest()

    def close(self) -> None:
        """End the read-back thread (its work is dropped) and close the window."""
        if self._reader is not None:
            with self._cond:
                self._ending = True
                self._known = self._hashed        # nothing more to read back
                self._cond.notify()
            self._reader.join()
            self._reader = None
        super().close()
