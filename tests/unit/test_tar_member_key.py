"""The tar index's fast form of a member's key (blockimg.tar.reader.clean_key) against
the general rule it stands in for (normalize_member_path): the same key for every name
it takes, and, over whole archives, the same index, refusals and notes as with the
fast form switched off."""
from __future__ import annotations

import io
import tarfile

import pytest
from hypothesis import given, settings, strategies as st

import blockimg.tar.reader as tar_reader
from blockimg.block.memory import MemoryDevice
from blockimg.read.image import normalize_member_path
from blockimg.tar.reader import TarImage, clean_key

#: Pieces names are made of: what the general rule treats specially, and plain ones.
PIECES = ["", ".", "..", "./", "/", "//", "a", "b", ".a", "..a", "a.", "é", "ü/x", "\\",
          " ", "ö" * 60, "c" * 120, "\udcff"]
NAMES = st.lists(st.sampled_from(PIECES), min_size=0, max_size=6).map("/".join) | \
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=6).map("".join)


@given(NAMES)
@settings(max_examples=2000, deadline=None)
def test_clean_key_is_the_general_key(name):
    key = clean_key(name)
    if key is not None:
        assert normalize_member_path(name) == (key, None)
        assert key    # the root and refused names go the general way


@pytest.mark.parametrize("name, key", [
    ("a", "a"), ("./a", "a"), ("a/", "a"), ("./a/b/", "a/b"), ("a/b.c", "a/b.c"),
    ("é/ü", "é/ü"), ("./a..b", "a..b"),
])
def test_clean_key_takes_the_common_names(name, key):
    # (the fast form must take what tar -C DIR . and git archive write)
    assert clean_key(name) == key


@pytest.mark.parametrize("name", [
    "", ".", "./", "..", "../a", "a/../b", "./.", "././a", "/a", ".//a", "a//b", "a//",
    "a/./b", "a/.hidden", ".hidden", "a/b/..",
])
def test_clean_key_leaves_the_rest_to_the_general_rule(name):
    assert clean_key(name) is None


def _archive(names, fmt) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, encoding="utf-8",
                      errors="surrogateescape") as tf:
        for i, (name, is_dir) in enumerate(names):
            ti = tarfile.TarInfo(name)
            ti.mtime = 1_700_000_000 + i
            if is_dir:
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
            else:
                data = name.encode("utf-8", "surrogateescape")[:7]
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _read(data: bytes):
    img = TarImage(MemoryDevice(bytearray(data)))
    return ({p: (e.kind, e.size, e.mtime, e.mode, e.extents, e.link_target, e.header_offset)
             for p, e in img.index.items()}, list(img.index), img.unsafe_names,
            img.padding_entries, img.warnings)


@given(st.lists(st.tuples(NAMES, st.booleans()), min_size=1, max_size=12),
       st.sampled_from([tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]))
@settings(max_examples=300, deadline=None)
def test_index_is_the_one_of_the_general_rule(names, fmt):
    data = _archive(names, fmt)
    fast = _read(data)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(tar_reader, "clean_key", lambda name: None)
        general = _read(data)
    assert fast == general



@given(st.lists(st.text(alphabet=st.sampled_from(["a", "B", "é", "ÿ", "\u0100", "\ud7ff",
                                                   "\ue000", "\U0001f600", "\udc80", "\udcff",
                                                   "_", "~"]), min_size=1, max_size=4),
                min_size=1, max_size=8, unique=True))
@settings(max_examples=500, deadline=None)
def test_archive_tree_siblings_in_byte_order(names):
    # tree_from_entries sorts plain names as strings (their code point order is their
    # UTF-8 byte order), names with escaped bytes by their bytes: the walk's order.
    from blockimg.read.image import EntryInfo
    from blockimg.sources.tree import tree_from_entries
    entries = [EntryInfo(n, "dir") for n in names] + [EntryInfo(f"{names[0]}/{n}", "file")
                                                      for n in names]
    tree = tree_from_entries(entries, "/dev/null")
    key = lambda p: p.encode("utf-8", "surrogateescape")       # noqa: E731
    top = sorted(names, key=key)
    want = []
    for n in top:
        want.append(n)
        if n == names[0]:
            want.extend(f"{n}/{m}" for m in top)
    assert [e.path for e in tree.entries] == want
