"""Mounting a FAT12/16/32 volume: the boot sector checked, the tree walked into an index.

:class:`FatImage` validates the boot sector and hands the tree to a
:class:`~blockimg.fat.walk.Walk`: the whole tree at open (strict: the first
broken rule raises :class:`CorruptImage` naming the byte offset; ``strict=False``:
the findings are collected in ``problems``, the ``check`` command's view), or
with ``lazy=True`` (strict only) one path at a time as asked, the whole tree
when a command needs it, or one part of a split
(:mod:`blockimg.fat.split_walk`, for a parallel extraction). Name oddities
that readers survive (broken long names, duplicates, ``.`` and ``..``
entries) go to ``warnings`` in every mode.
"""
from __future__ import annotations

TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Tuple

from ..block.base import BlockDevice
from ..errors import NotFound
from ..read.image import EntryInfo, Image
from .chains import FatTable
from .geometry import detect, parse
from .structs import FSI_LEAD_SIG, FSI_STRUC_SIG, FSI_TRAIL_SIG, cp437, unpack
from .table import count_equal
from .walk import MAX_DIR_BYTES, MAX_PROBLEMS, Walk

__all__ = ["detect", "FatImage", "MAX_DIR_BYTES", "MAX_PROBLEMS"]


class FatImage(Image):
    """A FAT volume opened for reading (``strict=False``: collect problems, do not raise;
    ``lazy=True``: look paths up as asked, see :mod:`blockimg.fat.reader`).

    ``walk`` is the :class:`~blockimg.fat.walk.Walk` that made the index (for a lazy
    image, the one looking paths up so far).
    """

    format = "fat"

    def __init__(self, device: BlockDevice, *, owns_device: bool = False,
                 strict: bool = True, lazy: bool = False) -> None:
        self._lazy = False
        super().__init__(device, owns_device=owns_device)
        self.strict = strict
        self.problems: List[str] = []
        self._times: Dict[int, int] = {}     # FAT date << 16 | time -> Unix time
        try:
            self.geometry = parse(device.pread(0, min(device.size, 512)), device.size)
            self.fat = FatTable(device, self.geometry, self.geometry.active_fat)
            if self.geometry.note:
                self.warnings.append(f"at byte 0 (0x0): {self.geometry.note}")
            self._note_warnings = len(self.warnings)
            self._new_walk()
            if lazy and strict:
                # Paths are looked up as asked (stat, open, read); anything that needs the
                # whole tree (list, extract, info, checks) indexes it first.
                self._lazy = True
                self.walk.start_root()
                self.opening_warnings = len(self.warnings)
            else:
                self._walk_all()
        except BaseException:
            if owns_device:
                device.close()
            raise

    def _new_walk(self) -> None:
        """Start a new walk (an empty index); its warnings follow the boot sector's."""
        self._derived = 0
        self.walk = Walk(self.device, self.geometry, self.fat, warnings=self.warnings,
                         problems=None if self.strict else self.problems,
                         derive=self._derive, times=self._times)
        self._idx = self.walk.index

    def _walk_all(self) -> None:
        """Index the whole tree, check no cluster is in two chains, count the warnings."""
        self.walk.run()
        self.walk.check_cross_links()
        #: How many of ``warnings`` the walk itself found (checks add advice later).
        self.opening_warnings = len(self.warnings)

    def _index_all(self) -> None:
        """Index the whole tree now (what a lazy lookup found is forgotten first)."""
        self._lazy = False
        del self.warnings[self._note_warnings:]
        self._new_walk()
        self._walk_all()

    @property
    def unsafe_names(self) -> List[Tuple[str, str]]:
        """``(path, reason)`` of each entry the walk left out of the index."""
        return self.walk.unsafe_names

    @property
    def label_entry(self) -> Optional[str]:
        """The root directory's volume-label entry, or None."""
        return self.walk.label_entry

    def whole_walk(self) -> Walk:
        """The walk of the whole tree (an image opened lazily walks it now)."""
        if self._lazy:
            self._index_all()
        return self.walk

    def stat(self, path: str) -> EntryInfo:
        if not self._lazy:
            return super().stat(path)
        key = self.key(path)
        if key == "":
            return EntryInfo("", "dir", mode=0o755)
        info = self._idx.get(key) or self.walk.lookup(key)
        if info is None:
            raise NotFound("no such file or directory in fat image", path=path,
                           rule="path exists")
        return info

    # -- a walk in parts (blockimg.fat.split_walk) -----------------------------------
    def split_plan(self, jobs: Optional[int]):
        """A :class:`~blockimg.fat.split_walk.SplitWalk` of the tree into ``jobs`` parts
        (None: by its size), or None: only for a strict image not indexed yet."""
        if not (self._lazy and self.strict):
            return None
        from .split_walk import plan
        return plan(self, jobs)

    def index_part(self, split, part: int) -> Walk:
        """Index only part ``part`` of ``split`` (the whole walk's checks on it); its walk."""
        self._lazy = False
        del self.warnings[self._note_warnings:]
        self._new_walk()
        self.walk.run(split, part)
        return self.walk

    def reopen_lazily(self) -> None:
        """Back to the lazily opened state after :meth:`index_part`: the index holds
        nothing; the warnings, unsafe names and label entry met so far stay."""
        old = self.walk
        self._new_walk()
        self.walk.unsafe_names, self.walk.label_entry = old.unsafe_names, old.label_entry
        self._lazy = True
        self.walk.start_root()

    # -- summary -----------------------------------------------------------------
    def free_clusters(self) -> int:
        free = 0
        for first, arr in self.fat.windows():
            free += count_equal(arr[max(0, 2 - first):], 0)
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
            "fat_type": f"FAT{geo.fat_type}", "oem_name": cp437(geo.oem_name),
            "bytes_per_sector": geo.bytes_per_sector,
            "sectors_per_cluster": geo.sectors_per_cluster, "cluster_size": geo.cluster_size,
            "reserved_sectors": geo.reserved_sectors, "fats": geo.num_fats,
            "sectors_per_fat": geo.sectors_per_fat, "root_entries": geo.root_entries,
            "total_sectors": geo.total_sectors, "clusters": geo.cluster_count,
            "data_offset": geo.data_offset, "media": f"0x{geo.media:02x}",
            "volume_id": None if geo.volume_id is None else f"{geo.volume_id:08X}",
            "label": None if geo.label is None else cp437(geo.label).rstrip(),
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

