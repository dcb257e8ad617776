"""Extraction through directory file descriptors: the same outcomes as path-based
extraction (modes, times, existing files, links in dest never followed), with no
per-file path lookups and a bounded number of open directories."""
from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import blockimg
import blockimg.read.extract as extract_mod
from blockimg.block.memory import MemoryDevice
from blockimg.read.image import EntryInfo, Image

MTIME = 1_600_000_000


def make_tar(path: Path, members) -> Path:
    """members: (name, kind, data/target, mode); kind: file, dir, sym, hard."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, arg, mode in members:
            ti = tarfile.TarInfo(name)
            ti.mtime = MTIME
            ti.mode = mode
            if kind == "file":
                ti.size = len(arg)
                tf.addfile(ti, io.BytesIO(arg))
                continue
            ti.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE,
                       "hard": tarfile.LNKTYPE}[kind]
            if kind in ("sym", "hard"):
                ti.linkname = arg
            tf.addfile(ti)
    return path


def extract(image, dest, **kw):
    with blockimg.open(image) as img:
        return img.extract(dest, **kw)


def mode_of(p: Path) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def umask():
    """Set the process umask for one test, then restore it."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o077, 0o277])
def test_modes_and_times_are_the_images_whatever_the_umask(tmp_path, umask, mask):
    t = make_tar(tmp_path / "m.tar", [
        ("d", "dir", None, 0o750),
        ("d/rw.txt", "file", b"a", 0o644),
        ("d/private", "file", b"b", 0o600),
        ("d/tool", "file", b"c", 0o755),
        ("d/group", "file", b"d", 0o664),
        ("d/readonly", "file", b"e", 0o444),
        ("d/setuid", "file", b"f", 0o4755),
        ("d/hard", "hard", "d/tool", 0o700),
        ("open", "dir", None, 0o777),
    ])
    umask(mask)
    dest = tmp_path / "dest"
    report = extract(t, dest)
    assert report.ok
    got = {p: mode_of(dest / p) for p in ("d", "d/rw.txt", "d/private", "d/tool", "d/group",
                                           "d/readonly", "d/setuid", "d/hard", "open")}
    assert got == {"d": 0o750, "d/rw.txt": 0o644, "d/private": 0o600, "d/tool": 0o755,
                   "d/group": 0o664, "d/readonly": 0o444, "d/setuid": 0o755,
                   "d/hard": 0o700, "open": 0o777}
    assert (dest / "d" / "hard").read_bytes() == b"c"
    for p in got:
        assert os.lstat(dest / p).st_mtime == MTIME, p


def test_existing_file_kept_or_replaced(tmp_path):
    t = make_tar(tmp_path / "e.tar", [("a.txt", "file", b"image", 0o644),
                                      ("b.txt", "file", b"image b", 0o644)])
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "a.txt").write_bytes(b"mine")
    report = extract(t, dest)
    assert report.existing == ["a.txt"] and report.written == ["b.txt"]
    assert (dest / "a.txt").read_bytes() == b"mine"
    report = extract(t, dest, overwrite=True)
    assert report.ok and sorted(report.written) == ["a.txt", "b.txt"]
    assert (dest / "a.txt").read_bytes() == b"image"


def test_a_directory_is_never_replaced_by_a_file_or_link(tmp_path):
    t = make_tar(tmp_path / "x.tar", [("f", "file", b"data", 0o644),
                                      ("l", "sym", "f", 0o777)])
    dest = tmp_path / "dest"
    (dest / "f").mkdir(parents=True)
    (dest / "l").mkdir()
    (dest / "f" / "keep").write_bytes(b"keep")
    for overwrite in (False, True):
        report = extract(t, dest, overwrite=overwrite)
        assert sorted(report.existing) == ["f", "l"] and not report.refused
        assert (dest / "f" / "keep").read_bytes() == b"keep"
        assert (dest / "l").is_dir() and not (dest / "l").is_symlink()


def test_existing_symlink_where_a_symlink_goes(tmp_path):
    t = make_tar(tmp_path / "s.tar", [("t.txt", "file", b"t", 0o644),
                                      ("l", "sym", "t.txt", 0o777)])
    dest = tmp_path / "dest"
    dest.mkdir()
    os.symlink("elsewhere", dest / "l")
    report = extract(t, dest)
    assert report.existing == ["l"] and os.readlink(dest / "l") == "elsewhere"
    report = extract(t, dest, overwrite=True)
    assert report.ok and os.readlink(dest / "l") == "t.txt"


def test_symlinked_directory_in_dest_is_not_followed_even_inside(tmp_path):
    """dest/pre -> dest/real: inside dest, still not written through; entries below it
    are refused (once each) and the walk goes on with the rest of the tree."""
    t = make_tar(tmp_path / "p.tar", [("pre", "dir", None, 0o755),
                                      ("pre/a.txt", "file", b"a", 0o644),
                                      ("pre/sub", "dir", None, 0o755),
                                      ("pre/sub/b.txt", "file", b"b", 0o644),
                                      ("pre/l", "sym", "a.txt", 0o777),
                                      ("q.txt", "file", b"q", 0o644)])
    dest = tmp_path / "dest"
    (dest / "real").mkdir(parents=True)
    os.symlink(dest / "real", dest / "pre")
    report = extract(t, dest)
    assert report.existing == ["pre"]
    assert sorted(p for p, _ in report.refused) == ["pre/a.txt", "pre/l", "pre/sub",
                                                    "pre/sub/b.txt"]
    assert all("symlink in the destination" in why for _, why in report.refused)
    assert report.written == ["q.txt"]
    assert list((dest / "real").iterdir()) == []
    report = extract(t, dest, overwrite=True)
    assert report.ok
    assert (dest / "pre").is_dir() and not (dest / "pre").is_symlink()
    assert (dest / "pre" / "sub" / "b.txt").read_bytes() == b"b"
    assert os.readlink(dest / "pre" / "l") == "a.txt"
    assert list((dest / "real").iterdir()) == []


def test_deep_symlink_in_dest_leading_out_is_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    (dest / "a").mkdir(parents=True)
    os.symlink(outside, dest / "a" / "b")
    t = make_tar(tmp_path / "d.tar", [("a/b/c/d.txt", "file", b"x", 0o644),
                                      ("a/z.txt", "file", b"z", 0o644)])
    report = extract(t, dest)
    assert sorted(p for p, _ in report.refused) == ["a/b/c", "a/b/c/d.txt"]
    assert (dest / "a" / "z.txt").read_bytes() == b"z"
    assert list(outside.iterdir()) == []


class Bare(Image):
    """An index without its parent directories (as a plugin format might give)."""

    format = "bare"

    def __init__(self, files):
        data = b"".join(files.values())
        super().__init__(MemoryDevice(data=data.ljust(-(-len(data) // 512) * 512 or 512,
                                                     b"\0")))
        at = 0
        for path, body in files.items():
            self._index[path] = EntryInfo(path, "file", len(body), MTIME, 0o640,
                                          extents=((at, len(body)),) if body else ())
            at += len(body)


def test_missing_parents_are_created(tmp_path):
    img = Bare({"a/b/c.txt": b"abc", "a/d.txt": b"d", "x/y/z/w.txt": b"w", "e.txt": b""})
    report = img.extract(tmp_path / "dest")
    assert report.ok and sorted(report.written) == ["a/b/c.txt", "a/d.txt", "e.txt",
                                                    "x/y/z/w.txt"]
    assert (tmp_path / "dest" / "a" / "b" / "c.txt").read_bytes() == b"abc"
    assert (tmp_path / "dest" / "x" / "y" / "z" / "w.txt").read_bytes() == b"w"
    assert (tmp_path / "dest" / "e.txt").read_bytes() == b""
    assert mode_of(tmp_path / "dest" / "a" / "d.txt") == 0o640


def test_paths_filter_creates_the_parents_of_a_single_file(tmp_path):
    t = make_tar(tmp_path / "f.tar", [("a", "dir", None, 0o755),
                                      ("a/b", "dir", None, 0o755),
                                      ("a/b/c.txt", "file", b"c", 0o644),
                                      ("a/other.txt", "file", b"o", 0o644)])
    dest = tmp_path / "dest"
    report = extract(t, dest, paths=["a/b/c.txt"])
    assert report.ok and report.written == ["a/b/c.txt"]
    assert (dest / "a" / "b" / "c.txt").read_bytes() == b"c"
    assert not (dest / "a" / "other.txt").exists()


def test_destination_given_through_a_symlink(tmp_path):
    t = make_tar(tmp_path / "s.tar", [("f.txt", "file", b"f", 0o644)])
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "via")
    assert extract(t, tmp_path / "via").ok
    assert (tmp_path / "real" / "f.txt").read_bytes() == b"f"


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
@pytest.mark.parametrize("max_open", [3, 64])
def test_deep_tree_with_bounded_open_directories(tmp_path, monkeypatch, max_open):
    """A 150-level tree, climbing back up and down again: everything lands where it
    should, at most ``MAX_OPEN`` directories are open at once, and none are left."""
    monkeypatch.setattr(extract_mod.TreeWriter, "MAX_OPEN", max_open)
    members = []
    deep = []
    for i in range(150):
        deep.append(f"d{i % 7}")
        members.append(("/".join(deep), "dir", None, 0o755))
        if i % 10 == 0:
            members.append(("/".join(deep) + f"/f{i}.txt", "file", f"{i}".encode(), 0o644))
    members += [("d0/d1/side.txt", "file", b"side", 0o644),
                ("d0/d1/d2/d3/d4/d5/d6/d0/other/x.txt", "file", b"x", 0o644),
                ("top.txt", "file", b"top", 0o644),
                ("d0/late.txt", "file", b"late", 0o644),
                ("d0/l", "sym", "late.txt", 0o777),
                ("/".join(deep) + "/deepl", "sym", "../" * 9 + "f140.txt", 0o777)]
    t = make_tar(tmp_path / "deep.tar", members)
    seen = []
    real_copy = Image.copy_data

    def counting_copy(self, info, fd):
        seen.append(open_fds())
        real_copy(self, info, fd)

    monkeypatch.setattr(Image, "copy_data", counting_copy)
    dest = tmp_path / "dest"
    dest.mkdir()
    with blockimg.open(t) as img:
        before = open_fds()
        report = img.extract(dest)
        assert open_fds() == before
    # the tar reader adds the directory 'other' that the archive leaves out
    assert report.ok and sorted(report.written) == sorted(
        [m[0] for m in members] + ["d0/d1/d2/d3/d4/d5/d6/d0/other"])
    # the open chain, dest itself, the file being written and listdir's own fd
    assert max(seen) <= before + max_open + 3
    for name, kind, arg, _mode in members:
        p = dest / name
        if kind == "file":
            assert p.read_bytes() == arg, name
        elif kind == "dir":
            assert p.is_dir() and not p.is_symlink()
            assert os.lstat(p).st_mtime == MTIME
        else:
            assert os.readlink(p) == arg and p.exists()


def test_no_path_lookups_per_file(tmp_path, monkeypatch):
    """Files are made relative to their open parent: no stat, lstat or realpath per
    file (only per symlink and per directory)."""
    members = [("d", "dir", None, 0o755)] + \
        [(f"d/f{i}.txt", "file", b"x" * i, 0o644) for i in range(200)] + \
        [("d/l", "sym", "f1.txt", 0o777)]
    t = make_tar(tmp_path / "n.tar", members)
    calls = []
    for name in ("stat", "lstat"):
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda *a, _r=real, _n=name, **k:
                            (calls.append(_n), _r(*a, **k))[1])
    real_realpath = os.path.realpath
    monkeypatch.setattr(os.path, "realpath",
                        lambda *a, **k: (calls.append("realpath"), real_realpath(*a, **k))[1])
    dest = tmp_path / "dest"
    report = extract(t, dest)
    assert report.ok and len(report.written) == 202
    assert len(calls) < 20, calls
    assert (dest / "d" / "f199.txt").read_bytes() == b"x" * 199


_name = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0",
                                       max_codepoint=0x2FFFF), min_size=1, max_size=4)


@given(st.lists(st.lists(_name, min_size=1, max_size=3).map("/".join), max_size=30))
def test_extraction_order_is_component_by_component_byte_order(paths):
    """The cheap sort key of extraction orders paths as comparing their components'
    UTF-8 bytes does (parents first, each directory's subtree together)."""
    infos = [EntryInfo(p, "file") for p in paths]
    by_bytes = sorted(paths, key=lambda p: [c.encode("utf-8") for c in p.split("/")])
    assert [i.path for i in sorted(infos, key=extract_mod.order)] == by_bytes
