"""The image formats blockimg knows, imported only when used.

Each format package provides:

* ``Options`` -- a frozen record (:mod:`blockimg.record`) of the format's options
  (keyword arguments, validated on construction, deterministic defaults);
* ``plan(tree, options) -> Plan`` -- pure layout; ``Plan.image_size`` and
  ``Plan.sector_size`` say what device to make;
* ``write(plan, device, progress=None, checksum=False)`` -- carries the plan out;
  a format that sets ``PARALLEL = True`` also takes ``jobs`` (processes that
  copy file contents: :mod:`blockimg.write.parallel`);
* ``detect(device) -> bool`` and ``open_image(device, owns_device=False)``;
* ``check(image, target="generic") -> list[str]``.

Every format lays its package out the same way (``layout.plan``,
``writer.write``, ``reader.detect`` and the reader's Image class,
``checks.check``); :func:`entry_points` builds the five functions from that,
importing each submodule only when the function is first called.
"""
from __future__ import annotations

TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Callable, Optional, Tuple

from .block.base import BlockDevice
from .errors import CorruptImage, InvalidInput, Unsupported
from .lazy import import_module

__all__ = ["FORMATS", "format_module", "detect_format", "entry_points", "partial_hint"]

FORMATS = {"fat": "blockimg.fat", "tar": "blockimg.tar"}
DETECT_ORDER: Tuple[str, ...] = ("fat", "tar")


def entry_points(package: str, image_class: str,
                 detect_in: str = "reader") -> Tuple[Callable, ...]:
    """``(plan, write, detect, open_image, check)`` for the format package ``package``.

    ``detect`` comes from the submodule ``detect_in`` (a small one, so that
    asking "is this a FAT volume?" of a tar image imports little)."""
    def sub(name: str) -> ModuleType:
        return import_module(f"{package}.{name}")

    def plan(tree, options=None):
        """Pure layout: every structure and data extent placed (no I/O).

        ``options`` defaults to the format's ``Options()``."""
        if options is None:
            options = sub("options").Options()
        return sub("layout").plan(tree, options)

    def write(plan, device, *, progress=None, checksum=False, **split):
        """Carry ``plan`` out on ``device``; returns {path: crc32c} when ``checksum``."""
        return sub("writer").write(plan, device, progress=progress, checksum=checksum, **split)

    def detect(device) -> bool:
        """Whether ``device`` holds an image of this format (never raises on any bytes)."""
        return sub(detect_in).detect(device)

    def open_image(device, *, owns_device=False, **options):
        """The image on ``device``, indexed once (an ``Image``); ``options`` go to the
        format's Image class (``lazy=True``: paths looked up as asked)."""
        return getattr(sub("reader"), image_class)(device, owns_device=owns_device, **options)

    def check(image, *, target="generic"):
        """Problems found (strings naming offset/path and rule); empty when clean."""
        return sub("checks").check(image, target=target)

    return plan, write, detect, open_image, check


def format_module(name: str) -> ModuleType:
    try:
        return import_module(FORMATS[name])
    except KeyError:
        raise InvalidInput(f"unknown format {name!r} (have: {', '.join(sorted(FORMATS))})",
                           rule="format") from None


def detect_format(device: BlockDevice) -> str:
    """The name of the format of the image on ``device``; else an error that says what
    the bytes are instead (nothing, a partitioned disk, a FAT boot sector with a bad
    field) or that they are neither format."""
    if device.size == 0:
        raise CorruptImage("the file is empty (0 bytes): neither a FAT volume nor a tar "
                           "archive")
    for name in DETECT_ORDER:
        if format_module(name).detect(device):
            return name
    from .disk.reader import whole_disk_message
    from .fat.geometry import why_not_fat
    disk = whole_disk_message(device)
    if disk is not None:
        raise Unsupported(disk)
    bad = why_not_fat(bytes(device.pread(0, min(device.size, 512))), device.size)
    if bad is not None:
        raise bad
    raise CorruptImage("neither a FAT volume (no boot sector at byte 0) nor a tar archive "
                       "(no valid header at byte 0)", offset=0)


def partial_hint(head: bytes, size: int) -> Optional[str]:
    """Why an image file of ``size`` bytes that starts with ``head`` is not whole sectors,
    when its first bytes say: a FAT volume or tar archive cut short ("truncated?")."""
    from .fat.geometry import looks_like_fat, parse
    from .tar.header import BLOCK
    sector = head[:512]
    if looks_like_fat(sector):
        try:
            volume = parse(sector, size).volume_bytes
        except CorruptImage:
            return None
        if volume > size:
            return f"truncated? its FAT boot sector says {volume} bytes"
        return f"{size - volume} bytes after the {volume}-byte FAT volume"
    from .block.memory import MemoryDevice
    from .tar.reader import detect
    if len(head) >= BLOCK and detect(MemoryDevice(data=head[:BLOCK], writable=False)):
        return "truncated? a tar archive is whole 512-byte blocks"
    return None
