"""Pure FAT layout: a source tree and options in, a complete :class:`FatPlan` out.

Nothing here touches a device. The steps:

1. check the tree (names, links, file sizes, case collisions) and give every
   entry its short name and LFN slots (:func:`_directories`);
2. pick the FAT type and cluster size (:func:`_choose`), then the geometry:
   reserved sectors, FAT size, root-directory entries, all aligned
   (:func:`_geometry`);
3. place every directory, then every file, in one contiguous cluster run
   each, from cluster 2 on (the FAT32 root first);
4. build the directory bytes.

Cluster counts always fall in the range every reader agrees on:
FAT12 < 4085 <= FAT16 < 65525 <= FAT32. Timestamps are the entries' mtimes
in UTC (never local time); FAT cannot store times before 1980-01-01 00:00:00
or after 2107-12-31 23:59:58, so those are clamped to these bounds.
"""
from __future__ import annotations

TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from ..errors import DoesNotFit, InvalidInput
from ..record import field, record
from ..sources.directory import Kind, SourceEntry, SourceTree
from ..units import align_up, ceil_div, human_size
from . import table
from .directory import NamedEntry, children_bytes, dot_entries, file_attr, label_entry
from .names import (MAX_NAME_UNITS, ShortNames, check_name, exact_short, fold,
                    forbidden_in_joined, lfn_bytes_many, mirage_misreads_any)
from .options import Options
from .structs import ATTR_DIRECTORY, DIR_ENTRY_SIZE, FAT_EPOCH

__all__ = ["PlannedGeometry", "DirPlan", "FilePlan", "FatPlan", "plan", "cluster_size_for",
           "name_children",
           "MAX_FILE_SIZE", "MAX_DIR_ENTRIES", "ROOT_ALIGN_LIMIT"]

MAX_FILE_SIZE = (1 << 32) - 1
#: A directory holds at most 65536 entries (32-byte slots).
MAX_DIR_ENTRIES = 65536
#: Largest alignment the FAT12/16 root directory is padded to (32768 entries).
ROOT_ALIGN_LIMIT = 1 << 20
MIN_ROOT_ENTRIES = 512
MAX_CLUSTER_SIZE = 32768
FAT32_RESERVED = 32
FAT32_THRESHOLD = 512 << 20   # mkfs.fat: volumes from 512 MiB on are FAT32
FAT12_THRESHOLD = 8400 * 512  # FAT specification: volumes under ~4.1 MiB are FAT12
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
_FAT16_TABLE = ((16 * MiB, 1 * KiB), (128 * MiB, 2 * KiB), (256 * MiB, 4 * KiB),
                (512 * MiB, 8 * KiB), (1 * GiB, 16 * KiB))
_FAT32_TABLE = ((260 * MiB, 512), (8 * GiB, 4 * KiB), (16 * GiB, 8 * KiB), (32 * GiB, 16 * KiB))


def cluster_size_for(fat_type: int, volume_bytes: int, sector_size: int) -> int:
    """The FAT specification's default cluster size for a volume (at least one sector)."""
    if fat_type == 12:
        size = 512 if volume_bytes <= 2 * MiB else 1 * KiB if volume_bytes <= 4 * MiB else 4 * KiB
    else:
        tab = _FAT16_TABLE if fat_type == 16 else _FAT32_TABLE
        size = next((c for limit, c in tab if volume_bytes <= limit), MAX_CLUSTER_SIZE)
    return max(size, sector_size)


# -- geometry ------------------------------------------------------------------

@record(frozen=True)
class PlannedGeometry:
    """Where everything of the planned volume is, in sectors of ``sector_size`` bytes.

    The writer's side: what the planner chose, before any boot sector exists.
    :class:`.geometry.Geometry` is the reader's side, the same volume as its boot
    sector describes it (in bytes, with what else the BPB holds); the two agree on
    every region of an image the writer made (tested).
    """

    fat_type: int
    sector_size: int
    sectors_per_cluster: int
    reserved_sectors: int
    num_fats: int
    fat_sectors: int
    root_entries: int
    total_sectors: int
    cluster_count: int

    @property
    def cluster_size(self) -> int:
        return self.sector_size * self.sectors_per_cluster

    @property
    def root_sectors(self) -> int:
        return self.root_entries * DIR_ENTRY_SIZE // self.sector_size

    def fat_offset(self, copy: int = 0) -> int:
        return (self.reserved_sectors + copy * self.fat_sectors) * self.sector_size

    @property
    def fat_bytes(self) -> int:
        return self.fat_sectors * self.sector_size

    @property
    def root_offset(self) -> int:
        return self.fat_offset(self.num_fats)

    @property
    def data_sector(self) -> int:
        return self.reserved_sectors + self.num_fats * self.fat_sectors + self.root_sectors

    @property
    def data_offset(self) -> int:
        return self.data_sector * self.sector_size

    @property
    def image_size(self) -> int:
        return self.total_sectors * self.sector_size

    def cluster_offset(self, cluster: int) -> int:
        """Byte offset of data cluster ``cluster`` (2 is the first)."""
        return self.data_offset + (cluster - 2) * self.cluster_size


def _root_bytes(fat_type: int, entries: int, ss: int, align: int) -> int:
    if fat_type == 32:
        return 0
    size = align_up(max(entries, MIN_ROOT_ENTRIES) * DIR_ENTRY_SIZE, ss)
    return align_up(size, align if align <= ROOT_ALIGN_LIMIT else 8192)


def _fat_bytes(fat_type: int, clusters: int, ss: int, align: int, nfats: int,
               root_bytes: int) -> int:
    """Size of one FAT: holds ``clusters`` + 2 entries; keeps the FATs and data aligned."""
    need = align_up(table.table_bytes(fat_type, clusters + 2), ss)
    if fat_type == 32 or align <= ROOT_ALIGN_LIMIT:
        return align_up(need, align)
    # A root region cannot be a multiple of a large alignment (at most 65535
    # entries): size the FATs so that the data region still starts aligned.
    period = align // nfats
    want = ((-root_bytes) % align) // nfats
    return need + (want - need) % period


def _geometry(fat_type: int, ss: int, csize: int, opts: Options, root_entries: int,
              clusters: Optional[int], size: Optional[int]) -> Optional[PlannedGeometry]:
    """The geometry for ``clusters`` data clusters (or the most that fit in ``size`` bytes)."""
    align = max(opts.align, ss)
    nfats = opts.fats
    reserved_b = align_up((FAT32_RESERVED if fat_type == 32 else 1) * ss, align)
    root_b = _root_bytes(fat_type, root_entries, ss, align)
    if size is not None:
        upper = (size - reserved_b - root_b) // csize
        if upper < 1:
            return None
        fat_b = _fat_bytes(fat_type, min(upper, table.MAX_CLUSTERS[fat_type] + 1), ss, align,
                           nfats, root_b)
        clusters = (size - reserved_b - nfats * fat_b - root_b) // csize
        if clusters < 1:
            return None
        total = size // ss
    else:
        fat_b = _fat_bytes(fat_type, clusters, ss, align, nfats, root_b)
        total = (reserved_b + nfats * fat_b + root_b + clusters * csize) // ss
    if reserved_b // ss > 0xFFFF or root_b // DIR_ENTRY_SIZE > 0xFFFF:
        return None
    return PlannedGeometry(fat_type, ss, csize // ss, reserved_b // ss, nfats, fat_b // ss,
                    root_b // DIR_ENTRY_SIZE, total, clusters)


# -- the plan ------------------------------------------------------------------

@record
class DirPlan:
    """A directory: where its entries go and the children that fill them."""

    path: str
    mtime: int
    first_cluster: int = 0
    clusters: int = 0
    parent: Optional["DirPlan"] = None
    children: List[NamedEntry] = field(default_factory=list)
    named: Optional[NamedEntry] = None     # this directory's entry in its parent
    data: bytes = b""

    @property
    def is_root(self) -> bool:
        return self.path == ""

    def entry_count(self, label: bool) -> int:
        children = self.children
        # sum(c.slots for c in children): the LFN slots are whole 32-byte entries.
        n = sum([len(c.lfn_bytes) for c in children]) // DIR_ENTRY_SIZE + len(children)
        if not self.is_root:
            n += 2
        elif label:
            n += 1
        return n


class FilePlan:
    """A regular file: its first cluster and cluster count (read-only, slotted)."""

    __slots__ = ("entry", "first_cluster", "clusters")

    def __init__(self, entry: SourceEntry, first_cluster: int, clusters: int) -> None:
        object.__setattr__(self, "entry", entry)
        object.__setattr__(self, "first_cluster", first_cluster)
        object.__setattr__(self, "clusters", clusters)

    def __setattr__(self, name, value):
        raise AttributeError(f"FilePlan is read-only (cannot set {name!r})")

    def __eq__(self, other):
        if not isinstance(other, FilePlan):
            return NotImplemented
        return (self.entry, self.first_cluster, self.clusters) == \
            (other.entry, other.first_cluster, other.clusters)

    def __hash__(self):
        return hash((self.entry, self.first_cluster, self.clusters))

    def __repr__(self) -> str:
        return (f"FilePlan(entry={self.entry!r}, first_cluster={self.first_cluster}, "
                f"clusters={self.clusters})")


_new_object = object.__new__
_set_entry, _set_first, _set_clusters = [FilePlan.__dict__[k].__set__ for k in FilePlan.__slots__]


@record(frozen=True)
class FatPlan:
    """A complete FAT volume, ready for :func:`blockimg.fat.writer.write`."""

    options: Options
    geometry: PlannedGeometry
    root: DirPlan
    dirs: Tuple[DirPlan, ...]          # subdirectories (and the FAT32 root) in cluster order
    files: Tuple[FilePlan, ...]
    used_end: int                      # first never-used cluster
    run_ends: Tuple[int, ...]          # last cluster of every run

    @property
    def image_size(self) -> int:
        return self.geometry.image_size

    @property
    def sector_size(self) -> int:
        return self.geometry.sector_size

    @property
    def fat_type(self) -> int:
        return self.geometry.fat_type

    @property
    def cluster_size(self) -> int:
        return self.geometry.cluster_size

    @property
    def cluster_count(self) -> int:
        return self.geometry.cluster_count

    @property
    def free_clusters(self) -> int:
        return self.geometry.cluster_count + 2 - self.used_end

    @property
    def file_bytes(self) -> int:
        return sum(f.entry.size for f in self.files)

    def fat_table(self) -> table.RunTable:
        g = self.geometry
        return table.RunTable(g.fat_type, g.cluster_count, self.run_ends, self.used_end,
                              g.fat_bytes)

    def extents(self) -> Iterator[Tuple[str, List[Tuple[int, int]]]]:
        """``(path, [(byte offset, length)])`` for every regular file, in image order."""
        g = self.geometry
        for f in self.files:
            ext = [(g.cluster_offset(f.first_cluster), f.entry.size)] if f.clusters else []
            yield f.entry.path, ext


def plan(tree: SourceTree, options: Options) -> FatPlan:
    """Lay out ``tree`` as a FAT volume (pure: reads no file, writes nothing, leaves the
    process's state alone; callers pause the collector:
    :class:`blockimg.sources.directory.paused_gc`)."""
    if not isinstance(options, Options):
        raise InvalidInput("options must be a blockimg.fat.Options", rule="format options")
    return _plan(tree, options)


def _plan(tree: SourceTree, options: Options) -> FatPlan:
    root, dirs, files = _directories(tree, options)
    label = options.label is not None and not options.mirage
    root_entries = root.entry_count(label)
    fat_type, geo = _choose(options, root, dirs, files, root_entries)
    csize = geo.cluster_size
    # Placement: the FAT32 root, then the other directories, then the files.
    order = ([root] if fat_type == 32 else []) + dirs
    cluster = 2
    run_ends = []
    for d in order:
        d.first_cluster = cluster
        d.clusters = max(1, ceil_div(d.entry_count(label) * DIR_ENTRY_SIZE, csize))
        cluster += d.clusters
        run_ends.append(cluster - 1)
    placed = []
    add_placed = placed.append
    add_end = run_ends.append
    new, set_entry, set_first, set_clusters = _new_object, _set_entry, _set_first, _set_clusters
    for named, entry in files:
        f = new(FilePlan)       # FilePlan(entry, first cluster, clusters), made faster
        set_entry(f, entry)
        size = entry.size
        if size:
            n = -(-size // csize)
            named.cluster = cluster
            set_first(f, cluster)
            set_clusters(f, n)
            cluster += n
            add_end(cluster - 1)
        else:
            named.cluster = 0
            set_first(f, 0)
            set_clusters(f, 0)
        add_placed(f)
    assert cluster <= geo.cluster_count + 2, (cluster, geo)
    for d in dirs:
        d.named.cluster = d.first_cluster
    for d in [root] + dirs:
        parts = []
        if d.is_root:
            if label:
                parts.append(label_entry(options.label, root_mtime(tree)))
        else:
            parent = d.parent.first_cluster if d.parent and not d.parent.is_root else 0
            parts.append(dot_entries(d.first_cluster, parent, d.mtime))
        parts += children_bytes(d.children)
        d.data = b"".join(parts)
    return FatPlan(options, geo, root, tuple(order), tuple(placed), cluster, tuple(run_ends))


def root_mtime(tree: SourceTree) -> int:
    """Time stamp of the label entry: the newest entry's (deterministic)."""
    return max((e.mtime for e in tree.entries), default=FAT_EPOCH)


# -- step 1: names -------------------------------------------------------------

def _directories(tree: SourceTree, opts: Options):
    """Directory plans with named children, and ``(NamedEntry, SourceEntry)`` per file.

    Every entry is checked before any is named: what FAT cannot store is raised
    all at once (:meth:`InvalidInput.raise_all`).
    """
    problems: List[InvalidInput] = []
    entries = tree.entries
    root, by_path, kids, dirs = _tree_dirs(entries, problems)
    keys = {path: _dir_keys(path, kids[path], opts.mirage, problems) for path in by_path}
    InvalidInput.raise_all(problems)
    nexts = _name_dirs(by_path, kids, keys, opts, problems)
    InvalidInput.raise_all(problems)
    # Files in tree order (every path once: a second one was refused while naming), each
    # the next file of its directory (no map from every entry to its name: less memory).
    DIR = Kind.DIR
    files = [(nexts[e.path.rpartition("/")[0]](), e) for e in entries if e.kind is not DIR]
    order = {e.path: i for i, e in enumerate(entries) if e.kind is DIR}
    dirs.sort(key=lambda d: order.get(d.path, -1))
    return root, dirs, files


def _tree_dirs(entries: Sequence[SourceEntry], problems: List[InvalidInput]):
    """``(root, {path: DirPlan}, {path: its entries}, [DirPlan])`` of the tree's entries;
    entries FAT cannot hold (links, files of 4 GiB and more, a directory given twice) go
    to ``problems``."""
    root = DirPlan("", FAT_EPOCH)
    by_path: Dict[str, DirPlan] = {"": root}
    kids: Dict[str, List[SourceEntry]] = {"": []}
    dirs: List[DirPlan] = []
    FILE, DIR = Kind.FILE, Kind.DIR
    get_kids = kids.get
    for e in entries:
        kind = e.kind
        if kind is FILE:
            if e.size > MAX_FILE_SIZE:
                _check_kind(e, problems)
        elif kind is not DIR:
            _check_kind(e, problems)
        path = e.path
        parent = path.rpartition("/")[0]       # e.parent
        siblings = get_kids(parent)
        if siblings is None:
            _implicit_dirs(parent, by_path, kids, dirs)
            siblings = kids[parent]
        siblings.append(e)
        if kind is DIR:
            if path in by_path:
                problems.append(InvalidInput("given twice", path=path, rule="unique paths"))
                continue
            d = DirPlan(path, e.mtime, parent=by_path[parent])
            by_path[path] = d
            kids[path] = []
            dirs.append(d)
    return root, by_path, kids, dirs


def _check_kind(e: SourceEntry, problems: List[InvalidInput]) -> None:
    """A file too large, or a link: the problem goes to ``problems``."""
    kind = e.kind
    if kind is Kind.FILE:
        problems.append(InvalidInput(
            f"is {human_size(e.size)}; FAT files must be smaller than 4 GiB (use "
            "--format tar for larger files)", path=e.path,
            rule="FAT file size < 4 GiB"))
    elif kind is Kind.SYMLINK or kind is Kind.HARDLINK:
        problems.append(InvalidInput(
            f"is a {kind.value}; FAT cannot store links (build without --keep-links to "
            "store copies of their targets)", path=e.path, rule="FAT has no links"))


def _name_dirs(by_path: Dict[str, DirPlan], kids, keys, opts: Options,
               problems: List[InvalidInput]) -> Dict[str, object]:
    """Name every directory's children into its plan; returns, per directory path, a
    function giving the next of its files' :class:`NamedEntry`. Directories with too
    many entries go to ``problems``."""
    label = opts.label is not None and not opts.mirage
    nexts = {}
    for path, d in by_path.items():
        named = _name_children(path, kids[path], opts, keys[path])
        d.children += named
        nexts[path] = iter([n for n in named if not n.attr & ATTR_DIRECTORY]).__next__
        for n in [n for n in named if n.attr & ATTR_DIRECTORY]:
            by_path[n.source.path].named = n
        count = d.entry_count(label)
        if count > MAX_DIR_ENTRIES:
            problems.append(InvalidInput(
                f"directory needs {count} entries (long names take several)",
                path=path or "/", rule=f"at most {MAX_DIR_ENTRIES} entries per FAT directory"))
    return nexts


def _implicit_dirs(path: str, by_path, kids, dirs) -> None:
    """Parents missing from a hand-made tree become directories with the FAT epoch as time."""
    parts = path.split("/")
    for i in range(1, len(parts) + 1):
        p = "/".join(parts[:i])
        if p in by_path:
            continue
        parent = "/".join(parts[:i - 1])
        e = SourceEntry(p, Kind.DIR, 0, FAT_EPOCH, 0o755)
        kids[parent].append(e)
        by_path[p] = DirPlan(p, FAT_EPOCH, parent=by_path[parent])
        kids[p] = []
        dirs.append(by_path[p])


def _dir_keys(dir_path: str, entries: Sequence[SourceEntry], mirage: bool,
              problems: List[InvalidInput]) -> List[str]:
    """The fold keys of a directory's names; what FAT cannot store goes to ``problems``.

    A directory of plain ASCII names is checked all at once; any other goes through
    :func:`~.names.check_name` one name at a time (the same verdicts).
    """
    plen = len(dir_path) + 1 if dir_path else 0
    names = [e.path[plen:] for e in entries]      # == e.name: their parent is dir_path
    keys = _plain_keys(names, mirage)
    if keys is None:
        keys = _checked_keys(entries, names, mirage, problems)
    return keys


def name_children(dir_path: str, entries: Sequence[SourceEntry], opts: Options,
                  taken: Sequence[bytes] = ()) -> List[NamedEntry]:
    """The :class:`NamedEntry` of each of ``entries`` (children of ``dir_path``), named
    as ``create`` names them; ``taken``: short names other entries of the directory
    keep (``update``), never handed out as aliases."""
    return _name_children(dir_path, entries, opts, taken=taken)


def _name_children(dir_path: str, entries: Sequence[SourceEntry], opts: Options,
                   keys: Optional[List[str]] = None, taken: Sequence[bytes] = ()):
    """Assign short names (8.3 names, in any case, reserved first) to names :func:`_dir_keys`
    checked.

    Returns a :class:`NamedEntry` per entry (``source``: the entry), in order.
    Every short name that is taken or lossy goes through the general functions of
    :mod:`.names` (the results are the same: tested against the general functions
    alone in tests/unit/test_fat_build_fast.py).
    """
    mirage = opts.mirage
    plen = len(dir_path) + 1 if dir_path else 0
    names = [e.path[plen:] for e in entries]      # == e.name: their parent is dir_path
    if keys is None:
        problems: List[InvalidInput] = []
        keys = _dir_keys(dir_path, entries, mirage, problems)
        InvalidInput.raise_all(problems)
    # Every name that is an 8.3 name in any case owns its upper-case form, reserved before
    # any ~N alias is handed out: Linux and mtools match a looked-up name against every
    # entry's short name too, so an alias equal to another entry's name hides that entry.
    exact = {}
    for name in names:
        short = exact_short(name)
        if short is not None:
            exact[name] = short
    gen = ShortNames([*exact.values(), *taken])
    shorts = []                 # the short name of every entry
    add_short = shorts.append
    longs = []                  # whether it gets LFN slots
    add_long = longs.append
    long_names = []             # the names that get LFN slots, and their short names
    long_shorts = []
    for name, key in zip(names, keys):
        short = exact.get(name)
        if short is None:
            short = gen.generate(name)
        elif key == name:       # a legal short name: no LFN
            add_short(short)
            add_long(False)
            continue
        add_short(short)
        add_long(True)
        long_names.append(name)
        long_shorts.append(short)
    lfns = iter(lfn_bytes_many(long_names, long_shorts, mirage))
    out = []
    add = out.append
    DIR = Kind.DIR
    new = _new_object
    for e, short, long in zip(entries, shorts, longs):
        # NamedEntry(e.name, short, lfn, attr, e.mtime, size, e), made faster
        n = new(NamedEntry)
        n.given_name = None
        n.short = short
        n.lfn_bytes = next(lfns) if long else b""
        if e.kind is DIR:
            n.attr = file_attr(e.mode, True)
            n.size = 0
        else:
            n.attr = file_attr(e.mode, False)
            n.size = e.size
        n.mtime = e.mtime
        n.cluster = 0
        n.source = e
        add(n)
    return out


def _plain_keys(names: List[str], mirage: bool) -> Optional[List[str]]:
    """The fold keys of a directory's names when every one is plain ASCII that no rule of
    :func:`check_name` objects to and no two collide; None when any needs a closer look."""
    joined = "/".join(names)        # a name never holds "/"
    if not joined.isascii() or forbidden_in_joined(joined) or \
            joined.endswith((".", " ")) or "./" in joined or " /" in joined or \
            max(map(len, names), default=0) > MAX_NAME_UNITS:
        return None
    keys = joined.upper().split("/") if names else []
    if len(set(keys)) != len(keys):
        return None
    # Upper-case names (their own key) that Mirage looks up as 8.3 must be legal 8.3.
    if mirage and mirage_misreads_any([n for n, k in zip(names, keys) if n == k]):
        return None
    return keys


def _checked_keys(entries: Sequence[SourceEntry], names: List[str], mirage: bool,
                  problems: Optional[List[InvalidInput]] = None) -> List[str]:
    """:func:`_plain_keys` one entry at a time; every name refused goes to ``problems``
    (raised, all at once, when no list is given)."""
    found: List[InvalidInput] = [] if problems is None else problems
    seen: Dict[str, str] = {}
    keys = []
    for e, name in zip(entries, names):
        path = e.path
        try:
            check_name(name, path=path, mirage=mirage)
        except InvalidInput as err:
            found.append(err)
        key = fold(name)
        prev = seen.get(key)
        if prev is not None:
            if prev == path:
                found.append(InvalidInput("given twice", path=path, rule="unique paths"))
            else:
                found.append(InvalidInput(
                    f"{prev!r} and {path!r} differ only in case, which FAT does not "
                    "distinguish (rename one)", path=path,
                    rule="FAT names are case-insensitive"))
        seen[key] = path
        keys.append(key)
    if problems is None:
        InvalidInput.raise_all(found)
    return keys


# -- step 2: type and cluster size ---------------------------------------------

class _Needs:
    """Data clusters the content needs for a given cluster size."""

    def __init__(self, root: DirPlan, dirs: Sequence[DirPlan], files, opts: Options) -> None:
        label = opts.label is not None and not opts.mirage
        self.dir_bytes = [d.entry_count(label) * DIR_ENTRY_SIZE for d in dirs]
        self.root_bytes = root.entry_count(label) * DIR_ENTRY_SIZE
        self.sizes = [e.size for _, e in files if e.size]
        self.free = opts.free
        self._file_clusters: Dict[int, int] = {}

    def clusters(self, fat_type: int, csize: int) -> int:
        n = self._file_clusters.get(csize)
        if n is None:
            m = csize - 1
            if csize & m:       # not a power of two (never, with validated options)
                n = sum(-(-s // csize) for s in self.sizes)
            else:
                n = (sum(self.sizes) + sum(-s & m for s in self.sizes)) // csize
            self._file_clusters[csize] = n
        n += sum(max(1, ceil_div(b, csize)) for b in self.dir_bytes)
        if fat_type == 32:
            n += max(1, ceil_div(self.root_bytes, csize))
        return n + ceil_div(self.free, csize)

    @property
    def estimate(self) -> int:
        """Rough content size, for picking the type and the default cluster size."""
        return sum(self.sizes) + sum(self.dir_bytes) + self.root_bytes + self.free


#: What to do when a tree is beyond FAT16, the only FAT type the Mirage FAT driver reads.
MIRAGE_TOO_BIG = (f"The Mirage FAT driver reads only FAT16 (at most {table.MAX_CLUSTERS[16]} "
                  "clusters of "
                  "32 KiB, about 2 GiB): use --format tar (the Mirage tar driver reads any "
                  "size) or --target generic (FAT32, which the Mirage FAT driver cannot read)")


def _choose(opts: Options, root: DirPlan, dirs, files, root_entries: int):
    needs = _Needs(root, dirs, files, opts)
    ss = opts.sector_size
    if opts.fat_type != "auto":
        types = [opts.fat_type]
    elif opts.mirage:
        types = [16]
    else:
        est = opts.size if opts.size is not None else needs.estimate
        types = [32, 16] if est >= FAT32_THRESHOLD else \
            [12, 16, 32] if est < FAT12_THRESHOLD else [16, 32]
    failures = []
    for t in types:
        try:
            geo = _fit_type(t, ss, opts, needs, root_entries)
        except InvalidInput as e:
            failures.append(e)
            continue
        return t, geo
    # Report the most telling failure: a shortfall beats a range problem.
    for e in failures:
        if isinstance(e, DoesNotFit):
            raise e
    e = failures[0]
    if opts.mirage:
        # The type was the target's choice, not an option the user gave: name none.
        path = None if e.path == "fat_type" and opts.fat_type == "auto" else e.path
        raise InvalidInput(f"{e.message}. {MIRAGE_TOO_BIG}", path=path, rule=e.rule)
    raise e


def _cluster_sizes(ss: int, opts: Options) -> List[int]:
    if opts.cluster_size is not None:
        return [opts.cluster_size]
    out = []
    c = ss
    while c <= MAX_CLUSTER_SIZE:
        out.append(c)
        c *= 2
    return out


def _fit_type(t: int, ss: int, opts: Options, needs: _Needs,
              root_entries: int) -> PlannedGeometry:
    """The geometry of a FAT``t`` volume for the content (raises what keeps it from one)."""
    sizes = _cluster_sizes(ss, opts)
    if t != 32 and root_entries > 0xFFFF - 0xFFFF % (ss // DIR_ENTRY_SIZE):
        raise InvalidInput(f"the root directory needs {root_entries} entries, more than "
                           f"FAT{t} can hold; use FAT32 or subdirectories", path="/",
                           rule="FAT12/16 root directory size")
    if opts.size is None:
        c, n = _pick_cluster_size(t, ss, needs, sizes)
        return _smallest_geometry(t, ss, c, opts, root_entries, n)
    return _sized_geometry(t, ss, opts, needs, root_entries, sizes)


def _pick_cluster_size(t: int, ss: int, needs: _Needs, sizes: List[int]) -> Tuple[int, int]:
    """``(cluster size, clusters needed)`` for a volume of the content's own size.

    The default size, larger if the content needs more clusters than the type allows,
    smaller (down to one sector) rather than padding the volume up to the minimum;
    padding (free clusters) only when even one-sector clusters are too few.
    """
    lo, hi = table.MIN_CLUSTERS[t], table.MAX_CLUSTERS[t]
    default = cluster_size_for(t, needs.estimate, ss)
    padded = None
    for c in [c for c in sizes if c >= default] + [c for c in sizes if c < default][::-1]:
        n = needs.clusters(t, c)
        if n > hi:
            continue
        if n >= lo:
            return c, n
        if padded is None or c < padded[0]:
            padded = (c, n)
    if padded is None:
        big = sizes[-1]
        n = needs.clusters(t, big)
        raise InvalidInput(f"the tree needs {n} clusters of {human_size(big)} "
                           f"({human_size(n * big)}); FAT{t} allows at most {hi} "
                           f"(about {human_size(hi * big)})", path="fat_type",
                           rule=f"FAT{t} cluster count {lo}..{hi}")
    return padded


def _smallest_geometry(t: int, ss: int, c: int, opts: Options, root_entries: int,
                       n: int) -> PlannedGeometry:
    """The geometry of at least ``n`` clusters of ``c`` bytes (and the type's minimum).

    A few extra clusters so the image length is a multiple of 4 KiB (or the
    alignment, if smaller): such an image also fits devices with larger sectors.
    """
    lo, hi = table.MIN_CLUSTERS[t], table.MAX_CLUSTERS[t]
    unit = max(ss, min(opts.align, 4096))
    k = max(n, lo)
    while True:
        geo = _geometry(t, ss, c, opts, root_entries, k, None)
        if geo is None:
            raise InvalidInput("volume geometry out of range (too many reserved sectors "
                               "or root entries for this alignment)", path="align",
                               rule="FAT layout")
        if geo.image_size % unit == 0 or k >= hi:
            return geo
        k += 1


def _sized_geometry(t: int, ss: int, opts: Options, needs: _Needs, root_entries: int,
                    sizes: List[int]) -> PlannedGeometry:
    """A fixed size: the default cluster size if it works, else the nearest that does."""
    lo, hi = table.MIN_CLUSTERS[t], table.MAX_CLUSTERS[t]
    default = cluster_size_for(t, opts.size, ss)
    ranked = sorted(sizes, key=lambda c: (abs(c.bit_length() - default.bit_length()), -c))
    shortfall = None
    for c in ranked:
        geo = _geometry(t, ss, c, opts, root_entries, None, opts.size)
        if geo is None or not lo <= geo.cluster_count <= hi:
            continue
        n = needs.clusters(t, c)
        if n <= geo.cluster_count:
            return geo
        short = (n - geo.cluster_count) * c
        if shortfall is None or short < shortfall[0]:
            shortfall = (short, c)
    if shortfall is not None:
        short, c = shortfall
        raise DoesNotFit(f"the tree does not fit a {human_size(opts.size)} FAT{t} image "
                         f"(with {human_size(c)} clusters)", needed=opts.size + short,
                         available=opts.size)
    raise InvalidInput(f"a {human_size(opts.size)} image cannot be FAT{t} with {ss}-byte "
                       f"sectors: no cluster size from {human_size(sizes[0])} to "
                       f"{human_size(sizes[-1])} gives "
                       f"{lo}..{hi} clusters", path="size", rule=f"FAT{t} cluster count "
                                                                 f"{lo}..{hi}")
