"""Carry out ``blockimg update``: diff the image against the tree, then append, complete
an interrupted append, or rebuild. Formats:

* tar: appended in place (:mod:`blockimg.update.tar`); removals rebuild the image
  (a file: atomically, as ``create`` does; a device: in place, like ``create``).
* FAT: in place (:mod:`blockimg.update.fat`): new data into free clusters, then the
  FAT, then the directory entries, then the old clusters freed.
"""
from __future__ import annotations

import os
import stat
import time
from operator import attrgetter
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Optional, Sequence, Union
    from ..read.image import EntryInfo, Image   # (read.image: loaded by api.open, for tar)

from .. import api
from ..block.base import BlockDevice
from ..block.file import FileDevice
from ..errors import DeviceError, InvalidInput
from ..record import field, record
from ..sources.directory import Kind, SourceEntry, SourceTree, excluder, walk
from .diff import COMPARE, Diff, auto_same, diff

__all__ = ["Diff", "UpdateResult", "diff_image", "update"]

CHUNK = 1 << 20


@record(frozen=True)
class UpdateResult:
    """What :func:`update` did (or, ``dry_run``, would do)."""

    diff: Diff
    strategy: str            # "none", "append", "complete" or "rebuild"
    bytes_written: int
    image_size: int
    seconds: float
    dry_run: bool = False
    manifest: object = field(default=None, repr=False, compare=False)

    def line(self, path: str) -> str:
        d = self.diff
        verb = "would write" if self.dry_run else "wrote"
        return (f"{path}: {len(d.added)} added, {len(d.changed)} changed, "
                f"{len(d.removed)} removed, {d.unchanged} unchanged; {self.strategy}: "
                f"{verb} {self.bytes_written} bytes"
                + ("" if self.dry_run else f" in {self.seconds:.2f} s"))


def same_bytes(img: Image, info: EntryInfo, entry: SourceEntry) -> bool:
    """Whether the image file ``info`` holds exactly ``entry``'s bytes (bounded memory)."""
    if entry.data is not None:
        return img.read(info.path) == bytes(entry.data)
    f = img.open(info.path)
    try:
        with open(entry.source, "rb") as src:
            pos = 0
            while pos < info.size:
                mine = src.read(CHUNK)
                theirs = f.view(pos, CHUNK)
                if not mine or bytes(theirs) != mine:
                    return False
                pos += len(mine)
            return not src.read(1)
    except OSError as e:
        raise DeviceError(f"{entry.source}: cannot read: {e.strerror}", errno=e.errno) from None


def _tree(src, own, keep_links, skip_special, mtime, exclude, exclude_vcs) -> SourceTree:
    """The source tree; ``own`` (the image, the manifest) is never part of it."""
    if isinstance(src, SourceTree):
        return src
    leave_out = [os.path.abspath(os.fspath(p)) for p in own
                 if isinstance(p, (str, os.PathLike))]
    problems: list = []
    tree = walk(src, keep_links=keep_links, skip_special=skip_special, mtime=mtime,
                exclude=excluder(exclude, vcs=exclude_vcs), leave_out=leave_out,
                problems=problems)
    InvalidInput.raise_all(problems)
    return tree


def diff_image(img: Image, tree: SourceTree, *, quick: bool = False) -> Diff:
    """What makes ``img`` read as ``tree``: contents compared where size and mtime agree,
    unless ``quick`` (equal size, mtime and mode then mean unchanged, as rsync assumes)."""
    same = (lambda i, e: True) if quick else (lambda i, e: same_bytes(img, i, e))
    return diff(list(img), tree, same_content=same,
                modes=img.format == "tar", mtime_key=_mtime_key(img.format))


@record(frozen=True)
class _Times:
    """What the ``auto`` comparison needs of the source: whether its mtimes are the files'
    own, and each directory's mtime (``""``: the root)."""

    real: bool
    dirs: dict


def _source_times(src, tree: SourceTree, mtime) -> _Times:
    if isinstance(src, SourceTree) or mtime is not None:
        return _Times(False, {})
    DIR = Kind.DIR
    dirs = {e.path: e.mtime for e in tree.entries if e.kind is DIR}
    try:
        dirs[""] = int(os.stat(src).st_mtime)
    except OSError as e:
        raise DeviceError(f"{os.fspath(src)}: cannot stat: {e.strerror}",
                          errno=e.errno) from None
    return _Times(True, dirs)


def last_write(device: BlockDevice) -> Optional[int]:
    """The mtime of the regular file under ``device`` (through windows), or None (a
    device node, memory): when the image was last written."""
    while not isinstance(device, FileDevice) and getattr(device, "parent", None) is not None:
        device = device.parent
    if not isinstance(device, FileDevice):
        return None
    st = os.fstat(device.fd)
    return int(st.st_mtime) if stat.S_ISREG(st.st_mode) else None


def _content_test(job: "_Job", fmt: str, written: Optional[int], newest: int, compare_bytes):
    """``same_content`` for :func:`diff` by ``job.compare``: ``compare_bytes`` where the
    ``auto`` rule says the mtime cannot tell. ``written``: the image file's mtime when it
    stands for the last complete update (else None: ``newest``, the newest time the
    image holds, is taken: never later than that update)."""
    if job.compare == "never":
        return lambda i, e: True
    if job.compare == "always":
        return compare_bytes
    from ..fat.structs import FAT_END, FAT_EPOCH
    return auto_same(compare_bytes, real_mtimes=job.times.real,
                     written=newest if written is None else written,
                     dir_mtimes=job.times.dirs,
                     mtime_range=(FAT_EPOCH, FAT_END) if fmt == "fat" else None)


def _mtime_key(format: str):
    if format != "fat":
        return None
    from ..fat.structs import fat_datetime
    seen: dict = {}

    def key(t: int):                          # FAT keeps 2-second steps
        got = seen.get(t)
        if got is None:
            got = seen[t] = fat_datetime(t)[:2]
        return got
    return key


def update(image: Union[str, os.PathLike], src, *, keep_links: bool = False,
           skip_special: bool = False, mtime: Optional[int] = None,
           exclude: Sequence[str] = (), exclude_vcs: bool = False, dry_run: bool = False,
           quick: bool = False, compare: str = "auto",
           manifest: Union[None, str, os.PathLike] = None, force: bool = False,
           device: Optional[BlockDevice] = None, **options) -> UpdateResult:
    """Make ``image`` hold ``src``'s tree (as ``create`` with the same options would),
    writing only what changed; ``dry_run`` only says what would be written.

    ``image`` is an image file or a device node (``device``: an open writable
    :class:`BlockDevice` to write through instead, e.g. in tests). What the update
    writes is checked against the format's and target's rules first (as ``create``
    checks it: new names against their siblings; a rebuild, the whole tree) and
    nothing is written when it is refused or does not fit. ``manifest``:
    a manifest file to rewrite for the updated image. ``compare``: when the bytes of a
    file whose size, mtime and mode agree are compared -- ``"auto"`` (where the mtime
    cannot tell: see :func:`blockimg.update.diff.auto_same`), ``"always"`` or
    ``"never"``; ``quick`` is ``compare="never"``.
    """
    start = time.monotonic()
    if compare not in COMPARE:
        raise ValueError(f"compare must be one of {', '.join(COMPARE)}, not {compare!r}")
    if quick:
        compare = "never"
    tree = _tree(src, (image, manifest), keep_links, skip_special, mtime, exclude,
                 exclude_vcs)
    times = _source_times(src, tree, mtime) if compare == "auto" else _Times(False, {})
    name = os.fspath(image)
    job = _Job(name, tree, device, dry_run, compare, times, manifest, force, options, start)
    if _is_fat(device if device is not None else name):
        return _update_fat(job)
    return _update_tar(job)


@record(frozen=True)
class _Job:
    """One ``update`` call's arguments."""

    name: str
    tree: SourceTree
    device: Optional[BlockDevice]
    dry_run: bool
    compare: str
    times: _Times
    manifest: object
    force: bool
    options: dict
    start: float

    def result(self, d: Diff, strategy: str, written: int, size: int,
               manifest=None) -> UpdateResult:
        return UpdateResult(d, strategy, written, size, time.monotonic() - self.start,
                            self.dry_run, manifest)


def _is_fat(image) -> bool:
    from ..fat.geometry import detect
    if isinstance(image, BlockDevice):
        return detect(image)
    with api.open_for_reading(image) as dev:
        return detect(dev)


def _update_fat(job: _Job) -> UpdateResult:
    """In place (:mod:`blockimg.update.fat`); an interrupted update is completed."""
    from . import fat as fat_update
    dev = job.device
    if dev is None:
        dev = api.open_for_reading(job.name) if job.dry_run else open_writable(job.name)
    try:
        vol = fat_update.read_volume(dev)
        index = fat_update.index(vol)
        # A cut update wrote the image (its marker first): its mtime says nothing then.
        same = _content_test(job, "fat", None if vol.dirty else last_write(dev),
                             _newest(index), fat_update.same_content(dev, vol.geometry))
        d = diff(index, job.tree, same_content=same, mtime_key=_mtime_key("fat"))
        del index
        # Every refusal create would make of what changes: each directory that gains
        # an entry, each changed entry (the rest is in the image as it is in the tree).
        laid = api.plan(fat_update.touched(job.tree, d), format="fat", **job.options).plan
        p = fat_update.plan_update(vol, job.tree, d, laid.options)
        strategy = "none" if p.empty else "complete" if vol.dirty else "in place"
        if not job.dry_run and not p.empty:
            fat_update.apply(p, dev)
        size = dev.size
    finally:
        if job.device is None:
            dev.close()
    m = None
    if job.manifest is not None and not job.dry_run:
        m = write_manifest(job.device if job.device is not None else job.name,
                           job.manifest, laid.options)
    return job.result(d, strategy, p.bytes_written, size, m)


def _update_tar(job: _Job) -> UpdateResult:
    """Append, complete an interrupted append, or rebuild (:mod:`blockimg.update.tar`)."""
    from . import tar as tar_update
    name, device, tree = job.name, job.device, job.tree
    with api.open(device if device is not None else name) as img:
        options = api.plan(SourceTree(()), format=img.format, **job.options).plan.options
        notes = list(img.notes)
        end = img.end_of_archive
        old_size = img.device.size
        lone = tar_update.interrupted(notes)
        written = None
        if not lone and tar_update.settled(img.device, end, options.pad_to):
            written = last_write(img.device)
        d = _tar_diff(img, tree, job, written)
        fmt = img.format
    # Every refusal create would make: of the whole tree for a rebuild; else of what is
    # appended (the rest is in the image as it is in the tree).
    whole = bool(d.removed) or _kind_changes(d)
    if whole and not lone and not job.dry_run:
        # A rebuild is a create of the tree, which plans and checks it before it
        # writes anything: the plan is not made twice.
        made = api.create(tree, device if device is not None else name, format="tar",
                          force=True, manifest=job.manifest, **job.options)
        return job.result(d, "rebuild", made.plan.archive_size, made.image_size,
                          made.manifest)
    laid = api.plan(tree if whole else tar_update.appended(tree, d), format=fmt,
                    **job.options).plan
    from ..write.device_guard import is_device_node
    fixed = None if device is not None or not is_device_node(name) else old_size
    ap = None if lone else tar_update.plan_append(
        d, tree, end_of_archive=end, old_size=old_size, options=laid.options,
        fixed_size=fixed if device is None else device.size)
    if lone:
        strategy, written = "complete", 512 * len(lone)
    elif d.empty:
        strategy, written = "none", 0
    elif ap is None:
        strategy, written = "rebuild", laid.archive_size
    else:
        strategy, written = "append", ap.bytes_written
    result = None
    if not job.dry_run and strategy != "none":
        if strategy == "rebuild":
            result = api.create(tree, device if device is not None else name, format="tar",
                                force=True, manifest=job.manifest, **job.options).manifest
        else:
            _tar_write(job, strategy, lone, ap, fixed)
            if strategy == "complete":    # the cut update is whole now; finish the change
                return update(name, tree, dry_run=job.dry_run, manifest=job.manifest,
                              force=job.force, device=device, compare=job.compare,
                              **job.options)
    if job.manifest is not None and not job.dry_run and strategy != "rebuild":
        result = write_manifest(device if device is not None else name, job.manifest,
                                laid.options)
    size = ap.image_size if ap is not None else (laid.image_size if strategy == "rebuild"
                                                 else old_size)
    return job.result(d, strategy, written, size, result)


def _tar_diff(img: Image, tree: SourceTree, job: _Job, written: Optional[int]) -> Diff:
    index = list(img)
    key = _mtime_key(img.format)
    quick = lambda i, e: True                     # noqa: E731
    if job.compare == "never":
        return diff(index, tree, same_content=quick, modes=True, mtime_key=key)
    from .compare import comparer
    same = _content_test(job, "tar", written, _newest(index),
                         comparer(img.device, _extents))
    if job.compare == "auto" and job.times.real:  # few files to read: one pass
        return diff(index, tree, same_content=same, modes=True, mtime_key=key)
    d = diff(index, tree, same_content=quick, modes=True, mtime_key=key)
    # A rebuild (removals, a kind change) writes everything anyway: no need to read
    # the files to compare them, unless the changes are to be listed.
    if job.dry_run or not (d.removed or _kind_changes(d)):
        d = diff(index, tree, same_content=same, modes=True, mtime_key=key)
    return d


def _extents(info: EntryInfo):
    """Where an image file's bytes are."""
    return info.extents


def _newest(index) -> int:
    """The newest mtime an image's index (a list of entries, or a dict of them) holds
    (0: none)."""
    return max(map(_MTIME, index.values() if isinstance(index, dict) else index), default=0)


_MTIME = attrgetter("mtime")


def _tar_write(job: _Job, strategy: str, lone, ap, fixed) -> None:
    from . import tar as tar_update
    device = job.device
    dev = device if device is not None else open_writable(job.name)
    try:
        if strategy == "complete":
            tar_update.complete(dev, lone, max((e.mtime for e in job.tree.entries),
                                               default=0))
        else:
            tar_update.apply(ap, dev, grow=None if fixed is not None or
                             device is not None else _grower(dev))
    finally:
        if device is None:
            dev.close()


def _kind_changes(d: Diff) -> bool:
    return any(e.kind.value == "dir" for e in d.changed)


def open_writable(path: str) -> FileDevice:
    """The image for writing; a device node exclusively (Linux refuses, EBUSY, one that
    is mounted or claimed by another program)."""
    from ..write.device_guard import is_device_node, open_exclusively
    if is_device_node(path):
        return open_exclusively(path)
    try:
        return FileDevice(path, writable=True)
    except OSError as e:
        raise DeviceError(f"{path}: cannot open for writing: {e.strerror}",
                          errno=e.errno) from None


def _grower(dev: FileDevice):
    def grow(size: int) -> None:
        try:
            os.ftruncate(dev.fd, size)
        except OSError as e:
            raise DeviceError(f"{dev.name}: cannot grow to {size} bytes: {e.strerror}",
                              errno=e.errno) from None
        dev.sector_count = size // dev.sector_size
    return grow


class _IndexPlan:
    """What :func:`blockimg.trust.manifest.build` needs, from an opened image's index."""

    def __init__(self, img: Image, options) -> None:
        self.sector_size = options.sector_size
        self.image_size = img.device.size
        self.align = getattr(options, "align", None)
        self._files = [(i.path, list(i.extents)) for i in img if i.kind == "file"]

    def extents(self):
        return iter(self._files)


def write_manifest(image, path, options):
    """Rewrite the manifest at ``path`` for the image as it now is (CRCs from the image)."""
    from ..trust.checksum import crc32c
    from ..trust.manifest import build, save, sha256_device
    with api.open(image) as img:
        fn = crc32c()
        crcs = {}
        for i in img:
            if i.kind == "file":
                c = 0
                for chunk in img.iter_chunks(i.path):
                    c = fn(bytes(chunk), c)
                crcs[i.path] = c
        tree = SourceTree(tuple(SourceEntry(i.path, _kind(i.kind), i.size, i.mtime,
                                            link_target=i.link_target) for i in img))
        m = build(_IndexPlan(img, options), format=img.format, crcs=crcs,
                  image_sha256=sha256_device(img.device, img.device.size), tree=tree,
                  options=options)
    save(m, path)
    return m


def _kind(kind: str):
    return Kind(kind) if kind in ("file", "dir", "symlink", "hardlink") else Kind.FILE
