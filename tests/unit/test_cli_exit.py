"""The ``blockimg`` program exits without tearing the interpreter down (``cli.run``):
its output must still be complete and its exit status the command's."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from blockimg import cli
from blockimg.api import create

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _prog(*args, **kw):
    env = dict(os.environ, PYTHONPATH=ROOT)
    kw.setdefault("stdout", subprocess.PIPE)
    return subprocess.run([sys.executable, "-m", "blockimg", *map(str, args)], env=env,
                          stderr=subprocess.PIPE, **kw)


def test_output_to_a_file_is_complete(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3000):       # far more than one stdout buffer of listing
        (src / f"file-with-a-long-name-{i:05d}.txt").write_bytes(b"x")
    img = tmp_path / "t.img"
    create(src, img, format="tar")
    assert cli.main(["ls", str(img)]) == 0
    expected = capsys.readouterr().out
    out = tmp_path / "ls.txt"
    with open(out, "wb") as f:
        res = _prog("ls", img, stdout=f)
    assert res.returncode == 0
    assert out.read_text() == expected
    assert expected.count("\n") >= 3000


@pytest.mark.parametrize("args, code, err", [
    (["--help"], 0, b""),
    (["create", "/nonexistent-source-dir", "-o", "{tmp}/x.img"], 1, b"cannot read source"),
    (["--no-such-option"], 2, b"usage:"),
    (["create"], 2, b"required"),
])
def test_exit_status_is_the_command_s(tmp_path, args, code, err):
    res = _prog(*[a.format(tmp=tmp_path) for a in args])
    assert res.returncode == code, res.stderr
    assert err in res.stderr
    if code == 0:
        assert b"usage: blockimg" in res.stdout


def test_a_closed_stdout_is_reported_not_hidden(tmp_path):
    """Output that cannot be written (a full or closed stream) is not a success."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(b"1")
    img = tmp_path / "t.img"
    create(src, img, format="tar")
    with open("/dev/full", "wb") as full:
        res = _prog("ls", img, stdout=full)
    assert res.returncode != 0
