"""Text for people: names made safe to print, sizes and counts in words.

Names: control characters escaped the way GNU tar shows them.

GNU tar's default ``--quoting-style=escape``: ``\\a \\b \\t \\n \\v \\f \\r`` for
those controls, ``\\\\`` for a backslash, and a three-digit octal escape per byte
for every other character that is not printable (``\\033`` for ESC, ``\\177``
for DEL, ``\\302\\205`` for U+0085, ``\\377`` for a byte that is not UTF-8).
"Printable" is Python's :meth:`str.isprintable`, whatever the locale: besides
controls it also escapes invisible format characters (U+200B, U+202E) and
spaces other than the ASCII one, which GNU tar shows as they are in a UTF-8
locale. Machine output (``--json``) keeps names exact; only what is printed
for people goes through :func:`escape`.
"""
from __future__ import annotations

__all__ = ["escape", "human_size", "plural"]

_C_ESCAPES = {"\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v", "\f": "\\f",
              "\r": "\\r"}


def escape(text: str, *, backslash: bool = True) -> str:
    """``text`` with every character a terminal could act on escaped.

    ``backslash=False`` leaves backslashes alone: for whole messages whose names
    are already escaped (only stray control characters are escaped then).
    """
    if text.isprintable() and (not backslash or "\\" not in text):
        return text
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\" if backslash else ch)
        elif ch.isprintable():
            out.append(ch)
        elif ch in _C_ESCAPES:
            out.append(_C_ESCAPES[ch])
        else:
            out.append("".join(f"\\{b:03o}" for b in _utf8(ch)))
    return "".join(out)


def _utf8(ch: str) -> bytes:
    """The bytes of one character of a name: a byte that was not UTF-8 (kept as a
    surrogate escape) is that byte; a lone UTF-16 surrogate (a FAT long name) its
    three-byte form."""
    try:
        return ch.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return ch.encode("utf-8", "surrogatepass")


_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def human_size(n: int) -> str:
    """``512 bytes``, ``4 KiB``, ``2.3 GiB``: binary units, at most one decimal
    (whole units when exact), the way ``ls -h`` and ``du -h`` speak."""
    if n < 1024:
        return plural(n, "byte")
    for power, unit in enumerate(_UNITS, 1):
        value = n / (1 << (10 * power))
        if value < 1024 or unit == _UNITS[-1]:
            break
    exact = n % (1 << (10 * power)) == 0
    return f"{value:.0f} {unit}" if exact or value >= 100 else f"{value:.1f} {unit}"


def plural(n: int, word: str, words: str = "") -> str:
    """``1 file``, ``2 files``; ``words`` for irregular plurals (``directories``)."""
    return f"{n} {word if n == 1 else (words or word + 's')}"
