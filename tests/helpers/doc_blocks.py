"""The literal blocks of README.rst and docs/, and which are code (tests/unit/test_docs.py
runs them; tests/unit/test_install.py runs the README's install command).

A block is Python or shell by its language (```python, ```sh, ``.. code-block:: python``)
or, for a bare ``::`` block, by its lines: ``import`` makes it Python, a line starting
with a command (``blockimg``, ``python``, ``tools/`` …) makes it shell. Other blocks
(output, tables, JSON, a ``text`` synopsis) are not code. A block that cannot run here
starts with ``# not run: REASON``.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import List, NamedTuple, Optional

from conftest import ROOT

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
