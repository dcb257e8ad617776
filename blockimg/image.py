"""What every image reader shares: the index, file objects, byte-range reads, extraction.

A format's reader builds one index of :class:`EntryInfo` when it opens the
image; everything here works from that index and the device, so tar and FAT
behave the same through the API and the CLI.

The readers' invariant, for images from anywhere: opening, listing, reading
or verifying any byte string as an image either works or raises a
:class:`~blockimg.errors.BlockImgError` (for a broken rule, a
:class:`~blockimg.errors.CorruptImage` naming the offset and the rule) --
never another exception, a hang, or memory that grows with a forged field.
``tools/fuzz`` and ``tests/fuzz`` hold both readers to it; every file an
:class:`EntryInfo` describes has extents inside the device that add up to
its size.
"""
from __future__ import annotations

import io
import os
import stat as _stat
from bisect import bisect_right
from functools import partial
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from .block.base import BlockDevice
from .errors import BlockImgError, CorruptImage, InvalidInput, NotFound
from .record import field, record

__all__ = ["EntryInfo", "Image", "ImageFile", "ExtractReport", "normalize_member_path",
           "unsafe_host_name"]

READ_CHUNK = 1 << 20
Extent = Tuple[int, int]


@record(frozen=True)
class EntryInfo:
    """One entry of an image.

    ``kind`` is ``file``, ``dir``, ``symlink``, ``hardlink`` or ``other``;
    ``extents`` are ``(byte offset, length)`` runs of the file's data on the
    device, in file order; ``link_target`` is a symlink's target or a hard
    link's image path.
    """

    path: str
    kind: str
    size: int = 0
    mtime: int = 0
    mode: int = 0o644
    extents: Tuple[Extent, ...] = ()
    link_target: Optional[str] = None
    header_offset: Optional[int] = None

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def as_dict(self) -> dict:
        d = {"path": self.path, "type": self.kind, "size": self.size, "mtime": self.mtime,
             "mode": oct(self.mode), "extents": [list(x) for x in self.extents]}
        if self.link_target is not None:
            d["link_target"] = self.link_target
        return d


def normalize_member_path(raw: str) -> Tuple[Optional[str], Optional[str]]:
    """Turn a stored name into an image path, or say why it is unsafe.

    Leading ``/`` and ``./`` are dropped (as tar readers do); a name with a
    ``..`` component is refused. Returns ``(path, None)``, ``("", None)`` for
    the root itself, or ``(None, reason)``.
    """
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return None, "has a '..' component"
    if raw.startswith("/") or raw.startswith("\\"):
        pass  # absolute: stored relative, as GNU tar does (reported by check tools)
    return "/".join(parts), None


@record
class ExtractReport:
    """What :meth:`Image.extract` did."""

    written: List[str] = field(default_factory=list)
    refused: List[Tuple[str, str]] = field(default_factory=list)
    existing: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.refused and not self.existing


class ImageFile(io.RawIOBase):
    """A seekable, read-only binary file over a file's extents."""

    def __init__(self, device: BlockDevice, info: EntryInfo) -> None:
        super().__init__()
        self._device = device
        self.info = info
        self.name = info.path
        self._pos = 0
        self._ends = []
        end = 0
        for _off, length in info.extents:
            end += length
            self._ends.append(end)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self.info.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if pos < 0:
            raise ValueError("negative seek position")
        self._pos = pos
        return pos

    def _spans(self, offset: int, length: int) -> Iterator[Tuple[int, int]]:
        """``(device offset, length)`` pieces of file bytes ``[offset, offset+length)``
        (clipped to the file); the first extent is found by bisection."""
        size = self.info.size
        offset = min(max(offset, 0), size)
        stop = offset + max(0, min(length, size - offset))
        extents = self.info.extents
        k = bisect_right(self._ends, offset)
        base = self._ends[k - 1] if k else 0
        while offset < stop and k < len(extents):
            dev_off, ext_len = extents[k]
            take = min(ext_len - (offset - base), stop - offset)
            if take <= 0:
                break
            yield dev_off + offset - base, take
            offset += take
            base += ext_len
            k += 1

    def view(self, offset: int, length: int):
        """Bytes ``[offset, offset+length)`` of the file: zero-copy when in one extent."""
        parts = [self._device.pread(at, n) for at, n in self._spans(offset, length)]
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)

    def copy_to(self, fd: int, offset: int = 0, length: Optional[int] = None) -> int:
        """Write file bytes ``[offset, offset+length)`` (default: to the end) to ``fd``.

        Writes at ``fd``'s position; the bytes move inside the kernel where
        the device can (:meth:`BlockDevice.copy_to`), else through a bounded
        buffer. Returns the number of bytes written.
        """
        size = self.info.size
        if length is None:
            length = max(size - offset, 0)
        whole = offset == 0 and length >= size and (self._ends[-1] if self._ends else 0) == size
        done = 0
        for at, n in self.info.extents if whole else self._spans(offset, length):
            done += self._device.copy_to(at, n, fd)
        return done

    def readinto(self, buffer) -> int:
        data = self.view(self._pos, len(buffer))
        n = len(data)
        memoryview(buffer).cast("B")[:n] = data
        self._pos += n
        return n

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = max(self.info.size - self._pos, 0)
        data = self.view(self._pos, size)
        self._pos += len(data)
        return bytes(data)

    readall = read


class Image:
    """An opened image: ``list``, ``stat``, ``open``, ``read``, ``extract``, ``info``.

    Subclasses set ``format`` and fill ``self._index`` (path -> EntryInfo,
    every parent directory present) in their constructor.
    """

    format = "?"

    def __init__(self, device: BlockDevice, *, owns_device: bool = False) -> None:
        self.device = device
        self._owns_device = owns_device
        self._index: Dict[str, EntryInfo] = {}
        self.warnings: List[str] = []

    # -- lookup ------------------------------------------------------------
    def _key(self, path: str) -> str:
        return "/".join(p for p in str(path).split("/") if p not in ("", "."))

    def stat(self, path: str) -> EntryInfo:
        """The entry at ``path`` (raises NotFound)."""
        key = self._key(path)
        if key == "":
            return EntryInfo("", "dir", mode=0o755)
        info = self._index.get(key)
        if info is None:
            raise NotFound(f"no such file or directory in {self.format} image",
                           path=path, rule="path exists")
        return info

    def exists(self, path: str) -> bool:
        key = self._key(path)
        return key == "" or key in self._index

    def list(self, path: str = "", *, recursive: bool = True) -> List[EntryInfo]:
        """Entries under ``path`` in image order (all of them by default)."""
        key = self._key(path)
        top = self.stat(key)
        if top.kind != "dir":
            return [top]
        prefix = key + "/" if key else ""
        out = []
        for p, info in self._index.items():
            if not p.startswith(prefix) or p == key:
                continue
            if not recursive and "/" in p[len(prefix):]:
                continue
            out.append(info)
        return out

    def __iter__(self) -> Iterator[EntryInfo]:
        return iter(self._index.values())

    def __len__(self) -> int:
        return len(self._index)

    # -- data --------------------------------------------------------------
    def _resolve(self, path: str) -> EntryInfo:
        info = self.stat(path)
        seen = 0
        while info.kind == "hardlink" and info.link_target is not None and seen < 40:
            info = self.stat(info.link_target)
            seen += 1
        if info.kind != "file":
            raise InvalidInput(f"is a {info.kind}, not a regular file", path=path,
                               rule="regular file")
        return info

    def open(self, path: str) -> ImageFile:
        """A seekable binary file object for the file at ``path``."""
        return ImageFile(self.device, self._resolve(path))

    def read(self, path: str, offset: int = 0, length: Optional[int] = None) -> bytes:
        """``length`` bytes (default: to the end) of the file at ``path`` from ``offset``."""
        f = self.open(path)
        if length is None:
            length = max(f.info.size - offset, 0)
        return bytes(f.view(offset, length))

    def view(self, path: str, offset: int = 0, length: Optional[int] = None):
        """Like :meth:`read` but zero-copy (a memoryview) where the backend allows."""
        f = self.open(path)
        if length is None:
            length = max(f.info.size - offset, 0)
        return f.view(offset, length)

    def iter_chunks(self, path: str, chunk: int = READ_CHUNK) -> Iterator[bytes]:
        """Stream a file in bounded chunks."""
        f = self.open(path)
        pos = 0
        while pos < f.info.size:
            data = f.view(pos, chunk)
            pos += len(data)
            yield data

    # -- extraction --------------------------------------------------------
    def extract(self, dest: str, *, overwrite: bool = False,
                paths: Optional[Sequence[str]] = None) -> ExtractReport:
        """Write the tree (or ``paths`` and what is under them) below ``dest``.

        Never writes outside ``dest``. Refused, and listed in the report:
        names with ``..``/empty/NUL components or special on this host,
        entries below a symlink (or other non-directory) of the image or of
        ``dest``, symlinks that are absolute or resolve outside ``dest``
        (checked again once all links exist), hard links to paths not in
        the image, devices and FIFOs. Every directory is opened with
        ``O_NOFOLLOW`` relative to its verified parent and every file is
        created with ``O_EXCL|O_NOFOLLOW``, so nothing is written through a
        symlink; symlinks are made last. Existing files are left alone
        (``report.existing``) unless ``overwrite``; a directory is never
        replaced. Missing parent directories are created.
        """
        if not _HAVE_DIR_FD:
            raise BlockImgError("extract needs a host whose os functions take dir_fd")
        report = ExtractReport()
        dest = os.path.abspath(os.fspath(dest))
        os.makedirs(dest, exist_ok=True)
        real_dest = os.path.realpath(dest)
        wanted = None if paths is None else [self._key(p) for p in paths]
        for p, reason in getattr(self, "unsafe_names", []):
            report.refused.append((p, reason))
        writer = _TreeWriter(real_dest, overwrite, report)
        dirs: List[EntryInfo] = []
        links: List[EntryInfo] = []
        checked, below_non_dir = "", None  # the last parent path looked at, and its verdict
        try:
            for info in sorted(self._index.values(), key=lambda e: _sort_key(e.path)):
                if wanted is not None and not any(
                        info.path == w or info.path.startswith(w + "/") or w == ""
                        for w in wanted):
                    continue
                parent = info.path.rpartition("/")[0]
                if parent != checked:  # entries come grouped by directory
                    checked, below_non_dir = parent, self._non_dir_ancestor(info.path)
                why = unsafe_host_name(info.path) or below_non_dir or \
                    self._kind_problem(info, real_dest)
                if why is not None:
                    report.refused.append((info.path, why))
                elif info.kind == "symlink":
                    links.append(info)
                elif info.kind == "dir":
                    if writer.make_dir(info.path):
                        dirs.append(info)
                else:  # a file, or a hard link written as a copy of its file
                    data = info if info.kind == "file" else self._resolve(info.path)
                    writer.write_file(info.path, info.mode, data.mtime,
                                      partial(self._copy_data, data))
            made = [(info, info.link_target or "") for info in links
                    if writer.make_symlink(info.path, info.link_target or "")]
        finally:
            writer.close()
        # A link can escape through another link (a -> ., b -> a/x/../..): judge
        # each against the finished tree, where nothing changes any more.
        for info, link in made:
            target = os.path.join(real_dest, *info.path.split("/"))
            if _inside(os.path.realpath(target), real_dest):
                report.written.append(info.path)
            else:
                os.unlink(target)
                report.refused.append((info.path, f"symlink to {link!r} resolves outside "
                                                  "the destination"))
        # Directory modes and times last: making what is inside them changes both.
        for info in reversed(dirs):
            target = os.path.join(real_dest, *info.path.split("/"))
            try:
                os.chmod(target, (info.mode & 0o777) | 0o700, follow_symlinks=False)
                os.utime(target, (info.mtime, info.mtime), follow_symlinks=False)
            except (OSError, NotImplementedError):
                pass
        return report

    def _non_dir_ancestor(self, path: str) -> Optional[str]:
        parts = path.split("/")
        for i in range(1, len(parts)):
            up = self._index.get("/".join(parts[:i]))
            if up is not None and up.kind != "dir":
                return (f"is below {up.path!r}, which is a {up.kind} in the image "
                        "(nothing is written through links)")
        return None

    def _kind_problem(self, info: EntryInfo, real_dest: str) -> Optional[str]:
        """Why an entry of this kind cannot be extracted, or None."""
        if info.kind in ("dir", "file"):
            return None
        link = info.link_target or ""
        if info.kind == "symlink":
            at = os.path.dirname(os.path.join(real_dest, *info.path.split("/")))
            if not link or os.path.isabs(link) or "\0" in link or \
                    not _inside(os.path.normpath(os.path.join(at, link)), real_dest):
                return f"symlink to {link!r} leads outside the destination"
            return None
        if info.kind != "hardlink":
            return f"{info.kind} entries are not extracted"
        src = self._key(link)
        if src not in self._index or src == info.path:
            return f"hard link to {link!r} which is not in the image"
        try:
            self._resolve(src)
        except InvalidInput as e:  # a link to a directory, or a chain of links
            return f"hard link to {link!r}: {e}"
        return None

    def _copy_data(self, info: EntryInfo, fd: int) -> None:
        # What ImageFile(info).copy_to(fd) does for a whole file, without the file
        # object (this runs once per extracted file).
        copy = self.device.copy_to
        done = 0
        for at, n in info.extents:
            done += copy(at, n, fd)
        if done != info.size:
            raise CorruptImage("file data ends early", field=info.path)

    # -- summary -----------------------------------------------------------
    def info(self) -> dict:
        """Format, sizes and counts (formats add their own facts)."""
        kinds: Dict[str, int] = {}
        total = 0
        for e in self._index.values():
            kinds[e.kind] = kinds.get(e.kind, 0) + 1
            if e.kind == "file":
                total += e.size
        return {"format": self.format, "device_sector_size": self.device.sector_size,
                "image_bytes": self.device.size, "files": kinds.get("file", 0),
                "directories": kinds.get("dir", 0),
                "links": kinds.get("symlink", 0) + kinds.get("hardlink", 0),
                "file_bytes": total}

    def close(self) -> None:
        if self._owns_device:
            self.device.close()

    def __enter__(self) -> "Image":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_O = {name: getattr(os, name, 0) for name in ("O_DIRECTORY", "O_NOFOLLOW", "O_CLOEXEC")}
_DIR_FLAGS = os.O_RDONLY | _O["O_DIRECTORY"] | _O["O_NOFOLLOW"] | _O["O_CLOEXEC"]
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O["O_NOFOLLOW"] | _O["O_CLOEXEC"]
_HAVE_DIR_FD = {os.open, os.mkdir, os.stat, os.unlink, os.symlink} <= os.supports_dir_fd \
    and os.utime in os.supports_fd and all(_O.values())


class _Blocked(Exception):
    """An entry's parent directory cannot be opened (the reason is the message)."""


class _TreeWriter:
    """Makes entries below one destination through directory file descriptors.

    The directories from the destination down to the current parent stay
    open, each opened with ``O_NOFOLLOW`` relative to the one above (missing
    ones are created), so no path is looked up twice and nothing is followed
    out of the tree. Entries come in sorted path order, so only that one
    chain is open, and only its deepest :attr:`MAX_OPEN` levels; a closed
    level is opened again, the same way, when the walk climbs back to it.
    Outcomes go to ``report``.
    """

    MAX_OPEN = 64

    def __init__(self, root: str, overwrite: bool, report: ExtractReport) -> None:
        self.root = os.open(root, _DIR_FLAGS)
        self.overwrite = overwrite
        self.report = report
        self.umask = _umask()
        self.names: List[str] = []            # the open chain, below root
        self.fds: List[Optional[int]] = []    # one per name; None once closed
        self.blocked: Tuple[Tuple[str, ...], str] = ((), "")  # last prefix that failed

    def make_dir(self, path: str) -> bool:
        """Make (or keep) the directory ``path``; True if it is one now."""
        try:
            parent, name = self._parent(path)
            try:
                os.mkdir(name, 0o777, dir_fd=parent)
            except FileExistsError:
                if not _stat.S_ISDIR(os.stat(name, dir_fd=parent,
                                             follow_symlinks=False).st_mode):
                    if not self._remove(parent, name):
                        self.report.existing.append(path)
                        return False
                    os.mkdir(name, 0o777, dir_fd=parent)
        except (_Blocked, OSError) as e:
            self.report.refused.append((path, _why(e)))
            return False
        self.report.written.append(path)
        return True

    def write_file(self, path: str, mode: int, mtime: int, copy) -> None:
        """Create the file ``path`` (``O_EXCL|O_NOFOLLOW``) and fill it with ``copy(fd)``."""
        perm = mode & 0o777
        try:
            parent, name = self._parent(path)
            try:
                fd = os.open(name, _FILE_FLAGS, perm, dir_fd=parent)
            except FileExistsError:
                if not self._remove(parent, name):
                    self.report.existing.append(path)
                    return
                fd = os.open(name, _FILE_FLAGS, perm, dir_fd=parent)
            try:
                copy(fd)
                if perm & self.umask:  # open() applied the umask
                    os.fchmod(fd, perm)
                os.utime(fd, (mtime, mtime))
            finally:
                os.close(fd)
        except (_Blocked, OSError) as e:
            self.report.refused.append((path, _why(e)))
            return
        self.report.written.append(path)

    def make_symlink(self, path: str, link: str) -> bool:
        """Create the symlink ``path -> link``; True if made."""
        try:
            parent, name = self._parent(path)
            try:
                os.symlink(link, name, dir_fd=parent)
            except FileExistsError:
                if not self._remove(parent, name):
                    self.report.existing.append(path)
                    return False
                os.symlink(link, name, dir_fd=parent)
        except (_Blocked, OSError) as e:
            self.report.refused.append((path, _why(e)))
            return False
        return True

    def close(self) -> None:
        for fd in self.fds:
            if fd is not None:
                os.close(fd)
        self.names, self.fds = [], []
        os.close(self.root)

    def _remove(self, parent: int, name: str) -> bool:
        """With ``overwrite``, unlink ``name`` unless it is a directory; True if done."""
        if not self.overwrite:
            return False
        try:
            os.unlink(name, dir_fd=parent)
        except OSError:
            if _lstat_is(parent, name, _stat.S_ISDIR):
                return False
            raise
        return True

    def _parent(self, path: str) -> Tuple[int, str]:
        """The open parent directory of ``path`` and its last component."""
        *parents, name = path.split("/")
        return self._open_chain(parents), name

    def _open_chain(self, parts: List[str]) -> int:
        """Make ``parts`` the open chain (keeping the common prefix); its last fd."""
        bad, reason = self.blocked
        if bad and tuple(parts[:len(bad)]) == bad:
            raise _Blocked(reason)
        names, fds = self.names, self.fds
        k = 0
        while k < len(names) and k < len(parts) and names[k] == parts[k]:
            k += 1
        for fd in fds[k:]:
            if fd is not None:
                os.close(fd)
        del names[k:], fds[k:]
        if fds and fds[-1] is None:
            fds[-1] = self._reopen()
        for name in parts[k:]:
            fds.append(self._open_dir(fds[-1] if fds else self.root, name, parts[:k + 1]))
            names.append(name)
            k += 1
            if len(fds) > self.MAX_OPEN and fds[-self.MAX_OPEN - 1] is not None:
                os.close(fds[-self.MAX_OPEN - 1])
                fds[-self.MAX_OPEN - 1] = None
        return fds[-1] if fds else self.root

    def _reopen(self) -> int:
        """Open the chain's last level again from its deepest open ancestor."""
        j = len(self.fds) - 1
        while j >= 0 and self.fds[j] is None:
            j -= 1
        at = self.fds[j] if j >= 0 else self.root
        for i in range(j + 1, len(self.fds)):
            try:
                fd = self._open_dir(at, self.names[i], self.names[:i + 1])
            finally:
                if i > j + 1:
                    os.close(at)  # a level between: not kept
            at = fd
        return at

    def _open_dir(self, parent: int, name: str, prefix: List[str]) -> int:
        """Open directory ``name`` in ``parent`` without following a link, creating
        it if missing; raise :class:`_Blocked` (and remember ``prefix``) if not."""
        try:
            try:
                return os.open(name, _DIR_FLAGS, dir_fd=parent)
            except FileNotFoundError:
                try:
                    os.mkdir(name, 0o777, dir_fd=parent)
                except FileExistsError:
                    pass
                return os.open(name, _DIR_FLAGS, dir_fd=parent)
        except OSError as e:
            where = "/".join(prefix)
            if _lstat_is(parent, name, _stat.S_ISLNK):
                reason = (f"is below {where!r}, which is a symlink in the destination "
                          "(nothing is written through links)")
            else:
                reason = f"cannot write {where!r}: {e.strerror}"
            self.blocked = (tuple(prefix), reason)
            raise _Blocked(reason) from None


def _why(e: Exception) -> str:
    return str(e) if isinstance(e, _Blocked) else f"cannot write: {e.strerror}"


def _lstat_is(parent: int, name: str, test) -> bool:
    try:
        return test(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _umask() -> int:
    """The process umask, read without changing it where ``/proc`` tells it."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$",
                     *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}


def unsafe_host_name(path: str, *, host: Optional[str] = None) -> Optional[str]:
    """Why ``path`` cannot be created safely below a directory on ``host``
    (``os.name`` by default), or None.

    Everywhere: empty, ``.`` or ``..`` components, NUL bytes, absolute
    paths. On Windows also reserved device names (``CON``, ``nul.txt``),
    ``<>:"|?*\\``, control characters and trailing dots or spaces.
    """
    host = os.name if host is None else host
    if not path or path.startswith("/"):
        return "is absolute or empty"
    for part in path.split("/"):
        if part in ("", ".", ".."):
            return f"has a {part or 'empty'!r} component"
        if "\0" in part:
            return "has a NUL byte in its name"
        if host == "nt":
            if any(c in '<>:"|?*\\' or ord(c) < 32 for c in part):
                return f"{part!r} has a character Windows does not allow in names"
            if part[-1] in ". ":
                return f"{part!r} ends with a dot or space (Windows drops them)"
            if part.split(".")[0].upper().rstrip(" ") in _WINDOWS_RESERVED:
                return f"{part!r} is a reserved device name on Windows"
    return None


def _sort_key(path: str):
    return tuple(c.encode("utf-8", "surrogateescape") for c in path.split("/"))


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def is_regular(mode: int) -> bool:
    return _stat.S_ISREG(mode)
