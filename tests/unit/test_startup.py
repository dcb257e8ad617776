"""Start-up: a command imports only what it needs (every command is a short process)."""
from __future__ import annotations

import os
import subprocess
import sys


def test_help_follows_columns_without_importing_shutil():
    code = ("import sys\n"
            "before = set(sys.modules)\n"
            "import blockimg.cli as c\n"
            "p = c.build_parser()\n"
            "sys.stdout.write(p._subparsers._group_actions[0].choices['create'].format_help())\n"
            "print('shutil' in set(sys.modules) - before)\n")
    for cols in (50, 120):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, env=dict(os.environ, COLUMNS=str(cols))).stdout
        lines = out.splitlines()
        assert lines[-1] == "False"
        assert max(len(ln) for ln in lines[:-1]) <= cols
        assert max(len(ln) for ln in lines[:-1]) > 40
    narrow = subprocess.run([sys.executable, "-m", "blockimg", "create", "--help"],
                            capture_output=True, text=True, check=True,
                            env=dict(os.environ, COLUMNS="50")).stdout
    assert "--no-fsync" in narrow and max(len(ln) for ln in narrow.splitlines()) <= 50
