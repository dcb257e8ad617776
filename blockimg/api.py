"""The library's entry points: :func:`create` an image, :func:`open` one."""
from __future__ import annotations

import builtins
import os
import time
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Callable, Optional, Sequence, Tuple, Union

from .block.base import BlockDevice
from .block.file import FileDevice
from .errors import DeviceError, DoesNotFit, InvalidInput, NotWholeSectors
from .formats import detect_format, format_module, partial_hint
from .record import field, record
from .units import human_size, plural

# The write side (write.atomic, write.device_guard) is imported by the
# functions that write: opening an image to read it needs none of it.
if TYPE_CHECKING:   # imported where used: a build without a manifest needs neither
    from .read.image import Image
    from .trust.manifest import Manifest
    from .sources.directory import SourceTree

__all__ = ["create", "plan", "open", "open_for_reading", "Summary", "Progress"]

if TYPE_CHECKING:
    Progress = Callable[[int, int], None]
else:   # (a name for annotations; typing not imported)
    Progress = 'Callable[[int, int], None]'
if TYPE_CHECKING:
    Source = Union[str, os.PathLike, SourceTree, Sequence[Tuple[str, object]]]
else:   # (a name for annotations; typing not imported)
    Source = 'Union[str, os.PathLike, SourceTree, Sequence[Tuple[str, object]]]'


@record(frozen=True)
class Summary:
    """What :func:`create` made."""

    format: str
    path: str
    files: int
    directories: int
    file_bytes: int
    image_size: int
    sector_size: int
    seconds: float
    skipped: Tuple[Tuple[str, str], ...] = ()
    plan: object = field(default=None, repr=False, compare=False)
    manifest: Optional[Manifest] = field(default=None, repr=False, compare=False)

    def line(self) -> str:
        mb = self.file_bytes / 1e6
        rate = f", {mb / self.seconds:.1f} MB/s" if self.seconds > 0 and mb >= 1 else ""
        return (f"{self.path}: {self.format} image, {plural(self.files, 'file')} in "
                f"{plural(self.directories, 'directory', 'directories')}, "
                f"{human_size(self.file_bytes)} of data, image {human_size(self.image_size)}, "
                f"{self.seconds:.2f} s{rate}")


def create(src: Source, image: Union[str, os.PathLike, BlockDevice], *, format: str = "tar",
           keep_links: bool = False, skip_special: bool = False, mtime: Optional[int] = None,
           secret: bool = False, force: bool = False, progress: Optional[Progress] = None,
           manifest: Union[None, bool, str, os.PathLike] = None, fsync: Optional[bool] = None,
           jobs: Optional[int] = 1, exclude: Sequence[str] = (), exclude_vcs: bool = False,
           platform: Optional[str] = None, **options) -> Summary:
    """Build an image of ``src`` at ``image``.

    ``src`` is a directory, a :class:`~blockimg.sources.directory.SourceTree` or a list
    of ``(path_in_image, source)`` pairs (source: a path, bytes, or None for
    a directory). ``image`` is a file path (written atomically: built in an
    anonymous or temporary file beside it and put in place only on success),
    a block device node (written in place; refused when mounted or in use,
    and when it holds data unless ``force``), or an open :class:`BlockDevice`.
    ``manifest`` is a path to write the JSON manifest to (atomically, like
    the image), or True to only return it as ``Summary.manifest``.
    ``secret`` makes image and manifest mode 0600 and wipes temporary files
    on failure. ``fsync``: True makes the image (and manifest) durable before
    they are put in place; False leaves the write-out to the kernel, as ``cp``
    and ``tar`` do; None (default) fsyncs when something could be lost without
    it -- the image replaces an existing file, or it is a device -- and not when
    it is a new file (a crash soon after may then leave a complete-looking new
    image with missing data, as it may with ``cp``; nothing existing is at risk).
    ``jobs``: processes that copy file contents (:mod:`blockimg.write.parallel`; the
    same bytes); None picks by CPUs and file count (:func:`~blockimg.write.parallel.auto_jobs`).
    Forking is unsafe in a process running other threads: keep 1 there.
    ``exclude``: GNU tar ``--exclude`` patterns; ``exclude_vcs``: leave out version
    control files as GNU tar's ``--exclude-vcs`` does
    (:func:`blockimg.sources.directory.excluder`).
    ``platform`` (``"hvt"``, ``"xen"`` ... :mod:`blockimg.deploy.platforms`) applies that
    platform's block-device rules at plan time and refuses what would not work there.
    The remaining keyword arguments are the format's options
    (see ``blockimg.tar.Options`` and ``blockimg.fat.Options``).

    Nothing is written until the whole tree has been checked: everything the format
    and target refuse is raised at once (:class:`~blockimg.errors.Problems` when more
    than one). An image (or manifest) path inside ``src`` is never stored in itself.
    """
    start = time.monotonic()
    if isinstance(image, (str, os.PathLike)) and os.path.isdir(image):
        raise InvalidInput("is a directory; give the path of the image file to write",
                           path=os.fspath(image), rule="the image is a file or a device")
    mod, opts, tree, plan = _planned(src, format, keep_links, skip_special, mtime, exclude,
                                     exclude_vcs, _own_files(image, manifest), options,
                                     platform)
    if jobs is None:
        from .write.parallel import auto_jobs
        jobs = auto_jobs(tree.files)
    build = _Build(mod, plan, format=format, tree=tree, opts=opts, progress=progress,
                   manifest_path=_manifest_path(manifest, image),
                   want=manifest is not None and manifest is not False, secret=secret,
                   jobs=jobs)
    name, result = _write(build, image, force=force, fsync=fsync)
    return _summary(format, name, tree, plan, time.monotonic() - start, result)


def _summary(format: str, path: str, tree: SourceTree, plan, seconds: float,
             manifest: Optional[Manifest] = None) -> Summary:
    return Summary(format=format, path=path, files=tree.files,
                   directories=sum(1 for e in tree.entries if e.kind.value == "dir"),
                   file_bytes=tree.total_bytes, image_size=plan.image_size,
                   sector_size=plan.sector_size, seconds=seconds, skipped=tree.skipped,
                   plan=plan, manifest=manifest)


def _manifest_path(manifest, image) -> Optional[str]:
    """The file to write the manifest to (None: none, or only returned); never the image."""
    if manifest is None or isinstance(manifest, bool):
        return None
    path = os.fspath(manifest)
    if not isinstance(image, BlockDevice) and \
            os.path.realpath(path) == os.path.realpath(os.fspath(image)):
        raise InvalidInput("the manifest would overwrite the image", path=path,
                           rule="manifest beside the image")
    return path


def _write(build: _Build, image, *, force: bool, fsync: Optional[bool]):
    """Carry ``build`` out on ``image`` (an open device, a backend URL, a device node or
    a file): ``(the name shown, the manifest or None)``. ``fsync`` None: when something
    could be lost without it (a device, or a file replaced)."""
    if isinstance(image, BlockDevice):
        return getattr(image, "name", "device"), build.onto_device(image, fsync is not False)
    name = os.fspath(image)
    from .block.registry import open_device, plugin_scheme
    if plugin_scheme(name):
        dev = open_device(name, writable=True, sector_size=build.plan.sector_size)
        try:
            return name, build.onto_device(dev, fsync is not False)
        finally:
            dev.close()
    if fsync is None:
        fsync = os.path.lexists(name)
    from .write import device_guard
    if device_guard.is_device_node(name):
        return name, build.onto_node(name, force, fsync)
    return name, build.onto_file(name, fsync)


def _own_files(image, manifest) -> list:
    """The files a build writes (the image, the manifest, and temporary files of either
    beside them, such as one left by a killed build): never stored in the image."""
    from .write.atomic import temporaries_in
    out = []
    for p in (image, manifest):
        if isinstance(p, (str, os.PathLike)):
            p = os.path.abspath(os.fspath(p))
            directory, base = os.path.split(p)
            out.append(p)
            out += [os.path.join(directory, n) for n in temporaries_in(directory)
                    if n.startswith(f".{base}.")]
    return out


def plan(src: Source, *, format: str = "tar", keep_links: bool = False,
         skip_special: bool = False, mtime: Optional[int] = None, exclude: Sequence[str] = (),
         exclude_vcs: bool = False, platform: Optional[str] = None, **options) -> Summary:
    """What :func:`create` would make of ``src``, without writing anything.

    Checks the whole tree against the format's and the target's rules (raising
    every problem at once, as :func:`create` does) and returns the
    :class:`Summary` of the image (``path`` empty, ``seconds`` 0; ``plan`` holds
    the layout: FAT type, cluster size, ...).
    """
    mod, opts, tree, laid = _planned(src, format, keep_links, skip_special, mtime, exclude,
                                     exclude_vcs, (), options, platform)
    return _summary(format, "", tree, laid, 0.0)


def _planned(src, format, keep_links, skip_special, mtime, exclude, exclude_vcs, leave_out,
             options, platform=None):
    """The format module, its options, the tree and the plan; every refusal at once.

    ``platform``: its rules fill in and check the options first, then the plan."""
    mod = format_module(format)
    profile = None
    if platform is not None:
        from .deploy import platforms
        profile = platforms.get(platform)
        options = platforms.format_options(profile, format, options)
    # The option names a format's Options takes (a record's, or a dataclass's).
    fields = getattr(mod.Options, "__record_fields__", None) or \
        tuple(getattr(mod.Options, "__dataclass_fields__", None) or options)
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise InvalidInput(f"the {format} format has no option {', '.join(unknown)} (its "
                           f"options: {', '.join(fields)})", path=unknown[0],
                           rule="format options")
    opts = mod.Options(**options)
    # (reading needs no source side)
    from .sources.directory import as_tree, excluder, paused_gc, walk
    problems: list = []
    if isinstance(src, (str, os.PathLike)):
        tree = walk(src, keep_links=keep_links, skip_special=skip_special, mtime=mtime,
                    exclude=excluder(exclude, vcs=exclude_vcs), leave_out=leave_out,
                    problems=problems)
    else:
        tree = as_tree(src, mtime=mtime)
    try:
        with paused_gc():    # one acyclic object per entry: the collector's passes are waste
            laid = mod.plan(tree, opts)
    except InvalidInput as e:
        found = e.problems
        if isinstance(src, (str, os.PathLike)):
            found = _as_source_paths(found, tree, os.fspath(src))
        InvalidInput.raise_all(problems + found)
        raise
    InvalidInput.raise_all(problems)
    if profile is not None:
        laid, opts = _fit_platform(profile, mod, tree, opts, laid, format, options)
    return mod, opts, tree, laid


def _fit_platform(profile, mod, tree, opts, plan, format: str, options: dict):
    """``plan``, planned again at the size the platform needs (albatross: whole MiB);
    InvalidInput naming every platform rule it still breaks."""
    from .deploy import platforms
    size = platforms.fitted_size(profile, plan.image_size, opts.size is not None)
    if size is not None:
        opts = mod.Options(**{**options, "size": size})
        from .sources.directory import paused_gc
        with paused_gc():
            plan = mod.plan(tree, opts)
    problems = platforms.plan_problems(profile, format, plan.image_size, plan.sector_size)
    if problems:
        raise InvalidInput("; ".join(problems), path=f"--platform {profile.name}",
                           rule="platform rules")
    return plan, opts


def _as_source_paths(problems, tree: SourceTree, root: str) -> list:
    """The planner's problems naming source files (as the walk's do), not image paths."""
    paths = {e.path for e in tree.entries}
    return [InvalidInput(p.message, path=os.path.join(root, p.path), rule=p.rule)
            if type(p) is InvalidInput and p.path in paths else p for p in problems]


class _Build:
    """One build's writing: the format's writer on the plan, and the manifest beside it."""

    def __init__(self, mod, plan, *, format: str, tree: SourceTree, opts, progress,
                 manifest_path: Optional[str], want: bool, secret: bool, jobs: int) -> None:
        self.mod, self.plan, self.format, self.tree, self.opts = mod, plan, format, tree, opts
        self.progress = progress
        self.manifest_path, self.want, self.secret = manifest_path, want, secret
        # Only formats that split their work (``PARALLEL = True``) are told about jobs.
        self.jobs_arg = {"jobs": int(jobs)} if jobs > 1 and getattr(mod, "PARALLEL", False) \
            else {}

    def write(self, dev: BlockDevice, fsync: bool) -> dict:
        """The image onto ``dev``; ``{path: crc32c}`` when a manifest is wanted."""
        crcs = self.mod.write(self.plan, dev, progress=self.progress, checksum=self.want,
                              **self.jobs_arg)
        if fsync:
            dev.flush()
        return crcs

    def manifest(self, sha: str, crcs) -> Manifest:
        from .trust.manifest import build
        return build(self.plan, format=self.format, crcs=crcs, image_sha256=sha,
                     tree=self.tree, options=self.opts)

    def device_manifest(self, dev: BlockDevice, crcs) -> Optional[Manifest]:
        if not self.want:
            return None
        from .trust.manifest import sha256_device
        return self.manifest(sha256_device(dev, self.plan.image_size), crcs)

    def save_manifest(self, result: Optional[Manifest]) -> None:
        if result is not None and self.manifest_path:
            from .trust.manifest import save
            save(result, self.manifest_path, secret=self.secret)

    def onto_device(self, dev: BlockDevice, fsync: bool) -> Optional[Manifest]:
        """Write onto an open device (the caller's, or a backend's)."""
        _check_fits(self.plan, dev)
        result = self.device_manifest(dev, self.write(dev, fsync))
        self.save_manifest(result)
        return result

    def onto_node(self, name: str, force: bool, fsync: bool) -> Optional[Manifest]:
        """Write onto the block device node ``name`` in place (:mod:`.device_guard`)."""
        from .write import device_guard
        dev = device_guard.open_exclusively(name)
        try:
            device_guard.refuse_unsafe(dev, force)
            _check_fits(self.plan, dev)
            result = self.device_manifest(dev, self.write(dev, fsync))
        finally:
            dev.close()
        self.save_manifest(result)
        return result

    def onto_file(self, name: str, fsync: bool) -> Optional[Manifest]:
        """Write the file ``name`` (and its manifest) atomically. If the image is in place
        but its manifest cannot be, the old manifest goes: never beside other contents."""
        placed = []
        try:
            return self._file(name, fsync, placed)
        except DeviceError:
            if placed and self.manifest_path:
                try:
                    os.unlink(self.manifest_path)
                except OSError:
                    pass
            raise

    def _file(self, name: str, fsync: bool, placed: list) -> Optional[Manifest]:
        from .write.atomic import atomic_file
        if not self.manifest_path:
            return self._image(name, fsync, placed, None)
        # Entered first, put in place last: the manifest appears only beside a
        # finished image.
        with atomic_file(self.manifest_path, secret=self.secret, durable=fsync) as mout:
            return self._image(name, fsync, placed, mout)

    def _image(self, name: str, fsync: bool, placed: list, mout) -> Optional[Manifest]:
        from .write.atomic import atomic_file, write_all
        result = None
        plan = self.plan
        with atomic_file(name, secret=self.secret, durable=fsync) as out:
            try:
                os.ftruncate(out.fd, plan.image_size)
            except OSError as e:
                raise DeviceError(f"{name}: cannot make a {plan.image_size}-byte image: "
                                  f"{e.strerror}", errno=e.errno) from None
            dev = FileDevice(out.name, writable=True, sector_size=_io_sector(plan),
                             _fd=os.dup(out.fd))
            # The writer starts the kernel's write-out as it goes, so that the fsync
            # has little left to do (pointless work without it).
            dev.early_writeout = fsync
            try:
                crcs = self.write(dev, fsync)
            finally:
                dev.close()
            if self.want:
                # One bounded-memory pass over the finished image, before it is in place.
                from .trust.manifest import sha256_fd
                result = self.manifest(sha256_fd(out.fd, plan.image_size), crcs)
                if mout is not None:
                    write_all(mout.fd, result.dumps().encode("utf-8"), sync=fsync)
        placed.append(name)
        return result


def _io_sector(plan) -> int:
    ss = plan.sector_size
    return ss if plan.image_size % ss == 0 else 512


def _check_fits(plan, dev: BlockDevice) -> None:
    if plan.image_size > dev.size:
        raise DoesNotFit(f"image does not fit on {dev.name}", needed=plan.image_size,
                         available=dev.size)


def open(image: Union[str, os.PathLike, BlockDevice], *, format: Optional[str] = None,
         sector_size: int = 512, backend: Optional[str] = None, lazy: bool = False) -> Image:
    """Open an image for reading; the format is detected unless given.

    ``image`` is a path, a backend URL (``mmap:site.img``) or a
    :class:`BlockDevice`. Use as a context manager. ``lazy=True``: where the
    format can, ``stat``/``open``/``read`` of a path index only what decides
    it: on FAT the directories on its way (checked, with the file's chain, as
    the whole walk would); on tar every header is still decoded (a later member
    of the same name wins) but only the path, its ancestors and what lies below
    it are indexed. The first call that needs the whole tree (``list``,
    ``extract``, ``info``, iteration) indexes it all then.
    """
    owns = not isinstance(image, BlockDevice)
    dev = open_for_reading(image, sector_size=sector_size, backend=backend)
    try:
        name = format or detect_format(dev)
        mod = format_module(name)
        options = {"lazy": True} if lazy and getattr(mod, "LAZY_OPEN", False) else {}
        return mod.open_image(dev, owns_device=owns, **options)
    except BaseException:
        if owns:
            dev.close()
        raise


def open_for_reading(image: Union[str, os.PathLike, BlockDevice], *, sector_size: int = 512,
                     backend: Optional[str] = None) -> BlockDevice:
    """The block device of ``image`` (as :func:`open` takes it), read-only; a file that is
    not whole sectors is refused saying what its first bytes suggest ("truncated?")."""
    from .block.registry import open_device
    try:
        return open_device(image, sector_size=sector_size, backend=backend)
    except NotWholeSectors as e:
        raise _with_hint(e) from None


def _with_hint(error: NotWholeSectors) -> NotWholeSectors:
    """``error``, saying what the file's first bytes suggest (a FAT volume or a tar archive
    cut short) when they can be read."""
    try:
        with _builtin_open_binary(error.path) as f:
            head = f.read(512)
    except OSError:
        return error
    hint = partial_hint(head, error.size)
    if hint is None:
        return error
    return NotWholeSectors(error.path, size=error.size, sector_size=error.sector_size,
                           hint=hint)


def _builtin_open_binary(path: str):
    return builtins.open(path, "rb")
