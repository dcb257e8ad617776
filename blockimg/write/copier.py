"""Moving bytes onto a device: coalesced metadata writes and file contents.

Both writers go through :class:`Copier`, so every image gets the same
guarantees: small writes are gathered into large sequential ones; big files
move inside the kernel (``copy_file_range``) unless a checksum is wanted;
memory stays bounded by the buffer whatever the file sizes; a source file
that changed since planning is detected and reported. A file's content is a
whole source file, or (``entry.offset``) a byte range of one -- a member of
an archive -- read in place at that offset.
"""
from __future__ import annotations

import os
import sys
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Callable, Dict, Iterable, Optional, Sequence, Tuple

from ..block.base import BlockDevice, Buffer
from ..block.file import FileDevice
from ..errors import DeviceError, SourceChanged
from ..sources.directory import SourceEntry
from .write_behind import WriteBehind

__all__ = ["Copier", "write_in_parts"]

SMALL_FILE = 256 * 1024      # files up to this size are read into the write buffer
BUFFER = 1024 * 1024         # largest gathered write (one buffer, allocated once)
#: Bytes written in the calling thread before the write-behind thread takes over.
#: Measured (docs/PERFORMANCE.rst): on the example site (9.7 MB) the thread did not
#: pay (its start, threading's import and the hand-overs cost what the overlap saves);
#: larger builds keep it.
BEHIND_AFTER = 16 * 1024 * 1024
READ_CHUNK = 1024 * 1024
_ZEROS = memoryview(bytes(64 * 1024))
_HAVE_PREADV = hasattr(os, "preadv")
_O_READ = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
#: Start the kernel's write-out of an image file every this many bytes written, so the
#: final fsync finds little left to write (the disk works while Python does).
WRITEBACK_EVERY = 8 * 1024 * 1024
_SYNC_FILE_RANGE_WRITE = 2


def _sync_file_range():
    """libc's ``sync_file_range`` (Linux), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (ImportError, OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def write_in_parts(device: BlockDevice, items: Sequence, size_of: Callable[[object], int],
                   write_part: Callable[["Copier", int, int, bool], None], *, jobs: int = 1,
                   checksum: bool = False, total: int = 0,
                   progress: Optional[Callable[[int, int], None]] = None) -> Dict[str, int]:
    """``write_part(copier, start, stop, first)`` for contiguous parts of ``items`` (in
    image order), over ``jobs`` processes (:func:`blockimg.write.parallel.fork_map`); the
    CRC-32Cs of every part when ``checksum``.

    Parts are weighed by :func:`~blockimg.write.parallel.split_files`. There is one part
    unless ``jobs`` > 1 and ``device`` is an image file or device node, whose writes
    every process shares through the kernel (a memory or plugin device would not see a
    child's writes). One part writes behind on a helper thread; several do not (more
    threads than CPUs: measured slower).
    """
    from .parallel import fork_map, split_files
    ranges = [(0, len(items))]
    if jobs > 1 and isinstance(device, FileDevice) and hasattr(os, "fork"):
        ranges = split_files(map(size_of, items), jobs)
    solo = len(ranges) == 1

    def part(i: int, tick) -> Dict[str, int]:
        start, stop = ranges[i]
        with Copier(device, checksum=checksum, total=total, behind=None if solo else False,
                    progress=None if tick is None else lambda done, _total: tick(done)) as cp:
            write_part(cp, start, stop, i == 0)
            cp.flush()
        return cp.crcs

    crcs: Dict[str, int] = {}
    # A worker killed without an answer (out of memory) has its part written again here:
    # the same bytes at the same offsets.
    for got in fork_map(part, len(ranges), redo_killed=True,
                        progress=progress and (lambda done: progress(done, total))):
        crcs.update(got)
    return crcs



class Copier:
    """Writes to ``device`` at given byte offsets, gathering adjacent writes.

    ``checksum=True`` computes each file's CRC-32C while copying (into
    ``self.crcs[path]``); this reads data through Python instead of moving
    it in the kernel. ``progress(done, total)`` is called as file bytes move.
    ``behind=True`` (the default for a :class:`FileDevice`, whose writes
    release the GIL) writes each full buffer on a helper thread while the
    next one fills (:class:`~blockimg.write.write_behind.WriteBehind`; a second
    buffer), as for any device whose ``write_behind`` attribute is true, once
    ``behind_after`` bytes have been written in the calling thread (a smaller build
    starts no thread). Use it as a context manager, or call :meth:`close`; only
    :meth:`flush` guarantees that everything put so far is on the device.
    """

    def __init__(self, device: BlockDevice, *, checksum: bool = False,
                 progress: Optional[Callable[[int, int], None]] = None,
                 total: int = 0, buffer_size: int = BUFFER,
                 behind: Optional[bool] = None, behind_after: int = BEHIND_AFTER) -> None:
        self.device = device
        self.checksum = checksum
        self.crcs: Dict[str, int] = {}
        self._crc = None
        if checksum:     # (imported here: a build without a manifest needs no CRC)
            from ..trust.checksum import crc32c
            self._crc = crc32c()
        self.progress = progress
        self.total = total
        self.done = 0
        self._cap = max(int(buffer_size), 1)
        # One buffer for the whole build: small files are read straight into it and it
        # is written from in place, so no byte is copied twice and memory stays flat.
        self._view = memoryview(bytearray(self._cap + 1))  # +1: a small read's growth probe
        if behind is None:       # a device may say its writes release the GIL too
            behind = getattr(device, "write_behind", isinstance(device, FileDevice))
        # With a helper thread, the buffer being written and the one being filled swap.
        self._behind = WriteBehind(device.pwrite) if behind else None
        self._other = None       # the second buffer, made at the first write behind
        self._sync_left = behind_after   # bytes still to write here before writing behind
        self._range_fd, self._range_path = -1, None   # the archive ranges are read from
        self._n = 0                               # bytes gathered
        self._buf_off = 0                         # image offset of self._view[0]
        # Early write-out: only for an image in a regular file that will be fsynced (the
        # caller sets ``device.early_writeout``; blockimg.create does unless fsync=False);
        # a hint to the kernel, never needed for correctness. The function (ctypes) is
        # looked up when the first write-out is due: a smaller build does without.
        self._wb = None
        self._wb_fd = -1
        self._wb_due = WRITEBACK_EVERY
        if isinstance(device, FileDevice) and not device.is_device and \
                getattr(device, "early_writeout", False):
            self._wb_fd = device.fd

    def __enter__(self) -> "Copier":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """End the helper thread (after its pending write). Does not flush."""
        if self._behind is not None:
            self._behind.close()
        self._drop_range_fd()

    def _open(self, entry: SourceEntry) -> int:
        """An fd of ``entry.source``: opened for this file, or -- for a byte range, the
        members of one archive one after another -- the archive's, kept open."""
        if entry.offset is None:
            return os.open(entry.source, _O_READ)
        if entry.source != self._range_path:
            fd = os.open(entry.source, _O_READ)
            self._drop_range_fd()
            self._range_fd, self._range_path = fd, entry.source
        return self._range_fd

    def _drop_range_fd(self) -> None:
        if getattr(self, "_range_fd", -1) >= 0:
            os.close(self._range_fd)
            self._range_fd, self._range_path = -1, None

    def __del__(self) -> None:
        # A Copier dropped without close() (a format plugin's writer, say) still ends its
        # thread: the thread holds the WriteBehind, never the Copier.
        if getattr(self, "_behind", None) is not None or getattr(self, "_range_fd", -1) >= 0:
            self.close()

    # -- gathered writes ---------------------------------------------------
    def _room(self, offset: int, n: int) -> int:
        """Make room for ``n`` contiguous bytes at image ``offset``; their buffer index."""
        used = self._n
        if used and (offset != self._buf_off + used or used + n > self._cap):
            self._spill()
            used = 0
        if not used:
            self._buf_off = offset
        return used

    def put(self, offset: int, data: Buffer) -> None:
        """Write ``data`` at ``offset`` (buffered while writes stay contiguous)."""
        n = len(data)
        if n == 0:
            return
        if n >= self._cap:
            self.flush()
            self.device.pwrite(offset, data)
            self._written(n)
            return
        i = self._room(offset, n)
        self._view[i:i + n] = data
        self._n = i + n

    def zero(self, offset: int, length: int) -> None:
        """Write ``length`` zero bytes at ``offset`` (explicitly, not as a hole)."""
        while length > 0:
            n = min(length, len(_ZEROS))
            self.put(offset, _ZEROS[:n])
            offset += n
            length -= n

    def _spill(self, *, here: bool = False) -> None:
        """Write out the gathered bytes: on the helper thread when there is one, unless
        ``here`` (in this thread, after the pending write)."""
        if self._n:
            n, self._n = self._n, 0
            if self._behind is not None and not here and self._sync_left <= 0:
                self._behind.submit(self._buf_off, self._view[:n])
                other = self._other
                if other is None:
                    other = memoryview(bytearray(self._cap + 1))
                self._view, self._other = other, self._view
            else:
                if self._behind is not None:
                    self._behind.wait()
                self.device.pwrite(self._buf_off, self._view[:n])
            self._written(n)

    def flush(self) -> None:
        """Write out everything put so far and wait until it is written. The last
        buffer is written in this thread: there is nothing left to overlap it with (so a
        build whose data fits one buffer starts no thread)."""
        self._spill(here=True)
        if self._behind is not None:
            self._behind.wait()

    def _written(self, n: int) -> None:
        self._sync_left -= n
        if self._wb_fd >= 0:
            self._wb_due -= n
            if self._wb_due <= 0:
                self._wb_due = WRITEBACK_EVERY
                if self._wb is None:
                    self._wb = _sync_file_range()
                # Whole file (0, 0): pages already being written are skipped.
                if self._wb is None or self._wb(self._wb_fd, 0, 0, _SYNC_FILE_RANGE_WRITE):
                    self._wb_fd = -1

    finish = flush

    # -- file contents -----------------------------------------------------
    def put_records(self, records: Iterable[Tuple[int, Buffer, Optional[SourceEntry]]],
                    pad: int = 1) -> None:
        """Write ``(offset, head, entry)`` records in one loop.

        ``head`` goes at ``offset``; when ``entry`` is given (a regular file),
        its content follows the head directly, then zeros up to a multiple of
        ``pad`` bytes of content (tar: a header, the data, its 512-byte padding).
        The common record, a small file, is gathered whole by :meth:`_gather`;
        anything else goes through :meth:`put` and :meth:`put_file`.
        """
        gather = self._gather
        for offset, head, entry in records:
            if entry is None:
                self.put(offset, head)
                continue
            size = entry.size
            tail = -size % pad
            if gather(offset, head, entry, tail):
                continue
            self.put(offset, head)
            self.put_file(entry, offset + len(head))
            if tail:
                self.zero(offset + len(head) + size, tail)

    def _gather(self, offset: int, head: Buffer, entry: SourceEntry, tail: int) -> bool:
        """Gather ``head``, the small file ``entry`` and ``tail`` zero bytes at ``offset``.

        The hot path of many small files: one open, one read of size+1 bytes
        straight into the write buffer (the extra byte sees the file grow), one
        close, no fstat. False, with nothing gathered, for anything else -- a big,
        empty, changed, vanished or unreadable file, or bytes given as ``data`` --
        which the caller then copies the long way (that names a change).
        """
        size = entry.size
        h = len(head)
        total = h + size + tail
        if not (_HAVE_PREADV and 0 < size <= SMALL_FILE and total <= self._cap
                and entry.data is None):
            return False
        n = self._n
        if n and (offset != self._buf_off + n or n + total > self._cap):
            self._spill()
            n = 0
        view = self._view
        j = n + h
        try:
            fd = self._open(entry)
        except (OSError, TypeError, ValueError):
            return False
        try:
            # The probe byte lands in the padding or past the gathered bytes (the
            # buffer has one byte more than its capacity for it). A range of a
            # file (an archive member) has no probe: what follows it is not its own.
            got = os.preadv(fd, [view[j:j + size + (entry.offset is None)]], entry.offset or 0)
        except OSError:
            got = -1
        finally:
            if fd != self._range_fd:
                os.close(fd)
        if got != size:
            return False
        if not n:
            self._buf_off = offset
        view[n:j] = head
        end = j + size
        if tail:
            view[end:end + tail] = _ZEROS[:tail]
        self._n = end + tail
        if self._crc is not None:
            self.crcs[entry.path] = self._crc(view[j:end])
        self.done += size
        if self.progress is not None:
            self.progress(self.done, self.total)
        return True

    def put_file(self, entry: SourceEntry, offset: int) -> int:
        """Copy the content of ``entry`` to ``offset``; returns its CRC-32C (0 without)."""
        if self._gather(offset, b"", entry, 0):
            return self.crcs.get(entry.path, 0)
        if entry.data is not None:
            if len(entry.data) != entry.size:
                raise SourceChanged("data length differs from the planned size",
                                    path=entry.path)
            self.put(offset, entry.data)
            crc = self._crc(entry.data) if self._crc else 0
            self._advance(entry, crc)
            return crc
        try:
            fd = self._open(entry)
        except FileNotFoundError:
            raise SourceChanged("vanished after the image was planned", path=entry.source,
                                rule="source must not change during the build") from None
        except OSError as e:
            raise DeviceError(f"{entry.source}: cannot read: {e.strerror}",
                              errno=e.errno) from None
        try:
            crc = 0
            if entry.size <= SMALL_FILE:
                # One read of size+1 bytes both copies the file and sees it grow (the size
                # is checked with fstat only when the read does not match it).
                crc = self._read_small(fd, entry, offset)
            else:
                self._check_size(fd, entry)
                if self.checksum:
                    crc = self._read_through(fd, entry, offset)
                else:
                    self.flush()
                    got = self._copy(offset, fd, entry.size, entry.offset or 0)
                    if got != entry.size:
                        self._changed(entry, got)
                if entry.offset is None:
                    try:
                        extra = os.pread(fd, 1, entry.size)
                    except OSError:
                        extra = b""
                    if extra:
                        self._grew(entry)
        finally:
            if fd != self._range_fd:
                os.close(fd)
        self._advance(entry, crc)
        return crc

    def _copy(self, offset: int, fd: int, size: int, start: int = 0) -> int:
        """Kernel copy of ``size`` bytes of ``fd`` from byte ``start``; in WRITEBACK_EVERY
        pieces when write-out is started as we go (so the disk writes one piece while the
        next is copied) or progress is reported (a big file moves the bar as it is
        copied)."""
        progress = self.progress
        if self._wb_fd < 0 and progress is None:
            return self.device.copy_from(offset, fd, size, start)
        done = 0
        while done < size:
            n = min(WRITEBACK_EVERY, size - done)
            got = self.device.copy_from(offset + done, fd, n, start + done)
            done += got
            self._written(got)
            if progress is not None:
                progress(self.done + done, self.total)
            if got < n:
                break
        return done

    def _check_size(self, fd: int, entry: SourceEntry) -> None:
        size = os.fstat(fd).st_size
        if entry.offset is not None:
            if size < entry.offset + entry.size:
                raise SourceChanged(f"{entry.path}: the archive shrank to {size} bytes, "
                                    f"before the member's data (bytes {entry.offset} to "
                                    f"{entry.offset + entry.size}) after the image was planned",
                                    path=entry.source,
                                    rule="source must not change during the build")
            return
        if size != entry.size:
            raise SourceChanged(f"size changed from {entry.size} to {size} bytes after "
                                "the image was planned", path=entry.source,
                                rule="source must not change during the build")

    def _read_small(self, fd: int, entry: SourceEntry, offset: int) -> int:
        size = entry.size
        if size == 0 or size >= self._cap or not _HAVE_PREADV:
            return self._read_small_bytes(fd, entry, offset)
        # Read size+1 bytes straight into the write buffer: one syscall copies the file
        # and sees it grow; the probe byte lands past the gathered bytes (never written).
        # A range of a file (an archive member) is read without the probe.
        i = self._room(offset, size)
        view = self._view[i:i + size + (entry.offset is None)]
        try:
            got = os.preadv(fd, [view], entry.offset or 0)
        except OSError as e:
            self._check_size(fd, entry)     # replaced by something else: say so
            raise DeviceError(f"{entry.source}: read failed: {e.strerror}",
                              errno=e.errno) from None
        if got != size:
            self._check_size(fd, entry)
        if got > size:
            self._grew(entry)
        if got < size:
            # A short read is allowed by POSIX; finish with the general loop.
            return self._read_through(fd, entry, offset)
        self._n = i + size
        return self._crc(view[:size]) if self._crc is not None else 0

    def _read_small_bytes(self, fd: int, entry: SourceEntry, offset: int) -> int:
        try:
            data = os.pread(fd, entry.size + (entry.offset is None), entry.offset or 0)
        except OSError as e:
            self._check_size(fd, entry)
            raise DeviceError(f"{entry.source}: read failed: {e.strerror}",
                              errno=e.errno) from None
        if len(data) != entry.size:
            self._check_size(fd, entry)
        if len(data) > entry.size:
            self._grew(entry)
        if len(data) < entry.size:
            # A short read is allowed by POSIX; finish with the general loop.
            return self._read_through(fd, entry, offset)
        self.put(offset, data)
        return self._crc(data) if self._crc is not None else 0

    def _grew(self, entry: SourceEntry) -> None:
        raise SourceChanged(f"grew past its planned {entry.size} bytes during the build",
                            path=entry.source, rule="source must not change during the build")

    def _read_through(self, fd: int, entry: SourceEntry, offset: int) -> int:
        crc = 0
        pos = 0
        start = entry.offset or 0
        while pos < entry.size:
            try:
                chunk = os.pread(fd, min(READ_CHUNK, entry.size - pos), start + pos)
            except OSError as e:
                raise DeviceError(f"{entry.source}: read failed at byte {pos}: {e.strerror}",
                                  errno=e.errno) from None
            if not chunk:
                self._changed(entry, pos)
            if self._crc is not None:
                crc = self._crc(chunk, crc)
            self.put(offset + pos, chunk)
            pos += len(chunk)
            if self.progress is not None:
                self.progress(self.done + pos, self.total)
        return crc

    def _changed(self, entry: SourceEntry, got: int) -> None:
        raise SourceChanged(f"shrank to {got} bytes (planned {entry.size}) during the build",
                            path=entry.source, rule="source must not change during the build")

    def _advance(self, entry: SourceEntry, crc: int) -> None:
        if self._crc is not None:
            self.crcs[entry.path] = crc
        self.done += entry.size
        if self.progress is not None:
            self.progress(self.done, self.total)
