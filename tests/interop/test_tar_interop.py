"""tar images against GNU tar, bsdtar and Python's tarfile, both ways."""
from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import pytest

import blockimg
from blockimg.tar import check
from conftest import assert_same_tree, mirage_fixtures, require_tool, run, tree_snapshot

MTIME = 1700000000


def make_tree(root: Path) -> Path:
    """A tree with the awkward cases: long and non-ASCII names, sizes around blocks."""
    root.mkdir()
    (root / "index.html").write_bytes(b"<h1>hi</h1>\n")
    (root / "empty.txt").write_bytes(b"")
    (root / "empty-dir").mkdir()
    (root / "ünïcödé name.txt").write_bytes("ü".encode() * 3)
    for n in (1, 511, 512, 513, 4096):
        (root / f"size-{n}.bin").write_bytes(bytes([n % 251]) * n)
    big = root / "assets" / "big.bin"
    big.parent.mkdir()
    big.write_bytes(os.urandom(300_000))          # beyond Copier.SMALL_FILE: kernel copy
    run_ = root / "assets" / "run.sh"
    run_.write_bytes(b"#!/bin/sh\necho ok\n")
    run_.chmod(0o755)
    (root / ("n" * 100)).write_bytes(b"100")
    (root / ("m" * 101)).write_bytes(b"101")
    deep = root / ("d" * 120) / ("e" * 120)
    deep.mkdir(parents=True)
    (deep / "split-into-prefix.txt").write_bytes(b"prefix")
    longest = root / ("p" * 200) / ("q" * 200)
    longest.mkdir(parents=True)
    (longest / ("r" * 99)).write_bytes(b"pax path of 501 bytes")
    nest = root
    for i in range(12):
        nest = nest / f"level{i}"
    nest.mkdir(parents=True)
    (nest / "bottom").write_bytes(b"bottom")
    return root


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    return make_tree(tmp_path_factory.mktemp("tar-interop") / "src")


def expected_names(root: Path) -> list:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for d in dirnames:
            out.append(os.path.normpath(os.path.join(rel, d)) + "/")
        for f in filenames:
            out.append(os.path.normpath(os.path.join(rel, f)))
    return sorted(out)


def listed(tool: str, image: Path) -> list:
    res = run(tool, "-tf", image)
    return sorted(n for n in os.fsdecode(res.stdout).splitlines() if n != "./")


def tarfile_names(image: Path) -> list:
    with tarfile.open(image) as t:
        return sorted(m.name + ("/" if m.isdir() else "") for m in t.getmembers()
                      if m.name not in (".", "./"))


def extract_with(tool: str, image: Path, dest: Path) -> None:
    dest.mkdir()
    run(tool, "-xf", image, "-C", dest)


CONFIGS = [dict(), dict(align=4096), dict(target="generic", sector_size=4096, align=512),
           dict(sector_size=4096, align=65536)]


@pytest.mark.parametrize("opts", CONFIGS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items())
                         or "default")
def test_gnu_tar_bsdtar_and_tarfile_read_our_images(src, tmp_path, opts):
    gtar, bsdtar = require_tool("tar"), require_tool("bsdtar")
    image = tmp_path / "site.img"
    summary = blockimg.create(src, image, format="tar", mtime=MTIME, **opts)
    size = image.stat().st_size
    assert size == summary.image_size
    assert size % max(4096 if opts.get("target", "mirage") == "mirage" else 512,
                      opts.get("sector_size", 512)) == 0
    names = expected_names(src)
    assert listed(gtar, image) == names
    assert listed(bsdtar, image) == names
    assert tarfile_names(image) == names
    for tool in (gtar, bsdtar):
        dest = tmp_path / Path(tool).name
        extract_with(tool, image, dest)
        assert_same_tree(src, dest)
    with tarfile.open(image) as t:
        dest = tmp_path / "tarfile"
        if hasattr(tarfile, "data_filter"):
            t.extractall(dest, filter="data")
        else:  # pragma: no cover - Python < 3.11.4
            t.extractall(dest)
    assert_same_tree(src, dest)
    with blockimg.open(image) as img:
        dest = tmp_path / "blockimg"
        assert img.extract(dest).ok
        assert_same_tree(src, dest)
        if opts.get("align"):
            assert img.info()["data_alignment"] >= opts["align"]
        if opts.get("target", "mirage") == "mirage":
            assert check(img, target="mirage") == []
    # modes and mtimes survive GNU tar extraction
    st = (tmp_path / "tar" / "assets" / "run.sh").stat()
    assert st.st_mode & 0o777 == 0o755 and int(st.st_mtime) == MTIME


def test_gnu_tar_verbose_listing_shows_fixed_owner(src, tmp_path):
    gtar = require_tool("tar")
    image = tmp_path / "i.img"
    blockimg.create(src, image, mtime=MTIME)
    out = run(gtar, "--numeric-owner", "-tvf", image).stdout.decode()
    owners = {line.split()[1] for line in out.splitlines()}
    assert owners == {"0/0"}


def test_links_kept_are_links_for_gnu_tar_and_bsdtar(tmp_path):
    gtar, bsdtar = require_tool("tar"), require_tool("bsdtar")
    src = tmp_path / "src"
    (src / "dir").mkdir(parents=True)
    (src / "dir" / "file.txt").write_bytes(b"content")
    os.link(src / "dir" / "file.txt", src / "hard.txt")
    os.symlink("dir/file.txt", src / "sym")
    os.symlink("l" * 150, src / "long-dangling")
    image = tmp_path / "links.img"
    blockimg.create(src, image, keep_links=True, target="generic", mtime=MTIME)
    for tool in (gtar, bsdtar):
        dest = tmp_path / Path(tool).name
        extract_with(tool, image, dest)
        assert_same_tree(src, dest)
        assert os.path.islink(dest / "sym")
        assert os.stat(dest / "hard.txt").st_ino == os.stat(dest / "dir" / "file.txt").st_ino
    # without keep_links every path is a full copy and the symlink is followed
    os.unlink(src / "long-dangling")
    plain = tmp_path / "plain.img"
    blockimg.create(src, plain, mtime=MTIME)
    dest = tmp_path / "plain"
    extract_with(gtar, plain, dest)
    assert not os.path.islink(dest / "sym")
    assert (dest / "sym").read_bytes() == (dest / "hard.txt").read_bytes() == b"content"


# -- our reader on archives the other tools made ------------------------------------------
def short_tree(root: Path) -> Path:
    root.mkdir()
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "c.txt").write_bytes(b"c" * 1000)
    (root / "a" / "empty").write_bytes(b"")
    (root / "top.bin").write_bytes(os.urandom(70_000))
    (root / "emptydir").mkdir()
    return root


@pytest.mark.parametrize("fmt", ["gnu", "ustar", "posix", "v7", "bsdtar", "bsdtar-gnutar"])
def test_reader_reads_other_tools_archives(tmp_path, fmt):
    src = short_tree(tmp_path / "src")
    if fmt in ("gnu", "posix"):
        deep = src / ("x" * 150) / ("y" * 150)
        deep.mkdir(parents=True)
        (deep / "long-name.txt").write_bytes(b"long")
        (src / "ünï.txt").write_bytes(b"u")
    if fmt == "ustar":
        (src / ("s" * 60) / ("t" * 60)).mkdir(parents=True)
        (src / ("s" * 60) / ("t" * 60) / "split.txt").write_bytes(b"split")
    image = tmp_path / "other.tar"
    if fmt.startswith("bsdtar"):
        tool = require_tool("bsdtar")
        extra = ["--format", "gnutar"] if fmt == "bsdtar-gnutar" else []
        run(tool, *extra, "-cf", image, "-C", src, ".")
    else:
        run(require_tool("tar"), f"--format={fmt}", "-cf", image, "-C", src, ".")
    size = image.stat().st_size
    assert size % 512 == 0
    with blockimg.open(image) as img:
        dest = tmp_path / "out"
        report = img.extract(dest)
        assert report.ok, report.refused
        assert_same_tree(src, dest)
        listing = sorted(e.path + ("/" if e.kind == "dir" else "") for e in img.list())
        assert listing == expected_names(src)
        assert img.end_of_archive is not None
        assert check(img) == []
        expected_flavour = {"gnu": "gnu", "ustar": "ustar", "posix": "pax", "v7": "v7",
                            "bsdtar": "ustar", "bsdtar-gnutar": "gnu"}[fmt]
        assert expected_flavour in img.flavours


def test_reader_reads_gnu_base256_mtime(tmp_path):
    gtar = require_tool("tar")
    src = tmp_path / "src"
    src.mkdir()
    old = src / "old.txt"
    old.write_bytes(b"from 1901")
    os.utime(old, (-2_000_000_000, -2_000_000_000))
    image = tmp_path / "old.tar"
    run(gtar, "--format=gnu", "-cf", image, "-C", src, "old.txt")
    with blockimg.open(image) as img:
        assert img.stat("old.txt").mtime == -2_000_000_000
        assert img.read("old.txt") == b"from 1901"
        assert any("base-256" in p for p in check(img, target="mirage"))
        assert not any("base-256" in p for p in check(img))


def test_mirage_target_refuses_what_gnu_tar_would_write_in_base256(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    old = src / "old.txt"
    old.write_bytes(b"x")
    os.utime(old, (-1, -1))
    with pytest.raises(blockimg.InvalidInput) as exc:
        blockimg.create(src, tmp_path / "i.img")
    assert "old.txt" in str(exc.value) and "octal" in str(exc.value)
    blockimg.create(src, tmp_path / "g.img", target="generic")
    gtar = require_tool("tar")
    out = run(gtar, "--full-time", "-tvf", tmp_path / "g.img",
              env=dict(os.environ, TZ="UTC")).stdout.decode()
    assert "1969-12-31 23:59:59 old.txt" in out          # carried by a pax mtime record


# -- the Mirage fixtures ----------------------------------------------------------------------
FIXTURE_FACTS = {
    "long.tar": lambda img: (
        [e.kind for e in img.members] == ["dir", "dir", "file"]
        and img.members[2].size == 7 and img.members[2].name.endswith(".txt")
        and 600 < len(img.members[2].name) < 700
        and all(len(m.name) > 100 for m in img.members)),
    "long-pax.tar": lambda img: (
        [e.kind for e in img.members] == ["dir", "file", "symlink"]
        and img.members[0].name == "t/" and img.members[1].size == 0
        and 240 <= len(img.members[1].name) <= 260
        and img.members[2].linkname == img.members[1].name.split("/", 1)[1]
        and len(img.members[2].name) > 100),
    "pax-shenanigans.tar": lambda img: (
        [e.kind for e in img.members] == ["dir"]
        and img.stat("clearly/a/directory").kind == "dir"),
    "long-implicit-dir.tar": lambda img: (
        [e.kind for e in img.members] == ["dir"]
        and img.stat("some/long/name/for/a/directory").kind == "dir"),
}


@pytest.mark.parametrize("name", sorted(FIXTURE_FACTS))
def test_mirage_fixture_names_are_what_gnu_tar_lists(name):
    path = mirage_fixtures() / "tar" / name
    gtar = require_tool("tar")
    expected = os.fsdecode(run(gtar, "-tf", path).stdout).splitlines()
    with blockimg.open(path) as img:
        assert [m.name for m in img.members] == expected
        assert FIXTURE_FACTS[name](img)
        for e in img.list():
            if e.kind == "file":
                assert len(img.read(e.path)) == e.size


def test_mirage_fixture_long_tar_content(tmp_path):
    path = mirage_fixtures() / "tar" / "long.tar"
    with blockimg.open(path) as img:
        f = [e for e in img.list() if e.kind == "file"][0]
        gtar = require_tool("tar")
        content = subprocess.run([gtar, "-xOf", str(path)], capture_output=True,
                                 check=True).stdout
        assert img.read(f.path) == content and len(content) == 7


def test_tree_snapshot_sees_a_difference(tmp_path):
    """The comparison the interop tests rely on does fail on a changed byte."""
    a = short_tree(tmp_path / "a")
    b = short_tree(tmp_path / "b")
    (b / "a" / "b" / "c.txt").write_bytes(b"c" * 999 + b"d")
    assert tree_snapshot(a) != tree_snapshot(b)
    with pytest.raises(AssertionError):
        assert_same_tree(a, b)


def test_generic_target_stores_names_that_are_not_utf8(tmp_path):
    """Raw bytes in ustar fields; in pax records with hdrcharset=BINARY (bsdtar needs it)."""
    gtar, bsdtar = require_tool("tar"), require_tool("bsdtar")
    src = tmp_path / "src"
    src.mkdir()
    raw = os.fsencode(src)
    with open(os.path.join(raw, b"caf\xe9.txt"), "wb") as f:
        f.write(b"latin-1 name")
    deep = os.path.join(raw, b"\xe9" * 120)
    os.mkdir(deep)
    with open(os.path.join(deep, b"\xff" * 50), "wb") as f:
        f.write(b"needs a pax path")
    with pytest.raises(blockimg.InvalidInput, match="UTF-8"):
        blockimg.create(src, tmp_path / "m.img")
    image = tmp_path / "g.img"
    blockimg.create(src, image, target="generic")
    for tool in (gtar, bsdtar):
        dest = tmp_path / Path(tool).name
        extract_with(tool, image, dest)
        assert_same_tree(src, dest)
    with blockimg.open(image) as img:
        dest = tmp_path / "ours"
        assert img.extract(dest).ok
        assert_same_tree(src, dest)
