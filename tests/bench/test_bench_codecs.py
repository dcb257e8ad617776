"""Benchmarks of the codecs: FAT table encode/decode, tar header encode/decode."""
from __future__ import annotations

import pytest

N_TABLE = 1 << 20     # table entries
N_HEADERS = 1000


@pytest.fixture(params=[12, 16, 32])
def fat_type(request):
    return request.param


def _entries(fat_type: int, n: int):
    from blockimg.fat import table
    n = min(n, table.MAX_CLUSTERS[fat_type] + 2)
    run_ends = list(range(9, n, 10))
    return table.RunTable(fat_type, n - 2, run_ends, n, table.table_bytes(fat_type, n)), n


def test_fat_table_encode(benchmark, fat_type):
    from blockimg.fat import table
    rt, n = _entries(fat_type, N_TABLE)
    data = benchmark(rt.encode_range, 0, n)
    assert len(data) == table.table_bytes(fat_type, n)


def test_fat_table_decode(benchmark, fat_type):
    from blockimg.fat import table
    rt, n = _entries(fat_type, N_TABLE)
    data = rt.encode_range(0, n)
    out = benchmark(table.decode_window, data, fat_type, n)
    assert out.tolist() == rt.entries_list(0, n)


def test_fat_table_chunks(benchmark):
    """The whole table of a 32 GiB FAT32 volume (4 KiB clusters), in bounded chunks."""
    from blockimg.fat import table
    n = (32 << 30) // 4096
    rt = table.RunTable(32, n, [1000, 5000, 20000], 20001, table.table_bytes(32, n + 2))
    total = benchmark(lambda: sum(len(b) for _, b in rt.chunks(1 << 20)))
    assert total >= table.table_bytes(32, n + 2)


def _headers():
    from blockimg.tar.header import build_header
    return [build_header(f"dir{i % 10}/file-{i:05d}.html".encode(), 0o644, i * 37, 1704067200,
                         b"0") for i in range(N_HEADERS)]


def test_tar_header_encode(benchmark):
    from blockimg.tar.header import build_header
    names = [f"dir{i % 10}/file-{i:05d}.html".encode() for i in range(N_HEADERS)]
    out = benchmark(lambda: [build_header(n, 0o644, i * 37, 1704067200, b"0")
                             for i, n in enumerate(names)])
    assert all(len(h) == 512 for h in out)


def test_tar_header_decode(benchmark):
    from blockimg.tar.decoder import ENTRY, Decoder
    blocks = _headers()

    def decode():
        d = Decoder()
        got = 0
        for i, b in enumerate(blocks):
            kind, member = d.header(b, i * 512)
            got += kind == ENTRY
        return got

    assert benchmark(decode) == N_HEADERS
