"""Which entries of an image a list of PATH arguments selects (``extract IMG DEST PATH...``).

As GNU tar with ``--wildcards``: a PATH selects the entries it matches and
everything below them. A PATH that names an entry selects it as written;
otherwise one with ``*``, ``?``, ``[...]`` or ``\\`` is a shell-style pattern in which
``*`` and ``?`` also match ``/`` (GNU tar's default, ``--wildcards-match-slash``:
``'docs/*.html'`` selects ``docs/a.html`` and ``docs/sub/b.html``), and ``\\``
makes the next character plain. A PATH that selects nothing is an error, as
"Not found in archive" is for GNU tar.
"""
from __future__ import annotations

import re
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Callable, Iterable, List, Optional, Pattern, Sequence

__all__ = ["Selection"]

_SPECIAL = "*?[\\"


class Selection:
    """The entries ``paths`` select among ``names`` (an image's paths).

    ``key`` normalises a PATH the way the image looks paths up. ``missing``
    lists the PATHs that select nothing, in the order given; calling the
    selection with an entry's path says whether it is selected.
    """

    def __init__(self, paths: Sequence[str], names: Iterable[str],
                 key: Callable[[str], str]) -> None:
        names = set(names)
        self.everything = False
        self.roots = set()               # entries selected with what is below them
        patterns: List[Pattern] = []
        self.missing: List[str] = []
        for path in paths:
            k = key(path)
            if k == "":
                self.everything = True
            elif k in names:
                self.roots.add(k)
            elif any(ch in k for ch in _SPECIAL):
                rx = re.compile(_translate(k) + r"(?:/.*)?\Z", re.DOTALL)
                if any(rx.match(name) for name in names):
                    patterns.append(rx)
                else:
                    self.missing.append(path)
            else:
                self.missing.append(path)
        self.patterns = patterns

    def __call__(self, path: str) -> bool:
        if self.everything:
            return True
        at: Optional[str] = path
        roots = self.roots
        while at:
            if at in roots:
                return True
            at = at.rpartition("/")[0]
        return any(rx.match(path) for rx in self.patterns)


def _translate(pattern: str) -> str:
    """A shell pattern as a regular expression: ``*`` any run of characters, ``?`` one
    character (both including ``/``), ``[...]`` a class (``[!...]`` or ``[^...]``
    negated), ``\\`` quoting the next character."""
    out = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "\\" and i < n:
            out.append(re.escape(pattern[i]))
            i += 1
        elif ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[":
            j = i
            if j < n and pattern[j] in "!^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:                    # no closing bracket: a plain "["
                out.append(re.escape(ch))
                continue
            body = pattern[i:j]
            i = j + 1
            negate = body[:1] in ("!", "^")
            if negate:
                body = body[1:]
            chars = re.sub(r"([\\^\[&~|])", r"\\\1", body)
            out.append(f"[{'^' if negate else ''}{chars}]")
        else:
            out.append(re.escape(ch))
    return "".join(out)
