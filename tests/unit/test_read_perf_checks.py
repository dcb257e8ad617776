"""``blockimg check`` on FAT without numpy: the same findings as the numpy formulation.

The lost-cluster scan and the FAT-copy comparison work on ``array`` windows
and bytes; the numpy versions they replaced are kept here as the reference.
"""
from __future__ import annotations

import random

import pytest

from helpers.fat_volume import Volume

from blockimg.fat import checks
from blockimg.fat.reader import FatImage
from blockimg.fat.table import table_bytes

np = pytest.importorskip("numpy")


def _lost_numpy(img):
    runs = img.walk.runs
    starts = np.array(runs.start, dtype=np.int64)
    ends = starts + np.array(runs.length, dtype=np.int64)
    lost = 0
    first = None
    for base, window in img.fat.windows():
        arr = np.asarray(window)
        n = len(arr)
        used = (arr != 0) & (arr != img.fat.bad)
        used[:max(0, 2 - base)] = False
        sel = (starts < base + n) & (ends > base)
        diff = np.zeros(n + 1, np.int32)
        np.add.at(diff, np.clip(starts[sel] - base, 0, n), 1)
        np.add.at(diff, np.clip(ends[sel] - base, 0, n), -1)
        ref = np.cumsum(diff[:-1], dtype=np.int32) > 0
        miss = np.flatnonzero(used & ~ref)
        if miss.size:
            lost += int(miss.size)
            if first is None:
                first = base + int(miss[0])
    return lost, first


def _copies_numpy(img):
    geo = img.geometry
    n = table_bytes(geo.fat_type, geo.cluster_count + 2)
    out = []
    for k in range(1, geo.num_fats):
        pos = 0
        while pos < n:
            step = min(1 << 18, n - pos)
            a = np.frombuffer(bytes(img.device.pread(geo.fat_copy_offset(0) + pos, step)),
                              np.uint8)
            b = np.frombuffer(bytes(img.device.pread(geo.fat_copy_offset(k) + pos, step)),
                              np.uint8)
            d = np.flatnonzero(a != b)
            if d.size:
                out.append((pos + int(d[0]), int(d.size)))
                break
            pos += step
    return out


def _lost_message(lost, first, img):
    if not lost:
        return []
    return [f"{checks._at(img.fat.entry_offset(first))}: {lost} lost cluster(s): allocated "
            f"in the FAT but in no file or directory (first: cluster {first})"]


@pytest.mark.parametrize("kind", ["fat12", "fat16", "fat32"])
@pytest.mark.parametrize("seed", range(4))
def test_lost_clusters_and_fat_copies_as_with_numpy(kind, seed, monkeypatch):
    from blockimg.fat import chains
    monkeypatch.setattr(chains, "WINDOW_BYTES", 1024)      # FAT32: many windows
    v = Volume(kind)
    geo = v.geo
    rnd = random.Random(seed)
    top = geo.cluster_count + 2
    used = {c for rel in ("a.txt", "b.txt", "c.txt", "sub/d.txt") for c in v.clusters(rel)}
    free = [c for c in range(2, top) if c not in used]
    for c in rnd.sample(free, min(len(free), 5 + seed * 40)):
        v.set_fat(c, rnd.choice([c + 1 if c + 1 < top else 2, 0xFFFF & v_mask(kind),
                                 bad_mark(kind), rnd.randrange(2, top)]))
    if seed % 2:
        v.set_fat(v.clusters("b.txt")[0], 0)                  # a chain into a free cluster
    for c in rnd.sample(range(2, top), 3):                    # FAT 2 differs
        v.set_fat(c, rnd.randrange(2, top), copies=[1])
    img = FatImage(v.device(), strict=False)
    lost, first = _lost_numpy(img)
    assert lost > 0
    assert checks._lost(img) == _lost_message(lost, first, img)
    got = checks._fat_copies(img)
    want = _copies_numpy(img)
    assert len(got) == len(want) == 1
    for line, (off, count) in zip(got, want):
        assert checks._at(geo.fat_copy_offset(1) + off) in line
        assert f"; {count} bytes in this 256 KiB)" in line


def v_mask(kind):
    return {"fat12": 0xFFF, "fat16": 0xFFFF, "fat32": 0x0FFFFFFF}[kind]


def bad_mark(kind):
    return {"fat12": 0xFF7, "fat16": 0xFFF7, "fat32": 0x0FFFFFF7}[kind]


def test_difference_helpers():
    rnd = random.Random(1)
    for _ in range(200):
        n = rnd.randrange(1, 5000)
        a = bytes(rnd.getrandbits(8) for _ in range(n))
        b = bytearray(a)
        idx = sorted(rnd.sample(range(n), rnd.randrange(1, min(n, 20) + 1)))
        for i in idx:
            b[i] ^= rnd.randrange(1, 256)
        assert checks._first_difference(a, bytes(b)) == idx[0]
        assert checks._differing_bytes(a, bytes(b)) == len(idx)


def test_check_imports_no_numpy(tmp_path):
    import os
    import subprocess
    import sys
    from conftest import ROOT
    img = tmp_path / "v.img"
    img.write_bytes(bytes(Volume("fat32").data))
    code = ("import sys\n"
            "from blockimg.cli import main\n"
            f"assert main(['check', {str(img)!r}]) == 0\n"
            "assert 'numpy' not in sys.modules\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("kind", ["fat12", "fat16", "fat32"])
def test_generic_check_of_a_strict_image_needs_no_second_walk(kind, monkeypatch):
    """A strict image that opened has what a lenient walk would find: the same findings."""
    from blockimg.block.memory import MemoryDevice
    from blockimg.fat.checks import check
    v = Volume(kind)
    rnd = random.Random(3)
    top = v.geo.cluster_count + 2
    for c in rnd.sample(range(2, top), 20):                  # lost clusters, FAT copies differ
        v.set_fat(c, 0x0FF7 if rnd.random() < 0.2 else rnd.randrange(2, top), copies=[0])
    data = bytes(v.data)
    try:
        strict = FatImage(MemoryDevice(data=data))
    except Exception:
        pytest.skip("this corruption breaks a chain")
    lenient = FatImage(MemoryDevice(data=data), strict=False)
    want = check(lenient)
    assert any("lost cluster" in w for w in want) and any("differs from" in w for w in want)
    walks = []
    monkeypatch.setattr(checks, "FatImage", lambda *a, **k: walks.append(1) or FatImage(*a, **k))
    assert check(strict) == want and walks == []
    strict.warnings.append("mirage: some advice")
    assert check(strict) == want
    assert check(strict, target="mirage") == check(lenient, target="mirage")
