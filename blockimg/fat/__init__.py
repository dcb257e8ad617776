"""FAT block images: the format's entry points (see blockimg.formats for the contract).

Submodules: ``options`` (the writer's options), ``structs`` (on-disk
structures), ``table`` (FAT12/16/32 tables), ``names`` (8.3 and long names),
``directory`` (directory entry bytes), ``layout`` (pure planning),
``writer``, ``reader``, ``checks`` (the check command). numpy is imported
only by the modules that need it.
"""
from __future__ import annotations

from ..formats import entry_points
from .options import Options

__all__ = ["Options", "plan", "write", "detect", "open_image", "check"]

plan, write, detect, open_image, check = entry_points(__name__, "FatImage", detect_in="geometry")
#: ``write`` takes ``jobs`` (file contents split over processes).
PARALLEL = True
#: ``open_image`` takes ``lazy=True`` (paths looked up as asked, no whole index first).
LAZY_OPEN = True
