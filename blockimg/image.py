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
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from .block.base import BlockDevice
from .errors import BlockImgError, CorruptImage, InvalidInput, NotFound

__all__ = ["EntryInfo", "Image", "ImageFile", "ExtractReport", "normalize_member_path",
           "unsafe_host_name"]

READ_CHUNK = 1 << 20
Extent = Tuple[int, int]


@dataclass(frozen=True)
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


@dataclass
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
        if length is None:
            length = max(self.info.size - offset, 0)
        done = 0
        for at, n in self._spans(offset, length):
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
        entries below a symlink (or other non-directory) of the image,
        anything whose parent on disk resolves outside ``dest``, symlinks
        that are absolute or resolve outside ``dest`` (checked again once
        all links exist), hard links to paths not in the image, devices and
        FIFOs. Files are created with ``O_EXCL|O_NOFOLLOW``, so nothing is
        written through a symlink; symlinks are made last. Existing files
        are left alone (``report.existing``) unless ``overwrite``.
        """
        report = ExtractReport()
        dest = os.path.abspath(os.fspath(dest))
        os.makedirs(dest, exist_ok=True)
        real_dest = os.path.realpath(dest)
        wanted = None if paths is None else [self._key(p) for p in paths]
        for p, reason in getattr(self, "unsafe_names", []):
            report.refused.append((p, reason))
        dir_times = []
        links = []
        entries = sorted(self._index.values(), key=lambda e: _sort_key(e.path))
        for info in entries:
            if wanted is not None and not any(
                    info.path == w or info.path.startswith(w + "/") or w == "" for w in wanted):
                continue
            why = unsafe_host_name(info.path)
            if why is None:
                why = self._non_dir_ancestor(info.path)
            if why is not None:
                report.refused.append((info.path, why))
                continue
            target = os.path.join(real_dest, *info.path.split("/"))
            parent = os.path.dirname(target)
            if not _inside(os.path.realpath(parent), real_dest):
                report.refused.append((info.path, "its parent directory leads outside the "
                                                  "destination"))
                continue
            if info.kind == "symlink":
                links.append((info, target))
                continue
            if os.path.islink(target) or (os.path.lexists(target) and
                                          (info.kind != "dir" or not os.path.isdir(target))):
                if not overwrite or os.path.isdir(target) and not os.path.islink(target):
                    report.existing.append(info.path)
                    continue
                os.unlink(target)
            try:
                if info.kind == "dir":
                    os.makedirs(target, exist_ok=True)
                    dir_times.append((target, info))
                elif info.kind == "file":
                    self._extract_file(info, target)
                elif info.kind == "hardlink":
                    src = self._key(info.link_target or "")
                    if src not in self._index or src == info.path:
                        report.refused.append((info.path, f"hard link to {info.link_target!r}"
                                                          " which is not in the image"))
                        continue
                    try:
                        linked = self._resolve(src)
                    except InvalidInput as e:  # a link to a directory, or a chain of links
                        report.refused.append((info.path, f"hard link to "
                                                          f"{info.link_target!r}: {e}"))
                        continue
                    self._extract_file(linked, target, mode=info.mode)
                else:
                    report.refused.append((info.path, f"{info.kind} entries are not extracted"))
                    continue
            except BlockImgError:
                raise
            except OSError as e:
                report.refused.append((info.path, f"cannot write: {e.strerror}"))
                continue
            report.written.append(info.path)
        self._extract_links(links, real_dest, overwrite, report)
        for target, info in reversed(dir_times):
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

    def _extract_links(self, links, real_dest: str, overwrite: bool,
                       report: ExtractReport) -> None:
        """Make symlinks last, then re-check each against the final tree."""
        made = []
        for info, target in links:
            link = info.link_target or ""
            lexical = os.path.normpath(os.path.join(os.path.dirname(target), link))
            if not link or os.path.isabs(link) or "\0" in link or \
                    not _inside(lexical, real_dest):
                report.refused.append((info.path, f"symlink to {link!r} leads outside "
                                                  "the destination"))
                continue
            if os.path.lexists(target):
                if not overwrite or (os.path.isdir(target) and not os.path.islink(target)):
                    report.existing.append(info.path)
                    continue
                try:
                    os.unlink(target)
                except OSError as e:
                    report.refused.append((info.path, f"cannot replace: {e.strerror}"))
                    continue
            try:
                os.symlink(link, target)
            except OSError as e:
                report.refused.append((info.path, f"cannot write: {e.strerror}"))
                continue
            made.append((info, target, link))
        # A link can escape through another link (a -> ., b -> a/x/../..): judge
        # each against the finished tree, where nothing changes any more.
        for info, target, link in made:
            if _inside(os.path.realpath(target), real_dest):
                report.written.append(info.path)
            else:
                os.unlink(target)
                report.refused.append((info.path, f"symlink to {link!r} resolves outside "
                                                  "the destination"))

    def _extract_file(self, info: EntryInfo, target: str, mode: Optional[int] = None) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(target, flags, 0o600)
        try:
            if ImageFile(self.device, info).copy_to(fd) != info.size:
                raise CorruptImage("file data ends early", field=info.path)
            os.fchmod(fd, (mode if mode is not None else info.mode) & 0o777)
        finally:
            os.close(fd)
        os.utime(target, (info.mtime, info.mtime), follow_symlinks=False)

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
