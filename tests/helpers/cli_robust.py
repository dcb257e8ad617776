"""The command line as a user runs it, for tests/unit/test_cli_robust.py and
tests/root/test_cli_robust_root.py: :func:`cli`, :func:`one_error_line`, the small
source tree and its tar image (:func:`make_source`, :func:`make_image`), and
:func:`assert_create_leaves_node`.
"""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Callable

import blockimg
from conftest import ROOT


def cli(*args, stdout=subprocess.PIPE, hook: str = "") -> subprocess.CompletedProcess:
    """``python -m blockimg ARGS`` (``hook``: Python run first, in the same process)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    argv = [sys.executable, "-m", "blockimg", *map(str, args)]
    if hook:
        argv = [sys.executable, "-c", hook + "\nimport sys\nfrom blockimg.cli import run\n"
                "sys.argv[0] = 'blockimg'\nrun()\n", *map(str, args)]
    return subprocess.run(argv, stdout=stdout, stderr=subprocess.PIPE, cwd=str(ROOT), env=env)


def one_error_line(res: subprocess.CompletedProcess) -> str:
    """The single line ``res`` printed on stderr (no traceback)."""
    err = res.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


def make_source(s: Path) -> Path:
    """The small source tree of the robustness tests at ``s`` (a name GNU tar would quote
    in patterns, ``docs/st*r``, included)."""
    (s / "docs" / "sub").mkdir(parents=True)
    (s / "docs" / "a.html").write_bytes(b"a")
    (s / "docs" / "sub" / "b.html").write_bytes(b"b")
    (s / "docs" / "c.txt").write_bytes(b"c")
    (s / "docs" / "st*r").write_bytes(b"star")
    (s / "dox").mkdir()
    (s / "dox" / "z").write_bytes(b"z")
    (s / "top.html").write_bytes(b"top")
    return s


def make_image(src: Path, img: Path) -> Path:
    """``src`` as a tar image at ``img``."""
    blockimg.create(src, img, format="tar", mtime=0)
    return img


def assert_create_leaves_node(src: Path, tmp_path: Path, kind: str, via_link: bool,
                              make: Callable[[Path], None]) -> None:
    """``create -o`` onto a ``kind`` made by ``make(node)`` (or onto a symlink to it) is
    refused with one line naming it, and leaves the node and the directory as they were."""
    node = tmp_path / "node"
    make(node)
    before = os.lstat(node)
    out = node
    if via_link:
        out = tmp_path / "link"
        out.symlink_to(node)
    res = cli("create", src, "-o", out)
    assert res.returncode == 1
    line = one_error_line(res)
    assert line.startswith(f"blockimg: error: {out}: is ")
    if kind == "directory":      # refused before the tree is read (create's early check)
        assert "is a directory; give the path of the image file to write" in line
    else:
        assert f"a {kind}, not a regular file" in line
    after = os.lstat(node)
    assert (stat.S_IFMT(after.st_mode), after.st_ino, after.st_rdev) == \
        (stat.S_IFMT(before.st_mode), before.st_ino, before.st_rdev)
    if via_link:
        assert os.readlink(out) == str(node)
    assert sorted(os.listdir(tmp_path)) == (["link"] if via_link else []) + ["node", "src"]
