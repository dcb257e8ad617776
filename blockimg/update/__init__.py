"""``blockimg update``: make an existing image hold a source tree, writing only what changed.

:func:`diff_image` says what would change; :func:`update` writes it (:mod:`.run`);
:mod:`.diff` compares (sans-I/O; :mod:`.compare` reads the bytes), :mod:`.tar`
appends, :mod:`.fat` changes a FAT volume in place (planned by
:mod:`blockimg.fat.update`). Imported when first used, so
that the command line starts without them.
"""
from __future__ import annotations

__all__ = ["Diff", "UpdateResult", "diff_image", "update"]


def __getattr__(name: str):
    if name in __all__:
        from . import run
        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
