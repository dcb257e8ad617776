"""extract never writes outside the destination, never through a link, never over
existing files unless asked; everything refused is reported (API and CLI)."""
from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

import blockimg
from blockimg.read.extract import unsafe_host_name
from conftest import ROOT
from helpers.hostile_tars import hostile_member, make_tar, snapshot

HOSTILE = ROOT / "fixtures" / "hostile"


def assert_stays_inside(dest: Path) -> None:
    real = os.path.realpath(dest)
    for dirpath, dirs, files in os.walk(dest):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            assert os.path.realpath(p) == real or \
                os.path.realpath(p).startswith(real + os.sep), f"{p} leads outside"


def extract(tmp_path, image, **kw):
    dest = tmp_path / "dest"
    dest.mkdir(exist_ok=True)
    before = snapshot(tmp_path, dest)
    with blockimg.open(image) as img:
        report = img.extract(dest, **kw)
    assert snapshot(tmp_path, dest) == before, "something was written outside dest"
    assert_stays_inside(dest)
    return dest, report


def refused(report):
    return sorted(p for p, _why in report.refused)


def test_dotdot_and_absolute_names(tmp_path):
    outside = tmp_path.parent / f"{tmp_path.name}-evil-abs.txt"
    t = make_tar(tmp_path / "a.tar", [
        ("ok.txt", "file", b"ok"),
        ("../evil.txt", "file", b"evil"),
        ("a/../../evil2.txt", "file", b"evil"),
        (str(outside), "file", b"abs"),
    ])
    dest, report = extract(tmp_path, t)
    assert not outside.exists()
    assert (dest / "ok.txt").read_bytes() == b"ok"
    # absolute names are stored relative, as GNU tar does
    assert (dest / str(outside).lstrip("/")).read_bytes() == b"abs"
    assert refused(report) == ["../evil.txt", "a/../../evil2.txt"]


def test_symlinks_leading_out_are_refused(tmp_path):
    t = make_tar(tmp_path / "s.tar", [
        ("abs", "sym", "/etc"),
        ("up", "sym", "../.."),
        ("sub", "dir", None),
        ("sub/up", "sym", "../../x"),
        ("fine", "sym", "sub"),
        ("sub/fine", "sym", "../fine"),
    ])
    dest, report = extract(tmp_path, t)
    assert refused(report) == ["abs", "sub/up", "up"]
    assert os.readlink(dest / "fine") == "sub"
    assert os.readlink(dest / "sub" / "fine") == "../fine"


def test_symlink_escaping_through_another_symlink(tmp_path):
    """a -> . and b -> a/x/../..: inside by the letters, outside once a is a link."""
    t = make_tar(tmp_path / "c.tar", [
        ("x", "dir", None),
        ("a", "sym", "."),
        ("b", "sym", "a/x/../.."),
    ])
    dest, report = extract(tmp_path, t)
    assert refused(report) == ["b"]
    assert not os.path.lexists(dest / "b")
    assert os.readlink(dest / "a") == "."


@pytest.mark.parametrize("target", ["/tmp", "../elsewhere", "inner"])
def test_file_through_a_symlink_is_neutralised(tmp_path, target):
    """tar: a symlink followed by entries inside it is read as a directory (with a
    warning), so the file lands in dest/d/, never where the link points."""
    t = make_tar(tmp_path / "t.tar", [
        ("inner", "dir", None),
        ("d", "sym", target),
        ("d/evil.txt", "file", b"evil"),
    ])
    with blockimg.open(t) as img:
        assert any("'d' was a symlink" in w for w in img.warnings)
    dest, report = extract(tmp_path, t)
    assert report.ok
    assert not (dest / "d").is_symlink()
    assert (dest / "d" / "evil.txt").read_bytes() == b"evil"
    assert not (dest / "inner" / "evil.txt").exists()


def test_entry_below_an_image_symlink_is_refused(tmp_path):
    """Where a reader does keep the link (the fake format here), entries below it are
    refused by extract itself."""
    from blockimg.read.image import EntryInfo, Image
    from blockimg.block.memory import MemoryDevice

    class Linky(Image):
        format = "linky"

        def __init__(self):
            super().__init__(MemoryDevice(data=b"evil".ljust(512, b"\0")))
            self._index = {"d": EntryInfo("d", "symlink", link_target="/tmp"),
                           "d/evil.txt": EntryInfo("d/evil.txt", "file", 4,
                                                   extents=((0, 4),))}
    dest = tmp_path / "dest"
    report = Linky().extract(dest)
    assert refused(report) == ["d", "d/evil.txt"]
    assert os.listdir(dest) == []


def test_hard_links(tmp_path):
    t = make_tar(tmp_path / "h.tar", [
        ("data.txt", "file", b"shared"),
        ("good", "hard", "data.txt"),
        ("bad", "hard", "../../etc/passwd"),
        ("gone", "hard", "not-in-image"),
        ("adir", "dir", None),
        ("todir", "hard", "adir"),
    ])
    dest, report = extract(tmp_path, t)
    assert (dest / "good").read_bytes() == b"shared"
    assert not (dest / "good").is_symlink()
    assert refused(report) == ["bad", "gone", "todir"]


def test_devices_and_fifos_are_not_made_and_setuid_is_dropped(tmp_path):
    t = make_tar(tmp_path / "d.tar", [
        ("fifo", "fifo", None),
        ("null", "chr", None),
        ("tool.suid", "file", b"#!/bin/sh\n"),
    ])
    dest, report = extract(tmp_path, t)
    assert refused(report) == ["fifo", "null"]
    assert not (dest / "fifo").exists()
    assert (dest / "tool.suid").stat().st_mode & 0o7777 == 0o755


def test_existing_files_are_kept_unless_overwrite(tmp_path):
    t = make_tar(tmp_path / "e.tar", [("hello.txt", "file", b"from image"),
                                      ("link.txt", "file", b"from image")])
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "hello.txt").write_bytes(b"mine")
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"victim")
    os.symlink(victim, dest / "link.txt")
    with blockimg.open(t) as img:
        report = img.extract(dest)
    assert sorted(report.existing) == ["hello.txt", "link.txt"]
    assert (dest / "hello.txt").read_bytes() == b"mine"
    assert not report.ok
    dest, report = extract(tmp_path, t, overwrite=True)
    assert report.ok
    assert (dest / "hello.txt").read_bytes() == b"from image"
    assert not (dest / "link.txt").is_symlink()  # replaced, not followed
    assert victim.read_bytes() == b"victim"


def test_existing_symlinked_directory_in_dest_is_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    os.symlink(outside, dest / "pre")
    t = make_tar(tmp_path / "p.tar", [("pre/file.txt", "file", b"x")])
    with blockimg.open(t) as img:
        report = img.extract(dest)
    assert refused(report) == ["pre/file.txt"]
    assert list(outside.iterdir()) == []


def _fixture(tmp_path, name):
    data = (HOSTILE / name).read_bytes()
    if name.endswith(".gz"):
        data = gzip.decompress(data)
        name = name[:-3]
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("name,refused_paths", [
    ("tar-dotdot-name.tar", ["../../evil.txt"]),
    ("tar-symlink-out-then-file.tar", []),  # d is read as a directory
    ("tar-hardlink-out.tar", ["h"]),
    ("fat-lfn-dotdot-name.img.gz", [".."]),
    ("fat-lfn-slash-dotdot-name.img.gz", ["../../evil.txt"]),
])
def test_hostile_fixtures(tmp_path, name, refused_paths):
    dest, report = extract(tmp_path, _fixture(tmp_path, name))
    assert refused(report) == refused_paths


def test_fat_image_with_dotdot_lfn_patched_in(tmp_path, site_dir):
    """A FAT image made by blockimg, then a long name patched to '..' in its directory."""
    img = tmp_path / "site.img"
    blockimg.create(site_dir, img, format="fat", target="generic", mtime=0)
    data = bytearray(img.read_bytes())
    needle = "robots.txt".encode("utf-16-le")[:10]  # the first 5 units of its LFN slot
    i = data.find(needle)
    assert i > 0
    slot = i - 1
    units = [ord("."), ord("."), 0] + [0xFFFF] * 10
    for j, u in enumerate(units):
        off = slot + ((1 + 2 * j) if j < 5 else (14 + 2 * (j - 5)) if j < 11 else
                      (28 + 2 * (j - 11)))
        data[off:off + 2] = u.to_bytes(2, "little")
    img.write_bytes(bytes(data))
    dest, report = extract(tmp_path, img)
    assert refused(report) == [".."]
    assert "robots.txt" not in report.written
    assert not (tmp_path / "robots.txt").exists()
    assert (dest / "index.html").is_file()


def test_cli_reports_refusals_and_fails(tmp_path):
    t = make_tar(tmp_path / "c.tar", [("ok.txt", "file", b"ok"), ("../evil.txt", "file", b"x")])
    res = subprocess.run([sys.executable, "-m", "blockimg", "extract", str(t),
                          str(tmp_path / "out")], capture_output=True, text=True, cwd=str(ROOT))
    assert res.returncode == 1
    assert "../evil.txt: refused" in res.stderr
    assert (tmp_path / "out" / "ok.txt").read_bytes() == b"ok"
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("path,host,bad", [
    ("a/b.txt", "posix", False), ("a/../b", "posix", True), ("", "posix", True),
    ("/etc/x", "posix", True), ("a\0b", "posix", True), ("CON", "posix", False),
    ("CON", "nt", True), ("dir/nul.txt", "nt", True), ("a:b", "nt", True),
    ("trailing.", "nt", True), ("back\\slash", "nt", True), ("fine.txt", "nt", False),
])
def test_names_special_on_the_host(path, host, bad):
    assert (unsafe_host_name(path, host=host) is not None) == bad


def test_existing_file_where_the_image_has_a_directory(tmp_path):
    t = make_tar(tmp_path / "d.tar", [("sub", "dir", None), ("sub/x", "file", b"x")])
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "sub").write_bytes(b"mine")
    with blockimg.open(t) as img:
        report = img.extract(dest)
    assert report.existing == ["sub"]
    assert refused(report) == ["sub/x"]
    assert (dest / "sub").read_bytes() == b"mine"
    dest, report = extract(tmp_path, t, overwrite=True)
    assert report.ok and (dest / "sub" / "x").read_bytes() == b"x"


def test_cli_overwrite(tmp_path):
    t = make_tar(tmp_path / "o.tar", [("a.txt", "file", b"new")])
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_bytes(b"old")
    cmd = [sys.executable, "-m", "blockimg", "extract", str(t), str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=str(ROOT))
    assert res.returncode == 1 and "exists, not overwritten" in res.stderr
    assert (out / "a.txt").read_bytes() == b"old"
    res = subprocess.run(cmd + ["--overwrite"], capture_output=True, text=True, cwd=str(ROOT))
    assert res.returncode == 0, res.stderr
    assert (out / "a.txt").read_bytes() == b"new"


@given(st.lists(hostile_member, min_size=1, max_size=12))
def test_random_hostile_archives_stay_inside(tmp_path_factory, members):
    """Random names, directories, symlinks and hard links built from '..', '.', '/'
    and a few names: extraction writes nothing outside and leaves no link out."""
    tmp = tmp_path_factory.mktemp("h")
    spec = [(n, k, t.encode() if k == "file" else t) for n, k, t in members if n.strip("/")]
    if not spec:
        return
    t = make_tar(tmp / "r.tar", spec)
    for overwrite in (False, True):
        extract(tmp, t, overwrite=overwrite)
