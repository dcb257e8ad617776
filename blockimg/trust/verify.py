"""``blockimg verify``: compare an image with its manifest and/or its source tree.

Every difference is reported, not just the first: files missing from the
image, extra files, changed contents (CRC-32C), sizes, file types, link
targets, data at other offsets than the manifest says, structural errors
(the format's ``check``), and the image's size and SHA-256. Files are
streamed in bounded chunks, so memory does not grow with the image.
"""
from __future__ import annotations

import os
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Callable, Dict, List, Optional, Union

from ..block.base import BlockDevice
from ..api import open_for_reading
from .checksum import crc32c
from ..errors import BlockImgError
from ..formats import detect_format, format_module
from .manifest import Manifest, load, sha256_device
from ..quoting import escape
from ..record import field, record

__all__ = ["Difference", "VerifyReport", "verify"]

CHUNK = 1 << 20
if TYPE_CHECKING:
    Progress = Callable[[int, int], None]
else:   # (a name for annotations; typing not imported)
    Progress = 'Callable[[int, int], None]'


@record(frozen=True)
class Difference:
    """One disagreement: ``kind`` is one of ``missing``, ``extra``, ``changed``,
    ``size``, ``type``, ``link``, ``offset``, ``unreadable``, ``structure``,
    ``image-size``, ``sha256``."""

    kind: str
    path: Optional[str]
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {escape(self.path)}: {self.detail}" if self.path else \
            f"{self.kind}: {self.detail}"


@record
class VerifyReport:
    """What :func:`verify` found; ``ok`` when there is no difference."""

    differences: List[Difference] = field(default_factory=list)
    files_checked: int = 0
    bytes_read: int = 0
    format: Optional[str] = None

    @property
    def ok(self) -> bool:
        return not self.differences

    def add(self, kind: str, path: Optional[str], detail: str) -> None:
        self.differences.append(Difference(kind, path, detail))


class _Meter:
    def __init__(self, progress: Optional[Progress], total: int) -> None:
        self.progress = progress
        self.total = total
        self.done = 0

    def __call__(self, n: int) -> None:
        self.done += n
        if self.progress is not None:
            self.progress(self.done, max(self.total, self.done))


def verify(image: Union[str, os.PathLike, BlockDevice], *,
           manifest: Union[None, str, os.PathLike, Manifest] = None,
           source: Union[None, str, os.PathLike] = None, target: Optional[str] = None,
           progress: Optional[Progress] = None, sector_size: int = 512) -> VerifyReport:
    """Re-read ``image`` and compare it with ``manifest`` and/or ``source``.

    With neither, the image is still checked structurally and every file
    read. Raises only for the caller's mistakes (a missing manifest or
    source); whatever is wrong with the image is in the report.
    """
    report = VerifyReport()
    if manifest is not None and not isinstance(manifest, Manifest):
        manifest = load(manifest)
    src_tree = None
    if source is not None:
        from ..sources.directory import walk
        # Links are read as links first (a dangling one is no error); if the image
        # turns out to hold copies instead, the source is walked again following them.
        src_tree = walk(source, keep_links=True)
    owns = not isinstance(image, BlockDevice)
    dev = open_for_reading(image, sector_size=sector_size)
    try:
        total = 0
        if manifest is not None:
            total += min(manifest.image_size, dev.size)
            total += sum(r.size for r in manifest.files.values())  # image files, read once
        elif src_tree is not None:
            total += src_tree.total_bytes  # image files, about as big as the source's
        if src_tree is not None:
            total += src_tree.total_bytes
        meter = _Meter(progress, total)
        if manifest is not None:
            _check_image_bytes(dev, manifest, report, meter)
        _compare(dev, manifest, src_tree, source, target, report, meter)
    finally:
        if owns:
            dev.close()
    return report


def _tree_has_links(tree) -> bool:
    return any(getattr(e.kind, "value", e.kind) in ("symlink", "hardlink") for e in tree.entries)


def _has_links(manifest: Optional[Manifest]) -> bool:
    return bool(manifest is not None and manifest.links)


def _check_image_bytes(dev: BlockDevice, m: Manifest, report: VerifyReport, meter) -> None:
    if dev.size < m.image_size:
        report.add("image-size", None, f"image is {dev.size} bytes, manifest says "
                                       f"{m.image_size}")
        return
    if dev.size > m.image_size and not getattr(dev, "is_device", False):
        report.add("image-size", None, f"image is {dev.size} bytes, manifest says "
                                       f"{m.image_size}")
    if m.image_sha256:
        last = [0]

        def step(done: int, _total: int) -> None:
            meter(done - last[0])
            last[0] = done
        sha = sha256_device(dev, m.image_size, progress=step)
        report.bytes_read += m.image_size
        if sha != m.image_sha256:
            report.add("sha256", None, f"image sha256 is {sha}, manifest says {m.image_sha256}")


def _compare(dev: BlockDevice, m: Optional[Manifest], tree, source, target: Optional[str],
             report: VerifyReport, meter) -> None:
    try:
        fmt = m.format if m is not None else detect_format(dev)
        mod = format_module(fmt)
        img = mod.open_image(dev)
    except BlockImgError as e:
        report.add("structure", None, f"cannot open the image: {e}")
        return
    report.format = fmt
    with img:
        target = target or (m.target if m is not None else None) or "generic"
        try:
            for problem in mod.check(img, target=target):
                report.add("structure", None, str(problem))
        except BlockImgError as e:
            report.add("structure", None, f"check failed: {e}")
        entries = {e.path: e for e in img}
        # (with neither a manifest nor a source, every file is read and no CRC needed)
        crcs = _image_crcs(img, entries, report, meter, m is not None or tree is not None)
        if m is not None:
            _against_manifest(entries, crcs, m, report)
        if tree is not None:
            image_links = any(e.kind in ("symlink", "hardlink") for e in entries.values())
            if _tree_has_links(tree) and not image_links and not _has_links(m):
                from ..sources.directory import walk
                tree = walk(source)  # the image was made following links
            _against_source(img, entries, crcs, tree, report, meter)


def _image_crcs(img, entries, report: VerifyReport, meter, want: bool) -> Dict[str, int]:
    """CRC-32C of every regular file in the image, streamed (``want`` false: each file
    is only read, and each CRC is 0)."""
    fn = crc32c() if want else _no_crc
    out: Dict[str, int] = {}
    for path, info in entries.items():
        if info.kind != "file":
            continue
        crc = 0
        got = 0
        try:
            for chunk in img.iter_chunks(path, CHUNK):
                if not chunk:
                    break
                crc = fn(bytes(chunk), crc)
                got += len(chunk)
                meter(len(chunk))
        except BlockImgError as e:
            report.add("unreadable", path, str(e))
            continue
        report.bytes_read += got
        report.files_checked += 1
        if got != info.size:
            report.add("unreadable", path, f"read {got} bytes of {info.size}")
            continue
        out[path] = crc
    return out


def _no_crc(data: bytes, crc: int = 0) -> int:
    return crc


def _against_manifest(entries, crcs, m: Manifest, report: VerifyReport) -> None:
    for path, rec in m.files.items():
        _file_against_record(path, entries.get(path), crcs, rec, report)
    dirs = set(m.directories)
    for path, info in entries.items():
        _entry_in_manifest(path, info, m, dirs, report)
    for path in sorted(dirs):
        info = entries.get(path)
        if info is None:
            report.add("missing", path, "a directory in the manifest, not in the image")
        elif info.kind != "dir":
            report.add("type", path, f"a {info.kind} in the image, a directory in the manifest")
    for path, (kind, _t) in m.links.items():
        if path not in entries:
            report.add("missing", path, f"a {kind} in the manifest, not in the image")


def _file_against_record(path: str, info, crcs, rec, report: VerifyReport) -> None:
    """The image's entry at ``path`` against the manifest's file record there."""
    if info is None:
        report.add("missing", path, "in the manifest, not in the image")
        return
    if info.kind != "file":
        report.add("type", path, f"a {info.kind} in the image, a file in the manifest")
        return
    if info.size != rec.size:
        report.add("size", path, f"{info.size} bytes in the image, {rec.size} in the "
                                 "manifest")
    if tuple(info.extents) != tuple(rec.extents):
        report.add("offset", path, f"data at {_fmt_extents(info.extents)} in the image, "
                                   f"{_fmt_extents(rec.extents)} in the manifest")
    if rec.crc32c is not None and path in crcs and crcs[path] != rec.crc32c:
        report.add("changed", path, f"CRC-32C {crcs[path]:08x} in the image, "
                                    f"{rec.crc32c:08x} in the manifest")


def _entry_in_manifest(path: str, info, m: Manifest, dirs: set, report: VerifyReport) -> None:
    """An entry of the image the manifest does not list (or lists as another link)."""
    if info.kind == "file" and path not in m.files:
        report.add("extra", path, "a file in the image, not in the manifest")
    elif info.kind == "dir" and m.directories and path not in dirs:
        report.add("extra", path, "a directory in the image, not in the manifest")
    elif info.kind in ("symlink", "hardlink"):
        want = m.links.get(path)
        if want is None:
            report.add("extra", path, f"a {info.kind} in the image, not in the manifest")
        elif (info.kind, info.link_target or "") != want:
            report.add("link", path,
                       f"{info.kind} to '{escape(info.link_target or '')}' in the image, "
                       f"{want[0]} to '{escape(want[1])}' in the manifest")


def _against_source(img, entries, crcs, tree, report: VerifyReport, meter) -> None:
    fn = crc32c()
    seen = set()
    for e in tree.entries:
        kind = getattr(e.kind, "value", e.kind)
        seen.add(e.path)
        info = entries.get(e.path)
        if info is None:
            report.add("missing", e.path, f"a {kind} in the source, not in the image")
            continue
        if info.kind != kind:
            report.add("type", e.path, f"a {info.kind} in the image, a {kind} in the source")
            continue
        if kind in ("symlink", "hardlink"):
            if (info.link_target or "") != (e.link_target or ""):
                report.add("link", e.path,
                           f"points to '{escape(info.link_target or '')}' in the image, "
                           f"'{escape(e.link_target or '')}' in the source")
            continue
        if kind != "file":
            continue
        if info.size != e.size:
            report.add("size", e.path, f"{info.size} bytes in the image, {e.size} in the "
                                       "source")
            continue
        crc = _source_crc(e, fn, report, meter)
        if crc is not None and e.path in crcs and crcs[e.path] != crc:
            report.add("changed", e.path, f"content differs (CRC-32C {crcs[e.path]:08x} in "
                                          f"the image, {crc:08x} in the source)")
    for path, info in entries.items():
        if path not in seen:
            report.add("extra", path, f"a {info.kind} in the image, not in the source")


def _source_crc(e, fn, report: VerifyReport, meter) -> Optional[int]:
    crc = 0
    try:
        with open(e.source, "rb") as f:
            while True:
                chunk = f.read(CHUNK)
                if not chunk:
                    break
                crc = fn(chunk, crc)
                meter(len(chunk))
    except OSError as err:
        report.add("unreadable", e.path, f"source {e.source}: {err.strerror}")
        return None
    return crc


def _fmt_extents(extents) -> str:
    shown = ", ".join(f"{o}+{n}" for o, n in list(extents)[:4])
    more = f", … ({len(extents)} runs)" if len(extents) > 4 else ""
    return f"[{shown}{more}]"
