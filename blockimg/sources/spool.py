"""An anonymous temporary file that a stream is copied into, to be read at offsets.

An image's layout needs every file's size before its first byte is written,
and a pipe can be read only once, in order: so a stream (``-``, a compressed
archive, a git repository's blobs) is first copied into a spool -- one copy
on disk, in bounded memory -- and the image is built from ranges of it.

On Linux the spool is an ``O_TMPFILE`` (or, where the file system has none,
a file unlinked at once): nothing is left behind, even after a crash; its
name for reopening is ``/proc/self/fd/N``. Elsewhere it is a named file
(mode 0600) removed on close.
"""
from __future__ import annotations

import errno
import os
import tempfile
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Callable, Optional

from ..errors import DeviceError

__all__ = ["Spool", "CHUNK"]

#: Bytes moved per read/write while spooling.
CHUNK = 1 << 20
_PROC_FD = "/proc/self/fd"


class Spool:
    """A temporary file in ``directory``, written by appending, read by name or fd.

    ``path`` opens it again (for the image writer, which opens its sources
    by name); ``size`` is the number of bytes appended. Close it (or use
    ``with``) when the image is built.
    """

    def __init__(self, directory: Optional[str] = None) -> None:
        directory = directory or tempfile.gettempdir()
        self._named: Optional[str] = None
        self.size = 0
        try:
            self.fd = self._anonymous(directory)
        except OSError as e:
            raise DeviceError(f"{directory}: cannot make a temporary file there: "
                              f"{e.strerror}", errno=e.errno) from None
        self.path = self._named or f"{_PROC_FD}/{self.fd}"

    def _anonymous(self, directory: str) -> int:
        cloexec = getattr(os, "O_CLOEXEC", 0)
        if os.path.isdir(_PROC_FD):
            flag = getattr(os, "O_TMPFILE", 0)
            if flag:
                try:
                    return os.open(directory, flag | os.O_RDWR | cloexec, 0o600)
                except OSError:
                    pass                  # no O_TMPFILE on this file system
            fd, name = tempfile.mkstemp(prefix=".blockimg-spool-", dir=directory)
            os.unlink(name)
            return fd
        fd, self._named = tempfile.mkstemp(prefix=".blockimg-spool-", dir=directory)
        return fd

    def append(self, data) -> int:
        """Write ``data`` at the end; its offset in the spool."""
        at = self.size
        view = memoryview(data)
        while view:
            try:
                n = os.pwrite(self.fd, view, self.size)
            except OSError as e:
                raise DeviceError(f"spooling to a temporary file failed: {e.strerror}",
                                  errno=e.errno) from None
            self.size += n
            view = view[n:]
        return at

    def fill_from(self, fd: int, grown: Optional[Callable[[], None]] = None) -> bool:
        """Append everything left to read from the pipe ``fd``, moved by the kernel
        (``splice``); False, with nothing moved, where it cannot (not Linux, not a pipe).
        ``grown()`` is called after each move (``size`` says how far it got)."""
        splice = getattr(os, "splice", None)
        if splice is None:
            return False
        first = True
        while True:
            try:
                n = splice(fd, self.fd, 1 << 30, offset_dst=self.size)
            except OSError as e:
                if first and e.errno in (errno.EINVAL, errno.ENOSYS, errno.EBADF):
                    return False
                raise DeviceError(f"spooling to a temporary file failed: {e.strerror}",
                                  errno=e.errno) from None
            first = False
            if not n:
                return True
            self.size += n
            if grown is not None:
                grown()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self._named is not None:
            try:
                os.unlink(self._named)
            except OSError:
                pass
            self._named = None

    def __enter__(self) -> "Spool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
