"""``blockimg check`` for FAT: structure like ``fsck.fat -n``, plus what Mirage cannot read.

:func:`check` re-walks the volume without stopping at the first error
(``FatImage(strict=False)``), then adds what only a whole-volume look finds:
FAT copies that differ, the media byte, FSInfo, the backup boot sector,
lost clusters, and short names equal to another entry's name (Linux and
mtools would open the wrong entry). With ``target="mirage"`` it adds every
reason the Mirage FAT driver (ocaml-fat, see MIRAGE.md) would fail: the FAT
type by its rule, sector size, root-directory size, a label entry, and each
file it cannot find under its real name. Advice that is not a failure (a 512-byte-sector
volume does not mount on 4096-byte devices) goes to ``image.warnings``.
"""
from __future__ import annotations

TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Dict, List

from ..errors import InvalidInput
from ..quoting import escape
from . import mirage
from .dirents import parse_directory
from .marker import STATE_AT, dirty
from .names import exact_short, parse_short
from .reader import MAX_PROBLEMS, FatImage
from .structs import DIR_ENTRY_SIZE, OFFSETS
from .table import count_equal, table_bytes

__all__ = ["check"]

TWO_GIB = 1 << 31


def check(image: FatImage, *, target: str = "generic") -> List[str]:
    """Problems found (each names an offset or a path and the rule); empty when clean."""
    if target not in ("generic", "mirage"):
        raise InvalidInput(f"unknown check target {target!r} (generic or mirage)",
                           rule="check target")
    image.whole_walk()        # (lazily opened: its walk's warnings are part of the report)
    if image.strict and target == "mirage":
        # The name checks need every entry's directory slot (kept by lenient walks only).
        image.fat.clear_cache()                     # the lenient walk brings its own
        img = FatImage(image.device, strict=False)
        warnings = img.warnings
    else:
        # A strict walk that finished met no error, so a lenient one would find the same
        # index, no problems and the same warnings: no second walk (and index) needed.
        img = image
        warnings = image.warnings[:image.opening_warnings]
    out = _interrupted(img) + list(img.problems) + list(warnings)
    out += [f"'{escape(name)}': not extracted: {why}" for name, why in img.unsafe_names]
    out += _fat_copies(img) + _media(img) + _fsinfo(img) + _backup(img) + _lost(img)
    out += _volume_size(img) + _short_name_clashes(img)
    if target == "mirage":
        advice: List[str] = []
        out += _mirage(img, advice)
        image.warnings.extend(w for w in advice if w not in image.warnings)
    return out


# -- structure -------------------------------------------------------------------

#: Where the boot sector's fields are (the BPB fields these checks name are at the same
#: offsets in FAT12/16 and FAT32 boot sectors, up to BPB_TotSec32).
_BPB = OFFSETS["BootSector32"]
_FSINFO_AT, _BACKUP_AT = _BPB["BPB_FSInfo"], _BPB["BPB_BkBootSec"]
_TOTSEC16_AT, _ROOTENTCNT_AT = _BPB["BPB_TotSec16"], _BPB["BPB_RootEntCnt"]


def _at(off: int) -> str:
    return f"at byte {off} (0x{off:x})"


def _fat_copies(img: FatImage) -> List[str]:
    geo = img.geometry
    if geo.fat_type == 32 and geo.ext_flags & 0x80:
        return []                                   # mirroring off: one active FAT
    n = table_bytes(geo.fat_type, geo.cluster_count + 2)
    out = []
    for k in range(1, geo.num_fats):
        pos = 0
        while pos < n:
            step = min(1 << 18, n - pos)
            a = bytes(img.device.pread(geo.fat_copy_offset(0) + pos, step))
            b = bytes(img.device.pread(geo.fat_copy_offset(k) + pos, step))
            if a != b:
                off = pos + _first_difference(a, b)
                cluster = off * 8 // geo.fat_type
                out.append(f"{_at(geo.fat_copy_offset(k) + off)}: FAT {k + 1} differs from "
                           f"FAT 1 (first at the entry of cluster {cluster}; "
                           f"{_differing_bytes(a, b)} bytes in this 256 KiB)")
                break
            pos += step
    return out


def _interrupted(img: FatImage) -> List[str]:
    """The interrupted-update marker (:mod:`blockimg.fat.marker`)."""
    geo = img.geometry
    heads = [bytes(img.device.pread(geo.fat_copy_offset(i), 8)) for i in range(geo.num_fats)]
    if not dirty(geo.fat_type, bytes(img.device.pread(0, 512)), heads):
        return []
    where = (f"{_at(STATE_AT[12])}: the boot sector's dirty bit is set" if geo.fat_type == 12
             else f"{_at(geo.fat_offset)}: FAT[1]'s clean-shutdown bit is clear")
    return [f"{where}: an interrupted 'blockimg update' (or a writer that did not finish); "
            "run the same update again to complete it"]


def _media(img: FatImage) -> List[str]:
    geo = img.geometry
    first = img.fat.get(0) & 0xFF
    if first != geo.media:
        return [f"{_at(geo.fat_offset)}: FAT[0] holds media byte 0x{first:02x}, the boot "
                f"sector says 0x{geo.media:02x}"]
    return []


def _fsinfo(img: FatImage) -> List[str]:
    geo = img.geometry
    if geo.fat_type != 32:
        return []
    fsi = img.fsinfo()
    if fsi is None:
        return [f"{_at(_FSINFO_AT)}: FAT32 volume without an FSInfo sector "
                f"(BPB_FSInfo={geo.fsinfo_sector})"]
    out = []
    off = fsi["offset"]
    if not (fsi["lead_ok"] and fsi["struc_ok"] and fsi["trail_ok"]):
        out.append(f"{_at(off)}: FSInfo signatures are wrong")
        return out
    free = img.free_clusters()
    if fsi["free_count"] != 0xFFFFFFFF and fsi["free_count"] != free:
        out.append(f"{_at(off + 488)}: FSInfo free count {fsi['free_count']}, but the FAT "
                   f"has {free} free clusters")
    nxt = fsi["next_free"]
    if nxt != 0xFFFFFFFF and not 2 <= nxt <= geo.max_cluster:
        out.append(f"{_at(off + 492)}: FSInfo next-free hint {nxt} is not a cluster "
                   f"(2..{geo.max_cluster})")
    return out


def _backup(img: FatImage) -> List[str]:
    geo = img.geometry
    if geo.fat_type != 32 or geo.backup_boot_sector in (0, 0xFFFF):
        return []
    if geo.backup_boot_sector >= geo.reserved_sectors:
        return [f"{_at(_BACKUP_AT)}: backup boot sector {geo.backup_boot_sector} is outside the "
                f"{geo.reserved_sectors} reserved sectors"]
    off = geo.backup_boot_sector * geo.bytes_per_sector
    if bytes(img.device.pread(0, 512)) != bytes(img.device.pread(off, 512)):
        return [f"{_at(off)}: the backup boot sector differs from the boot sector"]
    return []


def _first_difference(a: bytes, b: bytes) -> int:
    """Index of the first byte where equal-length ``a`` and ``b`` differ (they do)."""
    lo, hi = 0, len(a) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if a[lo:mid + 1] == b[lo:mid + 1]:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _differing_bytes(a: bytes, b: bytes) -> int:
    x = int.from_bytes(a, "little") ^ int.from_bytes(b, "little")
    return len(a) - x.to_bytes(len(a), "little").count(0)


def _used(seg, bad: int) -> int:
    """Entries of ``seg`` that are allocated: neither free (0) nor marked bad."""
    return len(seg) - count_equal(seg, 0) - count_equal(seg, bad)


def _first_used(arr, start: int, stop: int, bad: int) -> int:
    """The first index in ``[start, stop)`` whose entry is allocated, or -1."""
    size = arr.itemsize
    while start < stop:
        raw = arr[start:stop].tobytes()
        zeros = len(raw) - len(raw.lstrip(b"\0"))
        i = start + zeros // size
        if i >= stop:
            return -1
        if arr[i] != bad:
            return i
        start = i + 1
    return -1


def _lost(img: FatImage) -> List[str]:
    """Clusters allocated in the FAT that no file or directory reaches."""
    # Every cluster some chain reaches, as sorted disjoint [start, end) intervals.
    merged: List[List[int]] = []
    runs = img.walk.runs
    for first, count in sorted(zip(runs.start, runs.length)):
        if merged and first <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], first + count)
        else:
            merged.append([first, first + count])
    bad = img.fat.bad
    lost = 0
    first_lost = None
    k = 0
    for base, arr in img.fat.windows():
        n = len(arr)
        lo = max(0, 2 - base)
        while k < len(merged) and merged[k][1] <= base:
            k += 1
        reached = []                                  # this window's intervals, relative
        j = k
        while j < len(merged) and merged[j][0] < base + n:
            s, e = max(merged[j][0] - base, lo), min(merged[j][1] - base, n)
            if e > s:
                reached.append((s, e))
            j += 1
        miss = _used(arr[lo:], bad) - sum(_used(arr[s:e], bad) for s, e in reached)
        if miss and first_lost is None:
            pos = lo
            for s, e in reached + [(n, n)]:
                i = _first_used(arr, pos, s, bad) if s > pos else -1
                if i >= 0:
                    first_lost = base + i
                    break
                pos = max(pos, e)
        lost += miss
    if lost:
        return [f"{_at(img.fat.entry_offset(first_lost))}: {lost} lost cluster(s): allocated "
                f"in the FAT but in no file or directory (first: cluster {first_lost})"]
    return []


def _volume_size(img: FatImage) -> List[str]:
    geo = img.geometry
    if geo.volume_bytes > img.device.size:
        return [f"{_at(_TOTSEC16_AT)}: the volume is {geo.volume_bytes} bytes but the image only "
                f"{img.device.size} (truncated)"]
    return []


def _short_name_clashes(img: FatImage) -> List[str]:
    """Entries whose short name is another entry's name (any case).

    Linux (vfat) and mtools compare a looked-up name with every entry's short
    name as well as its long name, so such a name opens the wrong entry (a whole
    subtree for a directory); fsck.fat does not notice. Only a name that is an
    8.3 name in any case can equal a short name (:func:`exact_short`), so only
    directories holding one are read again.
    """
    suspects = set()
    for e in img:
        parent, _, name = e.path.rpartition("/")
        if parent not in suspects and exact_short(name) is not None:
            suspects.add(parent)
    out: List[str] = []
    fat32 = img.geometry.fat_type == 32
    for dirpath in sorted(suspects):
        extents = img.walk.dirs.get(dirpath)
        if not extents:
            continue
        records, _issues = parse_directory(img.walk.read_dir(extents), fat32=fat32)
        holders: Dict[bytes, list] = {}         # short name (upper-cased) -> its entries
        for r in records:
            if r.kind == "file" or r.kind == "dir":
                holders.setdefault(r.short.upper(), []).append(r)
        where = dirpath + "/" if dirpath else ""
        for r in records:
            own = exact_short(r.name) if r.kind == "file" or r.kind == "dir" else None
            for h in holders.get(own, ()):
                if h is not r:
                    out.append(f"{where}{h.name}: its short name {parse_short(h.short)!r} "
                               f"is the name of {where}{r.name}; Linux and mtools, which "
                               "match a looked-up name against short names too, can open "
                               "one for the other")
        if len(out) >= MAX_PROBLEMS:
            return out[:MAX_PROBLEMS]
    return out


# -- Mirage ------------------------------------------------------------------------

def _mirage(img: FatImage, warnings: List[str]) -> List[str]:
    geo = img.geometry
    out = []
    count = geo.cluster_count
    if geo.fat_type == 12:
        out.append(f"mirage: FAT12 ({count} clusters): ocaml-fat decides the type by cluster "
                   "count and reads fewer than 4087 clusters as FAT16, so files beyond their "
                   "first cluster fail; Mirage needs FAT16 with 4085..65524 clusters")
    elif geo.fat_type == 32:
        out.append(f"mirage: FAT32 ({count} clusters): ocaml-fat reads only the 16-bit "
                   "sectors-per-FAT and root-entry fields and the low half of start clusters, "
                   "so the volume looks empty; Mirage needs FAT16 with 4085..65524 clusters")
    if geo.bytes_per_sector > 4096:
        out.append(f"mirage: {geo.bytes_per_sector} bytes per sector; Mirage block devices "
                   "have at most 4096")
    elif geo.bytes_per_sector < 4096:
        warnings.append(f"mirage: {geo.bytes_per_sector}-byte sectors: mounts only on devices "
                        f"whose sector size divides {geo.bytes_per_sector} (solo5, unix), not "
                        "on 4096-byte ones (Xen blkfront); 4096-byte sectors mount on both")
    if img.device.size % 4096:
        warnings.append(f"mirage: the image is {img.device.size} bytes, not a multiple of "
                        "4096: a 4096-byte block device refuses it")
    if geo.fat_type != 32 and (geo.root_entries * DIR_ENTRY_SIZE) % geo.bytes_per_sector:
        out.append(f"mirage: {_at(_ROOTENTCNT_AT)}: {geo.root_entries} root entries x 32 bytes "
                   "is not a "
                   f"multiple of {geo.bytes_per_sector}-byte sectors; ocaml-fat miscounts the "
                   "root directory and data region")
    if img.label_entry is not None:
        out.append(f"mirage: the root directory holds a volume-label entry "
                   f"({img.label_entry!r}); ocaml-fat lists it as an empty file")
    for e in img:
        if e.kind == "file" and e.size >= TWO_GIB:
            out.append(f"mirage: {e.path}: {e.size} bytes; ocaml-fat reads the size as a "
                       "signed 32-bit number, so files of 2 GiB and more read as empty")
    out += _mirage_names(img)
    return out


def _mirage_names(img: FatImage) -> List[str]:
    by_dir: Dict[str, List[str]] = {}
    walk = img.walk
    for path, (dirpath, _off) in walk.where.items():
        by_dir.setdefault(dirpath, []).append(path)
    out: List[str] = []
    for dirpath, extents in walk.dirs.items():
        data = walk.read_dir(extents) if extents else b""
        recs = mirage.records(data)
        at = {r.offset: r for r in recs}
        for path in by_dir.get(dirpath, []):
            name = path.rsplit("/", 1)[-1]
            raw = name.encode("utf-8", "surrogateescape")
            hit = mirage.find(raw, recs)
            own = at.get(walk.where[path][1])
            if hit is not None and own is not None and hit.offset == own.offset:
                continue
            out.append(f"mirage: cannot find {path}: {_why(name, raw, own, hit)}")
            if len(out) >= MAX_PROBLEMS:
                return out
        for r in recs:
            shown = mirage.listed_name(r)
            if mirage.find(shown, recs) is None:
                where = dirpath or "/"
                listed = shown.decode("latin-1")
                out.append(f"mirage: listing {where} fails: it lists {listed!r}, which "
                           "ocaml-fat then cannot look up")
                break
    return out


def _why(name: str, raw: bytes, own, hit) -> str:
    if own is None:
        return "its entry is invisible to ocaml-fat"
    if not name.isascii():
        return ("the name is not ASCII; ocaml-fat matches names byte by byte against the "
                "low bytes of the UTF-16 long name")
    if not own.utf:
        short = own.base + (b"." + own.ext if own.ext else b"")
        s = short.decode("cp437")
        return (f"it has no long name, only the 8.3 entry {s!r} (lower case shown through "
                f"the NT flags, which ocaml-fat ignores); Mirage finds it only as {s!r}")
    units = len(own.utf) // 2
    if len(raw) % 13 == 0 and units == len(raw):
        return (f"its long name is {len(raw)} characters, a multiple of 13, stored without "
                "the 0x0000 terminator slot ocaml-fat always expects (listing its "
                "directory fails too)")
    if own.utf[:2 * len(raw) + 2] == mirage.lookup_bytes(raw)[:2 * len(raw) + 2] and \
            b"\x00\x00" in own.utf[2 * len(raw) + 2:]:
        return "its long name is padded with 0x0000 instead of 0xFFFF"
    if hit is not None:
        return f"ocaml-fat matches an earlier entry (at offset {hit.offset} of the directory)"
    if mirage.is_legal_dos_name(raw):
        return "ocaml-fat looks this name up as an 8.3 name, but the short entry differs"
    return "its long-name slots differ from what ocaml-fat builds for the name"
