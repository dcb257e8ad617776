"""tar block images: the format's entry points (see blockimg.formats for the contract).

Submodules: ``header`` (the one declaration of the 512-byte header; its number,
checksum and pax codecs), ``codec`` (sans-I/O: entries to headers), ``decoder``
(sans-I/O: header blocks to members), ``options``, ``layout`` (pure planning),
``writer`` (carries a plan out), ``reader`` (index once, random access),
``checks`` (structural and Mirage checks).
"""
from __future__ import annotations

from ..formats import entry_points
from ..lazy import lazy_names

# ``Options`` is imported on first use: a reader needs none (nor does telling formats apart).
__getattr__, __dir__ = lazy_names(globals(), {"Options": "options"})

__all__ = ["Options", "plan", "write", "detect", "open_image", "check"]

plan, write, detect, open_image, check = entry_points(__name__, "TarImage")
#: ``write`` takes ``jobs`` (file contents split over processes).
PARALLEL = True
#: ``open_image`` takes ``lazy=True`` (a path looked up as asked: one pass over the headers
#: that indexes only what decides it).
LAZY_OPEN = True
