"""The walk of a FAT volume's directory tree: the index, and every chain it met.

A :class:`Walk` reads directories depth first (parents before children),
turns each entry into an :class:`~blockimg.read.image.EntryInfo`, follows each
chain once into extents, and keeps every chain as runs (:class:`Runs`) so
that one sort at the end finds a cluster in two chains. A broken rule is
:class:`~blockimg.errors.CorruptImage` naming the byte offset; a lenient walk
(``problems`` given) collects it instead and goes on. Name oddities readers
survive go to ``warnings`` either way.

The walk runs whole (:meth:`Walk.run`), one path at a time
(:meth:`Walk.lookup`, for a lazily opened image), or over one part of a
split (:meth:`Walk.run` with a :class:`~blockimg.fat.split_walk.SplitWalk`);
:class:`~blockimg.fat.reader.FatImage` decides which.

The cross-link check is one pure-Python sort; numpy's form is the test
reference (tests/helpers). Measured (CPU seconds, loaded 2-CPU machine):
20,194 runs (20,000 files): 0.01 s, numpy 0.001 s after a 0.13 s import;
201,612 runs (a fully fragmented FAT32 volume): 0.26-0.30 s, numpy 0.03 s +
0.13 s, of an open of 1.34 s; 2,419,721 runs (2,419,725 clusters): 23 s, numpy
1.5 s, but following those chains to open it had not finished after 16 minutes.
So numpy would save about a tenth of an open at 200,000 runs, and more only on
volumes of millions of fragments, whose open following the chains dominates.
"""
from __future__ import annotations

from bisect import bisect_right
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Callable, Dict, List, Optional, Tuple

from ..errors import CorruptImage
from ..read.image import EntryInfo, shorten
from .chains import ChainError, Run
from .dirents import Record, parse_directory
from .names import fold
from .structs import ATTR_READ_ONLY, OFFSETS, cp437, unix_time

__all__ = ["Walk", "Runs", "MAX_DIR_BYTES", "MAX_PROBLEMS", "device_offset"]

#: The spec's ceiling on a directory: 65536 entries of 32 bytes.
MAX_DIR_BYTES = 65536 * 32
#: At most this many problems (and warnings) are kept.
MAX_PROBLEMS = 200
#: Where a short directory entry holds its start cluster (low half) and size.
CLUS_AT = OFFSETS["DirEntry"]["DIR_FstClusLO"]
SIZE_AT = OFFSETS["DirEntry"]["DIR_FileSize"]
#: Where the FAT32 boot sector holds the root directory's start cluster.
ROOT_CLUS_AT = OFFSETS["BootSector32"]["BPB_RootClus"]


def device_offset(extents, off: int) -> int:
    """Device byte offset of byte ``off`` of data stored in ``extents``."""
    for dev, length in extents:
        if off < length:
            return dev + off
        off -= length
    return extents[-1][0] + extents[-1][1] if extents else 0


class _LazyOffset:
    """A directory entry's device offset, worked out only if an error message needs it."""

    __slots__ = ("extents", "offset")

    def __init__(self, extents, offset: int) -> None:
        self.extents = extents
        self.offset = offset

    def __int__(self) -> int:
        return device_offset(self.extents, self.offset)

    __index__ = __int__


class Runs:
    """Every chain a walk met, as runs of clusters with the path that owns each.

    ``start``, ``length`` and ``owner`` are parallel lists (run ``i`` is clusters
    ``start[i] .. start[i] + length[i] - 1`` of the path ``owner[i]``). (Lists, not
    arrays: the ``array`` module imports ``collections``, ~8 M instructions of
    every command's start-up; the owner is the path string the index holds anyway.)
    """

    __slots__ = ("start", "length", "owner")

    def __init__(self) -> None:
        self.start: List[int] = []
        self.length: List[int] = []
        self.owner: List[str] = []

    def add(self, runs: List[Run], owner: str) -> None:
        """Record ``runs`` (``(first, count)`` pairs) as the chain of ``owner``."""
        for first, count in runs:
            self.start.append(first)
            self.length.append(count)
            self.owner.append(owner)

    def add_foreign(self, starts: List[int], lengths: List[int], owner: str) -> None:
        """Record runs found elsewhere (another part's :attr:`start` and :attr:`length`),
        all owned by ``owner``."""
        self.start += starts
        self.length += lengths
        self.owner += [owner] * len(starts)

    def mark(self) -> int:
        """Where the record stands now, for :meth:`forget`."""
        return len(self.start)

    def forget(self, mark: int) -> None:
        """Forget the runs recorded since :meth:`mark` gave ``mark``."""
        del self.start[mark:], self.length[mark:], self.owner[mark:]

    def cross_links(self, limit: int = MAX_PROBLEMS) -> List[Tuple[str, str, int]]:
        """The first ``limit`` clusters in two chains, as ``(earlier owner, owner,
        cluster)`` in cluster order (one stable sort of every run by its start)."""
        start, length, owner = self.start, self.length, self.owner
        n = len(start)
        order = sorted(range(n), key=start.__getitem__)
        s = [start[k] for k in order]
        reach = [0] * n                                           # running max of the ends
        top = -1
        hits = []
        for j, k in enumerate(order):
            e = s[j] + length[k]
            if s[j] < top:
                hits.append(j)
                if len(hits) >= limit:
                    reach[j] = max(top, e)
                    break
            if e > top:
                top = e
            reach[j] = top
        # Each crossing is charged to the first run (in start order) that reaches past it.
        return [(owner[order[bisect_right(reach, s[j], 0, j)]], owner[order[j]], s[j])
                for j in hits]


class Walk:
    """One walk of a FAT volume's tree; what it found is in its public attributes.

    ``index`` (path -> EntryInfo), ``dirs`` (directory path -> extents of its
    entries), ``dir_clusters`` (directory path -> start cluster), ``where``
    (path -> ``(directory path, entry offset in it)``; lenient walks only),
    ``runs`` (:class:`Runs`), ``unsafe_names`` (``(path, reason)`` of entries
    left out), ``label_entry`` (the root's volume-label entry, or None) and
    ``warnings_from`` (where this walk's warnings begin in ``warnings``).
    Errors raise (``problems`` None) or go to ``problems``; ``derive(cost,
    what, offset)`` counts the path bytes the index derives.
    """

    def __init__(self, device, geometry, fat, *, warnings: List[str],
                 problems: Optional[List[str]], derive: Callable, times: Dict[int, int]) -> None:
        self.device = device
        self.geometry = geometry
        self.fat = fat
        self.warnings = warnings
        self.problems = problems
        self.derive = derive
        self.times = times                       # FAT date << 16 | time -> Unix time
        self.warnings_from = len(warnings)
        self.index: Dict[str, EntryInfo] = {}
        self.unsafe_names: List[Tuple[str, str]] = []
        self.label_entry: Optional[str] = None
        self.dirs: Dict[str, Tuple[Tuple[int, int], ...]] = {}
        self.dir_clusters: Dict[str, int] = {}
        self.where: Dict[str, Tuple[str, int]] = {}
        self.runs = Runs()
        self.cluster_size = geometry.cluster_size
        self.device_size = device.size
        #: Clusters a directory may have (the spec's 65536 entries, or the volume).
        self.dir_limit = max(1, min(geometry.cluster_count, MAX_DIR_BYTES // self.cluster_size))
        #: The root directory's start cluster (FAT32), or 0 (a fixed root area).
        self.root_cluster = geometry.root_cluster if geometry.fat_type == 32 else 0

    # -- reporting ---------------------------------------------------------------
    def error(self, rule: str, offset: Optional[int], field: Optional[str] = None,
              value=None) -> None:
        """A broken rule: raised, or (lenient) kept in ``problems``."""
        err = CorruptImage(rule, offset=offset, field=field, value=value)
        if self.problems is None:
            raise err
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(str(err).replace("corrupt image ", "", 1))

    def warn(self, offset: int, message: str) -> None:
        """An oddity readers survive, kept in ``warnings``."""
        if len(self.warnings) < MAX_PROBLEMS:
            self.warnings.append(f"at byte {offset} (0x{offset:x}): {message}")

    # -- chains and data ---------------------------------------------------------
    def follow(self, start: int, limit: int, what: str,
               entry_offset: int) -> Tuple[List[Run], bool]:
        """``(runs, ok)``: a broken chain is an error (lenient: the runs before the break)."""
        max_cluster = self.geometry.max_cluster
        if not 2 <= start <= max_cluster:
            self.error(f"{what}: start cluster {start} is out of range (2..{max_cluster})",
                       int(entry_offset) + CLUS_AT, "DIR_FstClusLO", start)
            return [], False
        try:
            return self.fat.chain(start, limit), True
        except ChainError as e:
            self.error(f"{what}: {e.rule}", self.fat.entry_offset(e.cluster),
                       f"FAT entry of cluster {e.cluster}")
            return e.runs, False

    def extents(self, runs: List[Run], size: int) -> Tuple[Tuple[int, int], ...]:
        """The ``(device offset, length)`` extents of the first ``size`` bytes of ``runs``."""
        cs = self.cluster_size
        base = self.geometry.data_offset - 2 * cs          # geometry.cluster_offset(c), inline
        if len(runs) == 1:
            first, count = runs[0]
            return ((base + first * cs, min(count * cs, size)),) if size > 0 else ()
        out = []
        left = size
        for first, count in runs:
            if left <= 0:
                break
            n = min(count * cs, left)
            out.append((base + first * cs, n))
            left -= n
        return tuple(out)

    def past_end(self, extents, what: str) -> bool:
        """Whether ``extents`` reach past the device (an error, reported here)."""
        for off, length in extents:
            if off + length > self.device_size:
                self.error(f"{what}: data at bytes {off}..{off + length} is past the end of "
                           f"the {self.device_size}-byte image (truncated?)", off)
                return True
        return False

    def read_dir(self, extents) -> bytes:
        """A directory's bytes."""
        return b"".join(bytes(self.device.pread(off, n)) for off, n in extents)

    def chain_extents(self, start: int, what: str, at: int, owner: str):
        """Follow a directory's chain from ``start``, own it for ``owner``: its extents
        (empty when broken or past the end) and its runs."""
        runs, _ok = self.follow(start, self.dir_limit, what, at)
        self.runs.add(runs, owner)
        ext = self.extents(runs, sum(n for _, n in runs) * self.cluster_size)
        if not runs or self.past_end(ext, what):
            return ()
        return ext

    def start_root(self) -> Tuple[Tuple[int, int], ...]:
        """Read where the root directory is (its chain, on FAT32) and record it."""
        geo = self.geometry
        if geo.fat_type != 32:
            root = ((geo.root_offset, geo.root_bytes),)
        else:
            runs, _ok = self.follow(geo.root_cluster, self.dir_limit, "root directory",
                                    ROOT_CLUS_AT - CLUS_AT)
            self.runs.add(runs, "/")
            root = self.extents(runs, sum(n for _, n in runs) * geo.cluster_size)
            if self.past_end(root, "root directory"):
                root = ()
        self.dirs[""] = root
        self.dir_clusters[""] = self.root_cluster
        return root

    # -- the tree ----------------------------------------------------------------
    def run(self, split=None, part: int = 0) -> None:
        """Index the tree, depth first. With ``split`` (a
        :class:`~blockimg.fat.split_walk.SplitWalk`), only part ``part``'s entries: the
        directories it owns are indexed; those above them are only passed through."""
        root = self.start_root()
        if part:
            self.runs.forget(0)                     # the root's chain is part 0's
        root_cluster = self.root_cluster
        owner, needed = (None, None) if split is None else (split.owner, split.needed[part])
        visited: Dict[int, str] = {root_cluster: ""}
        on_path = {root_cluster}
        mine = owner is None or owner.get(root_cluster, 0) == part
        stack = [("", root, root_cluster, mine, iter(self.records("", root, quiet=not mine)))]
        while stack:
            path, extents, cluster, mine, it = stack[-1]
            if mine:
                rec = self._files(path, extents, it)
            else:
                rec = next((r for r in it if r.kind == "dir" and r.cluster in needed), None)
            if rec is None:
                stack.pop()
                on_path.discard(cluster)
                continue
            if mine:
                child = self.entry(path, extents, rec, visited, on_path)
            else:
                child = self._pass_through(path, extents, rec, visited, on_path)
            if child is None:
                continue
            cpath, cext, ccl = child
            cmine = True
            if owner is not None:
                # (a subdirectory the scan did not see would be its parent's part's; the
                # scan and the walk read the same entries, so there is none)
                cmine = owner.get(ccl, part if mine else -1) == part
                if not cmine and ccl not in needed:
                    continue
            on_path.add(ccl)
            records = self.records(cpath, cext, quiet=not cmine)
            if cmine:
                # Every entry's path repeats this directory's: counted against the bound.
                self.derive(len(records) * (len(cpath) + 1), f"directory {shorten(cpath)!r}",
                            device_offset(cext, 0) if cext else None)
            stack.append((cpath, cext, ccl, cmine, iter(records)))

    def check_cross_links(self) -> None:
        """No cluster in two chains: each one found is an error."""
        if not self.runs.start:
            return
        for a, b, c in self.runs.cross_links():
            what = (f"chain of {b} loops back into itself" if a == b
                    else f"{a} and {b} share it (cross-linked)")
            self.error(f"cluster {c} is in two chains: {what}", self.fat.entry_offset(c),
                       f"FAT entry of cluster {c}")

    def lookup(self, key: str) -> Optional[EntryInfo]:
        """Index just the entries on the way to ``key`` (each directory read whole, with
        the full walk's checks on it and on the entry's chain); the entry, or None."""
        parts = key.split("/")
        root_cluster = self.dir_clusters[""]
        visited: Dict[int, str] = {root_cluster: ""}
        on_path = {root_cluster}
        dirpath, extents = "", self.dirs[""]
        for i, name in enumerate(parts):
            rec = next((r for r in self.records(dirpath, extents) if r.name == name), None)
            if rec is None or rec.kind not in ("file", "dir"):
                return None
            if i == len(parts) - 1:
                self.entry(dirpath, extents, rec, visited, on_path)
                return self.index.get(key)
            if rec.kind != "dir":
                return None
            child = self.entry(dirpath, extents, rec, visited, on_path)
            if child is None:
                return None
            dirpath, extents, cluster = child
            on_path.add(cluster)
        return None

    def _pass_through(self, path: str, extents, rec: Record, visited, on_path):
        """:meth:`entry` for a subdirectory of a directory another part owns: the same
        checks, but nothing indexed or owned here."""
        mark = self.runs.mark()
        child = self.entry(path, extents, rec, visited, on_path)
        if child is not None:
            self.index.pop(child[0], None)
        self.runs.forget(mark)
        return child

    def _files(self, dirpath: str, dir_extents, it) -> Optional[Record]:
        """Index the records of ``it`` up to its next subdirectory (returned; None at the end).

        A whole file (its chain one run of exactly the clusters its size needs,
        inside the image: the common case) is indexed here inline, as
        :meth:`entry` would; every other record goes through :meth:`entry`.
        """
        prefix = dirpath + "/" if dirpath else ""
        where = None if self.problems is None else self.where
        times = self.times
        index = self.index
        chain = self.fat.chain
        max_cluster = self.geometry.max_cluster
        cs = self.cluster_size
        base = self.geometry.data_offset - 2 * cs
        dev_size = self.device_size
        runs = self.runs
        own_start, own_len, own_id = runs.start.append, runs.length.append, runs.owner.append
        entry = self.entry
        for rec in it:
            name, kind, _short, attr, _nt, c, size, wdate, wtime, off, _lo, _lfn, _crt = rec
            if kind != "file":
                if kind == "dir":
                    return rec
                entry(dirpath, dir_extents, rec, None, None)
                continue
            if size > 0 and 2 <= c <= max_cluster:
                need = -(-size // cs)
                try:
                    got = chain(c, need)
                except ChainError:
                    got = None
                dev = base + c * cs
                if got is not None and len(got) == 1 and got[0][1] == need \
                        and dev + size <= dev_size:
                    path = prefix + name
                    if where is not None:
                        where[path] = (dirpath, off)
                    stamp = wdate << 16 | wtime
                    mtime = times.get(stamp)
                    if mtime is None:
                        mtime = times[stamp] = unix_time(wdate, wtime)
                    own_id(path)
                    own_start(c)
                    own_len(need)
                    index[path] = EntryInfo(path, "file", size, mtime,
                                            0o444 if attr & ATTR_READ_ONLY else 0o644,
                                            ((dev, size),))
                    continue
            entry(dirpath, dir_extents, rec, None, None)
        return None

    # -- one directory -----------------------------------------------------------
    def records(self, path: str, extents, *, quiet: bool = False) -> List[Record]:
        """The directory's records, with names checked and duplicates dropped; ``quiet``:
        without warnings or unsafe names (another part of a split walk reports them)."""
        if quiet:
            warned, unsafe, label = len(self.warnings), len(self.unsafe_names), self.label_entry
            records = self.records(path, extents)
            del self.warnings[warned:], self.unsafe_names[unsafe:]
            self.label_entry = label
            return records
        records, issues = parse_directory(self.read_dir(extents),
                                          fat32=self.geometry.fat_type == 32)
        where = path or "/"
        for off, msg in issues:
            self.warn(device_offset(extents, off), f"{msg} (in {where})")
        out = []
        seen: Dict[str, str] = {}
        for i, rec in enumerate(records):
            kind = rec.kind
            if kind == "file" or kind == "dir":
                name = rec.name
                if name and name != "." and name != ".." and "/" not in name \
                        and "\0" not in name:
                    # The common case: a plain name, seen once (else _odd_record decides).
                    key = name.upper() if name.isascii() else fold(name)
                    if key not in seen:
                        seen[key] = name
                        out.append(rec)
                        continue
            if self._odd_record(path, rec, i, device_offset(extents, rec.offset), seen):
                out.append(rec)
        return out

    def _odd_record(self, path: str, rec: Record, i: int, at: int,
                    seen: Dict[str, str]) -> bool:
        """Judge a record that is not a plain name seen once in its directory (``seen``:
        the case-folded names before it); whether it is kept."""
        where = path or "/"
        if rec.kind in ("dot", "dotdot"):
            if not path:
                self.warn(at, f"'{rec.name}' entry in the root directory")
            elif i != (0 if rec.kind == "dot" else 1):
                self.warn(at, f"'{rec.name}' entry out of place in {where}")
            return True
        if rec.kind == "label":
            if path:
                self.warn(at, f"volume label entry outside the root (in {where})")
            elif self.label_entry is None:
                self.label_entry = cp437(rec.short).rstrip()
            else:
                self.warn(at, "second volume label entry in the root")
            return False
        bad = _bad_name(rec.name, seen, where)
        if bad:
            # Left out of the index: listed (not warned about) so that every command
            # names it once, and check counts it as a problem.
            full = f"{path}/{rec.name}" if path else rec.name
            self.unsafe_names.append((full, f"{bad} (entry at byte {at} (0x{at:x}))"))
            return False
        key = fold(rec.name)
        if key in seen:
            self.warn(at, f"names {seen[key]!r} and {rec.name!r} in {where} differ only "
                          "in case (FAT names are case-insensitive)")
        else:
            seen[key] = rec.name
        return True

    # -- one entry ---------------------------------------------------------------
    def entry(self, dirpath: str, dir_extents, rec: Record, visited, on_path):
        """Index one record; returns ``(path, extents, cluster)`` for a subdirectory to walk."""
        kind = rec.kind
        if kind == "dot" or kind == "dotdot":
            self._dot(dirpath, rec, device_offset(dir_extents, rec.offset))
            return None
        path = f"{dirpath}/{rec.name}" if dirpath else rec.name
        if self.problems is not None:
            self.where[path] = (dirpath, rec.offset)
        stamp = rec.wdate << 16 | rec.wtime
        mtime = self.times.get(stamp)
        if mtime is None:
            mtime = self.times[stamp] = unix_time(rec.wdate, rec.wtime)
        if kind == "dir":
            return self._dir_entry(path, dir_extents, rec, mtime, visited, on_path)
        self._file_entry(path, dir_extents, rec, mtime)
        return None

    def _dir_entry(self, path: str, dir_extents, rec: Record, mtime: int, visited, on_path):
        """:meth:`entry` for a subdirectory: ``(path, extents, cluster)``, or None when it
        must not be walked (a cycle, a shared cluster)."""
        at = device_offset(dir_extents, rec.offset)
        c = rec.cluster
        if c in on_path:
            self.error(f"directory {path} points back at its ancestor "
                       f"{visited.get(c, '?') or '/'} (cluster {c}): a directory cycle",
                       at + CLUS_AT, "DIR_FstClusLO", c)
            return None
        if c in visited:
            self.error(f"directory {path} shares cluster {c} with directory "
                       f"{visited[c] or '/'} (cross-linked)", at + CLUS_AT, "DIR_FstClusLO", c)
            return None
        ext = self.chain_extents(c, f"directory {path}", at, path)
        self.index[path] = EntryInfo(path, "dir", 0, mtime,
                                     0o555 if rec.attr & ATTR_READ_ONLY else 0o755)
        self.dirs[path] = ext
        self.dir_clusters[path] = c
        visited[c] = path
        return path, ext, c

    def _file_entry(self, path: str, dir_extents, rec: Record, mtime: int) -> None:
        """:meth:`entry` for a file: its chain checked against its size, and indexed."""
        size = rec.size
        runs: List[Run] = []
        cs = self.cluster_size
        if size == 0:
            if rec.cluster != 0:
                self.error(f"file {path} is empty but has start cluster {rec.cluster} "
                           "(size disagrees with the chain)",
                           device_offset(dir_extents, rec.offset) + SIZE_AT, "DIR_FileSize", 0)
        else:
            need = -(-size // cs)
            runs, ok = self.follow(rec.cluster, need, f"file {path} ({size} bytes)",
                                   _LazyOffset(dir_extents, rec.offset))
            have = runs[0][1] if len(runs) == 1 else sum(n for _, n in runs)
            if ok and have != need:
                self.error(f"file {path}: size {size} needs {need} clusters but its chain "
                           f"has {have} (size disagrees with the chain)",
                           device_offset(dir_extents, rec.offset) + SIZE_AT, "DIR_FileSize",
                           size)
            size = min(size, have * cs)
        self.runs.add(runs, path)
        ext = self.extents(runs, size)
        if self.past_end(ext, f"file {path}"):
            ext, size = (), 0
        self.index[path] = EntryInfo(path, "file", size, mtime,
                                     0o444 if rec.attr & ATTR_READ_ONLY else 0o644, ext)

    def _dot(self, dirpath: str, rec: Record, at: int) -> None:
        """Warn about a ``.`` or ``..`` entry that does not point where it should."""
        if not dirpath:
            return
        own = self.dir_clusters.get(dirpath, -1)
        if rec.kind == "dot":
            if rec.cluster != own:
                self.warn(at, f"'.' of {dirpath} points at cluster {rec.cluster}, not its "
                              f"own {own}")
            return
        parent = dirpath.rsplit("/", 1)[0] if "/" in dirpath else ""
        want = self.dir_clusters.get(parent, -1)
        ok = {want} | ({0} if parent == "" else set())
        if rec.cluster not in ok:
            self.warn(at, f"'..' of {dirpath} points at cluster {rec.cluster}, not its "
                          f"parent's {0 if parent == '' else want}")


def _bad_name(name: str, seen: Dict[str, str], where: str) -> Optional[str]:
    """Why an entry named ``name`` is left out of the index (``seen``: the case-folded
    names before it in the directory ``where``), or None."""
    if name in (".", "..") or not name:
        return "the name is reserved"
    if "/" in name or "\0" in name:
        return "the name holds '/' or NUL"
    if seen.get(fold(name)) == name:
        return f"duplicate name in {where}; the later entry is ignored"
    return None
