"""tar block images: the format's entry points (see blockimg.formats for the contract).

Submodules: ``header`` (the 512-byte header and number/pax codecs),
``codec`` (sans-I/O decoder/encoder), ``layout`` (pure planning),
``writer`` (carries a plan out), ``reader`` (index once, random access),
``check`` (structural and Mirage checks).
"""
from __future__ import annotations

from .options import Options

__all__ = ["Options", "plan", "write", "detect", "open_image", "check"]


def plan(tree, options=None):
    """Pure layout: every header and data extent placed. Returns a ``TarPlan``."""
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
    from .reader import TarImage
    return TarImage(device, owns_device=owns_device)


def check(image, *, target="generic"):
    """Problems found (strings naming offset/path and rule); empty when clean."""
    from .checks import check as _check
    return _check(image, target=target)
