"""Start-up: a command imports only what it needs (every command is a short process)."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import pytest

from blockimg import cli


@pytest.mark.parametrize("columns", ["50", "120"])
def test_help_is_argparse_s_own_for_the_terminal_width(monkeypatch, columns):
    """The formatter that skips shutil lays help out exactly as argparse's default does."""
    monkeypatch.setenv("COLUMNS", columns)
    ours = cli.build_parser()
    monkeypatch.setattr(cli, "_formatter", lambda: argparse.HelpFormatter)
    stock = cli.build_parser()
    for name in ("create", "ls", "verify"):
        a = ours._subparsers._group_actions[0].choices[name].format_help()
        b = stock._subparsers._group_actions[0].choices[name].format_help()
        assert a == b
    assert ours.format_help() == stock.format_help()
    assert max(len(ln) for ln in ours.format_help().splitlines()) > 40


def test_building_the_parser_does_not_import_shutil():
    code = ("import sys\n"
            "before = set(sys.modules)\n"
            "import blockimg.cli as c\n"
            "c.build_parser().parse_args(['ls', 'x.img'])\n"
            "print('shutil' in set(sys.modules) - before)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=dict(os.environ, COLUMNS="70")).stdout
    assert out.strip() == "False"


def _modules_added_by(code: str) -> list:
    """Top-level modules that ``code``, run in a fresh interpreter, imports (beyond the
    interpreter's own start-up)."""
    wrapped = ("import sys, json\n"
               "_before = set(sys.modules)\n"
               + code +
               "\nprint()\n"
               "print(json.dumps(sorted({m.split('.')[0] for m in set(sys.modules) - _before})))\n")
    out = subprocess.run([sys.executable, "-c", wrapped], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_commands_import_neither_dataclasses_inspect_construct_nor_numpy(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_bytes(b"a" * 100)
    d, x, y = (str(tmp_path / n) for n in ("d", "x.img", "y.tar"))
    added = _modules_added_by(
        "import blockimg.cli as c\n"
        f"c.main(['create', {d!r}, '-o', {x!r}, '--format', 'fat', '-q'])\n"
        f"c.main(['ls', {x!r}])\n"
        f"c.main(['extract', {x!r}, {str(tmp_path / 'out')!r}])\n"
        f"c.main(['create', {d!r}, '-o', {y!r}, '-q'])\n"
        f"c.main(['cat', {y!r}, 'a.txt'])\n")
    assert "blockimg" in added
    assert not {"dataclasses", "inspect", "construct", "numpy", "shutil"} & set(added)


@pytest.mark.parametrize("fmt", ["fat", "tar"])
def test_library_build_and_read_do_not_import_construct(tmp_path, fmt):
    """Reading decodes with struct (fat.structs.unpack, the tar field table)."""
    img, src = tmp_path / "a.img", tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "a long file name.txt").write_bytes(b"x" * 5000)
    added = _modules_added_by(
        "import blockimg\n"
        f"blockimg.create({str(src)!r}, {str(img)!r}, format={fmt!r})\n"
        f"with blockimg.open({str(img)!r}) as im:\n"
        "    assert im.read('d/a long file name.txt') == b'x' * 5000\n"
        "    im.fsinfo() if hasattr(im, 'fsinfo') else None\n")
    assert "blockimg" in added and "construct" not in added
