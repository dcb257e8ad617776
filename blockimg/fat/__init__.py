"""FAT block images: the format's entry points (see blockimg.formats for the contract).

Submodules, by role:

* on-disk codecs (pure): ``structs`` (the on-disk structures), ``geometry``
  (boot sector -> volume geometry, type detection), ``table`` (FAT12/16/32
  allocation tables, both directions), ``names`` (8.3 and long names),
  ``directory`` (directory entry bytes, writing), ``dirents`` (directory
  bytes -> records, reading);
* writing: ``options`` (the writer's options), ``layout`` (pure planning),
  ``writer``;
* reading: ``chains`` (cluster chains over a device), ``walk`` (the directory
  walk: index, chains, cross-links), ``reader`` (``FatImage``), ``split_walk``
  (the walk split over processes);
* checking: ``checks`` (the check command), ``mirage`` (a model of the Mirage
  driver's name lookup, used by the writer and by check).
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
