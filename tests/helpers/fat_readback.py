"""FAT images written and read back: the writer's marker check and every reader's tree.

:func:`build_image` plans and writes a tree twice over storage pre-filled with two
marker bytes (only free clusters may differ); :func:`verify` wants ``fsck.fat -n``
clean and the source tree, byte for byte, from blockimg's reader (``check`` finding
nothing), ``mcopy -s`` and pyfatfs. Used by tests/interop/test_fat_writer.py, the
alias tests and the FAT property tests.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from blockimg.block import FileDevice, MemoryDevice
from blockimg.fat import Options, plan, write

from conftest import require_tool, run, tree_snapshot

MEMORY_LIMIT = 80 << 20     # larger images go to a sparse file (no marker check)


def build_image(tree, img: Path, **opts):
    """Plan and write ``tree`` to ``img``; checks the free-clusters-only marker rule."""
    p = plan(tree, Options(**opts))
    if p.image_size <= MEMORY_LIMIT:
        images = []
        for marker in (0xE5, 0xAA):
            dev = MemoryDevice(p.image_size, sector_size=p.sector_size, fill=marker)
            write(p, dev)
            images.append(dev.buffer)
        check_only_free_clusters_differ(p, *images)
        img.write_bytes(images[0])
    else:
        dev = FileDevice.create(str(img), p.image_size, sector_size=p.sector_size)
        try:
            write(p, dev)
        finally:
            dev.close()
    return p


def check_only_free_clusters_differ(p, a: bytearray, b: bytearray) -> None:
    g = p.geometry
    free_start = g.cluster_offset(p.used_end)
    free_end = g.cluster_offset(g.cluster_count + 2)
    assert a[:free_start] == b[:free_start], "a structural region was not written"
    assert a[free_end:] == b[free_end:]
    n = free_end - free_start
    assert a.count(b"\xe5", free_start, free_end) == n and \
        b.count(b"\xaa", free_start, free_end) == n, "a free cluster was written"


def fsck_clean(img: Path) -> None:
    """fsck.fat -n exits 0 and prints nothing but its banner and the summary line."""
    fsck = require_tool("fsck.fat")
    res = subprocess.run([fsck, "-n", str(img)], capture_output=True, text=True)
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stderr == "", res.stderr
    assert len(lines) == 2 and lines[0].startswith("fsck.fat "), res.stdout
    assert lines[1].startswith(f"{img}: ") and " files, " in lines[1], res.stdout


def mtools_env() -> dict:
    return dict(os.environ, MTOOLS_SKIP_CHECK="1", LC_ALL="C.UTF-8", TZ="UTC")


def mtools_tree(img: Path, dest: Path, *, empty: bool = False) -> dict:
    """The tree ``mcopy -s`` extracts (and ``mdir -/`` must list without error).

    ``mdir -/`` exits 1 on an empty volume (also one from mkfs.fat), so an
    empty one is listed with plain ``mdir``.
    """
    mcopy = require_tool("mcopy")
    mdir = require_tool("mdir")
    run(mdir, *([] if empty else ["-/"]), "-i", img, "::", env=mtools_env())
    dest.mkdir()
    run(mcopy, "-s", "-i", img, "::", str(dest) + "/", env=mtools_env())
    return tree_snapshot(dest)


def pyfatfs_tree(img: Path) -> dict:
    """The tree pyfatfs reads ({path: bytes or 'dir'})."""
    from pyfatfs.PyFatFS import PyFatFS
    fs = PyFatFS(str(img), read_only=True)
    try:
        out = {p.lstrip("/"): "dir" for p in fs.walk.dirs("/")}
        out.update({p.lstrip("/"): fs.readbytes(p) for p in fs.walk.files("/")})
    finally:
        fs.close()
    return out


def blockimg_tree(img: Path, dest: Path, *, mirage: bool) -> dict:
    """The tree blockimg's own reader extracts; ``check`` finds nothing (Mirage rules too)."""
    import blockimg
    from blockimg.fat import check
    with blockimg.open(str(img)) as image:
        assert check(image, target="mirage" if mirage else "generic") == []
        report = image.extract(str(dest))
        assert report.ok, report.refused
    return tree_snapshot(dest)


def assert_trees_equal(expected: dict, got: dict, who: str) -> None:
    assert sorted(got) == sorted(expected), (
        f"{who}: only in source {sorted(set(expected) - set(got))[:5]}, "
        f"only in {who} {sorted(set(got) - set(expected))[:5]}")
    for k, v in expected.items():
        assert got[k] == v, f"{who}: content of {k} differs"


def verify(img: Path, src: Path, tmp: Path, *, mtools: bool = True,
           mirage: bool = False) -> None:
    fsck_clean(img)
    expected = tree_snapshot(src)
    assert_trees_equal(expected, blockimg_tree(img, tmp / "blockimg-out", mirage=mirage),
                       "blockimg reader")
    if mtools:
        assert_trees_equal(expected, mtools_tree(img, tmp / "mcopy-out", empty=not expected),
                           "mtools")
    assert_trees_equal(expected, pyfatfs_tree(img), "pyfatfs")
