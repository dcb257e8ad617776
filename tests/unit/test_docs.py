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
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, NamedTuple, Optional

import pytest

from conftest import ROOT

DOCS = [ROOT / "README.rst"] + sorted(p for p in (ROOT / "docs").iterdir()
                                      if p.suffix in (".md", ".rst"))
COMMANDS = ("blockimg", "python", "python3", "pip", "pytest", "sudo", "git", "cd",
            "tools/", ".venv/", "BLOCKIMG_", "MIRAGE_")
PYTHON, SHELL = "python", "sh"
NOT_RUN = "# not run:"
# Blocks run by another test, by their first line.
RUN_ELSEWHERE = {
    # the README's install command: run verbatim by tests/unit/test_install.py
    "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/blockimg create fixtures/site -o site.img",
    # the README's test command: the test suite itself (.ci/run runs it)
    "tools/test",
}


class Block(NamedTuple):
    doc: str
    line: int
    lang: Optional[str]
    text: str

    @property
    def kind(self) -> Optional[str]:
        lang = (self.lang or "").lower()
        if lang in ("python", "py", "pycon"):
            return PYTHON
        if lang in ("sh", "bash", "shell", "console"):
            return SHELL
        if lang:
            return None                       # json, text, ini …: data, not code
        lines = [ln.strip() for ln in self.text.splitlines()]
        code = [ln for ln in lines if ln and not ln.startswith("#")]
        if any(ln.startswith(("import ", "from ")) for ln in code):
            return PYTHON
        if any(ln.split()[0].startswith(COMMANDS) for ln in code):
            return SHELL
        return None

    @property
    def not_run(self) -> Optional[str]:
        first = self.text.lstrip().splitlines()[0].strip()
        if first.startswith(NOT_RUN):
            return first[len(NOT_RUN):].strip()
        return None

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}"


def blocks(path: Path) -> List[Block]:
    """The literal blocks of a Markdown (fenced) or reStructuredText (``::``) file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out: List[Block] = []
    name = path.relative_to(ROOT).as_posix()
    i = 0
    if path.suffix == ".md":
        while i < len(lines):
            m = re.match(r"^```(\S*)\s*$", lines[i])
            if m:
                j = i + 1
                while not lines[j].startswith("```"):
                    j += 1
                out.append(Block(name, i + 1, m.group(1), "\n".join(lines[i + 1:j])))
                i = j
            i += 1
        return out
    while i < len(lines):
        m = re.match(r"^\.\. code-block::\s*(\S+)", lines[i])
        if m or (lines[i].rstrip().endswith("::") and not lines[i].lstrip().startswith("..")):
            lang = m.group(1) if m else None
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            body = []
            while j < len(lines) and (not lines[j].strip() or lines[j].startswith((" ", "\t"))):
                body.append(lines[j])
                j += 1
            indent = min((len(ln) - len(ln.lstrip()) for ln in body if ln.strip()), default=0)
            text = "\n".join(ln[indent:] for ln in body).strip("\n")
            if text:
                out.append(Block(name, i + 1, lang, text))
            i = j
            continue
        i += 1
    return out


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
