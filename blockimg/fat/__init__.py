"""FAT block images: the format's entry points (see blockimg.formats for the contract).

Its modules, by role:

* on-disk codecs (pure): ``structs`` (every on-disk structure declared once, in
  ``LAYOUTS``: formats and offsets come from it), ``table`` (FAT12/16/32
  allocation tables, both directions, and the cluster limits of each type),
  ``names`` (8.3 and long names, the naming rules), ``directory`` (directory
  entry bytes, writing), ``dirents`` (directory bytes -> records, reading),
  ``geometry`` (boot sector -> the volume's geometry as read, type detection);
* writing: ``options`` (the writer's options), ``layout`` (pure planning, with
  the planned geometry), ``writer``;
* reading: ``chains`` (cluster chains over a device), ``walk`` (the directory
  walk: index, chains, cross-links), ``reader`` (``FatImage``), ``split_walk``
  (the walk split over processes), ``update`` (planning an update in place);
* checking: ``checks`` (the check command), ``mirage`` (a model of the Mirage
  driver's name lookup: the one rule behind the writer's name checks and check's).
"""
from __future__ import annotations

from ..formats import entry_points
from ..lazy import lazy_names

# ``Options`` is imported on first use: a reader needs none (nor does telling formats apart).
__getattr__, __dir__ = lazy_names(globals(), {"Options": "options"})

__all__ = ["Options", "plan", "write", "detect", "open_image", "check"]

plan, write, detect, open_image, check = entry_points(__name__, "FatImage", detect_in="geometry")
#: ``write`` takes ``jobs`` (file contents split over processes).
PARALLEL = True
#: ``open_image`` takes ``lazy=True`` (paths looked up as asked, no whole index first).
LAZY_OPEN = True
