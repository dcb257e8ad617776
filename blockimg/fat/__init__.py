"""FAT block images: the format's entry points (see blockimg.formats for the contract).

Submodules: ``options`` (the writer's options), ``structs`` (on-disk
structures), ``table`` (FAT12/16/32 tables), ``names`` (8.3 and long names),
``directory`` (directory entry bytes), ``layout`` (pure planning),
``writer``, ``reader``, ``checks`` (the check command). numpy is imported
only by the modules that need it.
"""
from __future__ import annotations

from .options import Options

__all__ = ["Options", "plan", "write", "detect", "open_image", "check"]


def plan(tree, options):
    """Pure layout: FAT type, geometry, every directory and file placed. Returns a ``FatPlan``."""
    from .layout import plan as _plan
    return _plan(tree, options)


def write(plan, device, *, progress=None, checksum=False):
    """Carry ``plan`` out on ``device``; returns {path: crc32c} when ``checksum``."""
    from .writer import write as _write
    return _write(plan, device, progress=progress, checksum=checksum)


def detect(device) -> bool:
    from .reader import detect as _detect
    return _detect(device)


def open_image(device, *, owns_device=False):
    from .reader import FatImage
    return FatImage(device, owns_device=owns_device)


def check(image, *, target="generic"):
    """Problems found (strings naming offset/path and rule); empty when clean."""
    from .checks import check as _check
    return _check(image, target=target)
