"""Reading a FAT: bounded windows of decoded entries, chains followed into runs.

The table is decoded in windows of at most 256 KiB of on-disk bytes (the
writer's ``table.decode``), a few kept in a small cache, so memory stays flat
however large the volume (a 32 GiB FAT32 volume has a 32 MiB FAT).
:meth:`FatTable.chain` follows a chain once into ``(first cluster, count)``
runs: contiguous stretches are found with numpy in one step, every loop is
bounded, and a chain that loops is caught by Brent's cycle test on the run
starts.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Iterator, List, Tuple

import numpy as np

from ..block.base import BlockDevice
from .geometry import Geometry
from .table import decode

__all__ = ["FatTable", "ChainError", "Run"]

Run = Tuple[int, int]
WINDOW_BYTES = 1 << 18
CACHE_WINDOWS = 4


class ChainError(Exception):
    """A chain breaks a rule; ``cluster`` is the entry at fault.

    ``runs`` are the chain's runs before the break (none for a loop), at most
    the limit's worth of clusters.
    """

    def __init__(self, rule: str, cluster: int) -> None:
        super().__init__(rule)
        self.rule = rule
        self.cluster = cluster
        self.runs: List[Run] = []


class FatTable:
    """One copy of the FAT on ``device``, decoded on demand in bounded windows."""

    def __init__(self, device: BlockDevice, geo: Geometry, copy: int = 0) -> None:
        self.device = device
        self.geo = geo
        self.bits = geo.fat_type
        self.offset = geo.fat_copy_offset(copy)
        self.entries = geo.cluster_count + 2              # entries that mean something
        self.eoc = {12: 0xFF8, 16: 0xFFF8, 32: 0x0FFFFFF8}[self.bits]
        self.bad = self.eoc - 1
        # Entries per window: whole table for FAT12/16 (<= 128 KiB), slices for FAT32.
        if self.bits == 32:
            self.per_window = WINDOW_BYTES // 4
        else:
            self.per_window = self.entries + (self.entries % 2)
        self._cache: "OrderedDict[int, np.ndarray]" = OrderedDict()

    # -- raw access --------------------------------------------------------------
    def entry_offset(self, cluster: int) -> int:
        """Byte offset of ``cluster``'s entry on the device."""
        return self.offset + cluster * self.bits // 8

    def window(self, index: int, *, cache: bool = True) -> np.ndarray:
        """Decoded entries ``[index * per_window, ...)`` (cached unless ``cache=False``)."""
        arr = self._cache.get(index)
        if arr is not None:
            self._cache.move_to_end(index)
            return arr
        first = index * self.per_window
        n = min(self.per_window, self.entries - first)
        start_byte = first * self.bits // 8                 # first is even for FAT12
        nbytes = (n * self.bits + 7) // 8
        raw = self.device.pread(self.offset + start_byte, nbytes)
        arr = decode(raw, self.bits, n)
        if arr.base is not None:
            arr = arr.copy()                               # never pin the device's buffer
        del raw
        if cache:
            self._cache[index] = arr
            if len(self._cache) > CACHE_WINDOWS:
                self._cache.popitem(last=False)
        return arr

    def windows(self) -> Iterator[Tuple[int, np.ndarray]]:
        """``(first cluster, entries)`` over the whole table, one window at a time (uncached)."""
        for index in range(-(-self.entries // self.per_window)):
            yield index * self.per_window, self.window(index, cache=False)

    def get(self, cluster: int) -> int:
        w, i = divmod(cluster, self.per_window)
        return int(self.window(w)[i])

    # -- chains ------------------------------------------------------------------
    def run_end(self, cluster: int, stop: int) -> int:
        """Last cluster ``e < stop`` such that ``cluster..e`` point each at the next."""
        if stop - cluster <= 1 or self.get(cluster) != cluster + 1:
            return cluster
        i = cluster + 1
        step = 64
        while i < stop - 1:
            w, j = divmod(i, self.per_window)
            arr = self.window(w)
            n = min(step, len(arr) - j, stop - 1 - i)
            seg = arr[j:j + n]
            bad = np.flatnonzero(seg != np.arange(i + 1, i + 1 + n, dtype=np.int64))
            if bad.size:
                return i + int(bad[0])
            i += n
            step = min(step * 8, self.per_window)
        return stop - 1

    def chain(self, start: int, limit: int) -> List[Run]:
        """The runs of the chain from ``start``, at most ``limit`` clusters.

        Raises :class:`ChainError` when a cluster is out of range, the chain
        reaches a free or bad cluster, loops, or is longer than ``limit``.
        """
        runs: List[Run] = []
        try:
            return self._chain(start, limit, runs)
        except ChainError as e:
            if not e.rule.startswith("chain loops"):   # a loop's runs repeat themselves
                e.runs = runs
            raise

    def _chain(self, start: int, limit: int, runs: List[Run]) -> List[Run]:
        top = self.entries
        total = 0
        c = start
        prev = None
        tortoise, power, lam = start, 1, 1
        while True:
            if not 2 <= c < top:
                where = prev if prev is not None else c
                raise ChainError(f"cluster {c} is out of range (2..{top - 1})", where)
            end = self.run_end(c, min(top, c + limit - total + 1))
            total += end - c + 1
            if total > limit:
                raise ChainError(f"chain is longer than {limit} clusters", end - 1)
            runs.append((c, end - c + 1))
            nxt = self.get(end)
            if nxt >= self.eoc:
                return runs
            if nxt == 0:
                raise ChainError(f"chain runs into free cluster {end} -> 0", end)
            if nxt == self.bad:
                raise ChainError(f"chain runs into a cluster marked bad (after {end})", end)
            if total == limit:
                raise ChainError(f"chain is longer than {limit} clusters", end)
            prev, c = end, nxt
            if c == tortoise:
                raise ChainError(f"chain loops back to cluster {c}", end)
            if power == lam:
                tortoise, power, lam = c, power * 2, 0
            lam += 1
