"""Trees whose names look like FAT short-name aliases (issue 11), and reading them back.

A tree is a dict ``{relative path: bytes}`` for files and ``{relative path: None}`` for
directories (parents listed or implied). The builders here are shared by the mtools
tests (tests/interop/test_fat_aliases.py), the property tests
(tests/property/test_fat_alias_props.py) and any reader that opens files by name
(the kernel tier): every one of them must find each file under its real name.

* :func:`issue_example` -- the issue's directory: ``longfile name.txt``,
  ``longfile name 1.txt`` ... ``11.txt`` and a real ``longfi~3.txt``;
* :func:`directory_example` -- the same shape with directories: a real directory
  ``longfi~3`` beside directories (and files) whose aliases count past ``~3``;
* :func:`alias_trees` -- a hypothesis strategy of such trees (mixed case, two-digit tails);
* :func:`materialise`, :func:`mdir_entries`, :func:`alias_rule_violations`,
  :func:`mtools_read_by_name` -- write a tree, list an image's short and long names
  with ``mdir``, check the rule, read every file and directory by name with mtools.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from hypothesis import strategies as st

MTIME = 1700000000          # 2023-11-14 22:13:20 UTC

Tree = Dict[str, Optional[bytes]]


def _content(path: str, size: int = 0) -> bytes:
    """Bytes that name their file (so a wrong file never reads as the right one)."""
    head = f"{path}\n".encode()
    if size <= len(head):
        return head
    return head + bytes((i * 131 + len(path)) & 0xFF for i in range(size - len(head)))


def issue_example(prefix: str = "") -> Tree:
    """The directory of issue 11: twelve ``longfile name*.txt`` and a real ``longfi~3.txt``."""
    names = ["longfile name.txt"] + [f"longfile name {i}.txt" for i in range(1, 12)]
    names.append("longfi~3.txt")
    return {prefix + n: _content(prefix + n) for n in names}


def directory_example(prefix: str = "") -> Tree:
    """A real directory ``longfi~3`` whose name an alias of a sibling could take.

    Its siblings ``longfile name``, ``longfile name 1`` ... ``11`` are directories
    holding files of the same names (``inner.txt``, ``sub/deep.txt``), so a reader
    that enters the wrong directory reads other bytes; ``files/`` repeats the shape
    with files as the siblings (a reader that stops at the file fails instead).
    """
    tree: Tree = {}
    for stem in ["longfile name"] + [f"longfile name {i}" for i in range(1, 12)]:
        d = prefix + stem
        tree[d] = None
        tree[d + "/inner.txt"] = _content(d + "/inner.txt")
        tree[d + "/sub/deep.txt"] = _content(d + "/sub/deep.txt")
    real = prefix + "longfi~3"
    tree[real] = None
    tree[real + "/inner.txt"] = _content(real + "/inner.txt")
    tree[real + "/sub/deep.txt"] = _content(real + "/sub/deep.txt", 5000)
    files = prefix + "files/"
    for stem in ["longfile name"] + [f"longfile name {i}" for i in range(1, 12)]:
        tree[files + stem] = _content(files + stem)
    tree[files + "longfi~3"] = None
    tree[files + "longfi~3/inner.txt"] = _content(files + "longfi~3/inner.txt")
    return tree


# -- a hypothesis strategy ----------------------------------------------------------

_PREFIXES = ["abcdef", "longfi", "AbCdEf", "x", "data_1"]
_EXTS = ["", ".txt", ".TXT", ".Txt", ".c"]


@st.composite
def alias_names(draw) -> List[str]:
    """One directory's names: many siblings sharing a long prefix (tails reach two digits)
    and real names shaped like their aliases (``abcdef~N.ext``, any case)."""
    prefix = draw(st.sampled_from(_PREFIXES))
    ext = draw(st.sampled_from(_EXTS))
    siblings = draw(st.integers(0, 14))
    long_stem = prefix + draw(st.sampled_from(["gh name", "ghijkl", " long", "-more-text"]))
    names = [f"{long_stem} {i}{ext}" if i else f"{long_stem}{ext}" for i in range(siblings)]
    for _ in range(draw(st.integers(1, 4))):
        n = draw(st.integers(1, 15))
        tail = f"~{n}"
        base = prefix[:8 - len(tail)]
        base = draw(st.sampled_from([base, base.lower(), base.upper(), base.swapcase()]))
        names.append(base + tail + draw(st.sampled_from(_EXTS)))
    if draw(st.booleans()):
        names.append(draw(st.sampled_from(["README", "index.txt", "Mixed.Txt"])))
    out, seen = [], set()
    for n in draw(st.permutations(names)):
        if n.upper() not in seen:           # case collisions are refused (tested elsewhere)
            seen.add(n.upper())
            out.append(n)
    return out


@st.composite
def alias_trees(draw, depth: int = 2) -> Tree:
    """A tree of :func:`alias_names` directories: some names are directories, with more
    alias-shaped names inside."""
    tree: Tree = {}

    def fill(prefix: str, level: int) -> None:
        for name in draw(alias_names()):
            path = prefix + name
            if level < depth and draw(st.integers(0, 3)) == 0:
                tree[path] = None
                fill(path + "/", level + 1)
            else:
                tree[path] = _content(path, draw(st.sampled_from([0, 1, 600, 5000])))

    fill("", 1)
    return tree


# -- writing and reading back -----------------------------------------------------------

def materialise(tree: Tree, root: Path) -> Path:
    """Write ``tree`` under ``root`` (created), every time ``MTIME``."""
    root.mkdir(parents=True, exist_ok=True)
    for path in sorted(tree):
        p = root / path
        if tree[path] is None:
            p.mkdir(parents=True, exist_ok=True)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(tree[path])
    for p in sorted(root.rglob("*"), reverse=True):
        os.utime(p, (MTIME, MTIME))
    return root


def files_and_dirs(tree: Tree) -> Tuple[Dict[str, bytes], List[str]]:
    """The files of ``tree`` with their bytes, and every directory (implied ones too)."""
    files = {p: b for p, b in tree.items() if b is not None}
    dirs = {p for p, b in tree.items() if b is None}
    for p in tree:
        parts = p.split("/")
        dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
    return files, sorted(dirs)


def mtools_env() -> dict:
    return dict(os.environ, MTOOLS_SKIP_CHECK="1", LC_ALL="C.UTF-8", TZ="UTC")


#: One entry of an ``mdir`` listing: short name (8 + 3 columns), size, date, time, then
#: two spaces and the long name, or a single space when it has none.
_MDIR_ENTRY = re.compile(r"^(.{8}) (.{3}) +(?:<DIR>|\d+) +\d{4}-\d\d-\d\d +\d+:\d\d"
                         r"(?:  (.+)| ?)$")


def mdir_entries(mdir: str, img: Path) -> Dict[str, List[Tuple[str, str]]]:
    """``{directory: [(short name, long name or "")]}`` as ``mdir -/ -a`` lists them."""
    res = subprocess.run([mdir, "-/", "-a", "-i", str(img), "::"], capture_output=True,
                         text=True, env=mtools_env())
    assert res.returncode == 0, res.stdout + res.stderr
    out: Dict[str, List[Tuple[str, str]]] = {}
    current = None
    for line in res.stdout.splitlines():
        if line.startswith("Directory for ::/"):
            current = out.setdefault(line[len("Directory for ::/"):], [])
            continue
        m = _MDIR_ENTRY.match(line)
        if m is None or current is None:
            continue
        base, ext, long = m.group(1).rstrip(), m.group(2).rstrip(), m.group(3) or ""
        short = f"{base}.{ext}" if ext else base
        if short not in (".", ".."):
            current.append((short, long))
    return out


def alias_rule_violations(entries: Dict[str, List[Tuple[str, str]]]) -> List[str]:
    """Where a short name equals another entry's short name or the upper-case form of
    another entry's long name (the names Linux and mtools compare a lookup with)."""
    bad = []
    for d, items in entries.items():
        for i, (short, _long) in enumerate(items):
            for j, (short2, long2) in enumerate(items):
                if i != j and short.upper() in (short2.upper(), long2.upper()):
                    bad.append(f"{d or '/'}: short name {short} of entry {i} "
                               f"equals {(short2, long2)} of entry {j}")
    return bad


def mtools_read_by_name(mtype: str, mdir: str, img: Path, tree: Tree) -> List[str]:
    """Open every file of ``tree`` by its real path with ``mtype`` and list every
    directory by its real path with ``mdir``; what differs from ``tree``."""
    files, dirs = files_and_dirs(tree)
    wrong = []
    for path, data in sorted(files.items()):
        res = subprocess.run([mtype, "-i", str(img), "::/" + path], capture_output=True,
                             env=mtools_env())
        if res.returncode != 0 or res.stdout != data:
            wrong.append(f"mtype ::/{path}: exit {res.returncode}, "
                         f"{len(res.stdout)} bytes {res.stdout[:40]!r} (want {data[:40]!r})")
    for d in dirs:
        want = sorted(p.rsplit("/", 1)[-1] for p in set(files) | set(dirs)
                      if p.rpartition("/")[0] == d)
        res = subprocess.run([mdir, "-a", "-i", str(img), "::/" + d], capture_output=True,
                             text=True, env=mtools_env())
        got = []
        for line in res.stdout.splitlines():
            m = _MDIR_ENTRY.match(line)
            if m is not None:
                base, ext = m.group(1).rstrip(), m.group(2).rstrip()
                short = f"{base}.{ext}" if ext else base
                if short not in (".", ".."):
                    got.append(m.group(3) or short)
        if res.returncode != 0 or sorted(got) != want:
            wrong.append(f"mdir ::/{d}: exit {res.returncode}, lists {sorted(got)} "
                         f"(want {want})")
    return wrong


def swap_short_names(image: bytearray, a: bytes, b: bytes) -> None:
    """Swap two 11-byte short names in ``image`` (the first entry holding each: in the
    root directory when it holds both), fixing the checksums of their long-name slots:
    an image such as a tool that hands out an alias equal to another entry's name makes."""
    from blockimg.fat.names import lfn_checksum
    offsets = []
    for name in (a, b):
        hits = [i for i in _find_all(image, name) if i % 32 == 0]
        assert hits, name
        offsets.append(hits[0])
    for off, name in zip(offsets, (b, a)):
        image[off:off + 11] = name
        chk = lfn_checksum(name)
        slot = off - 32
        while slot >= 0 and image[slot + 11] == 0x0F:
            image[slot + 13] = chk
            if image[slot] & 0x40:
                break
            slot -= 32


def _find_all(data: bytearray, needle: bytes):
    i = data.find(needle)
    while i >= 0:
        yield i
        i = data.find(needle, i + 1)
