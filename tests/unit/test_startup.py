"""Start-up: a command imports only what it needs (every command is a short process)."""
from __future__ import annotations

import argparse
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
    monkeypatch.setattr(cli, "_Formatter", argparse.HelpFormatter)
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


def test_commands_import_neither_dataclasses_inspect_construct_nor_numpy(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_bytes(b"a" * 100)
    code = ("import sys\n"
            "before = set(sys.modules)\n"
            "import blockimg.cli as c\n"
            f"c.main(['create', {str(tmp_path / 'd')!r}, '-o', {str(tmp_path / 'x.img')!r},"
            " '--format', 'fat', '-q'])\n"
            f"c.main(['ls', {str(tmp_path / 'x.img')!r}])\n"
            f"c.main(['extract', {str(tmp_path / 'x.img')!r}, {str(tmp_path / 'out')!r}])\n"
            f"c.main(['create', {str(tmp_path / 'd')!r}, '-o', {str(tmp_path / 'y.tar')!r},"
            " '-q'])\n"
            f"c.main(['cat', {str(tmp_path / 'y.tar')!r}, 'a.txt'])\n"
            "print()\n"
            "print(sorted(m for m in ('dataclasses', 'inspect', 'construct', 'numpy')"
            " if m in set(sys.modules) - before))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
