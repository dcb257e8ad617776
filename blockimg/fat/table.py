"""FAT12/16/32 allocation tables: bulk encode/decode with numpy, and chunked generation.

A table is an array of ``uint32`` entries, one per cluster number (0 and 1
are the reserved media/EOC entries). :func:`encode` packs entries into the
on-disk bytes (12-bit pairs into 3 bytes), :func:`decode` unpacks them.
:class:`RunTable` produces the table of a volume whose used clusters form
contiguous runs from cluster 2 on, one bounded chunk at a time.

numpy is imported only when it is used: by :func:`encode`/:func:`decode`,
and by :class:`RunTable` for tables with more than :data:`NUMPY_ENTRIES`
used entries. Smaller tables (every FAT12/16 table, FAT32 up to several GiB
of data) are generated with the standard library's ``array`` -- the same
bytes (tested), without numpy's import time and memory.
"""
from __future__ import annotations

import sys
from array import array
from bisect import bisect_left
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Iterator, Optional, Sequence, Tuple

__all__ = ["BITS", "EOC", "BAD", "MIN_CLUSTERS", "MAX_CLUSTERS", "MEDIA", "encode", "decode",
           "table_bytes", "media_entry", "RunTable", "FAT32_MASK", "NUMPY_ENTRIES"]

#: RunTable uses numpy above this many used entries (about 8 GiB of data in 4 KiB clusters).
NUMPY_ENTRIES = 1 << 21
_BIG_ENDIAN = sys.byteorder == "big"

BITS = {12: 12, 16: 16, 32: 32}
#: End-of-chain marks written (readers treat any value >= 0x...FF8 as the end).
EOC = {12: 0xFFF, 16: 0xFFFF, 32: 0x0FFFFFFF}
#: The bad-cluster mark.
BAD = {12: 0xFF7, 16: 0xFFF7, 32: 0x0FFFFFF7}
#: Data cluster counts every reader agrees on: FAT12 < 4085 <= FAT16 < 65525 <= FAT32.
MIN_CLUSTERS = {12: 1, 16: 4085, 32: 65525}
MAX_CLUSTERS = {12: 4084, 16: 65524, 32: 0x0FFFFFF5 - 1}
MEDIA = 0xF8
FAT32_MASK = 0x0FFFFFFF


def table_bytes(fat_type: int, entries: int) -> int:
    """Bytes needed for ``entries`` table entries."""
    return (entries * BITS[fat_type] + 7) // 8


def media_entry(fat_type: int, media: int = MEDIA) -> int:
    """FAT[0]: the media byte with every other bit set."""
    return EOC[fat_type] & ~0xFF | media


def encode(entries, fat_type: int) -> bytes:
    """Pack table entries (any integer sequence/array) into on-disk bytes."""
    import numpy as np
    a = np.asarray(entries, dtype=np.uint32)
    if fat_type == 16:
        return a.astype("<u2").tobytes()
    if fat_type == 32:
        return a.astype("<u4").tobytes()
    if fat_type != 12:
        raise ValueError(f"FAT type must be 12, 16 or 32, not {fat_type!r}")
    n = len(a)
    if n % 2:
        a = np.append(a, np.uint32(0))
    lo = a[0::2] & 0xFFF
    hi = a[1::2] & 0xFFF
    out = np.empty((len(lo), 3), dtype=np.uint8)
    out[:, 0] = lo & 0xFF
    out[:, 1] = (lo >> 8) | ((hi & 0xF) << 4)
    out[:, 2] = hi >> 4
    return out.tobytes()[:table_bytes(12, n)]


def decode(data, fat_type: int, count: Optional[int] = None, *, mask: bool = True):
    """Unpack table bytes into a numpy ``uint32`` array of ``count`` entries (default: all
    that fit).

    FAT32 entries are masked to their 28 bits unless ``mask=False``.
    """
    import numpy as np
    buf = np.frombuffer(data, dtype=np.uint8)
    if fat_type == 16:
        n = len(buf) // 2 if count is None else count
        out = buf[:n * 2].view("<u2").astype(np.uint32)
    elif fat_type == 32:
        n = len(buf) // 4 if count is None else count
        out = buf[:n * 4].view("<u4").astype(np.uint32)
        if mask:
            out &= FAT32_MASK
    elif fat_type == 12:
        n = len(buf) * 2 // 3 if count is None else count
        nbytes = table_bytes(12, n)
        b = buf[:nbytes]
        if len(b) % 3:
            b = np.concatenate([b, np.zeros(3 - len(b) % 3, dtype=np.uint8)])
        b = b.reshape(-1, 3).astype(np.uint32)
        out = np.empty(len(b) * 2, dtype=np.uint32)
        out[0::2] = b[:, 0] | ((b[:, 1] & 0xF) << 8)
        out[1::2] = (b[:, 1] >> 4) | (b[:, 2] << 4)
        out = out[:n]
    else:
        raise ValueError(f"FAT type must be 12, 16 or 32, not {fat_type!r}")
    if len(out) < n:
        raise ValueError(f"{len(data)} bytes hold fewer than {n} FAT{fat_type} entries")
    return out


class RunTable:
    """The table of a volume whose used clusters are ``[2, used_end)``, in contiguous runs.

    ``run_ends`` are the last clusters of the runs (sorted): each gets the
    end-of-chain mark, every other used cluster points at the next one, and
    clusters from ``used_end`` on are free (0). ``size`` is the table's size
    in bytes (the FAT region of one copy, zero padded past the last cluster).
    """

    def __init__(self, fat_type: int, cluster_count: int, run_ends: Sequence[int],
                 used_end: int, size: int, media: int = MEDIA) -> None:
        self.fat_type = fat_type
        self.cluster_count = cluster_count
        self.run_ends = tuple(int(r) for r in run_ends)
        self.used_end = used_end
        self.size = size
        self.media = media
        if not 2 <= used_end <= cluster_count + 2:
            raise ValueError(f"used clusters end at {used_end}, outside 2..{cluster_count + 2}")
        if table_bytes(fat_type, cluster_count + 2) > size:
            raise ValueError(f"a {size}-byte FAT cannot hold {cluster_count} clusters")

    @property
    def live_bytes(self) -> int:
        """Bytes of the table that can hold non-zero entries (zeros after them)."""
        return table_bytes(self.fat_type, self.used_end)

    def entries(self, start: int, stop: int):
        """Entries for clusters ``[start, stop)`` as a numpy ``uint32`` array (0 past the
        last cluster)."""
        import numpy as np
        idx = np.arange(start, stop, dtype=np.int64)
        vals = idx + 1
        lo, hi = bisect_left(self.run_ends, start), bisect_left(self.run_ends, stop)
        ends = np.asarray(self.run_ends[lo:hi], dtype=np.int64)
        vals[ends - start] = EOC[self.fat_type]
        vals[idx >= self.used_end] = 0
        if start <= 0 < stop:
            vals[0 - start] = media_entry(self.fat_type, self.media)
        if start <= 1 < stop:
            vals[1 - start] = EOC[self.fat_type]
        return vals.astype(np.uint32)

    def entries_list(self, start: int, stop: int) -> list:
        """:meth:`entries` as a plain list of ints, without numpy."""
        stop = max(start, stop)
        live = min(stop, self.used_end)
        if live > start:
            vals = list(range(start + 1, live + 1))
            vals += [0] * (stop - live)
        else:
            vals = [0] * (stop - start)
        self._mark(vals, start, stop)
        return vals

    def _mark(self, vals, start: int, stop: int) -> None:
        """End-of-chain marks and the two reserved entries into ``vals`` (clusters from
        ``start``)."""
        eoc = EOC[self.fat_type]
        ends = self.run_ends
        for i in range(bisect_left(ends, start), bisect_left(ends, min(stop, self.used_end))):
            vals[ends[i] - start] = eoc
        if start <= 0 < stop:
            vals[0 - start] = media_entry(self.fat_type, self.media)
        if start <= 1 < stop:
            vals[1 - start] = eoc

    def encode_range(self, start: int, stop: int) -> bytes:
        """On-disk bytes of the entries for clusters ``[start, stop)`` without numpy
        (``start`` even for FAT12); same bytes as ``encode(self.entries(start, stop))``."""
        if self.fat_type == 12:
            v = self.entries_list(start, stop)
            n = len(v)
            if n % 2:
                v.append(0)
            out = bytearray(len(v) // 2 * 3)
            lo, hi = v[0::2], v[1::2]
            out[0::3] = bytes(a & 0xFF for a in lo)
            out[1::3] = bytes((a >> 8 & 0xF) | (b & 0xF) << 4 for a, b in zip(lo, hi))
            out[2::3] = bytes(b >> 4 & 0xFF for b in hi)
            return bytes(out[:table_bytes(12, n)])
        stop = max(start, stop)
        live = min(stop, self.used_end)
        vals = array("H" if self.fat_type == 16 else "I",
                     range(start + 1, live + 1) if live > start else ())
        if live < stop:
            vals.frombytes(bytes((stop - max(start, live)) * vals.itemsize))
        self._mark(vals, start, stop)
        if _BIG_ENDIAN:
            vals.byteswap()
        return vals.tobytes()

    def chunks(self, chunk_bytes: int = 1 << 20, *,
               engine: Optional[str] = None) -> Iterator[Tuple[int, bytes]]:
        """``(byte offset in the table, bytes)`` pieces covering the whole table.

        Each piece but the last is ``chunk_bytes`` long (rounded to whole
        entries: a multiple of 3 bytes for FAT12); the zero tail past the
        used clusters comes as zero bytes too, so every byte is written.
        ``engine`` is ``"array"`` (standard library), ``"numpy"`` or None:
        numpy only for tables of more than :data:`NUMPY_ENTRIES` used entries.
        Both give the same bytes.
        """
        if engine is None:
            engine = "numpy" if self.used_end > NUMPY_ENTRIES else "array"
        if engine not in ("array", "numpy"):
            raise ValueError(f"engine must be 'array' or 'numpy', not {engine!r}")
        bits = BITS[self.fat_type]
        unit = 3 if bits == 12 else bits // 8          # bytes per whole group of entries
        per_unit = 2 if bits == 12 else 1              # entries per group
        chunk_bytes = max(unit, chunk_bytes - chunk_bytes % unit)
        live = self.live_bytes
        off = 0
        while off < self.size:
            n = min(chunk_bytes, self.size - off)
            if off >= live:
                yield off, bytes(n)
            else:
                first = off // unit * per_unit
                count = -(-n // unit) * per_unit
                if engine == "numpy":
                    data = encode(self.entries(first, first + count), self.fat_type)[:n]
                else:
                    data = self.encode_range(first, first + count)[:n]
                yield off, data
            off += n
