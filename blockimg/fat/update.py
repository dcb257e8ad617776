"""Plan an in-place update of a FAT volume (pure: the old volume's index and a source
tree in, the ordered writes out; :mod:`blockimg.update.fat` reads and writes).

What the plan changes, and nothing else:

* a new or changed file gets free clusters (one contiguous run where a free run is
  long enough, first fit from the start, as ``create`` places files), and its
  directory entry (a changed file keeps its slot and short name: only the cluster,
  size, time and attribute of its 32-byte entry change);
* a removed entry's slots become deleted (``0xE5``), its chain (a directory's: with
  everything under it) is freed;
* a new directory gets clusters holding its whole content; a directory that runs
  out of slots grows by zeroed clusters linked at its end (the FAT12/16 root cannot
  grow: the update does not fit);
* new short names follow ``create``'s rules (:func:`blockimg.fat.layout.name_children`)
  with the directory's kept short names taken; a kept entry whose alias equals a new
  name's 8.3 form gets a new alias (its slots rewritten in place);
* only the FAT sectors (every copy), directory sectors and FSInfo that differ are
  written.

Write order (:class:`UpdatePlan`; each phase flushed before the next, except that the
marker and the data are flushed together, :data:`STEPS`)::

    1 marker    FAT[1]'s clean-shutdown bit cleared (FAT12: the boot sector's dirty bit);
                every FAT copy made equal to the first (a cut update may leave one behind)
    2 data      new files and directories into free clusters (the old tree intact)
    3 allocate  the new chains in every FAT copy (the old entries still point at
                the old chains; the new ones are unreferenced); when the marker was
                already set, every allocated cluster nothing refers to is freed first
    4 switch    directory sectors (last sector of a directory first)
    5 free      the old chains; FSInfo
    6 clean     the marker cleared

Clusters freed by an update are not reused by the same update: the old tree must
stay whole until phase 4, so an update needs free room for everything it writes.
"""
from __future__ import annotations

from collections import namedtuple
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Dict, Iterable, List, Optional, Tuple

from ..errors import DoesNotFit, InvalidInput
from ..record import record
from ..sources.directory import Kind, SourceEntry, SourceTree
from ..units import ceil_div, human_size
from . import table
from .directory import children_bytes, dot_entries, file_attr, pack_entry
from .layout import MAX_DIR_ENTRIES, name_children
from .marker import STATE_AT, STATE_DIRTY, dirty, set_clean
from .names import exact_short
from .options import Options
from .structs import DIR_ENTRY_SIZE
from .table import fat_get, fat_set

__all__ = ["OldEntry", "OldDir", "Volume", "Write", "FileData", "UpdatePlan", "plan",
           "fat_get", "fat_set", "dirty", "set_clean", "lost_runs", "PHASES", "STEPS",
           "STATE_DIRTY"]

PHASES = ("marker", "data", "allocate", "switch", "free", "clean")
#: The phases written together, one flush after each step: the data goes into clusters
#: free in the old tree, so it needs no barrier after the marker (a crash leaves the
#: old tree, marked or not); the FAT's new chains must not be durable before the marker.
STEPS = (("marker", "data"), ("allocate",), ("switch",), ("free",), ("clean",))
DELETED = 0xE5

# -- the old volume ----------------------------------------------------------------

class OldEntry(namedtuple("OldEntry", "path kind size mtime mode runs offset lfn_offset")):
    """A file or directory of the old volume (one per entry: a tuple, kept small).

    What the diff reads of an index entry (``path``, ``kind`` "file" or "dir", ``size``,
    ``mtime``, ``mode``: :class:`~blockimg.read.image.EntryInfo`'s names) and what the
    planner needs: ``runs``, its chain as (first cluster, count) pairs (a directory's
    whole chain); ``offset``, its short entry's offset in its directory's data, and
    ``lfn_offset``, its first long-name slot's (== ``offset`` without one). Its short
    name is read from the directory's data (:meth:`Volume.short`)."""

    __slots__ = ()
    link_target = None


@record(frozen=True)
class OldDir:
    """A directory of the old volume: its bytes, where they are, and what it holds."""

    path: str
    cluster: int                      # first cluster; 0 for the FAT12/16 root region
    clusters: Tuple[int, ...]         # its chain (empty for the root region)
    data: bytes
    children: Tuple[OldEntry, ...]
    junk: Tuple[Tuple[int, int], ...] = ()   # slot ranges no entry owns (cleared)


@record(frozen=True)
class Volume:
    """What an update needs of the old volume (built by :mod:`blockimg.update.fat`)."""

    geometry: object                  # blockimg.fat.geometry.Geometry
    boot: bytes                       # the first sector
    fat: bytes                        # FAT copy 0, whole
    dirs: Dict[str, OldDir]
    entries: Dict[str, OldEntry]
    lost: Tuple[Tuple[int, int], ...]  # allocated runs nothing refers to
    dirty: bool                       # the marker was set: an update was cut short
    fsinfo: Optional[bytes] = None    # FAT32's FSInfo sector
    other_fats: Tuple[bytes, ...] = ()  # FAT copies 1.. (a cut update may leave them behind)

    def short(self, e: OldEntry) -> bytes:
        """The 11-byte short name of entry ``e``."""
        return self.dirs[e.path.rpartition("/")[0]].data[e.offset:e.offset + 11]

    def nt_res(self, e: OldEntry) -> int:
        """The DIR_NTRes byte (the case of the short name) of entry ``e``."""
        return self.dirs[e.path.rpartition("/")[0]].data[e.offset + 12]

    def dir_offset(self, d: OldDir, pos: int) -> int:
        """Device offset of byte ``pos`` of directory ``d``."""
        geo = self.geometry
        if not d.clusters:
            return geo.root_offset + pos
        cs = geo.cluster_size
        return geo.cluster_offset(d.clusters[pos // cs]) + pos % cs


# -- the plan ----------------------------------------------------------------------

@record(frozen=True)
class Write:
    """``data`` at byte ``offset`` of the device."""

    offset: int
    data: bytes


@record(frozen=True)
class FileData:
    """A source file's bytes into ``runs`` (whole clusters, zero padded)."""

    entry: SourceEntry
    runs: Tuple[Tuple[int, int], ...]
    length: int                       # bytes written: the runs' clusters


@record(frozen=True)
class UpdatePlan:
    """The writes of an update, phase by phase (see the module docstring)."""

    geometry: object
    phases: Dict[str, Tuple[object, ...]]    # phase -> Write / FileData, in order
    allocated: int                    # clusters taken
    freed: int                        # clusters freed
    free_after: int                   # free clusters afterwards

    @property
    def bytes_written(self) -> int:
        return sum(w.length if isinstance(w, FileData) else len(w.data)
                   for ws in self.phases.values() for w in ws)

    @property
    def empty(self) -> bool:
        return not any(self.phases.values())


class _Allocator:
    """Free clusters as sorted runs; takes the first run long enough, else pieces."""

    def __init__(self, free_runs: List[List[int]]) -> None:
        self.runs = free_runs

    @property
    def total(self) -> int:
        return sum(n for _, n in self.runs)

    def take(self, n: int, after: int = 0) -> List[Tuple[int, int]]:
        """``n`` clusters: right after cluster ``after`` if that run is free and long enough,
        else one run (first fit), else the first free pieces."""
        runs = self.runs
        pick = next((i for i, (s, k) in enumerate(runs) if after and s == after + 1 and k >= n),
                    None)
        if pick is None:
            pick = next((i for i, (_, k) in enumerate(runs) if k >= n), None)
        if pick is not None:
            s, k = runs[pick]
            if k == n:
                del runs[pick]
            else:
                runs[pick] = [s + n, k - n]
            return [(s, n)]
        out = []
        while n:
            s, k = runs[0]
            m = min(k, n)
            out.append((s, m))
            n -= m
            if m == k:
                del runs[0]
            else:
                runs[0] = [s + m, k - m]
        return out


def _free_runs(vol: Volume, lost: Iterable[Tuple[int, int]]) -> List[List[int]]:
    """Runs of clusters free now (and those in ``lost``: unreferenced, reusable)."""
    geo = vol.geometry
    arr = table.decode_window(vol.fat, geo.fat_type, geo.cluster_count + 2)
    free = bytearray(_zero_flags(arr))
    free[:2] = b"\x00\x00"                       # entries 0 and 1 are not clusters
    for s, n in lost:
        free[s:s + n] = b"\x01" * n
    return [list(r) for r in _runs_of_ones(free, 2)]


def _zero_flags(arr) -> bytes:
    """A byte per entry of the decoded table ``arr``: 1 where it is 0 (a free cluster),
    else 0 -- found a byte column at a time (C speed), not entry by entry."""
    raw = arr.tobytes()
    k = arr.itemsize
    n = len(arr)
    any_set = 0
    for i in range(k):
        any_set |= int.from_bytes(raw[i::k], "little")
    return any_set.to_bytes(n, "little").translate(_IS_ZERO)


_IS_ZERO = bytes([1]) + bytes(255)


def _runs_of_ones(flags, start: int) -> List[Tuple[int, int]]:
    """``(first, count)`` of each run of 1 bytes in ``flags`` from ``start`` on."""
    runs = []
    c, end = start, len(flags)
    while c < end:
        c = flags.find(1, c)
        if c < 0:
            break
        e = flags.find(0, c)
        e = end if e < 0 else e
        runs.append((c, e - c))
        c = e
    return runs


class _DirEdit:
    """The new bytes of an existing directory, slot by slot."""

    def __init__(self, old: OldDir) -> None:
        self.old = old
        self.data = bytearray(old.data)
        self.placed: List[Tuple[int, object]] = []     # (slot, NamedEntry)
        self.grow = 0                                   # clusters added
        self.extra: List[Tuple[int, int]] = []          # their runs

    def clear(self, first: int, end: int) -> None:
        for off in range(first, end, DIR_ENTRY_SIZE):
            self.data[off] = DELETED

    def place(self, slots: int) -> int:
        """The first slot of ``slots`` free consecutive slots (a deleted run before the end
        marker, else at the end; the data grows with zeros when needed)."""
        data = self.data
        n = len(data) // DIR_ENTRY_SIZE
        run = 0
        for i in range(n):
            lead = data[i * DIR_ENTRY_SIZE]
            if lead == 0:
                start = i
                break
            run = run + 1 if lead == DELETED else 0
            if run == slots:
                return self._take(i - slots + 1, slots)
        else:
            start = n
        end = (start + slots) * DIR_ENTRY_SIZE
        if end > len(data):
            data.extend(bytes(end - len(data)))
        elif end < len(data):
            data[end] = 0                   # the end marker after the new group
        return self._take(start, slots)

    def _take(self, first: int, slots: int) -> int:
        """Mark ``slots`` slots from slot ``first`` taken (the next group goes elsewhere)."""
        for i in range(first, first + slots):
            self.data[i * DIR_ENTRY_SIZE] = 0xFF
        return first * DIR_ENTRY_SIZE


def plan(vol: Volume, tree: SourceTree, d, options: Options) -> UpdatePlan:
    """The writes that make ``vol`` read as ``tree``, given ``d`` (the
    :class:`~blockimg.update.diff.Diff` of the two). Raises :class:`DoesNotFit` (before
    anything is written) when the free clusters or a fixed root directory are too few."""
    return _Planner(vol, tree, d, options).run()


class _Planner:
    """One :func:`plan` call: the steps share what the diff says."""

    def __init__(self, vol: Volume, tree: SourceTree, d, options: Options) -> None:
        self.vol = vol
        self.geo = vol.geometry
        self.options = options
        self.tree = tree
        self._position: Optional[Dict[str, int]] = None
        kind_changed = [e for e in d.changed if vol.entries[e.path].kind != e.kind.value]
        moved = {e.path for e in kind_changed}
        self.removed = [i.path for i in d.removed] + sorted(moved)
        self.changed = [e for e in d.changed if e.path not in moved]
        self.added = self.in_tree_order(list(d.added) + kind_changed)
        self.gone = set(self.removed)
        self.frees = [r for p in self.removed for r in vol.entries[p].runs]
        self.frees += [r for e in self.changed for r in vol.entries[e.path].runs]
        self.lost = list(vol.lost) if vol.dirty else []
        self.edits: Dict[str, _DirEdit] = {}
        self.new_dirs = [e for e in self.added if e.kind is Kind.DIR]
        self.fresh: Dict[str, List[object]] = {}          # new directory -> its children
        self.fresh_clusters: Dict[str, int] = {}
        self.renamed: List[Tuple[_DirEdit, OldEntry, object]] = []
        self.chains: List[List[Tuple[int, int]]] = []
        self.links: List[Tuple[int, int]] = []            # (old last cluster, first new)
        self.runs: Dict[str, List[Tuple[int, int]]] = {}  # new chains by path

    def in_tree_order(self, entries: List[SourceEntry]) -> List[SourceEntry]:
        """``entries`` sorted by their places in the tree (those places are found on the
        first sort of two or more: a one-file change needs none)."""
        if len(entries) > 1:
            if self._position is None:
                self._position = {e.path: i for i, e in enumerate(self.tree.entries)}
            at = self._position
            entries.sort(key=lambda e: at[e.path])
        return entries

    def edit(self, path: str) -> _DirEdit:
        got = self.edits.get(path)
        if got is None:
            got = self.edits[path] = _DirEdit(self.vol.dirs[path])
        return got

    def run(self) -> UpdatePlan:
        into = self.split_added()
        self.clear_removed()
        for parent, kids in into.items():
            self.name_into(parent, kids)
        for e in self.new_dirs:
            named = name_children(e.path, self.fresh[e.path], self.options)
            self.fresh[e.path] = named
            count = 2 + sum(n.slots for n in named)
            self.fresh_clusters[e.path] = max(1, ceil_div(count * DIR_ENTRY_SIZE,
                                                          self.geo.cluster_size))
        files = self.allocate()
        data = self.new_data(files)
        switch = self.switch()
        return self.fat_phases(data, switch)

    def split_added(self) -> Dict[str, List[SourceEntry]]:
        """Added entries of new directories go to ``fresh``; the others, by parent, out."""
        self.fresh = {e.path: [] for e in self.new_dirs}
        into: Dict[str, List[SourceEntry]] = {}
        for e in self.added:
            parent = e.path.rpartition("/")[0]
            if parent in self.fresh:
                self.fresh[parent].append(e)
            else:
                into.setdefault(parent, []).append(e)
        return into

    def clear_removed(self) -> None:
        """Slots of removed entries (and broken ones) deleted."""
        for path, od in self.vol.dirs.items():
            if od.junk and path not in self.gone:
                for first, end in od.junk:
                    self.edit(path).clear(first, end)
        for p in self.removed:
            parent = p.rpartition("/")[0]
            if parent not in self.gone:
                o = self.vol.entries[p]
                self.edit(parent).clear(o.lfn_offset, o.offset + DIR_ENTRY_SIZE)

    def name_into(self, parent: str, kids: List[SourceEntry]) -> None:
        """Name ``kids`` beside the kept entries of ``parent`` and give them slots."""
        ed = self.edit(parent)
        kept = [c for c in ed.old.children if c.path not in self.gone]
        exact = {exact_short(e.path.rpartition("/")[2]) for e in kids} - {None}
        short = self.vol.short
        clash = [c for c in kept if short(c) in exact]
        taken = [short(c) for c in kept if c not in clash]
        if clash:
            by_path = {e.path: e for e in self.tree.entries}
            kids = kids + [by_path[c.path] for c in clash]
        named = name_children(parent, kids, self.options, taken)
        new = len(kids) - len(clash)
        for c, n in zip(clash, named[new:]):
            self.renamed.append((ed, c, n))
        for n in named[:new]:
            ed.placed.append((ed.place(n.slots), n))
        if len(ed.data) > len(ed.old.data):
            self.grow(ed)

    def grow(self, ed: _DirEdit) -> None:
        geo = self.geo
        need = len(ed.data) - len(ed.old.data)
        path = ed.old.path
        if not ed.old.clusters:
            raise DoesNotFit(f"the root directory cannot hold the new entries "
                             f"({geo.root_entries} slots; FAT{geo.fat_type} cannot grow it)",
                             needed=len(ed.data), available=len(ed.old.data))
        ed.grow = ceil_div(need, geo.cluster_size)
        ed.data.extend(bytes(ed.grow * geo.cluster_size - need))
        if len(ed.data) // DIR_ENTRY_SIZE > MAX_DIR_ENTRIES:
            raise InvalidInput(f"directory needs {len(ed.data) // DIR_ENTRY_SIZE} entries",
                               path=path or "/",
                               rule=f"at most {MAX_DIR_ENTRIES} entries per FAT directory")

    def allocate(self) -> List[SourceEntry]:
        """Clusters for new directories, grown directories, then files (tree order)."""
        cs = self.geo.cluster_size
        alloc = _Allocator(_free_runs(self.vol, self.lost))
        files = self.in_tree_order([e for e in self.added + self.changed
                                    if e.kind is Kind.FILE and e.size])
        need = sum(self.fresh_clusters.values()) + \
            sum(ed.grow for ed in self.edits.values()) + sum(ceil_div(e.size, cs) for e in files)
        have = alloc.total
        if need > have:
            raise DoesNotFit(f"the update needs {need} free clusters of {human_size(cs)}, "
                             f"the image has {have} (the old files stay until the new ones "
                             "are written, so their clusters cannot be reused)",
                             needed=need * cs, available=have * cs)
        for e in self.new_dirs:
            self.runs[e.path] = alloc.take(self.fresh_clusters[e.path])
            self.chains.append(self.runs[e.path])
        for ed in self.edits.values():
            if ed.grow:
                last = ed.old.clusters[-1]
                ed.extra = alloc.take(ed.grow, after=last)
                self.chains.append(ed.extra)
                self.links.append((last, ed.extra[0][0]))
        for e in files:
            self.runs[e.path] = alloc.take(ceil_div(e.size, cs))
            self.chains.append(self.runs[e.path])
        return files

    def first(self, path: str) -> int:
        """The first cluster of ``path``'s new chain (0: none)."""
        runs = self.runs.get(path)
        return runs[0][0] if runs else 0

    def dir_cluster(self, path: str) -> int:
        """A directory's first cluster as ``..`` names it (0: the root)."""
        if not path:
            return 0
        return self.first(path) or self.vol.dirs[path].cluster

    def new_data(self, files: List[SourceEntry]) -> List[object]:
        """Phase 2: grown directories' zeroed clusters, new directories, file data."""
        geo = self.geo
        cs = geo.cluster_size
        out: List[object] = []
        for ed in self.edits.values():
            for s, n in ed.extra:
                out.append(Write(geo.cluster_offset(s), bytes(n * cs)))
        for e in self.new_dirs:
            named = self.fresh[e.path]
            for n in named:
                n.cluster = self.first(n.source.path)
            up = self.dir_cluster(e.path.rpartition("/")[0])
            raw = dot_entries(self.first(e.path), up, e.mtime) + b"".join(children_bytes(named))
            raw += bytes(self.fresh_clusters[e.path] * cs - len(raw))
            _extent_writes(out, geo, self.runs[e.path], raw)
        for e in files:
            runs = tuple(self.runs[e.path])
            out.append(FileData(e, runs, sum(n for _, n in runs) * cs))
        return out

    def switch(self) -> List[object]:
        """Phase 4: the directory sectors that change."""
        new_short: Dict[str, bytes] = {}
        for ed, c, n in self.renamed:
            new_short[c.path] = n.short
            raw = n.to_bytes()
            if len(raw) != c.offset + DIR_ENTRY_SIZE - c.lfn_offset:   # pragma: no cover
                raise AssertionError("a renamed alias changed the slot count")
            ed.data[c.lfn_offset:c.offset + DIR_ENTRY_SIZE] = _with_times(raw, ed.old.data,
                                                                          c.offset)
        for ed in self.edits.values():
            for slot, n in ed.placed:
                n.cluster = self.first(n.source.path)
                raw = n.to_bytes()
                ed.data[slot:slot + len(raw)] = raw
        for e in self.changed:
            ed = self.edit(e.path.rpartition("/")[0])
            o = self.vol.entries[e.path]
            old_short = self.vol.short(o)
            short = new_short.get(e.path, old_short)
            ed.data[o.offset:o.offset + DIR_ENTRY_SIZE] = pack_entry(
                short, file_attr(e.mode, False), self.first(e.path), e.size, e.mtime,
                self.vol.nt_res(o) if short == old_short else 0)
        out: List[object] = []
        for ed in self.edits.values():
            old = ed.old.data + bytes(len(ed.data) - len(ed.old.data))
            _changed_sectors(out, self.vol, ed, old)
        return out

    def fat_phases(self, data: List[object], switch: List[object]) -> UpdatePlan:
        """The FAT: marked, allocated, freed, clean; the phases in order."""
        vol, geo = self.vol, self.geo
        bits = geo.fat_type
        tables = _tables(vol.fat, bits, self.lost, self.chains, self.links, self.frees)
        phases: Dict[str, List[object]] = {p: [] for p in PHASES}
        if bits == 12:
            _boot_marker(phases, vol.boot)
        else:
            _fat_writes(phases["clean"], geo, tables[3], tables[4])
        # Every copy as copy 0, marked (a cut update may have left a copy behind).
        for copy, old in enumerate((vol.fat, *vol.other_fats)):
            _fat_writes(phases["marker"], geo, old, tables[1], copies=(copy,))
        phases["data"] = data
        _fat_writes(phases["allocate"], geo, tables[1], tables[2])
        phases["switch"] = switch
        _fat_writes(phases["free"], geo, tables[2], tables[3])
        free_after = table.decode_window(tables[4], bits, geo.cluster_count + 2)[2:].count(0)
        if vol.fsinfo is not None:
            fsi = bytearray(vol.fsinfo)
            fsi[488:492] = free_after.to_bytes(4, "little")
            fsi[492:496] = (0xFFFFFFFF).to_bytes(4, "little")
            if fsi != vol.fsinfo:
                phases["free"].append(Write(geo.fsinfo_sector * geo.bytes_per_sector,
                                            bytes(fsi)))
        if not any(phases[p] for p in ("data", "allocate", "switch", "free")) \
                and not vol.dirty:
            phases = {p: [] for p in PHASES}        # nothing to change: not even the marker
        return UpdatePlan(geo, {k: tuple(v) for k, v in phases.items()},
                          sum(n for runs in self.chains for _, n in runs),
                          sum(n for _, n in self.frees), free_after)


def _tables(fat: bytes, bits: int, lost, chains, links, frees) -> Tuple[bytearray, ...]:
    """The FAT before, marked, allocated (lost clusters freed first), freed, clean."""
    eoc = table.EOC[bits]
    before = bytearray(fat)
    marked = bytearray(before)
    if bits != 12:
        set_clean(marked, bits, False)
    allocated = bytearray(marked)
    for s, n in lost:           # nothing refers to them: free (and reusable) from now on
        for c in range(s, s + n):
            fat_set(allocated, bits, c, 0)
    for runs in chains:
        cl = [c for s, n in runs for c in range(s, s + n)]
        for a, b in zip(cl, cl[1:]):
            fat_set(allocated, bits, a, b)
        fat_set(allocated, bits, cl[-1], eoc)
    for last, nxt in links:
        fat_set(allocated, bits, last, nxt)
    freed = bytearray(allocated)
    for s, n in frees:
        for c in range(s, s + n):
            fat_set(freed, bits, c, 0)
    clean = bytearray(freed)
    if bits != 12:
        set_clean(clean, bits, True)
    return before, marked, allocated, freed, clean


def _boot_marker(phases: Dict[str, List[object]], boot: bytes) -> None:
    """FAT12: the boot sector's dirty bit set first, cleared last."""
    b = bytearray(boot)
    b[STATE_AT[12]] |= STATE_DIRTY
    if b != boot:
        phases["marker"].append(Write(0, bytes(b)))
    b[STATE_AT[12]] &= ~STATE_DIRTY & 0xFF
    phases["clean"].append(Write(0, bytes(b)))


def _with_times(raw: bytes, old: bytes, offset: int) -> bytes:
    """``raw`` (a renamed group) keeping the old short entry's bytes after its name."""
    out = bytearray(raw)
    out[-DIR_ENTRY_SIZE + 11:] = old[offset + 11:offset + DIR_ENTRY_SIZE]
    return bytes(out)


def _extent_writes(out: List[object], geo, runs, raw: bytes) -> None:
    cs = geo.cluster_size
    pos = 0
    for s, n in runs:
        out.append(Write(geo.cluster_offset(s), raw[pos:pos + n * cs]))
        pos += n * cs


def _changed_sectors(out: List[Write], vol: Volume, ed: _DirEdit, old: bytes) -> None:
    """The sectors of ``ed`` that differ from ``old``, the directory's last first."""
    ss = vol.geometry.bytes_per_sector
    data = bytes(ed.data)
    od = ed.old
    clusters = list(od.clusters) + [c for s, n in ed.extra for c in range(s, s + n)]
    full = OldDir(od.path, od.cluster, tuple(clusters), data, od.children)
    for pos in range(len(data) - ss, -1, -ss):
        if data[pos:pos + ss] != old[pos:pos + ss]:
            out.append(Write(vol.dir_offset(full, pos), data[pos:pos + ss]))


def _fat_writes(out: List[object], geo, a: bytes, b: bytes, copies=None) -> None:
    """The sectors where FAT bytes ``a`` and ``b`` differ, in every copy (copy 0 first)
    or in ``copies``."""
    ss = geo.bytes_per_sector
    diff = [pos for pos in range(0, len(b), ss) if a[pos:pos + ss] != b[pos:pos + ss]]
    for copy in range(geo.num_fats) if copies is None else copies:
        base = geo.fat_copy_offset(copy)
        for pos in diff:
            out.append(Write(base + pos, bytes(b[pos:pos + ss])))


def lost_runs(fat: bytes, fat_type: int, cluster_count: int,
              referenced: bytearray) -> List[Tuple[int, int]]:
    """Runs of clusters allocated in ``fat`` that no chain in ``referenced`` holds."""
    arr = table.decode_window(fat, fat_type, cluster_count + 2)
    n = len(arr)
    used = _zero_flags(arr).translate(_FLIP)       # 1: allocated (or bad)
    lone = (int.from_bytes(used, "little")
            & ~int.from_bytes(bytes(referenced[:n]).ljust(n, b"\x00"), "little"))
    flags = lone.to_bytes(n, "little")
    bad = table.BAD[fat_type]
    out: List[Tuple[int, int]] = []
    for s, k in _runs_of_ones(flags, 2):        # (rare: only after a cut update)
        c = s
        while c < s + k:                        # clusters marked bad are not lost
            if arr[c] == bad:
                c += 1
                continue
            first = c
            while c < s + k and arr[c] != bad:
                c += 1
            out.append((first, c - first))
    return out


_FLIP = bytes([1, 0]) + bytes(254)
