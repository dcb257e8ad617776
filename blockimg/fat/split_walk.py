"""Indexing a FAT volume in parts, one per process, for a parallel extraction.

Opening a volume of 20,000 files is mostly Python work per directory entry;
split over two processes it halves. :func:`plan` scans the directory tree's
shape without decoding a name (which entries are subdirectories, how many
entries each directory holds) and cuts the directories, in walk order, into
contiguous parts of about equal size. :meth:`SplitWalk.walk` then runs the
ordinary walk (:meth:`Walk.run <blockimg.fat.walk.Walk.run>`, through
:meth:`FatImage.index_part <blockimg.fat.reader.FatImage.index_part>`) in part
``i``'s process, indexing the
entries of the directories it owns and only passing through (quietly) the
directories above them. Every entry is indexed by exactly one part, with the same checks as the
whole walk, and every chain is owned by one part, so the parts' runs together
are the whole walk's: :meth:`SplitWalk.merge` checks them for cross-links.

Anything odd in the scan (a directory met twice, a broken chain, data past the
end) means no plan: the caller walks the whole tree as usual and reports what
it finds. So does any failure of a part: the whole walk then decides.
"""
from __future__ import annotations

TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Set, Tuple

    from .walk import Walk

from ..errors import CorruptImage
from ..read import extract as read_extract
from .chains import ChainError
from .dirents import DOT, DOTDOT
from .structs import (ATTR_DIRECTORY, ATTR_LONG_NAME, ATTR_LONG_NAME_MASK, DIR_ENTRY_SIZE,
                      OFFSETS)

from .walk import MAX_PROBLEMS

_LO = OFFSETS["DirEntry"]["DIR_FstClusLO"]
_HI = OFFSETS["DirEntry"]["DIR_FstClusHI"]

# The images split here are blockimg.fat.reader.FatImage objects, used through their
# public interface (walk, split walk methods, warnings); reader.py imports this module.

__all__ = ["plan", "SplitWalk", "MAX_SCAN_DIRS"]

#: A tree with more directories than this is walked whole (the scan keeps a row per
#: directory; this bounds it).
MAX_SCAN_DIRS = 100_000
#: Attribute byte -> 1 for a subdirectory entry (directory bit, not a long-name slot).
_SUBDIR = bytes(1 if b & ATTR_DIRECTORY and b & ATTR_LONG_NAME_MASK != ATTR_LONG_NAME else 0
                for b in range(256))
#: Attribute byte -> 1 for a long-name slot.
_SLOT = bytes(1 if b & ATTR_LONG_NAME_MASK == ATTR_LONG_NAME else 0 for b in range(256))


def scan(walk: "Walk") -> Optional[List[Tuple[int, int, int]]]:
    """The directories in walk order as ``(start cluster, parent's row, entries)``, or
    None when anything in the tree's shape is not plain (the whole walk will say what);
    ``walk`` is a walk that has read where the root is."""
    geo = walk.geometry
    fat32 = geo.fat_type == 32
    max_cluster = geo.max_cluster
    cs = walk.cluster_size
    dev_size = walk.device_size
    limit = walk.dir_limit
    root = walk.root_cluster
    rows: List[Tuple[int, int, int]] = []
    stack = [(root, walk.dirs[""], -1)]
    seen = {root}
    while stack:
        cluster, extents, parent = stack.pop()
        row = len(rows)
        data = walk.read_dir(extents)
        leads = data[0::DIR_ENTRY_SIZE]
        end = leads.find(0)
        n = len(leads) if end < 0 else end
        attrs = data[11:n * DIR_ENTRY_SIZE:DIR_ENTRY_SIZE]
        entries = n - attrs.translate(_SLOT).count(1) - leads.count(0xE5, 0, n)
        rows.append((cluster, parent, max(1, entries)))
        if len(rows) > MAX_SCAN_DIRS:
            return None
        flags = attrs.translate(_SUBDIR)
        found = []
        i = flags.find(1)
        while i >= 0:
            off = i * DIR_ENTRY_SIZE
            name11 = data[off:off + 11]
            if data[off] != 0xE5 and name11 != DOT and name11 != DOTDOT:
                c = data[off + _LO] | data[off + _LO + 1] << 8
                if fat32:
                    c |= (data[off + _HI] | data[off + _HI + 1] << 8) << 16
                if not 2 <= c <= max_cluster or c in seen:
                    return None
                seen.add(c)
                try:
                    runs = walk.fat.chain(c, limit)
                except ChainError:
                    return None
                ext = walk.extents(runs, sum(k for _, k in runs) * cs)
                if any(at + k > dev_size for at, k in ext):
                    return None
                found.append((c, ext, row))
            i = flags.find(1, i + 1)
        stack.extend(reversed(found))
    return rows


def plan(img: "FatImage", jobs: Optional[int]) -> Optional["SplitWalk"]:
    """A split of the walk into ``jobs`` parts (None: as many as :func:`auto_jobs` picks
    for the tree's entries), or None when one part (or the whole walk) is better."""
    rows = scan(img.walk)
    if rows is None:
        return None
    weights = [w for _, _, w in rows]
    if jobs is None and sum(weights) < read_extract.ONE_PROCESS_BELOW:
        return None                                 # (auto_jobs would pick one process)
    from ..write.parallel import auto_jobs, split
    parts = auto_jobs(sum(weights)) if jobs is None else jobs
    ranges = split(weights, parts)
    if len(ranges) <= 1:
        return None
    owner: Dict[int, int] = {}
    needed: List[Set[int]] = []
    for part, (start, stop) in enumerate(ranges):
        need: Set[int] = set()
        for r in range(start, stop):
            cluster = rows[r][0]
            owner[cluster] = part
            while r >= 0 and rows[r][0] not in need:   # the row and its ancestors
                need.add(rows[r][0])
                r = rows[r][1]
        needed.append(need)
    return SplitWalk(img, owner, needed)


class SplitWalk:
    """The walk of one volume cut into parts: directory ``owner`` (start cluster ->
    part), and for each part the directories it must read (its own and those above)."""

    def __init__(self, img: "FatImage", owner: Dict[int, int], needed: List[Set[int]]) -> None:
        self.img = img
        self.owner = owner
        self.needed = needed
        self.parts = len(needed)

    def walk(self, part: int) -> dict:
        """Index part ``part``'s entries into the image (in this process); what the
        parent needs of it for :meth:`merge`. Raises as the whole walk would."""
        img = self.img
        walk = img.index_part(self, part)
        return {"starts": walk.runs.start, "lengths": walk.runs.length,
                "warnings": img.warnings[walk.warnings_from:],
                "unsafe_names": walk.unsafe_names, "label_entry": walk.label_entry}

    def merge(self, answers: List[dict]) -> bool:
        """In part 0's process, after :meth:`walk`: every part's chains checked together
        for cross-links, and the walk's warnings and unsafe names gathered (in part
        order). False when they cross: the whole walk must then say where."""
        img = self.img
        walk = img.walk
        for got in answers[1:]:
            walk.runs.add_foreign(got["starts"], got["lengths"], "?")
        try:
            walk.check_cross_links()
        except CorruptImage:
            return False
        for got in answers[1:]:
            img.warnings.extend(got["warnings"][:max(0, MAX_PROBLEMS - len(img.warnings))])
            walk.unsafe_names.extend(got["unsafe_names"])
        img.opening_warnings = len(img.warnings)
        return True

    def reset(self) -> None:
        """Back to the lazily opened state (the index held only this process's part); the
        gathered warnings and unsafe names stay."""
        self.img.reopen_lazily()
