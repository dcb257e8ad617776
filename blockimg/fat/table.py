"""FAT12/16/32 allocation tables, both directions.

A table holds one entry per cluster number (0 and 1 are the reserved
media/EOC entries); FAT12 packs two 12-bit entries into 3 bytes.
:class:`RunTable` produces the table of a volume whose used clusters form
contiguous runs from cluster 2 on, one bounded chunk at a time;
:func:`decode_view` unpacks a window of table bytes for the reader
(:mod:`.chains`) into a typed ``memoryview`` (:func:`decode_window`: into an
``array``, for the updater), :func:`count_equal` counts its free or bad entries.
:func:`consecutive` builds runs of consecutive numbers a byte lane at a time,
for both. No numpy: a plain reference codec in
``tests/helpers/fat_reference.py`` is held equal to these (tested).
"""
from __future__ import annotations

import sys
from bisect import bisect_left
from struct import calcsize, pack
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from array import array
    from typing import Iterator, Sequence, Tuple

__all__ = ["BITS", "EOC", "BAD", "MIN_CLUSTERS", "MAX_CLUSTERS", "MEDIA", "table_bytes",
           "media_entry", "RunTable", "FAT32_MASK", "decode_view", "decode_window", "count_equal", "consecutive", "U32",
           "fat_get", "fat_set"]

_BIG_ENDIAN = sys.byteorder == "big"
#: Keeps the low nibble of a byte: the top byte of a FAT32 entry holds 4 reserved bits.
_LOW_NIBBLE = bytes(range(16)) * 16
#: The 32-bit unsigned array type code ("I" on every platform CPython supports).
U32 = "I" if calcsize("I") == 4 else "L"
#: Byte 0 and byte 1 of consecutive numbers, one period (and then some) each; made on
#: first use (:func:`_lanes`).
_LANE0 = _LANE1 = b""

#: ``array.array``, imported on first use (:func:`_array_type`): the ``array`` module
#: imports ``collections.abc`` (with ``collections``: ~8 M instructions) when it loads,
#: and only :func:`decode_window` needs it (the reader decodes into memoryviews, the
#: writer's :meth:`RunTable.encode_range` does without).
_array = None

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


def fat_get(buf, bits: int, c: int) -> int:
    """Entry ``c`` of FAT``bits`` table bytes ``buf``."""
    if bits == 16:
        return buf[2 * c] | buf[2 * c + 1] << 8
    if bits == 32:
        return int.from_bytes(buf[4 * c:4 * c + 4], "little") & FAT32_MASK
    o = c * 3 // 2
    v = buf[o] | buf[o + 1] << 8
    return v >> 4 if c & 1 else v & 0xFFF


def fat_set(buf: bytearray, bits: int, c: int, v: int) -> None:
    """Set entry ``c`` (FAT32: its 4 reserved high bits kept)."""
    if bits == 16:
        buf[2 * c:2 * c + 2] = v.to_bytes(2, "little")
    elif bits == 32:
        high = buf[4 * c + 3] & 0xF0
        buf[4 * c:4 * c + 4] = ((v & FAT32_MASK) | high << 24).to_bytes(4, "little")
    else:
        o = c * 3 // 2
        if c & 1:
            buf[o] = (buf[o] & 0x0F) | (v << 4 & 0xF0)
            buf[o + 1] = v >> 4 & 0xFF
        else:
            buf[o] = v & 0xFF
            buf[o + 1] = (buf[o + 1] & 0xF0) | (v >> 8 & 0x0F)


def _array_type():
    """``array.array``, imported on first use."""
    global _array
    if _array is None:
        from array import array as _array
    return _array


def decode_view(raw, bits: int, count: int) -> memoryview:
    """``count`` entries of FAT``bits`` table bytes ``raw`` (starting at an even entry).

    A ``memoryview`` cast to ``H`` (FAT12/16) or ``I`` (FAT32, masked to 28 bits)
    of a new ``bytearray`` in native byte order: never a view of ``raw``. (The
    reader's form: indexing, slices, comparison, ``tolist`` and ``tobytes`` as an
    ``array``'s, without importing ``array``; :func:`count_equal` for ``count``.)
    """
    if bits == 16:
        buf = bytearray(memoryview(raw)[:count * 2])
        code, size = "H", 2
    elif bits == 32:
        buf = bytearray(memoryview(raw)[:count * 4])
        buf[3::4] = buf[3::4].translate(_LOW_NIBBLE)
        code, size = U32, 4
    elif bits == 12:
        b = bytes(memoryview(raw)[:(count * 12 + 7) // 8])
        b += bytes(-len(b) % 3)
        # Three bytes hold two entries: lo = b0 | (b1 & 0xF) << 8, hi = b1 >> 4 | b2 << 4.
        b0, b1, b2 = b[0::3], b[1::3], b[2::3]
        vals = [0] * (len(b) // 3 * 2)
        vals[0::2] = [x | (y & 0xF) << 8 for x, y in zip(b0, b1)]
        vals[1::2] = [y >> 4 | z << 4 for y, z in zip(b1, b2)]
        del vals[count:]
        return memoryview(bytearray(pack(f"{len(vals)}H", *vals))).cast("H")  # native order
    else:
        raise ValueError(f"FAT type must be 12, 16 or 32, not {bits!r}")
    if len(buf) < count * size:
        raise ValueError(f"{len(raw)} bytes hold fewer than {count} FAT{bits} entries")
    if _BIG_ENDIAN:                                    # pragma: no cover
        _swap(buf, size)
    return memoryview(buf).cast(code)


def decode_window(raw, bits: int, count: int) -> array:
    """:func:`decode_view`'s entries as an ``array.array`` (imported here, on first use),
    for callers that need an array's own methods (``count``, ``index``)."""
    array = _array or _array_type()
    entries = decode_view(raw, bits, count)
    arr = array(entries.format)
    arr.frombytes(entries.cast("B"))
    return arr


def count_equal(entries: memoryview, value: int) -> int:
    """How many of the decoded ``entries`` (:func:`decode_view`) equal ``value``.

    A byte lane at a time at C speed (a ``memoryview`` has no ``count``): each
    lane's bytes XORed with ``value``'s byte, the lanes ORed together as one
    integer; an entry equals ``value`` where that integer has a zero byte.
    """
    size = entries.itemsize
    raw = entries.tobytes()
    n = len(raw) // size
    if not n:
        return 0
    want = value.to_bytes(size, sys.byteorder)
    diff = 0
    for i in range(size):
        lane = raw[i::size]
        if want[i]:
            lane = lane.translate(_xor_table(want[i]))
        diff |= int.from_bytes(lane, "little")
    return diff.to_bytes(n, "little").count(0)


_XOR: dict = {}


def _xor_table(byte: int) -> bytes:
    """The ``bytes.translate`` table of XOR with ``byte`` (made on first use)."""
    table = _XOR.get(byte)
    if table is None:
        table = _XOR[byte] = bytes(b ^ byte for b in range(256))
    return table


def consecutive(typecode: str, start: int, n: int) -> memoryview:
    """The numbers ``start .. start + n - 1`` as a ``memoryview`` of ``typecode``
    (``H`` or :data:`U32`), built a byte lane at a time.

    Five times faster than from a range: the run test compares windows
    against it, and a 256 MiB file is 65536 clusters of 4 KiB.
    """
    size = 2 if typecode == "H" else 4
    buf = _lanes(size, start, n)
    if _BIG_ENDIAN:                                    # pragma: no cover
        _swap(buf, size)
    return memoryview(buf).cast(typecode)


def _lanes(size: int, start: int, n: int) -> bytearray:
    """The ``size``-byte little-endian numbers ``start``, ``start + 1`` ... (``n`` of
    them), built a byte lane at a time."""
    global _LANE0, _LANE1
    if not _LANE0:
        _LANE0 = bytes(range(256)) * 512
        _LANE1 = b"".join(bytes([h]) * 256 for h in range(256)) * 2
    buf = bytearray(n * size)
    pos = 0
    while pos < n:
        m = min(n - pos, 65536)
        o = start + pos
        lo, mid = o & 0xFF, o & 0xFFFF
        buf[pos * size:(pos + m) * size:size] = _LANE0[lo:lo + m]
        buf[pos * size + 1:(pos + m) * size:size] = _LANE1[mid:mid + m]
        pos += m
    last = start + n - 1
    for lane in range(2, size):
        shift = 8 * lane
        if last >> shift == 0:
            continue
        unit = 1 << shift
        parts = []
        v = start
        while v <= last:
            nxt = min((v // unit + 1) * unit, last + 1)
            parts.append(bytes([(v >> shift) & 0xFF]) * (nxt - v))
            v = nxt
        buf[lane::size] = b"".join(parts)
    return buf


def _swap(buf: bytearray, size: int) -> None:         # pragma: no cover (big-endian)
    """Reverse the bytes of each ``size``-byte number of ``buf``, in place."""
    lanes = [buf[i::size] for i in range(size)]
    for i, lane in enumerate(reversed(lanes)):
        buf[i::size] = lane


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

    def entries_list(self, start: int, stop: int) -> list:
        """Entries for clusters ``[start, stop)`` as a list of ints (0 past the last cluster)."""
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
        """On-disk bytes of the entries for clusters ``[start, stop)`` (``start`` even for
        FAT12)."""
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
        size = 2 if self.fat_type == 16 else 4
        buf = _lanes(size, start + 1, max(0, live - start))
        if live < stop:
            buf += bytes((stop - max(start, live)) * size)
        # The marks go in through a native-order view of the bytes (not an array: no
        # ``array`` import for a build).
        if _BIG_ENDIAN:                                # pragma: no cover
            _swap(buf, size)
        with memoryview(buf) as raw, raw.cast("H" if size == 2 else U32) as vals:
            self._mark(vals, start, stop)
        if _BIG_ENDIAN:                                # pragma: no cover
            _swap(buf, size)
        return bytes(buf)

    def chunks(self, chunk_bytes: int = 1 << 20) -> Iterator[Tuple[int, bytes]]:
        """``(byte offset in the table, bytes)`` pieces covering the whole table.

        Each piece but the last is ``chunk_bytes`` long (rounded to whole
        entries: a multiple of 3 bytes for FAT12); the zero tail past the
        used clusters comes as zero bytes too, so every byte is written.
        """
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
                yield off, self.encode_range(first, first + count)[:n]
            off += n
