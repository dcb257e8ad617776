"""Every code block of README.rst and docs/ runs as written.

A block is Python (run with this interpreter) or shell (run with bash -e, ``blockimg``
and ``python`` being this environment's) by its language (```python, ```sh,
``.. code-block:: python``) or, for a bare ``::`` block, by its lines: ``import`` makes
it Python, a line starting with a command (``blockimg``, ``python``, ``tools/`` …)
makes it shell. Other blocks (output, tables, JSON, a ``text`` synopsis) are not code.
A block that cannot run here starts with ``# not run: REASON``. Each document's blocks
run in order in one temporary directory holding a copy of ``fixtures/``, as a reader
would run them from the repository root.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from conftest import ROOT
from helpers.doc_blocks import PYTHON, RUN_ELSEWHERE, SHELL, Block, blocks

DOCS = [ROOT / "README.rst"] + sorted(p for p in (ROOT / "docs").iterdir()
                                      if p.suffix in (".md", ".rst"))


def _code_blocks(doc: Path) -> List[Block]:
    return [b for b in blocks(doc) if b.kind is not None]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_code_blocks_run(doc: Path, tmp_path: Path) -> None:
    """Run every code block of ``doc`` in order (not-run blocks and those run elsewhere
    apart); each must exit 0."""
    shutil.copytree(ROOT / "fixtures", tmp_path / "fixtures")
    bindir = os.path.dirname(sys.executable)
    env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
    env.pop("SOURCE_DATE_EPOCH", None)
    ran = 0
    for block in _code_blocks(doc):
        if block.not_run is not None or block.text.strip() in RUN_ELSEWHERE:
            continue
        if block.kind == PYTHON:
            cmd = [sys.executable, "-c", block.text]
        else:
            cmd = ["bash", "-e", "-o", "pipefail", "-c", block.text]
        res = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=600)
        assert res.returncode == 0, (f"{block} ({block.kind}) exited {res.returncode}\n"
                                     f"{block.text}\nstdout: {res.stdout[-2000:]}\n"
                                     f"stderr: {res.stderr[-2000:]}")
        ran += 1
    if doc.name in ("README.rst", "mirage.md"):
        assert ran, f"no runnable block found in {doc.name}: the parser is broken"


def test_not_run_blocks_say_why() -> None:
    """The blocks that are not run are few, and each gives its reason."""
    skipped = [b for d in DOCS for b in _code_blocks(d) if b.not_run is not None]
    for b in skipped:
        assert len(b.not_run) >= 10, f"{b}: '# not run:' without a reason"
    assert len(skipped) <= 10, [str(b) for b in skipped]


def test_run_elsewhere_blocks_exist() -> None:
    """The blocks another test runs are still in the README, word for word."""
    readme = {b.text.strip() for b in _code_blocks(ROOT / "README.rst")}
    assert RUN_ELSEWHERE <= readme


def test_parser_finds_blocks_of_each_kind() -> None:
    """The classifier on known blocks: Python, shell, not code, not run."""
    readme = _code_blocks(ROOT / "README.rst")
    kinds = {b.kind for b in readme}
    assert kinds == {PYTHON, SHELL}
    md = blocks(ROOT / "docs" / "trust.md")
    assert any(b.lang == "json" and b.kind is None for b in md)


def test_docs_stay_inside_the_repository() -> None:
    """README, docs, fixtures' README and --help name no path outside the checkout."""
    texts = {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8")
             for p in DOCS + [ROOT / "fixtures" / "README.rst"]}
    helps = subprocess.run([sys.executable, "-m", "blockimg", "--help"], capture_output=True,
                           text=True, check=True).stdout
    texts["blockimg --help"] = helps
    for where, text in texts.items():
        assert "../shared" not in text and "MIRAGE.md" not in text, where
