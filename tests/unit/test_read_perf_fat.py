"""The FAT reader without numpy: same values, same runs, same findings, same errors.

Reading decodes FAT windows with :mod:`array` and byte slicing
(``chains.decode_window``), finds contiguous runs by comparing slices with
``chains.consecutive``, and checks cross-links with a pure-Python sort
(``walk.Runs.cross_links``). Each is checked here against the numpy
formulation it replaced (``table.decode``, the element-wise run test, the
numpy cross-link sort), including on hostile tables.
"""
from __future__ import annotations

import os
import random
import subprocess
import sys
from array import array

import pytest

from helpers.fat_volume import FILES, Volume

from helpers import fat_reference as ref
from helpers import fat_walk_reference as walk_ref
from hypothesis import given, settings
from hypothesis import strategies as st

from blockimg.block.memory import MemoryDevice
from blockimg.errors import CorruptImage
from blockimg.fat import chains
from blockimg.fat import table
from blockimg.fat.chains import FatTable
from blockimg.fat.table import consecutive, decode_window
from blockimg.fat.reader import FatImage
from blockimg.fat.walk import MAX_PROBLEMS, Runs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("bits", [12, 16, 32])
def test_decode_window_matches_numpy_decode(bits):
    rnd = random.Random(bits)
    for count in list(range(1, 40)) + [rnd.randrange(1, 70000) for _ in range(40)]:
        raw = bytes(rnd.getrandbits(8) for _ in range((count * bits + 7) // 8))
        want = ref.table_decode(raw, bits, count).tolist()
        got = decode_window(raw, bits, count)
        assert got.tolist() == want
        assert len(got) == count
        view = table.decode_view(raw, bits, count)           # the reader's form
        assert view.tolist() == want and view.format == got.typecode
    # A window is a copy: it never pins the buffer it came from.
    buf = bytearray(64)
    arr = decode_window(memoryview(buf), 16, 32)
    view = table.decode_view(memoryview(buf), 16, 32)
    buf[0] = 7
    assert arr[0] == 0 and view[0] == 0


@pytest.mark.parametrize("bits", [12, 16, 32])
def test_count_equal_counts_whole_entries(bits):
    """count_equal is list.count on the entries, even where the value's bytes straddle
    two entries (0xFFF7 in 0xF700, 0x00FF)."""
    rnd = random.Random(bits)
    bad, eoc = table.BAD[bits], table.EOC[bits]
    pool = [0, 1, bad, eoc, 0xF7, 0xFF, 0xF700, 0xFF00, 0x00F7] + list(range(2, 40))
    pool = [v & (1 << bits) - 1 for v in pool]
    for count in list(range(0, 12)) + [rnd.randrange(1, 5000) for _ in range(30)]:
        values = [rnd.choice(pool) for _ in range(count)]
        raw = b"".join(v.to_bytes(4, "little") for v in values) if bits == 32 else \
            ref.table_encode(values, bits) if bits == 12 else \
            b"".join(v.to_bytes(2, "little") for v in values)
        view = table.decode_view(raw, bits, count)
        for v in (0, bad, eoc, 0xF7, 0xFF00, 1):
            assert table.count_equal(view, v) == values.count(v), (count, v)
            assert table.count_equal(view[3:], v) == values[3:].count(v)


def test_decode_window_masks_fat32_reserved_bits():
    raw = bytes.fromhex("ffffffff 030000f0 0400001f")
    assert decode_window(raw, 32, 3).tolist() == [0x0FFFFFFF, 3, 0x0F000004]


@pytest.mark.parametrize("typecode,top", [("H", 1 << 16), ("I", 1 << 28)])
def test_consecutive(typecode, top):
    rnd = random.Random(top)
    cases = [(0, 1), (255, 2), (65535, 1), (65280, 600)]
    longest = min(70000, top // 2)
    cases += [(rnd.randrange(top - longest), rnd.randrange(1, longest)) for _ in range(60)]
    if typecode == "I":
        cases += [((1 << 24) - 100, 300), ((1 << 16) - 3, 200000)]
    for start, n in cases:
        if start + n > top:
            continue
        assert consecutive(typecode, start, n) == array(typecode, range(start, start + n))


def _naive_run_end(values, cluster, stop):
    """The element-wise definition: the last e < stop with values[c] == c + 1 up to e."""
    e = cluster
    while e + 1 < stop and values[e] == e + 1:
        e += 1
    return e


@pytest.mark.parametrize("kind", ["fat12", "fat16", "fat32"])
def test_run_end_matches_the_elementwise_test(kind, monkeypatch):
    monkeypatch.setattr(chains, "WINDOW_BYTES", 1024)      # FAT32: runs cross windows
    v = Volume(kind)
    geo = v.geo
    rnd = random.Random(7)
    top = geo.cluster_count + 2
    # Long runs with breaks, some FAT32 entries with reserved high bits set.
    c = 2
    while c < top - 1:
        n = rnd.randrange(1, 900)
        for k in range(c, min(c + n, top - 1)):
            v.set_fat(k, k + 1)
        c = min(c + n, top - 1)
        v.set_fat(c, rnd.choice([0, 0xFFFF, c + 5, 3]) & (0xFFF if kind == "fat12" else
                                                        0xFFFFFFF))
        c += 1
    if kind == "fat32":
        for k in rnd.sample(range(2, top), 50):
            off = v.fat_entry_offset(k)
            v.data[off + 3] |= 0xA0
    fat = FatTable(v.device(), geo)
    values = ref.table_decode(bytes(v.data[geo.fat_offset:geo.fat_offset + geo.fat_bytes]),
                          geo.fat_type, top).tolist()
    for _ in range(300):
        cluster = rnd.randrange(2, top - 1)
        stop = rnd.randrange(cluster + 1, min(top, cluster + 5000) + 1)
        assert fat.run_end(cluster, stop) == _naive_run_end(values, cluster, stop)
        assert fat.get(cluster) == values[cluster]


def _cross_links(data):
    """The cross-links of the lenient walk of ``data`` by the library and by the numpy
    reference, and whether the strict walk fails (with what)."""
    img = FatImage(MemoryDevice(data=data), strict=False)
    runs = img.walk.runs
    try:
        FatImage(MemoryDevice(data=data))
        strict = None
    except CorruptImage as e:
        strict = (str(e), e.offset)
    return runs.cross_links(MAX_PROBLEMS), walk_ref.cross_links(runs, MAX_PROBLEMS), strict


@pytest.mark.parametrize("kind", ["fat12", "fat16", "fat32"])
def test_cross_links_same_findings_as_numpy(kind):
    v = Volume(kind)
    a, b = v.clusters("a.txt"), v.clusters("b.txt")
    cases = []
    v.set_start("c.txt", b[0])                       # c shares b's chain
    cases.append(bytes(v.data))
    v = Volume(kind)
    v.set_fat(a[1], b[0])                            # a runs into b
    cases.append(bytes(v.data))
    v = Volume(kind)
    v.set_fat(a[-1], a[0])                           # a loops into itself
    cases.append(bytes(v.data))
    v = Volume(kind)
    v.set_start("sub/d.txt", a[1])                   # d starts inside a
    v.set_start("b.txt", a[0])
    cases.append(bytes(v.data))
    for data in cases:
        pure, with_numpy, strict = _cross_links(data)
        assert pure == with_numpy
        assert strict is not None


def test_many_cross_links_are_capped_alike():
    v = Volume("fat16")
    base = v.clean
    # Every file is a's chain (start and size): many pairs share clusters.
    a = v.clusters("a.txt")
    for rel in FILES:
        if rel != "a.txt":
            v.set_start(rel, a[0])
            v.set_size(rel, base.stat("a.txt").size)
    pure, with_numpy, _strict = _cross_links(bytes(v.data))
    assert pure == with_numpy
    assert len(pure) == len(FILES) - 1              # each later file crosses a's chain
    assert base.problems == []


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(2, 300), st.integers(1, 40), st.integers(0, 5)),
                max_size=60),
       st.integers(1, 8))
def test_cross_links_equal_numpy_on_any_runs(runs, limit):
    got = Runs()
    for first, count, owner in runs:
        got.add([(first, count)], f"file{owner}")
    assert got.cross_links(limit) == walk_ref.cross_links(got, limit)


def test_reading_a_fat_image_imports_neither_numpy_nor_metadata(tmp_path):
    img = tmp_path / "v.img"
    img.write_bytes(bytes(Volume("fat16").data))
    code = (
        "import sys, blockimg\n"
        f"with blockimg.open({str(img)!r}) as im:\n"
        "    assert im.read('a.txt') == b'a' * 1500\n"
        "    im.info()\n"
        "    list(im)\n"
        "bad = [m for m in ('numpy', 'importlib.metadata') if m in sys.modules]\n"
        "assert not bad, bad\n")
    env = dict(os.environ, PYTHONPATH=REPO)
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_free_clusters_match_numpy_count():
    np = pytest.importorskip("numpy")
    for kind in ("fat12", "fat16", "fat32"):
        img = Volume(kind).open()
        free = 0
        for first, arr in img.fat.windows():
            a = np.asarray(arr)
            free += int(np.count_nonzero(a[max(0, 2 - first):] == 0))
        assert img.free_clusters() == free


def _chain_outcome(fat, start, limit):
    try:
        return ("ok", fat.chain(start, limit))
    except chains.ChainError as e:
        return ("error", e.rule, e.cluster, e.runs)


@pytest.mark.parametrize("kind", ["fat16", "fat32"])
def test_inline_short_runs_follow_chains_like_run_end(kind, monkeypatch):
    """Short runs are stepped inline in ``_chain``; long ones go to ``run_end``:
    the same runs and the same errors whatever the split."""
    monkeypatch.setattr(chains, "WINDOW_BYTES", 512)        # FAT32: 128 entries a window
    v = Volume(kind)
    geo = v.geo
    top = geo.cluster_count + 2
    rnd = random.Random(11)
    eoc = 0xFFFF if kind == "fat16" else 0x0FFFFFFF
    for c in range(2, top):
        r = rnd.random()
        if r < 0.80:
            v.set_fat(c, c + 1 if c + 1 < top else eoc)
        elif r < 0.90:
            v.set_fat(c, rnd.randrange(2, top))
        elif r < 0.95:
            v.set_fat(c, eoc)
        elif r < 0.97:
            v.set_fat(c, 0)
        elif r < 0.98:
            v.set_fat(c, eoc - 1)                               # bad cluster
        else:
            v.set_fat(c, top + 5)                               # out of range
    starts = [rnd.randrange(2, top) for _ in range(150)]
    limits = [rnd.choice([1, 3, 17, 200, top]) for _ in starts]
    outcomes = {}
    for short in (0, 1, 16, 1000):
        monkeypatch.setattr(chains, "SHORT_RUN", short)
        fat = FatTable(v.device(), geo)
        outcomes[short] = [_chain_outcome(fat, s, n) for s, n in zip(starts, limits)]
    assert outcomes[1] == outcomes[0] and outcomes[16] == outcomes[0]
    assert outcomes[1000] == outcomes[0]
    assert any(o[0] == "ok" for o in outcomes[0]) and any(o[0] == "error" for o in outcomes[0])
