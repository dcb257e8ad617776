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
from bisect import bisect_right
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Dict, Iterator, List, Optional, Sequence, Tuple
    from .extract import ExtractReport   # (imported by Image.extract: ls and cat need none)

from ..block.base import BlockDevice
from ..errors import CorruptImage, NotARegularFile, NotFound
from ..record import record

__all__ = ["EntryInfo", "Image", "ImageFile", "normalize_member_path", "shorten"]

READ_CHUNK = 1 << 20
if TYPE_CHECKING:
    Extent = Tuple[int, int]
else:   # (a name for annotations; typing not imported)
    Extent = 'Tuple[int, int]'

#: What a reader may derive beyond what the image spells out -- the directories a tar
#: member's path implies, the directory part of each FAT entry's path -- in bytes per
#: byte of image, plus DERIVED_SLACK; each derived path counts its length, and each
#: entry it adds DERIVED_ENTRY more (the index entry holding it). See docs/trust.md.
DERIVED_PER_BYTE = 16
DERIVED_SLACK = 1 << 20
DERIVED_ENTRY = 256


@record(frozen=True)
class EntryInfo:
    """One entry of an image.

    ``kind`` is a string: ``file``, ``dir``, ``symlink``, ``hardlink`` (the values
    of :class:`~blockimg.sources.directory.Kind`, a ``str`` enum that compares equal to them,
    used to build trees) or ``other`` (readers only);
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


def shorten(path: str, limit: int = 60) -> str:
    """``path`` for a message: at most ``limit`` characters, the middle cut out."""
    if len(path) <= limit:
        return path
    half = (limit - 3) // 2
    return f"{path[:half]}...{path[-half:]}"


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

    Subclasses set ``format`` and fill ``self._index`` (path -> EntryInfo, every
    parent directory present) in their constructor; one opened lazily sets
    ``self._lazy`` and fills it in ``_index_all()`` when :attr:`index` is first asked.
    """

    format = "?"
    _lazy = False

    def __init__(self, device: BlockDevice, *, owns_device: bool = False) -> None:
        self.device = device
        self._owns_device = owns_device
        self._idx: Dict[str, EntryInfo] = {}
        self.warnings: List[str] = []
        self._derived = 0

    @property
    def index(self) -> Dict[str, EntryInfo]:
        """Path -> entry, every entry in image order (a lazily opened image indexes now)."""
        if self._lazy:
            self._index_all()
        return self._idx

    def _set_index(self, value: Dict[str, EntryInfo]) -> None:
        self._idx = value

    #: The name the format readers use for :attr:`index` (assigning it sets the entries).
    _index = property(index.fget, _set_index)

    def _index_all(self) -> None:
        raise NotImplementedError("a reader that sets _lazy indexes in _index_all()")

    def _derive(self, cost: int, what: str, offset: Optional[int]) -> None:
        """Count ``cost`` bytes the index derives (``what`` made it); past the bound of
        DERIVED_PER_BYTE per image byte + DERIVED_SLACK, refuse the image."""
        self._derived += cost
        bound = DERIVED_PER_BYTE * self.device.size + DERIVED_SLACK
        if self._derived > bound:
            raise CorruptImage(f"{what}: the index would hold more than {bound} bytes of "
                               f"paths the image does not spell out (the readers' bound: "
                               f"{DERIVED_PER_BYTE} per image byte + {DERIVED_SLACK})",
                               offset=offset)

    @property
    def skipped(self) -> List[Tuple[str, str]]:
        """``(name, reason)`` of each entry the reader left out of the index (met so far,
        for a FAT image opened lazily); every command names them on stderr."""
        return list(getattr(self, "unsafe_names", ()))

    # -- lookup ------------------------------------------------------------
    @staticmethod
    def key(path: str) -> str:
        """``path`` as the index spells it (no empty or ``.`` components; ``""``: the root)."""
        return "/".join(p for p in str(path).split("/") if p not in ("", "."))

    _key = key          # (the name the format readers use for it)

    def stat(self, path: str) -> EntryInfo:
        """The entry at ``path`` (raises NotFound)."""
        key = self.key(path)
        if key == "":
            return EntryInfo("", "dir", mode=0o755)
        info = self.index.get(key)
        if info is None:
            raise NotFound(f"no such file or directory in {self.format} image",
                           path=path, rule="path exists")
        return info

    def exists(self, path: str) -> bool:
        key = self.key(path)
        return key == "" or key in self.index

    def list(self, path: str = "", *, recursive: bool = True) -> List[EntryInfo]:
        """Entries under ``path`` in image order (all of them by default)."""
        key = self.key(path)
        top = self.stat(key)
        if top.kind != "dir":
            return [top]
        prefix = key + "/" if key else ""
        out = []
        for p, info in self.index.items():
            if not p.startswith(prefix) or p == key:
                continue
            if not recursive and "/" in p[len(prefix):]:
                continue
            out.append(info)
        return out

    def __iter__(self) -> Iterator[EntryInfo]:
        return iter(self.index.values())

    def __len__(self) -> int:
        return len(self.index)

    # -- data --------------------------------------------------------------
    def resolve(self, path: str) -> EntryInfo:
        """The regular file at ``path``, hard links followed (raises NotARegularFile)."""
        info = self.stat(path)
        seen = 0
        while info.kind == "hardlink" and info.link_target is not None and seen < 40:
            info = self.stat(info.link_target)
            seen += 1
        if info.kind != "file":
            raise NotARegularFile(f"is a {info.kind}, not a regular file", path=path,
                                  rule="regular file")
        return info

    def open(self, path: str) -> ImageFile:
        """A seekable binary file object for the file at ``path``."""
        return ImageFile(self.device, self.resolve(path))

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
                paths: Optional[Sequence[str]] = None,
                jobs: Optional[int] = 1, progress=None) -> ExtractReport:
        """Write the tree (or ``paths`` and what is under them) below ``dest``.

        A path that is not an entry may be a shell pattern, as with GNU tar's
        ``--wildcards`` (:mod:`blockimg.read.members`). If any of ``paths`` selects
        nothing, :class:`~blockimg.errors.NotFound` (its ``paths`` lists them) is
        raised before anything is made, ``dest`` included. A ``dest`` that cannot
        be made, and running out of space, quota or a writable file system, raise
        :class:`~blockimg.errors.DeviceError` (naming the path; the file being
        written is removed first).

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

        ``jobs`` > 1 writes the files from that many processes
        (:mod:`blockimg.write.parallel`; built-in backends only), None picks by CPUs
        and file count; keep 1 in a process that runs other threads. A FAT
        image opened with ``lazy=True`` is then also indexed in parts, each by
        the process that writes it (:mod:`blockimg.read.extract_split`). The report
        lists what was written in this order: directories, files, symlinks,
        each in image order. ``progress(done, total)`` is told the file bytes written
        as each file is finished (not by the split indexing of a lazy FAT image).
        """
        from .extract import extract as extract_tree    # (here: ls and cat do not need it)
        from .extract import plan_parts
        if paths is None and jobs != 1:
            planned = plan_parts(self, dest, jobs)
            if planned is not None:
                from .extract_split import extract_in_parts
                report = extract_in_parts(self, *planned, overwrite=overwrite)
                if report is not None:
                    return report
        return extract_tree(self, dest, overwrite=overwrite, paths=paths, jobs=jobs,
                            progress=progress)

    def copy_data(self, info: EntryInfo, fd: int) -> None:
        """Write the whole file ``info`` to ``fd`` (CorruptImage if its data ends early)."""
        # What ImageFile(info).copy_to(fd) does for a whole file, without the file
        # object (this runs once per extracted file).
        copy = self.device.copy_to
        done = 0
        for at, n in info.extents:
            done += copy(at, n, fd)
        if done != info.size:
            raise CorruptImage("file data ends early", field=info.path)

    def split_plan(self, jobs: Optional[int]):
        """A plan to index the tree in ``jobs`` parts, each in the process that extracts
        it (a format that cannot: None; FAT opened lazily can, see
        :mod:`blockimg.fat.split_walk`)."""
        return None

    # -- summary -----------------------------------------------------------
    def info(self) -> dict:
        """Format, sizes and counts (formats add their own facts)."""
        kinds: Dict[str, int] = {}
        total = 0
        for e in self.index.values():
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
