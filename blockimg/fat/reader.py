"""Mounting a FAT12/16/32 volume: the index of every file, built once at open.

:class:`FatImage` validates the boot sector, walks every directory
(depth-first, parents before children), follows each chain once into
extents and checks, over all chains together, that no cluster belongs to
two of them. A broken rule raises :class:`CorruptImage` naming the byte
offset; with ``strict=False`` the same findings are collected in
``problems`` instead (the ``check`` command's view) and reading goes on.
Name oddities that readers survive (broken long names, duplicates, ``.``
and ``..`` entries) go to ``warnings`` in both modes.
"""
from __future__ import annotations

from array import array
from bisect import bisect_right
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Tuple

from ..block.base import BlockDevice
from ..errors import CorruptImage, NotFound
from ..image import EntryInfo, Image, shorten
from .chains import ChainError, FatTable, Run
from .dirents import Record, parse_directory
from .geometry import detect, parse
from .names import fold
from .structs import (ATTR_READ_ONLY, FSI_LEAD_SIG, FSI_STRUC_SIG, FSI_TRAIL_SIG, OFFSETS, unpack,
                      unix_time)

__all__ = ["detect", "FatImage"]

#: The spec's ceiling on a directory: 65536 entries of 32 bytes.
MAX_DIR_BYTES = 65536 * 32
MAX_PROBLEMS = 200
#: Where a short directory entry holds its start cluster (low half) and size.
_CLUS_AT = OFFSETS["DirEntry"]["DIR_FstClusLO"]
_SIZE_AT = OFFSETS["DirEntry"]["DIR_FileSize"]
#: Above this many runs the cross-link sort uses numpy (the pure-Python one is tested equal).
NUMPY_RUNS = 1 << 17


def _device_offset(extents, off: int) -> int:
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
        return _device_offset(self.extents, self.offset)

    __index__ = __int__


class FatImage(Image):
    """A FAT volume opened for reading (``strict=False``: collect problems, do not raise)."""

    format = "fat"

    def __init__(self, device: BlockDevice, *, owns_device: bool = False,
                 strict: bool = True, lazy: bool = False) -> None:
        self._lazy = False
        super().__init__(device, owns_device=owns_device)
        self.strict = strict
        self.problems: List[str] = []
        self._start_walk()
        self._times: Dict[int, int] = {}     # FAT date << 16 | time -> Unix time
        self._device_size = device.size
        try:
            self.geometry = parse(device.pread(0, min(device.size, 512)), device.size)
            self._cluster_size = self.geometry.cluster_size
            self._data_offset = self.geometry.data_offset
            self.fat = FatTable(device, self.geometry, self.geometry.active_fat)
            if self.geometry.note:
                self._warn(0, self.geometry.note)
            self._note_warnings = len(self.warnings)
            if lazy and strict:
                # Paths are looked up as asked (stat, open, read); anything that needs the
                # whole tree (list, extract, info, checks) indexes it first.
                self._lazy = True
                self._dirs[""] = self._root()
                self._dir_clusters[""] = self._root_cluster()
                self.opening_warnings = len(self.warnings)
            else:
                self._walk()
        except BaseException:
            if owns_device:
                device.close()
            raise

    # -- looking paths up without the whole index (lazy=True) ----------------------
    @property
    def _index(self) -> Dict[str, EntryInfo]:
        if self._lazy:
            self._index_all()
        return self._idx

    @_index.setter
    def _index(self, value: Dict[str, EntryInfo]) -> None:
        self._idx = value

    def _start_walk(self) -> None:
        """Empty the index and what the walk records beside it."""
        self._idx: Dict[str, EntryInfo] = {}
        self._derived = 0
        self.unsafe_names: List[Tuple[str, str]] = []
        self.label_entry: Optional[str] = None
        self._dirs: Dict[str, Tuple[Tuple[int, int], ...]] = {}
        self._dir_clusters: Dict[str, int] = {}
        self._where: Dict[str, Tuple[str, int]] = {}
        self._run_start = array("q")
        self._run_len = array("q")
        self._run_owner = array("q")
        self._owners: List[str] = []

    def _index_all(self) -> None:
        """Index the whole tree now (what a lazy lookup found is forgotten first)."""
        self._lazy = False
        self._start_walk()
        del self.warnings[self._note_warnings:]
        self._walk()

    def stat(self, path: str) -> EntryInfo:
        if not self._lazy:
            return super().stat(path)
        key = self._key(path)
        if key == "":
            return EntryInfo("", "dir", mode=0o755)
        info = self._idx.get(key) or self._lookup(key)
        if info is None:
            raise NotFound("no such file or directory in fat image", path=path,
                           rule="path exists")
        return info

    def _lookup(self, key: str) -> Optional[EntryInfo]:
        """Index just the entries on the way to ``key`` (each directory read whole, with
        the full walk's checks on it and on the entry's chain); the entry, or None."""
        parts = key.split("/")
        root_cluster = self._dir_clusters[""]
        visited: Dict[int, str] = {root_cluster: ""}
        on_path = {root_cluster}
        dirpath, extents = "", self._dirs[""]
        for i, name in enumerate(parts):
            rec = next((r for r in self._records(dirpath, extents) if r.name == name), None)
            if rec is None or rec.kind not in ("file", "dir"):
                return None
            if i == len(parts) - 1:
                self._entry(dirpath, extents, rec, visited, on_path)
                return self._idx.get(key)
            if rec.kind != "dir":
                return None
            child = self._entry(dirpath, extents, rec, visited, on_path)
            if child is None:
                return None
            dirpath, extents, cluster = child
            on_path.add(cluster)
        return None

    def _split_plan(self, jobs: Optional[int]):
        """A :class:`~blockimg.fat.split_walk.SplitWalk` of the tree into ``jobs`` parts
        (None: by its size), or None: only for a strict image not indexed yet."""
        if not (self._lazy and self.strict):
            return None
        from .split_walk import plan
        return plan(self, jobs)

    # -- reporting ---------------------------------------------------------------
    def _error(self, rule: str, offset: Optional[int], field: Optional[str] = None,
               value=None) -> None:
        err = CorruptImage(rule, offset=offset, field=field, value=value)
        if self.strict:
            raise err
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(str(err).replace("corrupt image ", "", 1))

    def _warn(self, offset: int, message: str) -> None:
        if len(self.warnings) < MAX_PROBLEMS:
            self.warnings.append(f"at byte {offset} (0x{offset:x}): {message}")

    # -- chains ------------------------------------------------------------------
    def _follow(self, start: int, limit: int, what: str,
                entry_offset: int) -> Tuple[List[Run], bool]:
        """``(runs, ok)``: a broken chain is an error (lenient: the runs before the break)."""
        geo = self.geometry
        if not 2 <= start <= geo.max_cluster:
            self._error(f"{what}: start cluster {start} is out of range (2..{geo.max_cluster})",
                        int(entry_offset) + _CLUS_AT, "DIR_FstClusLO", start)
            return [], False
        try:
            return self.fat.chain(start, limit), True
        except ChainError as e:
            self._error(f"{what}: {e.rule}", self.fat.entry_offset(e.cluster),
                        f"FAT entry of cluster {e.cluster}")
            return e.runs, False

    def _own(self, runs: List[Run], owner: str) -> None:
        oid = len(self._owners)
        self._owners.append(owner)
        for first, count in runs:
            self._run_start.append(first)
            self._run_len.append(count)
            self._run_owner.append(oid)

    def _extents(self, runs: List[Run], size: int) -> Tuple[Tuple[int, int], ...]:
        cs = self._cluster_size
        base = self._data_offset - 2 * cs               # geometry.cluster_offset(c), inline
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

    def _past_end(self, extents, what: str) -> bool:
        dev_size = self._device_size
        for off, length in extents:
            if off + length > dev_size:
                self._error(f"{what}: data at bytes {off}..{off + length} is past the end of "
                            f"the {self.device.size}-byte image (truncated?)", off)
                return True
        return False

    # -- directories -------------------------------------------------------------
    def _dir_limit(self) -> int:
        return max(1, min(self.geometry.cluster_count,
                          MAX_DIR_BYTES // self.geometry.cluster_size))

    def _root(self) -> Tuple[Tuple[int, int], ...]:
        geo = self.geometry
        if geo.fat_type != 32:
            return ((geo.root_offset, geo.root_bytes),)
        runs, _ok = self._follow(geo.root_cluster, self._dir_limit(), "root directory", 44 - 26)
        self._own(runs, "/")
        ext = self._extents(runs, sum(n for _, n in runs) * geo.cluster_size)
        if self._past_end(ext, "root directory"):
            return ()
        return ext

    def _read_dir(self, extents) -> bytes:
        return b"".join(bytes(self.device.pread(off, n)) for off, n in extents)

    def _root_cluster(self) -> int:
        return self.geometry.root_cluster if self.geometry.fat_type == 32 else 0

    def _walk(self) -> None:
        """Index the whole tree, check no cluster is in two chains, count the warnings."""
        self._walk_tree()
        self._cross_links()
        #: How many of ``warnings`` the walk itself found (checks add advice later).
        self.opening_warnings = len(self.warnings)

    def _walk_tree(self, split=None, part: int = 0) -> None:
        """Index the tree, depth first. With ``split`` (a
        :class:`~blockimg.fat.split_walk.SplitWalk`), only part ``part``'s entries: the
        directories it owns are indexed; those above them are only passed through."""
        root = self._root()
        if part:
            self._forget_runs(0, 0)                 # the root's chain is part 0's
        self._dirs[""] = root
        root_cluster = self._root_cluster()
        self._dir_clusters[""] = root_cluster
        owner, needed = (None, None) if split is None else (split.owner, split.needed[part])
        visited: Dict[int, str] = {root_cluster: ""}
        on_path = {root_cluster}
        mine = owner is None or owner.get(root_cluster, 0) == part
        stack = [("", root, root_cluster, mine, iter(self._records("", root, quiet=not mine)))]
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
                child = self._entry(path, extents, rec, visited, on_path)
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
            records = self._records(cpath, cext, quiet=not cmine)
            if cmine:
                # Every entry's path repeats this directory's: counted against the bound.
                self._derive(len(records) * (len(cpath) + 1), f"directory {shorten(cpath)!r}",
                             _device_offset(cext, 0) if cext else None)
            stack.append((cpath, cext, ccl, cmine, iter(records)))

    def _pass_through(self, path: str, extents, rec: Record, visited, on_path):
        """:meth:`_entry` for a subdirectory of a directory another part owns: the same
        checks, but nothing indexed or owned here."""
        runs, owners = len(self._run_start), len(self._owners)
        child = self._entry(path, extents, rec, visited, on_path)
        if child is not None:
            self._idx.pop(child[0], None)
        self._forget_runs(runs, owners)
        return child

    def _forget_runs(self, runs: int, owners: int) -> None:
        """Forget the chains owned since there were ``runs`` runs and ``owners`` owners."""
        del self._run_start[runs:], self._run_len[runs:], self._run_owner[runs:]
        del self._owners[owners:]

    def _files(self, dirpath: str, dir_extents, it) -> Optional[Record]:
        """Index the records of ``it`` up to its next subdirectory (returned; None at the end).

        A whole file (its chain one run of exactly the clusters its size needs,
        inside the image: the common case) is indexed here inline, as
        :meth:`_entry` would; every other record goes through :meth:`_entry`.
        """
        prefix = dirpath + "/" if dirpath else ""
        where = None if self.strict else self._where
        times = self._times
        index = self._idx
        chain = self.fat.chain
        max_cluster = self.geometry.max_cluster
        cs = self._cluster_size
        base = self._data_offset - 2 * cs
        dev_size = self._device_size
        owners = self._owners
        own_start, own_len = self._run_start.append, self._run_len.append
        own_id = self._run_owner.append
        entry = self._entry
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
                    runs = chain(c, need)
                except ChainError:
                    runs = None
                dev = base + c * cs
                if runs is not None and len(runs) == 1 and runs[0][1] == need \
                        and dev + size <= dev_size:
                    path = prefix + name
                    if where is not None:
                        where[path] = (dirpath, off)
                    stamp = wdate << 16 | wtime
                    mtime = times.get(stamp)
                    if mtime is None:
                        mtime = times[stamp] = unix_time(wdate, wtime)
                    own_id(len(owners))
                    owners.append(path)
                    own_start(c)
                    own_len(need)
                    index[path] = EntryInfo(path, "file", size, mtime,
                                            0o444 if attr & ATTR_READ_ONLY else 0o644,
                                            ((dev, size),))
                    continue
            entry(dirpath, dir_extents, rec, None, None)
        return None

    def _records(self, path: str, extents, *, quiet: bool = False) -> List[Record]:
        """The directory's records, with names checked and duplicates dropped; ``quiet``:
        without warnings or unsafe names (another part of a split walk reports them)."""
        if quiet:
            warned, unsafe, label = len(self.warnings), len(self.unsafe_names), self.label_entry
            records = self._records(path, extents)
            del self.warnings[warned:], self.unsafe_names[unsafe:]
            self.label_entry = label
            return records
        records, issues = parse_directory(self._read_dir(extents),
                                          fat32=self.geometry.fat_type == 32)
        where = path or "/"
        for off, msg in issues:
            self._warn(_device_offset(extents, off), f"{msg} (in {where})")
        out = []
        seen: Dict[str, str] = {}
        for i, rec in enumerate(records):
            kind = rec.kind
            if kind == "file" or kind == "dir":
                name = rec.name
                if name and name != "." and name != ".." and "/" not in name \
                        and "\0" not in name:
                    # The common case, as below: a plain name, seen once.
                    key = name.upper() if name.isascii() else fold(name)
                    if key not in seen:
                        seen[key] = name
                        out.append(rec)
                        continue
            at = _device_offset(extents, rec.offset)
            if rec.kind in ("dot", "dotdot"):
                if not path:
                    self._warn(at, f"'{rec.name}' entry in the root directory")
                elif i != (0 if rec.kind == "dot" else 1):
                    self._warn(at, f"'{rec.name}' entry out of place in {where}")
                out.append(rec)
                continue
            if rec.kind == "label":
                if path:
                    self._warn(at, f"volume label entry outside the root (in {where})")
                elif self.label_entry is None:
                    self.label_entry = rec.short.decode("cp437").rstrip()
                else:
                    self._warn(at, "second volume label entry in the root")
                continue
            bad = None
            if rec.name in (".", "..") or not rec.name:
                bad = "the name is reserved"
            elif "/" in rec.name or "\0" in rec.name:
                bad = "the name holds '/' or NUL"
            elif seen.get(fold(rec.name)) == rec.name:
                bad = f"duplicate name in {where}; the later entry is ignored"
            if bad:
                # Left out of the index: listed (not warned about) so that every command
                # names it once, and check counts it as a problem.
                full = f"{path}/{rec.name}" if path else rec.name
                self.unsafe_names.append((full, f"{bad} (entry at byte {at} (0x{at:x}))"))
                continue
            key = fold(rec.name)
            if key in seen:
                self._warn(at, f"names {seen[key]!r} and {rec.name!r} in {where} differ only "
                               "in case (FAT names are case-insensitive)")
            else:
                seen[key] = rec.name
            out.append(rec)
        return out

    def _entry(self, dirpath: str, dir_extents, rec: Record, visited, on_path):
        """Index one record; returns ``(path, extents, cluster)`` for a subdirectory to walk."""
        geo = self.geometry
        kind = rec.kind
        if kind == "dot" or kind == "dotdot":
            self._dot(dirpath, rec, _device_offset(dir_extents, rec.offset))
            return None
        path = f"{dirpath}/{rec.name}" if dirpath else rec.name
        if not self.strict:
            self._where[path] = (dirpath, rec.offset)
        stamp = rec.wdate << 16 | rec.wtime
        mtime = self._times.get(stamp)
        if mtime is None:
            mtime = self._times[stamp] = unix_time(rec.wdate, rec.wtime)
        ro = rec.attr & ATTR_READ_ONLY
        if kind == "dir":
            at = _device_offset(dir_extents, rec.offset)
            c = rec.cluster
            if c in on_path:
                self._error(f"directory {path} points back at its ancestor "
                            f"{visited.get(c, '?') or '/'} (cluster {c}): a directory cycle",
                            at + _CLUS_AT, "DIR_FstClusLO", c)
                return None
            if c in visited:
                self._error(f"directory {path} shares cluster {c} with directory "
                            f"{visited[c] or '/'} (cross-linked)", at + _CLUS_AT,
                            "DIR_FstClusLO", c)
                return None
            runs, _ok = self._follow(c, self._dir_limit(), f"directory {path}", at)
            self._own(runs, path)
            ext = self._extents(runs, sum(n for _, n in runs) * geo.cluster_size)
            if not runs or self._past_end(ext, f"directory {path}"):
                ext = ()
            self._idx[path] = EntryInfo(path, "dir", 0, mtime, 0o555 if ro else 0o755)
            self._dirs[path] = ext
            self._dir_clusters[path] = c
            visited[c] = path
            return path, ext, c
        size = rec.size
        runs: List[Run] = []
        cs = self._cluster_size
        if size == 0:
            if rec.cluster != 0:
                self._error(f"file {path} is empty but has start cluster {rec.cluster} "
                            "(size disagrees with the chain)",
                            _device_offset(dir_extents, rec.offset) + _SIZE_AT, "DIR_FileSize", 0)
        else:
            need = -(-size // cs)
            runs, ok = self._follow(rec.cluster, need, f"file {path} ({size} bytes)",
                                    _LazyOffset(dir_extents, rec.offset))
            have = runs[0][1] if len(runs) == 1 else sum(n for _, n in runs)
            if ok and have != need:
                self._error(f"file {path}: size {size} needs {need} clusters but its chain "
                            f"has {have} (size disagrees with the chain)",
                            _device_offset(dir_extents, rec.offset) + _SIZE_AT, "DIR_FileSize",
                            size)
            size = min(size, have * cs)
        self._own(runs, path)
        ext = self._extents(runs, size)
        if self._past_end(ext, f"file {path}"):
            ext, size = (), 0
        self._idx[path] = EntryInfo(path, "file", size, mtime, 0o444 if ro else 0o644, ext)
        return None

    def _dot(self, dirpath: str, rec: Record, at: int) -> None:
        if not dirpath:
            return
        own = self._dir_clusters.get(dirpath, -1)
        if rec.kind == "dot":
            if rec.cluster != own:
                self._warn(at, f"'.' of {dirpath} points at cluster {rec.cluster}, not its "
                               f"own {own}")
            return
        parent = dirpath.rsplit("/", 1)[0] if "/" in dirpath else ""
        want = self._dir_clusters.get(parent, -1)
        ok = {want} | ({0} if parent == "" else set())
        if rec.cluster not in ok:
            self._warn(at, f"'..' of {dirpath} points at cluster {rec.cluster}, not its "
                           f"parent's {0 if parent == '' else want}")

    def _cross_links(self) -> None:
        """No cluster in two chains (one sort over every run)."""
        n = len(self._run_start)
        if not n:
            return
        if n > NUMPY_RUNS:
            return self._cross_links_numpy()
        start, length, owner = self._run_start, self._run_len, self._run_owner
        order = sorted(range(n), key=start.__getitem__)          # stable, as numpy's
        s = array("q", [start[k] for k in order])
        reach = array("q", bytes(8 * n))                          # running max of the ends
        top = None
        hits = []
        for j, k in enumerate(order):
            e = s[j] + length[k]
            if top is not None and s[j] < top:
                hits.append(j)
                if len(hits) >= MAX_PROBLEMS:
                    reach[j] = top = max(top, e)
                    break
            top = e if top is None or e > top else top
            reach[j] = top
        for j in hits:
            # The first run (in start order) that reaches past this one's start.
            prev = bisect_right(reach, s[j], 0, j)
            self._cross_link(self._owners[owner[order[prev]]],
                             self._owners[owner[order[j]]], s[j])

    def _cross_links_numpy(self) -> None:
        """The same test with numpy, for volumes with very many runs."""
        import numpy as np
        start = np.frombuffer(self._run_start, dtype=np.int64)
        length = np.frombuffer(self._run_len, dtype=np.int64)
        owner = np.frombuffer(self._run_owner, dtype=np.int64)
        order = np.argsort(start, kind="stable")
        s, e, o = start[order], (start + length)[order], owner[order]
        reach = np.maximum.accumulate(e)
        hits = np.flatnonzero(s[1:] < reach[:-1])
        for i in hits[:MAX_PROBLEMS].tolist():
            j = i + 1
            prev = int(np.flatnonzero(e[:j] > s[j])[0]) if (e[:j] > s[j]).any() else i
            self._cross_link(self._owners[int(o[prev])], self._owners[int(o[j])], int(s[j]))
        del start, length, owner

    def _cross_link(self, a: str, b: str, c: int) -> None:
        what = (f"chain of {b} loops back into itself" if a == b
                else f"{a} and {b} share it (cross-linked)")
        self._error(f"cluster {c} is in two chains: {what}", self.fat.entry_offset(c),
                    f"FAT entry of cluster {c}")

    # -- summary -----------------------------------------------------------------
    def free_clusters(self) -> int:
        free = 0
        for first, arr in self.fat.windows():
            free += arr.count(0) - arr[:max(0, 2 - first)].count(0)
        return free

    def fsinfo(self) -> Optional[dict]:
        """FAT32's FSInfo sector (None on FAT12/16 or when it is absent)."""
        geo = self.geometry
        if geo.fat_type != 32 or geo.fsinfo_sector in (0, 0xFFFF) or \
                geo.fsinfo_sector >= geo.reserved_sectors:
            return None
        off = geo.fsinfo_sector * geo.bytes_per_sector
        raw = bytes(self.device.pread(off, 512))
        f = unpack("FSInfo", raw)
        return {"offset": off, "lead_ok": f.FSI_LeadSig == FSI_LEAD_SIG,
                "struc_ok": f.FSI_StrucSig == FSI_STRUC_SIG,
                "trail_ok": f.FSI_TrailSig == FSI_TRAIL_SIG,
                "free_count": f.FSI_Free_Count, "next_free": f.FSI_Nxt_Free}

    def info(self) -> dict:
        d = super().info()
        geo = self.geometry
        d.update({
            "fat_type": f"FAT{geo.fat_type}", "oem_name": geo.oem_name.decode("cp437"),
            "bytes_per_sector": geo.bytes_per_sector,
            "sectors_per_cluster": geo.sectors_per_cluster, "cluster_size": geo.cluster_size,
            "reserved_sectors": geo.reserved_sectors, "fats": geo.num_fats,
            "sectors_per_fat": geo.sectors_per_fat, "root_entries": geo.root_entries,
            "total_sectors": geo.total_sectors, "clusters": geo.cluster_count,
            "data_offset": geo.data_offset, "media": f"0x{geo.media:02x}",
            "volume_id": None if geo.volume_id is None else f"{geo.volume_id:08X}",
            "label": None if geo.label is None else geo.label.decode("cp437").rstrip(),
            "label_entry": self.label_entry, "free_clusters": self.free_clusters(),
        })
        if geo.fat_type == 32:
            d["root_cluster"] = geo.root_cluster
            fsi = self.fsinfo()
            if fsi is not None:
                d["fsinfo_free_count"] = fsi["free_count"]
                d["fsinfo_next_free"] = fsi["next_free"]
        if self.warnings:
            d["warnings"] = len(self.warnings)
        return d

