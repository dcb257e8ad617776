"""Issue 11, bug 2: a name of many components costs memory and time in proportion to the
image, not to its square; past the readers' bound (docs/trust.md) the image is refused.

Measured with tracemalloc (what the reader allocates), never with a clock.
"""
from __future__ import annotations

import gzip
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blockimg.block.memory import MemoryDevice
from blockimg.errors import CorruptImage
from blockimg.fat.reader import FatImage
from blockimg.read.image import DERIVED_ENTRY, DERIVED_PER_BYTE, DERIVED_SLACK
from blockimg.tar.reader import TarImage
from conftest import ROOT
from helpers.deep_paths import deep_tar, member

HOSTILE = ROOT / "fixtures" / "hostile"


def _bound(size: int) -> int:
    return DERIVED_PER_BYTE * size + DERIVED_SLACK


def _peak(fn):
    tracemalloc.start()
    try:
        try:
            fn()
        except CorruptImage as e:
            err = e
        else:
            err = None
        return tracemalloc.get_traced_memory()[1], err
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("how", ["pax", "gnu"])
@pytest.mark.parametrize("components", [5000, 20000])
def test_a_path_bomb_is_refused_within_the_bound(how, components):
    data = deep_tar(components, how)
    dev = MemoryDevice(data=data, writable=False)
    peak, err = _peak(lambda: TarImage(dev))
    assert err is not None
    assert f"({components + 1} components)" in str(err)
    assert "readers' bound" in str(err) and err.offset == 0
    # Before: 5,000 components held ~40 MB (quadratic); now what the bound allows.
    assert peak < _bound(len(data)) + (1 << 20), peak


@pytest.mark.parametrize("how", ["pax", "gnu"])
def test_a_deep_path_within_the_bound_is_read_with_every_directory(how):
    data = deep_tar(300, how)
    img = TarImage(MemoryDevice(data=data, writable=False))
    paths = [e.path for e in img.list()]
    assert len(paths) == 301
    assert paths[0] == "d" and paths[299] == "d/" * 299 + "d"
    assert paths[-1] == "d/" * 300 + "f" and img.read(paths[-1]) == b"data"
    assert all(img.stat(p).kind == "dir" for p in paths[:-1])
    # What it derived: each implied directory's path plus an entry's worth.
    assert img._derived == sum(2 * i + 1 + DERIVED_ENTRY for i in range(300))


def test_parents_made_when_a_file_stood_in_the_way_are_directories():
    data = (member(b"a", b"x") + member(b"a/b/c", b"y") + bytes(1024))
    img = TarImage(MemoryDevice(data=data, writable=False))
    assert [(e.path, e.kind) for e in img.list()] == [("a", "dir"), ("a/b", "dir"),
                                                       ("a/b/c", "file")]
    assert any("'a' was a file but 'a/b/c' is inside it" in w for w in img.warnings)


def test_deep_fat_directory_chain_is_refused_within_the_bound():
    data = gzip.decompress((HOSTILE / "fat-deep-directory-chain.img.gz").read_bytes())
    dev = MemoryDevice(data=data, writable=False)
    peak, err = _peak(lambda: FatImage(dev))
    assert err is not None and "readers' bound" in str(err)
    # Before: 2000 levels of 116-character names held ~230 MB of paths.
    assert peak < _bound(len(data)) + (4 << 20), peak


def test_fat_lenient_walk_keeps_the_same_bound():
    data = gzip.decompress((HOSTILE / "fat-deep-directory-chain.img.gz").read_bytes())
    with pytest.raises(CorruptImage, match="readers' bound"):
        FatImage(MemoryDevice(data=data, writable=False), strict=False)


# -- a file replacing a directory drops what was below it, at the cost of what it drops --

def _reference_index(members):
    """The index as the reader made it before: a prefix scan of the whole index per
    directory replaced (the behaviour to keep)."""
    index = {}
    for name, kind in members:
        parts = name.split("/")
        for i in range(1, len(parts)):
            p = "/".join(parts[:i])
            if p not in index or index[p] != "dir":
                index[p] = "dir"
        if index.get(name) == "dir" and kind != "dir":
            for k in [k for k in index if k.startswith(name + "/")]:
                del index[k]
        index[name] = kind
    return index


NAMES = ["a", "a/b", "a/b/c", "a/c", "b", "b/a", "b/a/b"]


@settings(max_examples=200)
@given(st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(["file", "dir"])),
                max_size=30))
def test_replacing_directories_keeps_the_reader_s_rules(members):
    data = b"".join(member(n.encode() + (b"/" if k == "dir" else b""),
                           typeflag=b"5" if k == "dir" else b"0") for n, k in members)
    img = TarImage(MemoryDevice(data=data + bytes(1024), writable=False))
    assert {e.path: e.kind for e in img.list()} == _reference_index(members)
    assert list({e.path: e.kind for e in img.list()}) == list(_reference_index(members))


class _CountingDict(dict):
    walks = 0

    def __iter__(self):
        _CountingDict.walks += 1
        return super().__iter__()


class _CountingTar(TarImage):
    def _scan(self, replay=None, **kwargs):
        if not isinstance(self._index, _CountingDict):
            self._index = _CountingDict()
        super()._scan(replay, **kwargs)


def test_files_replacing_directories_cost_what_they_drop():
    """2,000 entries, then 500 times a directory replaced by a file: each replacement
    looked at the whole index before (5,000 such made 20,000 entries take 20 s); now the
    index is walked once, to map each directory's children. Counted, not timed."""
    data = b"".join(member(b"f%05d" % i) for i in range(2000))
    data += (member(b"d/", typeflag=b"5") + member(b"d/x") + member(b"d")) * 500
    _CountingDict.walks = 0
    img = _CountingTar(MemoryDevice(data=data + bytes(1024), writable=False))
    assert _CountingDict.walks == 1
    assert len(img) == 2001 and img.stat("d").kind == "file"
    assert img._children is None          # (dropped once the index is made)
