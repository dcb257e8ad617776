"""Tar archives with hostile members, and what lies around an extraction's destination.

:func:`make_tar` writes members of every kind with Python's tarfile (GNU format);
:data:`hostile_member` draws members whose names and link targets are made of ``..``,
``.``, ``/`` and a few names; :func:`snapshot` records a tree but the destination, to
show that extraction wrote nothing beside it. Used by tests/unit/test_extract_safety.py
and tests/unit/test_parallel.py.
"""
from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

from hypothesis import strategies as st

def snapshot(root: Path, skip: Path) -> dict:
    """{path: bytes, ``dir`` or (``link``, target)} of everything under ``root`` but ``skip``."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        if Path(dirpath) == skip or skip in Path(dirpath).parents:
            dirs[:] = []
            continue
        for n in dirs + files:
            p = Path(dirpath) / n
            if p == skip:
                continue
            out[str(p)] = p.read_bytes() if p.is_file() and not p.is_symlink() else \
                ("link", os.readlink(p)) if p.is_symlink() else "dir"
    return out


def make_tar(path: Path, members) -> Path:
    """members: (name, kind, data_or_target); kind: file, dir, sym, hard, fifo, chr."""
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tf:
        for name, kind, arg in members:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1700000000
            if kind == "file":
                ti.size = len(arg)
                ti.mode = 0o4755 if name.endswith(".suid") else 0o644
                tf.addfile(ti, io.BytesIO(arg))
                continue
            ti.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE,
                       "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE}[kind]
            if kind in ("sym", "hard"):
                ti.linkname = arg
            ti.mode = 0o755
            tf.addfile(ti)
    return path


_part = st.sampled_from(["a", "b", "..", ".", "", "c.txt"])
_path = st.lists(_part, min_size=1, max_size=4).map("/".join)
_target = st.one_of(_path, _path.map(lambda p: "/" + p))
#: (name, kind, target) of a file, directory, symlink or hard link (a file's bytes are
#: made from the target by the test).
hostile_member = st.tuples(_path, st.sampled_from(["file", "dir", "sym", "hard"]), _target)
