"""The image formats blockimg knows, imported only when used.

Each format package provides:

* ``Options`` -- a frozen dataclass of the format's options (keyword
  arguments, validated on construction, deterministic defaults);
* ``plan(tree, options) -> Plan`` -- pure layout; ``Plan.image_size`` and
  ``Plan.sector_size`` say what device to make;
* ``write(plan, device, progress=None)`` -- carries the plan out;
* ``detect(device) -> bool`` and ``open_image(device, owns_device=False)``.
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Tuple

from .block.base import BlockDevice
from .errors import CorruptImage, InvalidInput

__all__ = ["FORMATS", "format_module", "detect_format"]

FORMATS = {"fat": "blockimg.fat", "tar": "blockimg.tar"}
DETECT_ORDER: Tuple[str, ...] = ("fat", "tar")


def format_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(FORMATS[name])
    except KeyError:
        raise InvalidInput(f"unknown format {name!r} (have: {', '.join(sorted(FORMATS))})",
                           rule="format") from None


def detect_format(device: BlockDevice) -> str:
    """The name of the format of the image on ``device``."""
    if device.size == 0:
        raise CorruptImage("image is empty", offset=0)
    for name in DETECT_ORDER:
        if format_module(name).detect(device):
            return name
    raise CorruptImage("neither a FAT volume (no boot sector at byte 0) nor a tar archive "
                       "(no valid header at byte 0)", offset=0)
