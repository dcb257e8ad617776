"""What an update changes: an image's index against a source tree (sans-I/O).

:func:`diff` compares every path of the image's index with the source tree
(as :func:`blockimg.sources.directory.walk` makes it, with the options ``create`` takes):

* a path only in the source is **added**, one only in the image **removed**;
* a path in both is **changed** when its kind differs, a file's size or mtime
  differs (``create`` stores mtimes), a link's target differs, the format keeps
  modes (tar) and the mode differs -- or, when all of that is equal, when
  ``same_content(info, entry)`` says the bytes differ (the caller reads both);
  directories are compared by kind only (a tar image cannot re-state a
  directory without emptying it for Mirage, and FAT keeps no directory mode).

No I/O here: the caller gives the index, the tree and the content comparison.
"""
from __future__ import annotations

from typing import Callable, Dict, Iterable, Optional, Tuple

from ..read.image import EntryInfo
from ..record import record
from ..sources.directory import Kind, SourceEntry, SourceTree

__all__ = ["Diff", "diff", "MODE_BITS"]

MODE_BITS = 0o7777
SameContent = Callable[[EntryInfo, SourceEntry], bool]


@record(frozen=True)
class Diff:
    """Paths added, changed and removed (image order), and the unchanged count."""

    added: Tuple[SourceEntry, ...]
    changed: Tuple[SourceEntry, ...]
    removed: Tuple[EntryInfo, ...]
    unchanged: int

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed)

    def lines(self) -> Iterable[str]:
        """``A path`` / ``M path`` / ``D path``, one per change (the image's paths)."""
        for e in self.added:
            yield "A " + e.path + ("/" if e.kind is Kind.DIR else "")
        for e in self.changed:
            yield "M " + e.path + ("/" if e.kind is Kind.DIR else "")
        for i in self.removed:
            yield "D " + i.path + ("/" if i.kind == "dir" else "")


def diff(index: Iterable[EntryInfo], tree: SourceTree, *, same_content: SameContent,
         modes: bool = False, mtime_key: Optional[Callable[[int], object]] = None) -> Diff:
    """Compare ``index`` (the image's entries) with ``tree`` (see the module docstring).

    ``modes``: compare permission bits too (the format stores them).
    ``mtime_key``: what the format keeps of an mtime (FAT: 2-second steps in
    local time), applied to both sides; default: the whole seconds.
    """
    key = mtime_key or int
    have: Dict[str, EntryInfo] = {i.path: i for i in index if i.path}
    added, changed = [], []
    unchanged = 0
    for e in tree.entries:
        info = have.pop(e.path, None)
        if info is None:
            added.append(e)
        elif _differs(info, e, same_content, modes, key):
            changed.append(e)
        else:
            unchanged += 1
    removed = tuple(have.values())
    return Diff(tuple(added), tuple(changed), removed, unchanged)


def _differs(info: EntryInfo, e: SourceEntry, same_content: SameContent, modes: bool,
             key: Callable[[int], object]) -> bool:
    kind = e.kind.value
    if info.kind != kind:
        return True
    if kind == "dir":
        return False
    if kind in ("symlink", "hardlink"):
        return info.link_target != e.link_target or key(info.mtime) != key(e.mtime)
    if info.size != e.size or key(info.mtime) != key(e.mtime):
        return True
    if modes and (info.mode & MODE_BITS) != (e.mode & MODE_BITS):
        return True
    return not same_content(info, e)
