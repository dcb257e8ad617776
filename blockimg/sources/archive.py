"""A tar archive (a file, or a stream on stdin) as the source of an image.

The archive is indexed with blockimg's own tar reader -- the same checks as
``blockimg ls``/``extract`` -- and each member's content is the byte range of
the archive that holds it: nothing is unpacked, and the image writer copies
from the archive at that offset (``copy_file_range`` where the kernel can).

A regular file is read where it is. A stream (a pipe on stdin) or a
compressed archive (gzip, xz, bzip2: Python's own modules) is first copied
into an anonymous spool file (:mod:`blockimg.sources.spool`) -- the layout
needs every size before it writes -- costing one copy on disk and bounded
memory. A plain stream is indexed while it arrives (a thread fills the
spool, the reader follows behind it); that index is kept only when it ends
at the archive's end marker inside what arrived, else the whole spool is
indexed again, so every refusal is the one a file gets.
"""
from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import os
import stat
import threading
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Callable, Iterator, Optional

from ..block.base import BlockDevice
from ..block.file import FileDevice
from ..errors import BlockImgError, CorruptImage, InvalidInput
from .directory import SourceTree
from ..tar.reader import TarImage
from .spool import CHUNK, Spool
from .tree import tree_from_entries

__all__ = ["archive_source", "tree_of_archive"]
_MAGIC = ((b"\x1f\x8b", "gzip"), (b"\xfd7zXZ\x00", "xz"), (b"BZh", "bzip2"),
          (b"\x28\xb5\x2f\xfd", "zstd"))
_OPENERS = {"gzip": lambda f: gzip.GzipFile(fileobj=f, mode="rb"), "xz": lzma.LZMAFile,
            "bzip2": bz2.BZ2File}


def _compression(head: bytes) -> Optional[str]:
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


@contextlib.contextmanager
def archive_source(src: Optional[str], *, spool_dir: Optional[str] = None, keep_links: bool = False,
                   skip_special: bool = False, mtime: Optional[int] = None,
                   exclude: Optional[Callable[[str], bool]] = None) -> Iterator[SourceTree]:
    """The :class:`SourceTree` of the tar archive ``src`` (None: standard input),
    valid inside the ``with`` (its entries read from the archive or its spool).

    ``spool_dir`` is where a stream or a compressed archive is spooled (default:
    the system's temporary directory). The other options are those of
    :func:`blockimg.sources.directory.walk`.
    """
    name = "standard input" if src is None else src
    options = dict(keep_links=keep_links, skip_special=skip_special, mtime=mtime,
                   exclude=exclude, what=name)
    with contextlib.ExitStack() as stack:
        if src is None:
            fd = 0
        else:
            try:
                fd = os.open(src, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            except OSError as e:
                raise InvalidInput(f"cannot read source: {e.strerror}", path=src) from None
            stack.callback(os.close, fd)
        st = os.fstat(fd)
        regular = stat.S_ISREG(st.st_mode)
        reader = None
        if regular:
            head = os.pread(fd, 8, 0)
        else:
            _widen_pipe(fd)
            reader = io.BufferedReader(io.FileIO(fd, "rb", closefd=False), CHUNK)
            head = reader.peek(8)[:8]
        packed = _compression(head)
        if packed == "zstd":
            raise InvalidInput("is zstd-compressed, which Python cannot read: decompress it "
                               "first (zstd -dc ARCHIVE | blockimg create - ...)", path=name,
                               rule="tar, or tar compressed with gzip, xz or bzip2")
        if regular and packed is None:
            data_path = src if src is not None else _reopenable(fd)
            if data_path is not None:
                yield tree_of_archive(data_path, **options)
                return
        spool = stack.enter_context(Spool(spool_dir))
        if reader is None:
            reader = io.BufferedReader(io.FileIO(fd, "rb", closefd=False), CHUNK)
            reader.seek(0)
        if packed is not None:
            _copy_into(_OPENERS[packed](reader), spool, name, packed)
            yield tree_of_archive(spool.path, **options)
            return
        # What the peek read, then the rest moved by the kernel (splice) where it can,
        # indexed as it arrives.
        spool.append(reader.read1())
        yield _index_while_spooling(fd, reader, spool, options)


def _widen_pipe(fd: int) -> None:
    """Ask for a 1 MiB pipe buffer (Linux; best effort): fewer switches between the
    process that writes the stream and this one."""
    try:
        import fcntl
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, CHUNK)
    except (ImportError, AttributeError, OSError):
        pass


def _reopenable(fd: int) -> Optional[str]:
    """A name that opens ``fd``'s file again (Linux), or None."""
    path = f"/proc/self/fd/{fd}"
    return path if os.path.exists(path) else None


def _copy_into(reader, spool: Spool, name: str, packed: Optional[str],
               grown: Optional[Callable[[], None]] = None) -> None:
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    try:
        while True:
            n = reader.readinto(view)
            if not n:
                break
            spool.append(view[:n])
            if grown is not None:
                grown()
    except (OSError, EOFError, lzma.LZMAError) as e:
        what = f"{packed} data" if packed else "the stream"
        raise InvalidInput(f"reading {what} failed after {spool.size} bytes: {e}",
                           path=name, rule="a readable archive") from None


class _Arriving(BlockDevice):
    """The spool while a thread fills it: a read waits until its bytes have arrived, or
    is short once the stream has ended. Its length is not known yet, so it claims the
    largest: an index made over it holds only if it ends inside what arrived."""

    name = "standard input"

    def __init__(self, spool: Spool) -> None:
        super().__init__(512, 1 << 53, False)
        self.spool = spool
        self.ended = False
        self.error: Optional[BaseException] = None
        self._cond = threading.Condition()

    def grown(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def end(self, error: Optional[BaseException] = None) -> None:
        with self._cond:
            self.ended, self.error = True, error
            self._cond.notify_all()

    def _read_at(self, offset: int, length: int):
        with self._cond:
            while self.spool.size < offset + length and not self.ended:
                self._cond.wait()
        return os.pread(self.spool.fd, length, offset)


def _index_while_spooling(fd: int, reader, spool: Spool, options) -> SourceTree:
    """Spool the rest of the pipe ``fd`` on a thread while the tar reader indexes what
    has arrived; the index is made again over the whole spool unless it ended at the
    end-of-archive marker inside a stream of whole 512-byte blocks (so a bad stream gets
    a file's errors)."""
    dev = _Arriving(spool)
    options = dict(options)
    name = options.pop("what")

    def fill() -> None:
        try:
            if not spool.fill_from(fd, dev.grown):
                _copy_into(reader, spool, name, None, dev.grown)
        except BaseException as e:       # raised again in the caller's thread
            dev.end(e)
            return
        dev.end()

    filler = threading.Thread(target=fill, name="blockimg spool", daemon=True)
    filler.start()
    try:
        image = TarImage(dev)
    except (BlockImgError, OSError):    # what a short read made of it: the index below decides
        image = None
    # (Interrupted, the caller does not wait for the stream: the thread is a daemon.)
    filler.join()
    if dev.error is not None:
        raise dev.error
    if image is None or image.end_of_archive is None or \
            image.end_of_archive > spool.size or spool.size % 512:
        return tree_of_archive(spool.path, what=name, **options)
    return _tree_of(image, spool.path, name, options)


def _tree_of(image: TarImage, data_path: str, what: str, options) -> SourceTree:
    refused = list(image.unsafe_names)
    return tree_from_entries(image.index, data_path, refused=refused, what=what, **options)


def tree_of_archive(data_path: str, *, what: Optional[str] = None, **options) -> SourceTree:
    """Index the tar archive at ``data_path`` and make its entries a SourceTree
    (see :func:`blockimg.sources.tree.tree_from_entries`)."""
    what = what or data_path
    try:
        dev = FileDevice(data_path)
    except InvalidInput as e:
        raise InvalidInput(f"is not a tar archive: {e.args[0].split(': ', 1)[-1]}",
                           path=what, rule="a tar archive is whole 512-byte blocks") from None
    if dev.size == 0:
        dev.close()
        raise InvalidInput("is empty, not a tar archive (did the command that writes it "
                           "fail?)", path=what, rule="a tar archive")
    try:
        try:
            image = TarImage(dev)
        except CorruptImage as e:
            raise InvalidInput(f"is not a readable tar archive: {e}", path=what,
                               rule="the tar reader's checks") from None
        if image.end_of_archive is None:
            # A stream cut short between two members reads as a shorter archive.
            raise InvalidInput(f"ends after {dev.size} bytes without the two zero blocks "
                               "that end a tar archive: cut short?", path=what,
                               rule="a complete tar archive")
        return _tree_of(image, data_path, what, options)
    finally:
        dev.close()
