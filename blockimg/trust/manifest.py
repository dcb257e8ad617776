"""The manifest: where every file's bytes are in an image, and their checksums.

A manifest is what ``blockimg create --manifest site.json`` writes beside
the image: format, sector size, alignment, image size and SHA-256, and per
regular file its size, CRC-32C and extent list (``[byte offset, length]``
runs in the image, in file order). It answers "where is this file in the
image?" without any file-system code::

    m = blockimg.trust.manifest.load("site.json")
    for offset, length in m.locate("index.html").extents:
        ...  # read those bytes from the block device

The JSON is deterministic: sorted keys, no build time, no source paths.
"""
from __future__ import annotations

import os
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Dict, Iterator, List, Mapping, Optional, Tuple, Union

from ..errors import InvalidInput, NotFound
from ..record import field, record

__all__ = ["Manifest", "FileRecord", "load", "loads", "save", "build", "sha256_device",
           "sha256_fd", "MANIFEST_VERSION"]

MANIFEST_VERSION = 1
HASH_CHUNK = 1 << 20
if TYPE_CHECKING:
    Extent = Tuple[int, int]
else:   # (a name for annotations; typing not imported)
    Extent = 'Tuple[int, int]'


@record(frozen=True)
class FileRecord:
    """One regular file: ``size``, ``crc32c`` (int, or None when not computed), ``extents``."""

    path: str
    size: int
    extents: Tuple[Extent, ...]
    crc32c: Optional[int] = None

    def as_json(self) -> dict:
        d = {"size": self.size, "extents": [[o, n] for o, n in self.extents]}
        if self.crc32c is not None:
            d["crc32c"] = f"{self.crc32c:08x}"
        return d


@record(frozen=True)
class Manifest:
    """What is in an image and where (see the module docstring)."""

    format: str
    sector_size: int
    alignment: int
    image_size: int
    image_sha256: Optional[str]
    files: Mapping[str, FileRecord]
    directories: Tuple[str, ...] = ()
    links: Mapping[str, Tuple[str, str]] = field(default_factory=dict)
    target: Optional[str] = None

    def locate(self, path: str) -> FileRecord:
        """The record of the file at ``path`` (its extents say where its bytes are)."""
        key = "/".join(p for p in str(path).split("/") if p not in ("", "."))
        rec = self.files.get(key)
        if rec is None:
            raise NotFound("not a regular file in the manifest", path=path,
                           rule="path exists")
        return rec

    def __iter__(self) -> Iterator[FileRecord]:
        return iter(self.files.values())

    def as_json(self) -> dict:
        d = {
            "manifest_version": MANIFEST_VERSION,
            "generator": "blockimg",
            "format": self.format,
            "sector_size": self.sector_size,
            "alignment": self.alignment,
            "image": {"size": self.image_size, "sha256": self.image_sha256},
            "files": {p: r.as_json() for p, r in self.files.items()},
            "directories": sorted(self.directories),
            "links": {p: {"type": k, "target": t} for p, (k, t) in self.links.items()},
        }
        if self.target is not None:
            d["target"] = self.target
        return d

    def dumps(self) -> str:
        """Deterministic JSON text (sorted keys, one value per line, final newline)."""
        import json     # (here: json imports re, ~10 ms of start-up)
        return json.dumps(self.as_json(), sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def build(plan, *, format: str, crcs: Optional[Mapping[str, int]] = None,
          image_sha256: Optional[str] = None, tree=None, options=None) -> Manifest:
    """The manifest of a written ``plan`` (extents from ``plan.extents()``).

    ``alignment`` is the requested ``align`` (else the sector size), lowered to
    what every extent's start offset really is a multiple of.
    """
    crcs = crcs or {}
    files: Dict[str, FileRecord] = {}
    sizes = {}
    dirs: List[str] = []
    links: Dict[str, Tuple[str, str]] = {}
    if tree is not None:
        for e in tree.entries:
            kind = getattr(e.kind, "value", e.kind)
            if kind == "file":
                sizes[e.path] = e.size
            elif kind == "dir":
                dirs.append(e.path)
            elif kind in ("symlink", "hardlink"):
                links[e.path] = (kind, e.link_target or "")
    for path, extents in plan.extents():
        ext = tuple((int(o), int(n)) for o, n in extents)
        size = sizes.get(path, sum(n for _o, n in ext))
        files[path] = FileRecord(path, size, ext, crcs.get(path))
    alignment = _alignment(plan, options)
    # State only what holds: halve until every extent starts on a multiple of it.
    while alignment > 1 and any(o % alignment for r in files.values() for o, _n in r.extents):
        alignment //= 2
    return Manifest(format=format, sector_size=int(plan.sector_size), alignment=alignment,
                    image_size=int(plan.image_size), image_sha256=image_sha256,
                    files=dict(sorted(files.items())), directories=tuple(sorted(dirs)),
                    links=dict(sorted(links.items())),
                    target=getattr(options, "target", None))


def _alignment(plan, options) -> int:
    for obj in (plan, options):
        for name in ("align", "alignment"):
            v = getattr(obj, name, None)
            if isinstance(v, int) and v > 0:
                return v
    return int(plan.sector_size)


def sha256_fd(fd: int, size: int, progress=None) -> str:
    """SHA-256 of the first ``size`` bytes of an open file, read in bounded chunks."""
    import hashlib
    h = hashlib.sha256()
    pos = 0
    while pos < size:
        chunk = os.pread(fd, min(HASH_CHUNK, size - pos), pos)
        if not chunk:
            raise InvalidInput(f"file ends at byte {pos}, expected {size} bytes",
                               rule="image size")
        h.update(chunk)
        pos += len(chunk)
        if progress is not None:
            progress(pos, size)
    return h.hexdigest()


def sha256_device(device, size: Optional[int] = None, progress=None) -> str:
    """SHA-256 of the first ``size`` bytes (default: all) of a BlockDevice, bounded memory."""
    size = device.size if size is None else size
    import hashlib
    h = hashlib.sha256()
    pos = 0
    while pos < size:
        n = min(HASH_CHUNK, size - pos)
        h.update(device.pread(pos, n))
        pos += n
        if progress is not None:
            progress(pos, size)
    return h.hexdigest()


def save(manifest: Manifest, path: Union[str, os.PathLike], *, secret: bool = False) -> None:
    """Write ``manifest`` to ``path`` atomically (mode 0600 when ``secret``)."""
    from ..write.atomic import atomic_file, write_all
    with atomic_file(os.fspath(path), secret=secret) as out:
        write_all(out.fd, manifest.dumps().encode("utf-8"))


def load(path: Union[str, os.PathLike]) -> Manifest:
    """Read a manifest file (raises InvalidInput naming what is wrong)."""
    try:
        with open(os.fspath(path), "rb") as f:
            text = f.read()
    except OSError as e:
        raise InvalidInput(f"cannot read manifest: {e.strerror}", path=os.fspath(path)) from None
    return loads(text, where=os.fspath(path))


def loads(text: Union[str, bytes], *, where: str = "manifest") -> Manifest:
    """Parse manifest JSON text."""
    import json
    try:
        d = json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidInput(f"not valid JSON: {e}", path=where, rule="manifest") from None

    def bad(what: str) -> InvalidInput:
        return InvalidInput(f"manifest {what}", path=where, rule="manifest schema")

    if not isinstance(d, dict) or d.get("generator") != "blockimg":
        raise bad("is not a blockimg manifest (no \"generator\": \"blockimg\")")
    if d.get("manifest_version") != MANIFEST_VERSION:
        raise bad(f"version {d.get('manifest_version')!r} is not {MANIFEST_VERSION}")
    try:
        image = d["image"]
        files = {}
        for p, r in d["files"].items():
            crc = r.get("crc32c")
            ext = tuple((_nat(o), _nat(n)) for o, n in r["extents"])
            files[p] = FileRecord(p, _nat(r["size"]), ext,
                                  None if crc is None else int(crc, 16))
        links = {p: (str(v["type"]), str(v["target"])) for p, v in d.get("links", {}).items()}
        sha = image.get("sha256")
        return Manifest(format=str(d["format"]), sector_size=_nat(d["sector_size"]),
                        alignment=_nat(d["alignment"]), image_size=_nat(image["size"]),
                        image_sha256=None if sha is None else str(sha),
                        files=files, directories=tuple(str(x) for x in d.get("directories", ())),
                        links=links, target=d.get("target"))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise bad(f"is malformed: {type(e).__name__}: {e}") from None


def _nat(v) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError(f"expected a non-negative integer, got {v!r}")
    return v
