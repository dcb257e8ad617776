"""``update --compare``: when the bytes of a file whose size, mtime and mode agree with the
image are read (issue 14). ``auto`` (the default) trusts the mtime where it can tell and
reads the bytes where it cannot; ``always`` and ``never`` (``--quick``) do what they
say. Each side is shown with a same-size change: caught where the mode promises it,
missed (documented) where it trusts the mtime. Every updated image is read back by GNU
tar and bsdtar, or fsck.fat and mtools."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from blockimg.update import update
from conftest import assert_read_back, assert_same_tree, require_tool, run
from helpers.tar_update import T0, assert_exact, cli, make_site, settle_dirs, write

#: The image's last write, set by hand (after every source time below but the recent ones).
WRITTEN = T0 + 1000
SUFFIX = {"tar": "site.tar", "fat": "site.img"}


def _image(tmp_path: Path, src: Path, fmt: str, *extra) -> Path:
    image = tmp_path / SUFFIX[fmt]
    cli("create", src, "-o", image, "--format", fmt, "-q", *extra)
    os.utime(image, (WRITTEN, WRITTEN))
    return image


def _changed(image: Path, src: Path, *extra, env=None) -> list:
    """The paths ``diff`` lists as changed."""
    argv = ["diff", image, src, *extra]
    if env is None:
        out = cli(*argv).stdout
    else:
        import subprocess
        import sys
        out = subprocess.run([sys.executable, "-m", "blockimg", *map(str, argv)], env=env,
                             capture_output=True, text=True, check=True).stdout
    return [line[2:] for line in out.splitlines() if line.startswith("M ")]


def _read_back(fmt: str, image: Path, src: Path, out: Path) -> None:
    """GNU tar and bsdtar, or fsck.fat -n and mtools, read ``src`` back exactly."""
    assert_read_back(fmt, image, src, out)
    if fmt == "tar":
        bsd = out.with_name(out.name + "-bsdtar")
        bsd.mkdir()
        run(require_tool("bsdtar"), "-xf", image, "-C", bsd)
        assert_same_tree(src, bsd)


@pytest.fixture
def site(tmp_path) -> Path:
    return make_site(tmp_path / "src")


@pytest.mark.parametrize("fmt", ["tar", "fat"])
def test_same_size_same_mtime_change_by_mode(tmp_path, site, fmt):
    """The files' own mtimes, older than the image: auto and never trust them (as rsync's
    quick check does); always reads the bytes and catches the change."""
    image = _image(tmp_path, site, fmt)
    write(site, "blog/two.html", b"TWO" * 10)          # same size, same mtime
    settle_dirs(site)
    assert _changed(image, site) == []
    assert _changed(image, site, "--compare", "never") == []
    assert _changed(image, site, "--quick") == []
    assert _changed(image, site, "--compare", "always") == ["blog/two.html"]
    assert update(image, site).strategy == "none"
    assert update(image, site, compare="always").strategy != "none"
    _read_back(fmt, image, site, tmp_path / "out")


@pytest.mark.parametrize("fmt", ["tar", "fat"])
def test_auto_reads_every_file_when_mtimes_are_fixed(tmp_path, site, fmt):
    """--mtime / SOURCE_DATE_EPOCH give every file one time: the mtime cannot tell, so
    auto compares the bytes of every file of equal size (never does not)."""
    fixed = "2020-01-01T00:00:00Z"                # before the image was written
    image = _image(tmp_path, site, fmt, "--mtime", fixed)
    write(site, "blog/two.html", b"TWO" * 10, T0 + 7)
    settle_dirs(site)
    assert _changed(image, site, "--mtime", fixed) == ["blog/two.html"]
    env = dict(os.environ, SOURCE_DATE_EPOCH="1577836800")     # the same instant
    assert _changed(image, site, env=env) == ["blog/two.html"]
    assert _changed(image, site, "--mtime", fixed, "--compare", "never") == []
    cli("update", image, site, "--mtime", fixed, "-q")
    assert _changed(image, site, "--mtime", fixed, "--compare", "always") == []
    _read_back(fmt, image, site, tmp_path / "out")


@pytest.mark.parametrize("fmt", ["tar", "fat"])
def test_auto_reads_files_changed_near_the_images_last_write(tmp_path, site, fmt):
    """An edit within 2 s of the image's last write can keep the mtime the image holds
    (same clock step): auto reads those files, and trusts the older ones."""
    image = _image(tmp_path, site, fmt)
    write(site, "blog/two.html", b"TWO" * 10, WRITTEN - 2)
    write(site, "index.html", b"<h1>HI</h1>\n", WRITTEN - 2)
    settle_dirs(site)
    cli("update", image, site, "--compare", "always", "-q")     # the image holds them now
    os.utime(image, (WRITTEN, WRITTEN))
    write(site, "blog/two.html", b"tWo" * 10, WRITTEN - 2)      # same step, same size
    write(site, "blog/one.html", b"ONE" * 1000)                 # T0: long before
    settle_dirs(site)
    assert _changed(image, site) == ["blog/two.html"]
    os.utime(image, (WRITTEN + 3, WRITTEN + 3))                 # a write 3 s later
    assert _changed(image, site) == []
    os.utime(image, (WRITTEN, WRITTEN))
    update(image, site)
    assert _changed(image, site, "--compare", "always") == ["blog/one.html"]
    update(image, site, compare="always")
    _read_back(fmt, image, site, tmp_path / "out")


@pytest.mark.parametrize("fmt", ["tar", "fat"])
def test_auto_reads_a_directory_changed_since_the_last_write(tmp_path, site, fmt):
    """A file renamed over another of the same size and mtime changes only its
    directory's mtime: auto reads the files of a directory newer than the image."""
    write(site, "blog/three.html", b"333" * 10)      # blog/two.html's size and mtime
    settle_dirs(site)
    image = _image(tmp_path, site, fmt)
    (site / "blog/three.html").replace(site / "blog/two.html")
    os.utime(site / "blog", (WRITTEN + 60, WRITTEN + 60))   # what the rename did to it
    assert _changed(image, site) == ["blog/two.html"]
    assert _changed(image, site, "--quick") == []
    update(image, site)
    assert _changed(image, site, "--compare", "always") == []
    _read_back(fmt, image, site, tmp_path / "out")


def test_auto_reads_fat_times_outside_what_fat_keeps(tmp_path, site):
    """FAT clamps times before 1980 to 1980-01-01: such files all look alike there, so
    auto reads their bytes; tar keeps the time and trusts it."""
    old = 100_000_000                                  # 1973
    write(site, "blog/two.html", b"two" * 10, old)
    settle_dirs(site)
    fat, tar = _image(tmp_path, site, "fat"), _image(tmp_path, site, "tar")
    write(site, "blog/two.html", b"TWO" * 10, old + 3600)   # FAT still says 1980-01-01
    settle_dirs(site)
    assert _changed(fat, site) == ["blog/two.html"]
    assert _changed(tar, site) == ["blog/two.html"]          # (tar: the mtime differs)
    write(site, "blog/two.html", b"tWo" * 10, old)
    settle_dirs(site)
    assert _changed(tar, site) == []                         # same size and kept mtime
    cli("update", fat, site, "-q")
    assert _changed(fat, site, "--compare", "always") == []
    assert_read_back("fat", fat, site, tmp_path / "out")


def test_auto_distrusts_the_time_of_a_tar_image_an_append_was_cut_in(tmp_path, site):
    """An append cut before its switch leaves the old tree but a new file time: auto then
    measures against the newest time the image holds (T0 here) instead."""
    image = _image(tmp_path, site, "tar")
    write(site, "blog/two.html", b"TWO" * 10)                # same size, same mtime (T0)
    settle_dirs(site)
    assert _changed(image, site) == []
    with open(image, "ab") as f:                             # grown by a cut append
        f.write(bytes(4096))
    os.utime(image, (WRITTEN, WRITTEN))
    assert _changed(image, site) == ["blog/two.html"]
    update(image, site)
    assert_exact(image, site, tmp_path)
