"""Random trees -> tar image -> reader (and GNU tar) -> the same tree."""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from blockimg.block import MemoryDevice
from blockimg.sources.directory import from_pairs
from blockimg.tar import Options, check, open_image, plan, write
from conftest import require_tool, tree_snapshot

LIMIT = 501          # Mirage: "512 path=<path>\n" -- a directory's path also carries its '/'

name_chars = st.characters(codec="utf-8", exclude_characters="/\0",
                           exclude_categories=("Cs",))
names = st.text(name_chars, min_size=1, max_size=40).filter(
    lambda s: s not in (".", "..") and len(s.encode()) <= 255)
sizes = st.one_of(st.integers(0, 1100), st.sampled_from([0, 511, 512, 513, 4095, 4096, 4097]),
                  st.integers(0, 2 << 20))
files = st.tuples(sizes, st.integers(0, 255))
# bsdtar treats a member name that starts with '\\' or a drive letter ("C:") as absolute
# and strips that prefix, even on Linux; such names are kept off the top level so the
# GNU tar / bsdtar subset compares like with like (they are still used deeper down).
top_names = names.filter(lambda s: not s.startswith("\\") and
                         not (len(s) >= 2 and s[1] == ":" and s[0].isascii() and s[0].isalpha()))
trees = st.recursive(files, lambda kids: st.dictionaries(names, kids, max_size=4),
                     max_leaves=10)


def content(size: int, seed: int) -> bytes:
    pattern = bytes((seed + i * 7) % 256 for i in range(251))
    return (pattern * (size // 251 + 1))[:size]


def flatten(node, prefix="", out=None) -> dict:
    """{path: bytes or None (directory)}, leaving out paths over the Mirage limit."""
    out = {} if out is None else out
    for name, child in node.items():
        path = f"{prefix}/{name}" if prefix else name
        if len(path.encode()) > LIMIT:
            continue
        if isinstance(child, dict):
            out[path] = None
            flatten(child, path, out)
        else:
            out[path] = content(*child)
    return out


def long_path(total: int) -> str:
    parts, left = [], total
    while left > 0:
        n = min(200, left)
        parts.append("L" * n)
        left -= n + 1
    return "/".join(parts)


@settings(max_examples=15)
@given(tree=st.dictionaries(top_names, trees, max_size=5),
       longest=st.one_of(st.none(), st.integers(90, LIMIT)),
       sector_size=st.sampled_from([512, 4096]), align=st.sampled_from([None, 4096]),
       seed=st.integers(0, 255))
def test_tree_round_trips_through_the_reader(tree, longest, sector_size, align, seed):
    expected = flatten(tree)
    if longest is not None:
        expected[long_path(longest)] = content(longest, seed)
    for path in list(expected):          # from_pairs adds the parents; so do we
        parts = path.split("/")
        for i in range(1, len(parts)):
            expected.setdefault("/".join(parts[:i]), None)
    src = from_pairs(sorted(expected.items()), mtime=1234567890)
    p = plan(src, Options(sector_size=sector_size, align=align))
    dev = MemoryDevice(p.image_size, sector_size=sector_size, fill=0x5A)
    write(p, dev)
    assert p.image_size % max(4096, sector_size) == 0
    img = open_image(dev)
    got = {e.path: (None if e.kind == "dir" else img.read(e.path)) for e in img.list()}
    assert got == expected
    assert check(img, target="mirage") == []
    if align and any(v for v in expected.values()):
        assert img.data_alignment() >= align
    if sector_size == 4096 and align:        # a subset also goes through GNU tar, bsdtar
        gnu_tar_extracts(dev.getvalue(), expected)


def gnu_tar_extracts(image: bytes, expected: dict) -> None:
    """GNU tar and bsdtar extract exactly ``expected``."""
    want = {os.path.normpath(k): ("dir" if v is None else v) for k, v in expected.items()}
    with tempfile.TemporaryDirectory() as tmp:
        img = Path(tmp) / "i.tar"
        img.write_bytes(image)
        for tool in (require_tool("tar"), require_tool("bsdtar")):
            dest = Path(tmp) / os.path.basename(tool)
            dest.mkdir()
            subprocess.run([tool, "-xf", str(img), "-C", str(dest)], check=True,
                           capture_output=True)
            got = tree_snapshot(dest)
            if got != want:     # plain comparison: pytest's diff of big bytes is slow
                raise AssertionError(f"{tool} extracted {sorted(got)}, expected {sorted(want)}")
