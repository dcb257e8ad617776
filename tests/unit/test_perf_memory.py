"""Builds import only what they need and keep memory bounded (no timing asserted here)."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from blockimg.block.file import FileDevice
from blockimg.fat import Options as FatOptions
from blockimg.fat import plan as fat_plan
from blockimg.fat import write as fat_write
from blockimg.sources.directory import Kind, SourceEntry, SourceTree
from blockimg.tar import Options as TarOptions
from blockimg.tar import plan as tar_plan

ROOT = Path(__file__).resolve().parents[2]

_PROBE = r"""
import sys
from blockimg.cli import main
rc = main(sys.argv[1:])
heavy = sorted(m for m in ("numpy", "construct", "importlib.metadata", "json", "datetime",
                           "blockimg.trust.manifest", "blockimg.read.image", "blockimg.fat.reader",
                           "blockimg.tar.reader", "crcmod")
               if m in sys.modules)
print(repr({"rc": rc, "loaded": heavy}))
"""


@pytest.fixture
def site(tmp_path):
    src = tmp_path / "site"
    (src / "css").mkdir(parents=True)
    (src / "index.html").write_bytes(b"<html>" * 300)
    (src / "css" / "a-long-style-sheet-name.css").write_bytes(b"body{}" * 2000)
    return src


@pytest.mark.parametrize("args", [["--format", "tar"], ["--format", "fat"],
                                  ["--format", "fat", "--target", "generic", "--size", "1G"]])
def test_a_build_imports_neither_numpy_nor_construct(site, tmp_path, args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", _PROBE, "create", str(site), "-o",
                          str(tmp_path / "x.img"), "-q"] + args,
                         capture_output=True, env=env, check=True)
    res = ast.literal_eval(out.stdout.decode().strip().splitlines()[-1])
    assert res["rc"] == 0
    assert res["loaded"] == [], res["loaded"]


def _tree(n):
    entries = [SourceEntry(f"d{i // 500:02d}", Kind.DIR, mtime=1_700_000_000)
               for i in range(0, n, 500)]
    entries += [SourceEntry(f"d{i // 500:02d}/file-{i:06d}.dat", Kind.FILE, 4096 + i,
                            1_700_000_000, 0o644, source="/nonexistent") for i in range(n)]
    entries.sort(key=lambda e: e.path)
    return SourceTree(tuple(entries))


def _traced_peak(fn):
    tracemalloc.start()
    try:
        kept = fn()
        return kept, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_plans_stay_small_per_file():
    tree = _tree(5000)
    _, tar_peak = _traced_peak(lambda: tar_plan(tree, TarOptions()))
    _, fat_peak = _traced_peak(lambda: fat_plan(tree, FatOptions()))
    # Generous bounds (currently about a third of them): a plan must not keep per-file
    # header or directory bytes it does not need.
    assert tar_peak < 5000 * 400, tar_peak
    assert fat_peak < 5000 * 1200, fat_peak


@pytest.mark.parametrize("size", [64 << 20, 32 << 30])
def test_fat_tables_of_any_volume_are_written_in_bounded_memory(tmp_path, size):
    tree = SourceTree((SourceEntry("a.bin", Kind.FILE, 10, 0, 0o644, data=b"0123456789"),))
    p = fat_plan(tree, FatOptions(target="generic", size=size))
    path = tmp_path / "v.img"
    dev = FileDevice.create(str(path), p.image_size)
    try:
        _, peak = _traced_peak(lambda: fat_write(p, dev))
    finally:
        dev.close()
    assert p.geometry.fat_bytes * p.geometry.num_fats > 0
    assert peak < 3 << 20, (size, peak, p.geometry.fat_bytes)
    with open(path, "rb") as f:
        f.seek(p.geometry.fat_offset(0))
        assert f.read(8)[:1] == b"\xf8"
