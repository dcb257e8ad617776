"""The source walk: order, links, cycles, special files, explicit pairs."""
from __future__ import annotations

import os
import shutil
import socket

import pytest

from blockimg.errors import InvalidInput
from blockimg.sources.directory import Kind, SourceTree, as_tree, from_pairs, sort_key, walk


def paths(tree):
    return [e.path for e in tree.entries]


def test_order_is_parents_first_then_name_bytes(tmp_path):
    for rel in ("b", "a.b", "a/z", "a/B", "a-", "ä"):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
    t = walk(tmp_path)
    assert paths(t) == ["a", "a/B", "a/z", "a-", "a.b", "b", "ä"]
    assert sorted(["a.b", "a/z", "a"], key=sort_key) == ["a", "a/z", "a.b"]


def test_entries_carry_size_mode_mtime(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"12345")
    f.chmod(0o751)
    os.utime(f, (1000, 2000))
    e = walk(tmp_path).entries[0]
    assert (e.kind, e.size, e.mode, e.mtime, e.source) == (Kind.FILE, 5, 0o751, 2000, str(f))
    assert walk(tmp_path, mtime=7).entries[0].mtime == 7
    t = walk(tmp_path)
    assert (t.files, t.total_bytes) == (1, 5)


def test_symlinks_are_followed_unless_kept(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_bytes(b"data")
    os.symlink("real", tmp_path / "dirlink")
    os.symlink("real/f", tmp_path / "filelink")
    t = walk(tmp_path)
    kinds = {e.path: e.kind for e in t.entries}
    assert kinds == {"dirlink": Kind.DIR, "dirlink/f": Kind.FILE, "filelink": Kind.FILE,
                     "real": Kind.DIR, "real/f": Kind.FILE}
    assert [e.size for e in t.entries if e.path == "filelink"] == [4]
    kept = {e.path: e for e in walk(tmp_path, keep_links=True).entries}
    assert kept["dirlink"].kind is Kind.SYMLINK and kept["dirlink"].link_target == "real"
    assert kept["filelink"].link_target == "real/f"
    assert "dirlink/f" not in kept


def test_symlink_cycles_and_dangling_links_are_refused(tmp_path):
    (tmp_path / "a").mkdir()
    os.symlink("..", tmp_path / "a" / "up")
    with pytest.raises(InvalidInput, match="parent directories") as exc:
        walk(tmp_path)
    assert "up" in str(exc.value)
    os.unlink(tmp_path / "a" / "up")
    os.symlink("nowhere", tmp_path / "a" / "dangling")
    with pytest.raises(InvalidInput, match="cannot be followed"):
        walk(tmp_path)
    assert walk(tmp_path, keep_links=True).entries[1].kind is Kind.SYMLINK


def test_hard_links_are_copies_unless_kept(tmp_path):
    (tmp_path / "one").write_bytes(b"same")
    os.link(tmp_path / "one", tmp_path / "two")
    assert [e.kind for e in walk(tmp_path).entries] == [Kind.FILE, Kind.FILE]
    one, two = walk(tmp_path, keep_links=True).entries
    assert (one.kind, two.kind, two.link_target) == (Kind.FILE, Kind.HARDLINK, "one")


def test_special_files_refused_or_skipped(tmp_path):
    (tmp_path / "ok").write_bytes(b"")
    os.mkfifo(tmp_path / "pipe")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "sock"))
        with pytest.raises(InvalidInput, match="FIFO") as exc:
            walk(tmp_path)
        # Both refused in one walk (every problem at once).
        assert sorted(os.path.basename(p.path) for p in exc.value.problems) == ["pipe", "sock"]
        t = walk(tmp_path, skip_special=True)
        assert paths(t) == ["ok"]
        assert sorted(what for _, what in t.skipped) == ["FIFO", "socket"]
        assert all(p.startswith(str(tmp_path)) for p, _ in t.skipped)
    finally:
        sock.close()


def test_root_must_be_a_directory(tmp_path):
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(InvalidInput, match="not a directory"):
        walk(tmp_path / "f")
    with pytest.raises(InvalidInput, match="cannot read"):
        walk(tmp_path / "missing")


def test_names_that_are_not_utf8_survive(tmp_path):
    raw = os.path.join(os.fsencode(tmp_path), b"caf\xe9")
    with open(raw, "wb") as f:
        f.write(b"x")
    e = walk(tmp_path).entries[0]
    assert e.path_bytes == b"caf\xe9"


def test_from_pairs(tmp_path):
    f = tmp_path / "f.txt"
    f.write_bytes(b"on disk")
    t = from_pairs([("x/y/data.bin", b"\x00\x01"), ("/x/file.txt", f), ("empty", None)],
                   mtime=5)
    assert paths(t) == ["empty", "x", "x/file.txt", "x/y", "x/y/data.bin"]
    by = {e.path: e for e in t.entries}
    assert by["x/y/data.bin"].data == b"\x00\x01" and by["x/y/data.bin"].size == 2
    assert by["x/file.txt"].source == str(f) and by["x/file.txt"].mtime == 5
    assert by["x"].kind is Kind.DIR and by["empty"].kind is Kind.DIR
    for bad in ([("a/../b", b"")], [("", b"")], [("a", b""), ("a", b"")],
                [("a", b""), ("a/b", b"")], [("a\0b", b"")], [("m", tmp_path / "nope")]):
        with pytest.raises(InvalidInput):
            from_pairs(bad)


def test_as_tree_accepts_every_form(tmp_path):
    (tmp_path / "f").write_bytes(b"")
    t = as_tree(tmp_path)
    assert as_tree(t) is t
    assert paths(as_tree([("f", b"")])) == ["f"]
    assert isinstance(as_tree(str(tmp_path)), SourceTree)


def test_listing_through_a_directory_fd_gives_the_same_tree(tmp_path, monkeypatch):
    """Where the host can, entries are stat'ed relative to a directory fd; the tree,
    source paths included (with or without a trailing slash on the root), is the same."""
    from blockimg.sources import directory as source
    for rel in ("a/b/c.txt", "a/Z", "d/e", "f", "ä/ö"):
        p = tmp_path / "src" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rel.encode())
    os.symlink("f", tmp_path / "src" / "link")
    root = str(tmp_path / "src")
    assert source._SCANDIR_FD          # this host (Linux) takes the fd path
    trees = [walk(root), walk(root + "/"), walk(root, keep_links=True)]
    monkeypatch.setattr(source, "_SCANDIR_FD", False)
    assert [walk(root), walk(root + "/"), walk(root, keep_links=True)] == trees
    by_path = {e.path: e for e in trees[0].entries}
    assert by_path["a/b/c.txt"].source == root + "/a/b/c.txt"
    assert by_path["link"].source == root + "/link" and by_path["link"].size == 1
    assert [e.source for e in trees[1].entries] == [e.source for e in trees[0].entries]


def test_a_directory_that_cannot_be_listed_is_named(tmp_path):
    if os.geteuid() == 0:
        # root lists any directory: make one vanish instead, between stat and listing
        from blockimg.sources import directory as source
        with pytest.raises(InvalidInput, match="gone.*cannot list directory"):
            source._listed(str(tmp_path / "gone"), "/")
        return
    d = tmp_path / "locked"
    d.mkdir()
    d.chmod(0)
    try:
        with pytest.raises(InvalidInput, match="locked.*cannot list directory"):
            walk(tmp_path)
    finally:
        d.chmod(0o755)


def _nest(top, depth: int) -> None:
    """``top/d/d/.../d/f`` with ``depth`` directories, made through directory fds (the
    path is longer than the kernel takes in one call)."""
    fd = os.open(top, os.O_RDONLY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            inner = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
        os.close(os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    finally:
        os.close(fd)


def _unnest(top) -> None:
    """Remove what :func:`_nest` made, one level at a time (pytest's clean-up recurses)."""
    d, t = os.path.join(top, "d"), os.path.join(top, "t")
    while os.path.isdir(os.path.join(d, "d")):
        os.rename(os.path.join(d, "d"), t)
        os.rmdir(d)
        os.rename(t, d)
    if os.path.isdir(d):
        shutil.rmtree(d)


@pytest.mark.parametrize("depth", [1_100, 2_000])
def test_a_tree_deeper_than_pythons_stack_is_walked_or_refused_clearly(tmp_path, depth):
    """Issue 13: a 1,100-level tree raised RecursionError. Now each directory the host
    can list is walked in order; one whose path it refuses is a named InvalidInput."""
    _nest(tmp_path, depth)
    problems = []
    try:
        tree = walk(tmp_path, problems=problems)
    finally:
        _unnest(tmp_path)
    want = ["/".join(["d"] * k) for k in range(1, depth + 1)] + ["d/" * depth + "f"]
    got = [e.path for e in tree.entries]
    if problems:     # a host with a shorter path limit: a named refusal, the rest walked
        assert all(p.path for p in problems) and got == want[:len(got)]
    else:
        assert got == want


def test_source_entry_is_a_frozen_value_however_made(tmp_path):
    """SourceEntry (filled in as its writable base, then made a SourceEntry) is a frozen
    value: compared, hashed, pickled and printed by its fields; the walk's entries
    equal those made by keyword."""
    import pickle

    from blockimg.record import FrozenRecordError
    from blockimg.sources.directory import Kind, SourceEntry, walk
    (tmp_path / "a.txt").write_bytes(b"abc")
    os.utime(tmp_path / "a.txt", (1_700_000_000, 1_700_000_000))
    os.chmod(tmp_path / "a.txt", 0o640)
    (e,) = walk(tmp_path).entries
    want = SourceEntry(path="a.txt", kind=Kind.FILE, size=3, mtime=1_700_000_000, mode=0o640,
                       source=str(tmp_path / "a.txt"))
    assert type(e) is SourceEntry and e == want and hash(e) == hash(want)
    assert pickle.loads(pickle.dumps(e)) == e
    assert repr(e).startswith("SourceEntry(path='a.txt', kind=") and "offset=None)" in repr(e)
    assert (e.data, e.link_target, e.offset) == (None, None, None)
    assert SourceEntry("d", Kind.DIR) != SourceEntry("d", Kind.DIR, mode=0o755)
    for name in SourceEntry.FIELDS:
        with pytest.raises(FrozenRecordError):
            setattr(e, name, None)
        with pytest.raises(FrozenRecordError):
            delattr(e, name)
    assert e == want


def test_left_out_file_is_skipped_under_every_name_and_the_rest_stored(tmp_path):
    """The files left out (the image being written) are known by device and inode: a hard
    link to the image elsewhere in the tree is skipped too; every other file is stored."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "site.img").write_bytes(b"image")
    os.link(tmp_path / "site.img", tmp_path / "sub" / "copy.img")
    (tmp_path / "sub" / "page.html").write_bytes(b"<p>")
    tree = walk(tmp_path, leave_out=[str(tmp_path / "site.img")])
    assert [e.path for e in tree.entries] == ["sub", "sub/page.html"]
    assert sorted(tree.skipped) == [(str(tmp_path / "site.img"), "the image being written"),
                                    (str(tmp_path / "sub" / "copy.img"),
                                     "the image being written")]
    assert [e.path for e in walk(tmp_path, leave_out=[str(tmp_path / "none")]).entries] == \
        ["site.img", "sub", "sub/copy.img", "sub/page.html"]
