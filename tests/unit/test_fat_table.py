"""FAT tables: encode/decode for 12/16/32, FAT12 packing, chunked run tables."""
import numpy as np
import pytest

from helpers import fat_reference as ref

from blockimg.fat import table as t


def test_fat12_packing_known_bytes():
    # Entries 0xABC, 0xDEF pack into BC FA DE.
    assert ref.table_encode([0xABC, 0xDEF], 12) == bytes([0xBC, 0xFA, 0xDE])
    # An odd count: the last entry takes 1.5 bytes, rounded up to 2.
    assert ref.table_encode([0xABC, 0xDEF, 0x123], 12) == bytes([0xBC, 0xFA, 0xDE, 0x23, 0x01])
    assert list(ref.table_decode(bytes([0xBC, 0xFA, 0xDE, 0x23, 0x01]), 12, 3)) == [0xABC, 0xDEF, 0x123]


@pytest.mark.parametrize("fat_type", [12, 16, 32])
@pytest.mark.parametrize("n", [1, 2, 3, 7, 100, 101])
def test_round_trip(fat_type, n):
    rng = np.random.default_rng(n * fat_type)
    top = {12: 0xFFF, 16: 0xFFFF, 32: 0x0FFFFFFF}[fat_type]
    vals = rng.integers(0, top + 1, n, dtype=np.uint64).astype(np.uint32)
    data = ref.table_encode(vals, fat_type)
    assert len(data) == t.table_bytes(fat_type, n)
    assert np.array_equal(ref.table_decode(data, fat_type, n), vals)


def test_fat16_32_little_endian():
    assert ref.table_encode([0x1234], 16) == b"\x34\x12"
    assert ref.table_encode([0x0ABCDEF1], 32) == b"\xf1\xde\xbc\x0a"


def test_fat32_mask():
    raw = (0xF0000005).to_bytes(4, "little")
    assert ref.table_decode(raw, 32)[0] == 5
    assert ref.table_decode(raw, 32, mask=False)[0] == 0xF0000005


def test_decode_short_data_refused():
    with pytest.raises(ValueError):
        ref.table_decode(b"\x00" * 3, 16, 2)


def naive_table(fat_type, runs, size):
    """Table built entry by entry from (first, count) runs."""
    n = size * 8 // t.BITS[fat_type]
    vals = [0] * n
    vals[0] = t.media_entry(fat_type)
    vals[1] = t.EOC[fat_type]
    for first, count in runs:
        for c in range(first, first + count - 1):
            vals[c] = c + 1
        vals[first + count - 1] = t.EOC[fat_type]
    return ref.table_encode(vals, fat_type)[:size]


@pytest.mark.parametrize("fat_type", [12, 16, 32])
@pytest.mark.parametrize("chunk", [3, 64, 999, 1 << 20])
def test_run_table_matches_naive(fat_type, chunk):
    runs = [(2, 1), (3, 5), (8, 1), (9, 200), (209, 3)]
    used_end = 212
    size = 1536 if fat_type != 32 else 2048
    clusters = size * 8 // t.BITS[fat_type] - 2
    rt = t.RunTable(fat_type, clusters, [f + c - 1 for f, c in runs], used_end, size)
    pieces = list(rt.chunks(chunk))
    assert pieces[0][0] == 0
    joined = b"".join(p for _, p in pieces)
    offs = [o for o, _ in pieces]
    assert offs == sorted(offs) and len(joined) == size
    assert joined == naive_table(fat_type, runs, size)


def test_run_table_refuses_small_table():
    with pytest.raises(ValueError):
        t.RunTable(16, 1000, [], 2, 1000)


def test_media_entries():
    assert t.media_entry(12) == 0xFF8 and t.media_entry(16) == 0xFFF8
    assert t.media_entry(32) == 0x0FFFFFF8
