"""Raw image file or block device node, with positional I/O.

Never-written regions of a new image stay holes (the file is sparse). On a
device node the size comes from the device. ``copy_from`` and ``copy_to``
move data inside the kernel (``copy_file_range`` between regular files,
``sendfile`` to anything else: pipes, sockets, ``/dev/null``) and fall back
to a bounded buffer where the kernel says no (``O_APPEND`` outputs,
terminals, old kernels, other systems).
"""
from __future__ import annotations

import errno
import os
import stat
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Optional

from ..errors import DeviceError, InvalidInput, NotWholeSectors
from .base import COPY_CHUNK, FORKABLE, BlockDevice, Buffer

__all__ = ["FileDevice"]

_HAVE_CFR = hasattr(os, "copy_file_range")
_HAVE_SENDFILE = hasattr(os, "sendfile")
#: The kernel cannot do this copy (try the next way); anything else is a real error.
_NOT_HERE = {errno.EINVAL, errno.EXDEV, errno.ENOSYS, errno.EBADF, errno.EOPNOTSUPP,
             getattr(errno, "ENOTSUP", errno.EOPNOTSUPP), errno.ETXTBSY, errno.EPERM}
#: The largest count one copy_file_range/sendfile call is asked for (Linux caps at 2 GiB).
_KERNEL_STEP = 1 << 30


class FileDevice(BlockDevice):
    """A block device on a regular file or a device node.

    ``FileDevice(path)`` opens an existing image read-only;
    ``FileDevice(path, writable=True)`` opens it for writing;
    :meth:`create` makes a new (sparse) image file of a given size.
    """

    def __init__(self, path: str, *, writable: bool = False, sector_size: int = 512,
                 _fd: Optional[int] = None) -> None:
        self.path = os.fspath(path)
        self.name = self.path
        flags = (os.O_RDWR if writable else os.O_RDONLY) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = _fd if _fd is not None else os.open(self.path, flags)
        except OSError as e:
            raise DeviceError(f"{self.path}: cannot open: {e.strerror}", errno=e.errno) from None
        self.fd = fd
        st = os.fstat(fd)
        self.is_device = stat.S_ISBLK(st.st_mode)
        size = os.lseek(fd, 0, os.SEEK_END) if self.is_device else st.st_size
        if size % sector_size:
            os.close(fd)
            raise NotWholeSectors(self.path, size=size, sector_size=sector_size)
        super().__init__(sector_size, size // sector_size, writable)
        self._cfr = _HAVE_CFR and not self.is_device
        #: How copy_to tries to move bytes inside the kernel, in order.
        self._ways = ([self._cfr_to] if self._cfr else []) + \
            ([self._sendfile_to] if _HAVE_SENDFILE else [])

    @classmethod
    def create(cls, path: str, size: int, *, sector_size: int = 512,
               mode: int = 0o666) -> "FileDevice":
        """Create (or truncate) ``path`` as a sparse image of ``size`` bytes."""
        if size % sector_size:
            raise InvalidInput(f"image size {size} is not a multiple of the sector size "
                               f"{sector_size}", rule="image length must be whole sectors")
        flags = os.O_RDWR | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(path, flags, mode)
            os.ftruncate(fd, size)
        except OSError as e:
            raise DeviceError(f"{path}: cannot create: {e.strerror}", errno=e.errno) from None
        return cls(path, writable=True, sector_size=sector_size, _fd=fd)

    def _read_at(self, offset: int, length: int) -> Buffer:
        try:
            data = os.pread(self.fd, length, offset)
        except OSError as e:
            raise DeviceError(f"{self.path}: read of {length} bytes at {offset} failed: "
                              f"{e.strerror}", errno=e.errno) from None
        if len(data) != length:
            # Short read: the file shrank under us; read the rest in a loop.
            parts = [data]
            got = len(data)
            while got < length:
                more = os.pread(self.fd, length - got, offset + got)
                if not more:
                    raise DeviceError(f"{self.path}: short read at {offset + got} "
                                      f"(file shorter than its {self.size} bytes?)")
                parts.append(more)
                got += len(more)
            data = b"".join(parts)
        return data

    def _write_at(self, offset: int, data: Buffer) -> None:
        view = memoryview(data)
        try:
            while view:
                n = os.pwrite(self.fd, view, offset)
                view = view[n:]
                offset += n
        except OSError as e:
            raise DeviceError(f"{self.path}: write at byte {offset} failed: {e.strerror}",
                              errno=e.errno) from None

    def copy_from(self, offset: int, fd: int, length: int, src_offset: int = 0) -> int:
        self._check_writable()
        self._check_range(offset, length, offset >= 0)
        done = 0
        if self._cfr:
            try:
                while done < length:
                    n = os.copy_file_range(fd, self.fd, length - done,
                                           src_offset + done, offset + done)
                    if n == 0:
                        return done
                    done += n
                return done
            except OSError as e:
                if e.errno in (errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EFBIG):
                    raise DeviceError(f"{self.path}: write at byte {offset + done} failed: "
                                      f"{e.strerror}", errno=e.errno) from None
                self._cfr = False  # e.g. EXDEV on old kernels, EINVAL on odd filesystems
        # Bounded buffer fallback (also used for device nodes).
        while done < length:
            try:
                chunk = os.pread(fd, min(COPY_CHUNK, length - done), src_offset + done)
            except OSError as e:
                raise DeviceError(f"reading source failed: {e.strerror}", errno=e.errno) from None
            if not chunk:
                break
            self._write_at(offset + done, chunk)
            done += len(chunk)
        return done

    def copy_to(self, offset: int, length: int, fd: int) -> int:
        """Write bytes ``[offset, offset + length)`` to ``fd``, inside the kernel where it can.

        ``copy_file_range`` first (regular files; anything else refuses it
        at once), then ``sendfile`` (pipes, sockets, ``/dev/null``), then the
        base class's bounded buffer for whatever is left -- which is also
        where an image that shrank under us is reported. Writes at ``fd``'s
        position like ``os.write``; the image file's own position is never
        used.
        """
        self._check_range(offset, length, offset >= 0 and length >= 0)
        done = 0
        ways = self._ways
        for k, way in enumerate(ways):
            try:
                while done < length:
                    n = way(fd, offset + done, min(length - done, _KERNEL_STEP))
                    if n == 0:
                        break                    # not here after all: the next way decides
                    done += n
                else:
                    if k:
                        # The ways before it refused: try this one first next time (an
                        # extraction to another file system refuses copy_file_range on
                        # every file; a refusal costs a system call and an exception).
                        self._ways = [way] + [w for w in ways if w is not way]
                    return done
            except OSError as e:
                if e.errno not in _NOT_HERE:
                    raise
        return done + self._copy_to_chunks(offset + done, length - done, fd)

    def _cfr_to(self, fd: int, offset: int, count: int) -> int:
        return os.copy_file_range(self.fd, fd, count, offset)

    def _sendfile_to(self, fd: int, offset: int, count: int) -> int:
        return os.sendfile(fd, self.fd, offset, count)

    def flush(self) -> None:
        if self.writable and not self.closed:
            try:
                os.fsync(self.fd)
            except OSError as e:
                raise DeviceError(f"{self.path}: fsync failed: {e.strerror}",
                                  errno=e.errno) from None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.fd)


FORKABLE.add(FileDevice)
