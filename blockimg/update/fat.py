"""Update a FAT image in place: read what the planner needs, carry its plan out.

:func:`read_volume` reads the boot sector, the FAT and every directory (no file
content) into a :class:`~blockimg.fat.update.Volume`; :func:`plan_update` is the
pure planner (:mod:`blockimg.fat.update`, which documents the write order and what
a crash leaves); :func:`apply` writes it, flushing after each phase.
"""
from __future__ import annotations

TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Callable, Dict, List, Tuple

from ..block.base import BlockDevice
from ..errors import CorruptImage, DeviceError, InvalidInput
from ..fat.chains import ChainError, FatTable
from ..fat.dirents import parse_directory
from ..fat.geometry import parse
from ..fat.table import consecutive, decode_window
from ..fat.names import fold
from ..fat.structs import ATTR_READ_ONLY, DIR_ENTRY_SIZE, unix_time
from ..fat.marker import dirty
from ..fat.update import (FileData, OldDir, OldEntry, UpdatePlan, Volume, Write, lost_runs,
                          plan as plan_update, STEPS)
from ..sources.directory import SourceEntry, SourceTree, paused_gc
from .compare import comparer

__all__ = ["read_volume", "index", "touched", "same_content", "plan_update", "apply", "interrupted"]

MAX_DIR_BYTES = 65536 * DIR_ENTRY_SIZE
CHUNK = 1 << 20
#: Lead byte -> 1 for a deleted slot (0xE5).
_DELETED = bytes(1 if b == 0xE5 else 0 for b in range(256))


def interrupted(device: BlockDevice) -> bool:
    """Whether the image carries the interrupted-update marker (see
    :mod:`blockimg.fat.update`)."""
    geo = parse(bytes(device.pread(0, 512)), device.size)
    heads = [bytes(device.pread(geo.fat_copy_offset(i), 8)) for i in range(geo.num_fats)]
    return dirty(geo.fat_type, bytes(device.pread(0, 512)), heads)


def read_volume(device: BlockDevice) -> Volume:
    """The volume's directories, chains and FAT (no file content read)."""
    head = bytes(device.pread(0, 512))
    geo = parse(head, device.size)
    ss = geo.bytes_per_sector
    boot = bytes(device.pread(0, ss))
    fat = bytes(device.pread(geo.fat_offset, geo.fat_bytes))
    others = tuple(bytes(device.pread(geo.fat_copy_offset(i), geo.fat_bytes))
                   for i in range(1, geo.num_fats))
    heads = [fat[:8]] + [f[:8] for f in others]
    table = FatTable(device, geo, 0)
    referenced = bytearray(geo.cluster_count + 2)
    walk = _Walk(device, geo, table, referenced,
                 decode_window(fat, geo.fat_type, geo.cluster_count + 2))
    with paused_gc():       # one small tuple per entry, no cycles: nothing to collect
        walk.run()
    fsinfo = None
    if geo.fat_type == 32 and 0 < geo.fsinfo_sector < geo.reserved_sectors:
        fsinfo = bytes(device.pread(geo.fsinfo_sector * ss, ss))
    lost = tuple(lost_runs(fat, geo.fat_type, geo.cluster_count, referenced))
    return Volume(geo, boot, fat, walk.dirs, walk.entries, lost,
                  dirty(geo.fat_type, boot, heads), fsinfo, others)


class _Walk:
    """Every directory, depth first; every chain followed once and owned once."""

    def __init__(self, device: BlockDevice, geo, table: FatTable, referenced: bytearray,
                 entries) -> None:
        self.device = device
        self.geo = geo
        self.table = table
        self.referenced = referenced
        self.fat = entries                        # the first FAT, decoded (an array)
        self.dirs: Dict[str, OldDir] = {}
        self.entries: Dict[str, OldEntry] = {}
        self.times: Dict[int, int] = {}           # FAT date << 16 | time -> Unix time

    def chain(self, start: int, limit: int, what, at) -> List[Tuple[int, int]]:
        """The chain from ``start`` (at most ``limit`` clusters), owned; ``what()`` and
        ``at()`` name the entry and its offset, for an error."""
        geo = self.geo
        if not 2 <= start <= geo.max_cluster:
            raise CorruptImage(f"{what()}: start cluster {start} is out of range", offset=at())
        try:
            runs = self.table.chain(start, limit)
        except ChainError as e:
            raise CorruptImage(f"{what()}: {e.rule}",
                               offset=self.table.entry_offset(e.cluster)) from None
        ref = self.referenced
        for s, n in runs:
            if ref.find(1, s, s + n) >= 0:
                raise CorruptImage(f"{what()}: its chain shares clusters with another "
                                   "(cross-linked); run fsck.fat first", offset=at())
            ref[s:s + n] = b"\x01" * n
        return runs

    def run(self) -> None:
        geo = self.geo
        cs = geo.cluster_size
        if geo.fat_type == 32:
            runs = self.chain(geo.root_cluster, MAX_DIR_BYTES // cs, lambda: "root directory",
                              lambda: 44)
            stack = [("", geo.root_cluster, tuple(runs))]
        else:
            stack = [("", 0, ())]
        while stack:
            path, cluster, runs = stack.pop()
            if runs:        # one read per run of clusters
                data = b"".join(bytes(self.device.pread(geo.cluster_offset(c), n * cs))
                                for c, n in runs)
            else:
                data = bytes(self.device.pread(geo.root_offset, geo.root_bytes))
            clusters = _clusters(runs)
            children, junk, subdirs = self.directory(path, clusters, data)
            self.dirs[path] = OldDir(path, cluster, clusters, data, tuple(children),
                                     tuple(junk))
            stack.extend(reversed(subdirs))

    def directory(self, path: str, clusters, data: bytes):
        """The entries of one directory (``data``): ``(children, junk slot ranges,
        subdirectories to read)``. A file whose chain is one run of exactly the clusters
        its size needs (the common case: what :meth:`FatTable.chain` returns as one run,
        tested here on the decoded table without the call) and shares none is taken in
        here; every other entry goes through :meth:`entry_chain`'s checks."""
        geo = self.geo
        cs = geo.cluster_size
        records, issues = parse_directory(data, fat32=geo.fat_type == 32)
        # Without issues every live slot belongs to a record (parse_directory): no slot
        # is junk, and which ones the records own need not be tracked.
        owned = bytearray(len(data) // DIR_ENTRY_SIZE) if issues else None
        seen = set()
        children, junk, subdirs = [], [], []
        prefix = path + "/" if path else ""
        entries, times, ref, fat = self.entries, self.times, self.referenced, self.fat
        eoc = self.table.eoc
        typecode = fat.typecode
        top = geo.max_cluster
        one = b"\x01"
        new = tuple.__new__                       # OldEntry's fields, without its __new__

        def at(off: int) -> int:
            if not clusters:
                return geo.root_offset + off
            return geo.cluster_offset(clusters[off // cs]) + off % cs

        # The names, checked all at once when they allow it (ASCII, none empty, "." or
        # "..", none holding "/" or NUL, no two equal ignoring case: what writers
        # write); else one at a time in the loop.
        names = [r[0] for r in records if r[1] == "file" or r[1] == "dir"]
        joined = "/".join(names)
        plain = joined.isascii() and "\0" not in joined and \
            joined.count("/") == len(names) - 1
        if plain:
            keys = set(joined.upper().split("/"))
            plain = len(keys) == len(names) and not {"", ".", ".."} & keys
        for r in records:
            name, kind, _short, attr, _nt, c, size, wdate, wtime, off, lfn_off, _l, _c = r
            if owned is not None:
                first, end = lfn_off // DIR_ENTRY_SIZE, off // DIR_ENTRY_SIZE + 1
                owned[first:end] = one * (end - first)
            if kind != "file" and kind != "dir":
                continue
            if not plain:
                key = name.upper() if name.isascii() else fold(name)
                if not name or name == "." or name == ".." or "/" in name or "\0" in name \
                        or key in seen:
                    junk.append((lfn_off, off + DIR_ENTRY_SIZE))
                    continue
                seen.add(key)
            full = prefix + name
            stamp = wdate << 16 | wtime
            mtime = times.get(stamp)
            if mtime is None:
                mtime = times[stamp] = unix_time(wdate, wtime)
            ro = attr & ATTR_READ_ONLY
            runs = None
            if kind == "file" and size and 2 <= c:
                last = c + (size - 1) // cs           # the last cluster its size needs
                if last <= top and fat[last] >= eoc:
                    if last == c:
                        if not ref[c]:
                            ref[c] = 1
                            runs = ((c, 1),)
                    elif (fat[c:last].tolist() == list(range(c + 1, last + 1))
                          if last - c <= 32 else
                          fat[c:last] == consecutive(typecode, c + 1, last - c)) \
                            and ref.find(1, c, last + 1) < 0:
                        ref[c:last + 1] = one * (last + 1 - c)
                        runs = ((c, last + 1 - c),)
            if runs is None:
                runs = tuple(self.entry_chain(r, full, lambda: at(r.offset)))
            if kind == "dir":
                subdirs.append((full, c, runs))
                e = new(OldEntry, (full, "dir", 0, mtime, 0o555 if ro else 0o755, runs, off,
                                   lfn_off))
            else:
                e = new(OldEntry, (full, "file", size, mtime, 0o444 if ro else 0o644, runs,
                                   off, lfn_off))
            entries[full] = e
            children.append(e)
        if owned is not None:
            _unowned(data, owned, junk)
        return children, junk, subdirs

    def entry_chain(self, r, full: str, at) -> List[Tuple[int, int]]:
        """The chain of record ``r`` (the file or directory ``full``): a file's exactly as
        long as its size needs."""
        cs = self.geo.cluster_size

        def what() -> str:
            return f"{r.kind} {full}"
        if r.kind == "dir":
            return self.chain(r.cluster, MAX_DIR_BYTES // cs, what, at)
        if not r.size:
            if r.cluster:
                raise CorruptImage(f"{what()} is empty but has start cluster {r.cluster}",
                                   offset=at())
            return []
        need = -(-r.size // cs)
        runs = self.chain(r.cluster, need, what, at)
        have = runs[0][1] if len(runs) == 1 else sum(n for _, n in runs)
        if have != need:
            raise CorruptImage(f"{what()}: size {r.size} needs {need} clusters, its chain "
                               f"has {have}", offset=at())
        return runs


def _unowned(data: bytes, owned: bytearray, junk: List[Tuple[int, int]]) -> None:
    """Add to ``junk`` the slots before the end of directory ``data`` that no entry owns
    (``owned``: a byte per slot) and are not deleted: broken long names (found a byte
    per slot at once: owned OR deleted, then its zero bytes)."""
    leads = data[::DIR_ENTRY_SIZE]
    n = leads.find(0)
    n = len(leads) if n < 0 else n
    covered = (int.from_bytes(owned[:n], "little")
               | int.from_bytes(leads[:n].translate(_DELETED), "little")
               ).to_bytes(n, "little")
    i = covered.find(0)
    while i >= 0:
        junk.append((i * DIR_ENTRY_SIZE, (i + 1) * DIR_ENTRY_SIZE))
        i = covered.find(0, i + 1)


def _clusters(runs) -> Tuple[int, ...]:
    return tuple(c for s, n in runs for c in range(s, s + n))


def touched(tree: SourceTree, d) -> SourceTree:
    """The part of ``tree`` that ``create``'s checks must see for an update: every entry
    of each directory that gains an entry (new names are checked against their
    siblings), those directories, and each changed entry (its name is the image's
    already: only its own rules can fail)."""
    dirs = {e.path.rpartition("/")[0] for e in d.added}
    if not dirs:                # (the changed entries are in the tree's order already)
        return SourceTree(tuple(d.changed))
    changed = {e.path for e in d.changed}
    return SourceTree(tuple(e for e in tree.entries if e.path in dirs or e.path in changed
                            or e.path.rpartition("/")[0] in dirs))


def index(vol: Volume) -> Dict[str, OldEntry]:
    """The volume's entries by path (for :func:`blockimg.update.diff.diff`: they carry the
    fields of :class:`~blockimg.read.image.EntryInfo` it reads)."""
    return vol.entries


def _source_chunks(entry: SourceEntry):
    """``entry``'s bytes, in chunks."""
    if entry.data is not None:
        data = bytes(entry.data)
        for i in range(0, len(data), CHUNK):
            yield data[i:i + CHUNK]
        return
    try:
        with open(entry.source, "rb") as f:
            if entry.offset:
                f.seek(entry.offset)
            left = entry.size
            while left > 0:
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
                yield chunk
    except OSError as e:
        raise DeviceError(f"{entry.source}: cannot read: {e.strerror}",
                          errno=e.errno) from None


def same_content(device: BlockDevice, geo) -> "Callable[[OldEntry, SourceEntry], bool]":
    """Whether an image file (its runs of clusters on ``device``, of geometry ``geo``)
    holds a source entry's bytes (:func:`blockimg.update.compare.comparer`)."""
    cs = geo.cluster_size
    base = geo.data_offset - 2 * cs               # geo.cluster_offset(c) == base + c * cs

    def extents(info: OldEntry):
        left = info.size
        for s, n in info.runs:
            k = min(n * cs, left)
            yield base + s * cs, k
            left -= k
    return comparer(device, extents)


def apply(p: UpdatePlan, device: BlockDevice, *, on_phase=None) -> int:
    """Carry ``p`` out on ``device``, phase by phase, flushed after each step
    (:data:`~blockimg.fat.update.STEPS`); bytes written.

    ``on_phase(name)``: called before each phase (tests, progress)."""
    geo = p.geometry
    written = 0
    for step in STEPS:
        wrote = False
        for name in step:
            ws = p.phases.get(name, ())
            if not ws:
                continue
            if on_phase is not None:
                on_phase(name)
            for w in ws:
                if isinstance(w, Write):
                    device.pwrite(w.offset, w.data)
                    written += len(w.data)
                else:
                    written += _file_data(w, device, geo.cluster_size, geo)
            wrote = True
        if wrote:
            device.flush()
    return written


def _file_data(w: FileData, device: BlockDevice, cs: int, geo) -> int:
    """Write a source file into its runs in whole clusters (at most about CHUNK bytes
    held), the last one zero padded."""
    src = _source_chunks(w.entry)
    held = b""
    total = 0
    step = max(cs, CHUNK - CHUNK % cs)
    for s, n in w.runs:
        off, end = geo.cluster_offset(s), geo.cluster_offset(s) + n * cs
        while off < end:
            want = min(step, end - off)
            parts, have = [held], len(held)
            while have < want:
                chunk = next(src, None)
                if chunk is None:
                    break
                total += len(chunk)
                parts.append(chunk)
                have += len(chunk)
            joined = b"".join(parts)
            piece, held = joined[:want], joined[want:]
            device.pwrite(off, piece + bytes(want - len(piece)))
            off += want
    if total != w.entry.size or held or next(src, None) is not None:
        raise InvalidInput(f"changed while the update read it ({w.entry.size} bytes "
                           "expected); run update again",
                           path=w.entry.path, rule="source stays still during update")
    return w.length


__all__ += ["UpdatePlan", "Volume"]
