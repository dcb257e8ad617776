"""Reading a FAT: bounded windows of decoded entries, chains followed into runs.

The table is decoded in windows of at most 256 KiB of on-disk bytes, a few
kept in a small cache, so memory stays flat however large the volume (a
32 GiB FAT32 volume has a 32 MiB FAT). Windows are typed memoryviews
(``H`` for FAT12/16, ``I`` for FAT32, masked to 28 bits), decoded by
:func:`.table.decode_view` (no ``array`` module: it imports ``collections``).
:meth:`FatTable.chain` follows a chain once into ``(first cluster, count)``
runs: contiguous stretches are found by comparing slices of a window with
the expected consecutive numbers (C speed, a bisection for the end), every
loop is bounded, and a chain that loops is caught by Brent's cycle test on
the run starts.
"""
from __future__ import annotations

TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Dict, Iterator, List, Tuple

from ..block.base import BlockDevice
from .geometry import Geometry
from .table import BAD, U32, consecutive, decode_view

__all__ = ["FatTable", "ChainError", "Run"]

if TYPE_CHECKING:
    Run = Tuple[int, int]
else:   # (a name for annotations; typing not imported)
    Run = 'Tuple[int, int]'
WINDOW_BYTES = 1 << 18
CACHE_WINDOWS = 4
#: Runs up to this many clusters are followed entry by entry, longer ones by slices.
SHORT_RUN = 16


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
        self.bad = BAD[self.bits]
        self.eoc = self.bad + 1                           # any value from here on ends a chain
        self._typecode = "H" if self.bits != 32 else U32
        # Entries per window: whole table for FAT12/16 (<= 128 KiB), slices for FAT32.
        if self.bits == 32:
            self.per_window = WINDOW_BYTES // 4
        else:
            self.per_window = self.entries + (self.entries % 2)
        self._cache: Dict[int, memoryview] = {}         # oldest first (an LRU)
        self._hot, self._hot_arr = -1, None               # the last window used

    # -- raw access --------------------------------------------------------------
    def entry_offset(self, cluster: int) -> int:
        """Byte offset of ``cluster``'s entry on the device."""
        return self.offset + cluster * self.bits // 8

    def window(self, index: int, *, cache: bool = True) -> memoryview:
        """Decoded entries ``[index * per_window, ...)`` (cached unless ``cache=False``)."""
        if index == self._hot:
            return self._hot_arr
        arr = self._cache.pop(index, None)
        if arr is not None:
            self._cache[index] = arr                        # the newest now
            self._hot, self._hot_arr = index, arr
            return arr
        first = index * self.per_window
        n = min(self.per_window, self.entries - first)
        start_byte = first * self.bits // 8                 # first is even for FAT12
        nbytes = (n * self.bits + 7) // 8
        raw = self.device.pread(self.offset + start_byte, nbytes)
        arr = decode_view(raw, self.bits, n)                # a copy: never pins the device
        del raw
        if cache:
            self._cache[index] = arr
            if len(self._cache) > CACHE_WINDOWS:
                del self._cache[next(iter(self._cache))]
            self._hot, self._hot_arr = index, arr
        return arr

    def clear_cache(self) -> None:
        """Drop every decoded window."""
        self._cache.clear()
        self._hot, self._hot_arr = -1, None

    def windows(self) -> Iterator[Tuple[int, memoryview]]:
        """``(first cluster, entries)`` over the whole table, one window at a time (uncached)."""
        for index in range(-(-self.entries // self.per_window)):
            yield index * self.per_window, self.window(index, cache=False)

    def get(self, cluster: int) -> int:
        w, i = divmod(cluster, self.per_window)
        return self.window(w)[i]

    # -- chains ------------------------------------------------------------------
    def run_end(self, cluster: int, stop: int) -> int:
        """Last cluster ``e < stop`` such that ``cluster..e`` point each at the next."""
        if stop - cluster <= 1 or self.get(cluster) != cluster + 1:
            return cluster
        i = cluster + 1
        step = 64
        tc = self._typecode
        while i < stop - 1:
            w, j = divmod(i, self.per_window)
            arr = self.window(w)
            n = min(step, len(arr) - j, stop - 1 - i)
            want = consecutive(tc, i + 1, n)
            if arr[j:j + n] != want:
                # The first entry that breaks the run: bisect on matching prefixes.
                lo, hi = 0, n - 1                       # prefix lo matches; hi breaks
                while lo < hi:
                    mid = (lo + hi) // 2
                    if arr[j:j + mid + 1] == want[:mid + 1]:
                        lo = mid + 1
                    else:
                        hi = mid
                return i + lo
            i += n
            step = min(step * 8, self.per_window)
        return stop - 1

    def chain(self, start: int, limit: int) -> List[Run]:
        """The runs of the chain from ``start``, at most ``limit`` clusters.

        Raises :class:`ChainError` when a cluster is out of range, the chain
        reaches a free or bad cluster, loops, or is longer than ``limit``.
        """
        # The common case first: ``limit`` consecutive clusters ending in end-of-chain,
        # all in one window (exactly what _chain returns for it, without the loop).
        if 2 <= start and 0 < limit and start + limit <= self.entries:
            w, j = divmod(start, self.per_window)
            arr = self._hot_arr if w == self._hot else self.window(w)
            last = j + limit - 1
            if last < len(arr) and arr[last] >= self.eoc:
                if limit == 1:
                    return [(start, 1)]
                if limit == 2:
                    if arr[j] == start + 1:
                        return [(start, 2)]
                elif limit <= 32:
                    if arr[j:last].tolist() == list(range(start + 1, start + limit)):
                        return [(start, limit)]
                elif arr[j:last] == consecutive(self._typecode, start + 1, limit - 1):
                    return [(start, limit)]
        runs: List[Run] = []
        try:
            return self._chain(start, limit, runs)
        except ChainError as e:
            if not e.rule.startswith("chain loops"):   # a loop's runs repeat themselves
                e.runs = runs
            raise

    def _chain(self, start: int, limit: int, runs: List[Run]) -> List[Run]:
        top = self.entries
        pw = self.per_window
        total = 0
        c = start
        prev = None
        tortoise, power, lam = start, 1, 1
        while True:
            if not 2 <= c < top:
                where = prev if prev is not None else c
                raise ChainError(f"cluster {c} is out of range (2..{top - 1})", where)
            stop = min(top, c + limit - total + 1)
            # The common short run, inline: step through the window while each entry
            # points at the next (run_end's rule); long runs go on in run_end.
            w, j = divmod(c, pw)
            arr = self.window(w)
            end = c
            edge = min(stop - 1, w * pw + len(arr) - 1, c + SHORT_RUN)
            nxt = arr[j]
            while end < edge and nxt == end + 1:
                end += 1
                j += 1
                nxt = arr[j]
            if end == edge and end < stop - 1 and nxt == end + 1:
                end = self.run_end(end, stop)
                nxt = self.get(end)
            total += end - c + 1
            if total > limit:
                raise ChainError(f"chain is longer than {limit} clusters", end - 1)
            runs.append((c, end - c + 1))
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
