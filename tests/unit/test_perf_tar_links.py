"""Mirage target: link entries (``--keep-links``) are refused by the tar layout.

tar-mirage reads hard links and symlinks as empty files (MIRAGE.md, tar rule 6),
so an image holding them would silently serve empty content. The generic target
keeps them.
"""
from __future__ import annotations

import os

import pytest

import blockimg
from blockimg.errors import InvalidInput
from blockimg.sources.directory import Kind, SourceEntry, SourceTree, walk
from blockimg.tar import Options, plan


def _tree(kind, target="a.txt"):
    return SourceTree((SourceEntry("a.txt", Kind.FILE, 1, 0, 0o644, data=b"a"),
                       SourceEntry("link", kind, 0, 0, 0o777, link_target=target)))


@pytest.mark.parametrize("kind,what", [(Kind.SYMLINK, "symbolic link"),
                                       (Kind.HARDLINK, "hard link")])
def test_mirage_refuses_links_naming_file_and_rule(kind, what):
    with pytest.raises(InvalidInput) as exc:
        plan(_tree(kind), Options(target="mirage"))
    err = exc.value
    assert err.path == "link"
    assert "Mirage" in err.rule and "link" in err.rule
    text = str(err)
    assert what in text and "empty" in text
    assert "--keep-links" in text and "--target generic" in text


@pytest.mark.parametrize("kind", [Kind.SYMLINK, Kind.HARDLINK])
def test_generic_keeps_links(kind):
    p = plan(_tree(kind), Options(target="generic"))
    assert [it.entry.kind for it in p.items] == [Kind.FILE, kind]


def test_keep_links_walk_into_mirage_image_is_refused(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"data")
    os.symlink("f", src / "s")
    os.link(src / "f", src / "h")
    with pytest.raises(InvalidInput) as exc:
        blockimg.create(src, tmp_path / "x.img", format="tar", keep_links=True)
    # Both links refused at once, named by their source paths.
    assert sorted(os.path.basename(p.path) for p in exc.value.problems) == ["h", "s"]
    assert not (tmp_path / "x.img").exists()
    # Without --keep-links the same tree is stored as full copies.
    blockimg.create(src, tmp_path / "x.img", format="tar")
    tree = walk(src, keep_links=True)
    assert {e.kind for e in tree.entries} >= {Kind.SYMLINK, Kind.HARDLINK}
