"""The command line when something is off, where only root can set it up (issue 11):
create onto a character device (mknod), extracting onto a read-only tmpfs and into a
full one. The other cases are in tests/unit/test_cli_robust.py.
"""
from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

import blockimg
from conftest import require_root, require_tool, run
from helpers.cli_robust import (assert_create_leaves_node, cli, make_image, make_source,
                                one_error_line)


@pytest.fixture
def src(tmp_path) -> Path:
    return make_source(tmp_path / "src")


@pytest.fixture
def image(src, tmp_path) -> Path:
    return make_image(src, tmp_path / "site.tar")


# -- 3: create -o replaces only a regular file ---------------------------------------------
@pytest.mark.parametrize("via_link", [False, True], ids=["named", "through-a-symlink"])
def test_create_never_replaces_a_character_device(src, tmp_path, via_link):
    require_root("mknod of a character device")

    def mknod(path: Path) -> None:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))    # what /dev/null is
    assert_create_leaves_node(src, tmp_path, "character device", via_link, mknod)


# -- 6: system errors are one line ---------------------------------------------------------
@pytest.fixture
def read_only_dir(tmp_path):
    """A read-only tmpfs (as root); unmounted at the end."""
    require_root("mounts a read-only tmpfs")
    mnt = tmp_path / "ro"
    mnt.mkdir()
    run(require_tool("mount"), "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", mnt)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_extract_onto_a_read_only_file_system(image, read_only_dir, jobs):
    for dest in (read_only_dir / "new", read_only_dir):
        res = cli("extract", image, dest, "-j", jobs)
        assert res.returncode == 1
        line = one_error_line(res)
        assert line.startswith("blockimg: error: ") and "Read-only file system" in line, line
        assert str(read_only_dir) in line


# -- 8: out of space while extracting ---------------------------------------------------
@pytest.fixture
def small_fs(tmp_path):
    """A 1 MiB tmpfs (as root); unmounted at the end."""
    require_root("mounts a small tmpfs")
    mnt = tmp_path / "small"
    mnt.mkdir()
    run(require_tool("mount"), "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


@pytest.fixture
def big_tree(tmp_path) -> Path:
    """3 MiB in 3,000 files (more than 1 MiB, enough files for two processes)."""
    s = tmp_path / "big"
    for d in range(3):
        (s / f"d{d}").mkdir(parents=True)
        for i in range(1000):
            (s / f"d{d}" / f"f{i:04d}").write_bytes(bytes([i % 251]) * 1000 + b"%d" % i)
    (s / "d1" / "large.bin").write_bytes(b"L" * 600_000)
    return s


@pytest.mark.parametrize("fmt", ["tar", "fat"])
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_extract_stops_at_the_first_enospc(big_tree, small_fs, tmp_path, fmt, jobs):
    img = tmp_path / f"big.{fmt}"
    blockimg.create(big_tree, img, format=fmt, mtime=0,
                    **({"target": "generic"} if fmt == "fat" else {}))
    dest = small_fs / "out"
    res = cli("extract", img, dest, "-j", jobs)
    assert res.returncode == 1
    line = one_error_line(res)
    assert line.startswith(f"blockimg: error: {dest}/") and line.endswith(
        ": cannot write: No space left on device; extraction stopped"), line
    assert res.stdout == b""
    # No partial file: whatever is there is complete.
    files = [p for p in dest.rglob("*") if p.is_file()]
    assert files
    for p in files:
        assert p.read_bytes() == (big_tree / p.relative_to(dest)).read_bytes(), p
