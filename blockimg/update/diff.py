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

Whether the bytes are read to compare them is the caller's ``--compare`` choice;
:func:`auto_same` is the ``auto`` rule (see docs/update.md): compare only where
the mtime cannot tell.

No I/O here: the caller gives the index, the tree, the times and the content comparison.
"""
from __future__ import annotations

TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Callable, Dict, Iterable, Optional, Tuple
    from ..read.image import EntryInfo   # (a FAT update's index is not read.image's)

from ..record import record
from ..sources.directory import Kind, SourceEntry, SourceTree

__all__ = ["Diff", "diff", "auto_same", "MODE_BITS", "COMPARE", "RECENT"]

MODE_BITS = 0o7777
#: ``--compare``: when the bytes of a file whose size, mtime and mode agree are read.
COMPARE = ("auto", "always", "never")
#: Seconds: a source time this close to (or after) the image's last write is not trusted
#: (the image may have been written in the same clock step as a later edit; FAT images
#: and file systems keep 2-second steps).
RECENT = 2
if TYPE_CHECKING:
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
    """Compare ``index`` (the image's entries, or a dict of them by their non-empty
    paths) with ``tree`` (see the module docstring).

    ``modes``: compare permission bits too (the format stores them).
    ``mtime_key``: what the format keeps of an mtime (FAT: 2-second steps in
    local time), applied to both sides; default: the whole seconds.
    """
    key = mtime_key or int
    # (an index given as a dict, path -> entry, is copied as it is: C speed)
    have: Dict[str, EntryInfo] = dict(index) if isinstance(index, dict) else \
        {i.path: i for i in index if i.path}
    pop = have.pop
    added, changed = [], []
    unchanged = 0
    FILE = Kind.FILE
    for e in tree.entries:
        info = pop(e.path, None)
        if info is None:
            added.append(e)
        elif e.kind is FILE and info.kind == "file" and info.size == e.size and \
                (info.mtime == e.mtime or key(info.mtime) == key(e.mtime)) and \
                (not modes or (info.mode & MODE_BITS) == (e.mode & MODE_BITS)):
            # The common case, inline: what _differs decides for such a pair.
            if same_content(info, e):
                unchanged += 1
            else:
                changed.append(e)
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


def auto_same(compare: SameContent, *, real_mtimes: bool, written: int,
              dir_mtimes: Dict[str, int],
              mtime_range: Optional[Tuple[int, int]] = None) -> SameContent:
    """``same_content`` under the ``auto`` rule: ``compare(info, entry)`` (the bytes read)
    for a file whose size, mtime and mode agree with the image but whose mtime cannot
    tell, True (unchanged) for the others. The mtime cannot tell when:

    * the tree's mtimes are not the files' own (``real_mtimes`` False: ``--mtime``,
      ``SOURCE_DATE_EPOCH``, a tree given as a list): every such file;
    * the file's mtime is outside what the format keeps (``mtime_range``: FAT's
      1980..2107, clamped, so all those times look alike);
    * the file's mtime, or its directory's (a file renamed over another changes it),
      is not older than ``written`` (the image's last write) by :data:`RECENT` seconds:
      an edit in the same clock step as the write keeps the mtime the image holds.

    ``dir_mtimes``: directory path -> mtime (``""``: the source root). (One call per
    file: the rule is tested inside, not by a second function.)
    """
    if not real_mtimes:
        return compare
    since = written - RECENT
    lo, hi = mtime_range if mtime_range is not None else (None, None)
    recent_dirs = {p for p, t in dir_mtimes.items() if t >= since}

    def same(info: EntryInfo, e: SourceEntry) -> bool:
        t = e.mtime
        if t >= since or e.data is not None or (lo is not None and not lo <= t <= hi) or \
                (recent_dirs and e.path.rpartition("/")[0] in recent_dirs):
            return compare(info, e)
        return True
    return same
