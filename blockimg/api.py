"""The library's entry points: :func:`create` an image, :func:`open` one."""
from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence, Tuple, Union

from .atomic import atomic_path
from .block.base import BlockDevice
from .block.file import FileDevice
from .block.registry import open_device
from .errors import DeviceError, DoesNotFit, InvalidInput
from .formats import detect_format, format_module
from .image import Image
from .source import SourceTree, as_tree

__all__ = ["create", "open", "Summary", "Progress"]

Progress = Callable[[int, int], None]
Source = Union[str, os.PathLike, SourceTree, Sequence[Tuple[str, object]]]


@dataclass(frozen=True)
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

    def line(self) -> str:
        mb = self.file_bytes / 1e6
        rate = f", {mb / self.seconds:.1f} MB/s" if self.seconds > 0 and mb >= 1 else ""
        return (f"{self.path}: {self.format} image, {self.files} files in "
                f"{self.directories} directories, {self.file_bytes} bytes of data, "
                f"image {self.image_size} bytes, {self.seconds:.2f} s{rate}")


def create(src: Source, image: Union[str, os.PathLike, BlockDevice], *, format: str = "tar",
           keep_links: bool = False, skip_special: bool = False, mtime: Optional[int] = None,
           secret: bool = False, force: bool = False, progress: Optional[Progress] = None,
           **options) -> Summary:
    """Build an image of ``src`` at ``image``.

    ``src`` is a directory, a :class:`~blockimg.source.SourceTree` or a list
    of ``(path_in_image, source)`` pairs (source: a path, bytes, or None for
    a directory). ``image`` is a file path (written atomically: a temporary
    file beside it is renamed over it only on success), a block device node
    (written in place; refused when mounted, and when it holds a file system
    unless ``force``), or an open :class:`BlockDevice`. The remaining keyword
    arguments are the format's options (see ``blockimg.tar.Options`` and
    ``blockimg.fat.Options``).
    """
    start = time.monotonic()
    mod = format_module(format)
    try:
        opts = mod.Options(**options)
    except TypeError as e:
        raise InvalidInput(f"option not known to the {format} format: {e}",
                           rule="format options") from None
    tree = as_tree(src, keep_links=keep_links, skip_special=skip_special, mtime=mtime)
    plan = mod.plan(tree, opts)
    if isinstance(image, BlockDevice):
        _check_fits(plan, image)
        mod.write(plan, image, progress=progress)
        image.flush()
        name = getattr(image, "name", "device")
    else:
        name = os.fspath(image)
        if _is_device_node(name):
            dev = FileDevice(name, writable=True)
            try:
                _guard_device(dev, format, force)
                _check_fits(plan, dev)
                mod.write(plan, dev, progress=progress)
                dev.flush()
            finally:
                dev.close()
        else:
            with atomic_path(name, secret=secret) as tmp:
                dev = FileDevice.create(tmp, plan.image_size, sector_size=_io_sector(plan))
                try:
                    mod.write(plan, dev, progress=progress)
                    dev.flush()
                finally:
                    dev.close()
    return Summary(format=format, path=name, files=tree.files,
                   directories=sum(1 for e in tree.entries if e.kind.value == "dir"),
                   file_bytes=tree.total_bytes, image_size=plan.image_size,
                   sector_size=plan.sector_size, seconds=time.monotonic() - start,
                   skipped=tree.skipped, plan=plan)


def _io_sector(plan) -> int:
    ss = plan.sector_size
    return ss if plan.image_size % ss == 0 else 512


def _check_fits(plan, dev: BlockDevice) -> None:
    if plan.image_size > dev.size:
        raise DoesNotFit(f"image does not fit on {dev.name}", needed=plan.image_size,
                         available=dev.size)


def _is_device_node(path: str) -> bool:
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except OSError:
        return False


def _guard_device(dev: FileDevice, format: str, force: bool) -> None:
    """Refuse a mounted device; ask for force on one that holds a file system."""
    real = os.path.realpath(dev.path)
    try:
        with _builtin_open("/proc/mounts") as f:
            for line in f:
                fields = line.split()
                if fields and os.path.realpath(fields[0]) == real:
                    raise InvalidInput(f"is mounted on {fields[1]}; unmount it first",
                                       path=dev.path, rule="never write a mounted device")
    except OSError:
        pass
    if not force and dev.size >= 4096:
        try:
            detect_format(dev)
            holds = True
        except Exception:
            head = bytes(dev.pread(0, 4096))
            holds = head.count(0) != len(head)
        if holds:
            raise InvalidInput("already holds data (a file system or partition table?); "
                               "pass --force to overwrite it", path=dev.path,
                               rule="overwrite guard")


def _builtin_open(path: str):
    import builtins
    return builtins.open(path)


def open(image: Union[str, os.PathLike, BlockDevice], *, format: Optional[str] = None,
         sector_size: int = 512, backend: Optional[str] = None) -> Image:
    """Open an image for reading; the format is detected unless given.

    ``image`` is a path, a backend URL (``mmap:site.img``) or a
    :class:`BlockDevice`. Use as a context manager.
    """
    owns = not isinstance(image, BlockDevice)
    dev = open_device(image, sector_size=sector_size, backend=backend)
    try:
        name = format or detect_format(dev)
        return format_module(name).open_image(dev, owns_device=owns)
    except BaseException:
        if owns:
            dev.close()
        raise
