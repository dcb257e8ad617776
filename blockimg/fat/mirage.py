"""What the Mirage FAT driver (ocaml-fat) makes of a volume: a model of its name lookup.

ocaml-fat (``src/fat_name.ml``) collects, per directory, every short entry
with the long-name slots seen since the previous short entry (deleted slots
skipped, slots sorted by order, raw UTF-16 bytes concatenated). A looked-up
name that is an upper-case legal 8.3 name is compared with short names only;
any other name is compared with those raw bytes, rebuilt as one UTF-16 unit
per byte of the name + a 0x0000 terminator + 0xFFFF padding to whole
13-unit slots. Listing shows the long name's low bytes (or the short name)
and looks each listed name up again. This module re-implements those rules
from their description (no code taken) to say which names Mirage misses.
"""
from __future__ import annotations

from .structs import ATTR_LONG_NAME, DIR_ATTR, DIR_ENTRY_SIZE, LDIR_NAME_PIECES

TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import List, Optional

__all__ = ["MRecord", "records", "find", "listed_name", "lookup_bytes", "is_legal_dos_name",
           "short_lookup"]

_LEGAL = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 !#$%&'()-@^_`{}~")
_OCAML_SPACE = b" \t\n\r\x0c"


class MRecord:
    """One short entry as ocaml-fat sees it: its byte offset, the trimmed 8.3 parts and
    the raw LFN bytes (int, bytes, bytes, bytes). (A plain class: a namedtuple made at
    import cost every FAT command ~0.8 M instructions of start-up.)"""

    __slots__ = ("offset", "base", "ext", "utf")

    def __init__(self, offset: int, base: bytes, ext: bytes, utf: bytes) -> None:
        self.offset, self.base, self.ext, self.utf = offset, base, ext, utf

    def __repr__(self) -> str:
        return f"MRecord({self.offset!r}, {self.base!r}, {self.ext!r}, {self.utf!r})"


def records(data) -> List[MRecord]:
    """ocaml-fat's view of one directory's bytes (its ``fold`` over the entries)."""
    out: List[MRecord] = []
    slots = []
    data = bytes(data)
    (n1, e1), (n2, e2), (n3, e3) = LDIR_NAME_PIECES
    for off in range(0, len(data) - DIR_ENTRY_SIZE + 1, DIR_ENTRY_SIZE):
        e = data[off:off + DIR_ENTRY_SIZE]
        if e[DIR_ATTR] == ATTR_LONG_NAME:
            if not e[0] & 0x80:
                slots.append((e[0] & 0x3F, e[n1:e1] + e[n2:e2] + e[n3:e3]))
            continue
        if e[0] == 0:
            break
        if e[0] == 0xE5:
            continue                      # deleted short entry: pending slots stay
        name = (b"\xe5" + e[1:8]) if e[0] == 0x05 else e[0:8]
        slots.sort(key=lambda s: s[0])
        out.append(MRecord(off, name.strip(_OCAML_SPACE), e[8:11].strip(_OCAML_SPACE),
                           b"".join(s[1] for s in slots)))
        slots = []
    return out


def _split_dots(name: bytes) -> List[bytes]:
    """OCaml ``Str.split`` on ``.``: one leading and one trailing dot ignored, empties kept."""
    start = 1 if name.startswith(b".") else 0
    out = []
    while start < len(name):
        pos = name.find(b".", start)
        if pos < 0:
            out.append(name[start:])
            break
        out.append(name[start:pos])
        start = pos + 1
    return out


def _legal(piece: bytes) -> bool:
    return all(c in _LEGAL or c >= 128 for c in piece)


def short_lookup(name: bytes) -> Optional[bytes]:
    """The 11-byte short name ocaml-fat looks ``name`` up by, or None when it uses the LFN.

    ocaml-fat's ``is_legal_dos_name``: ``Re.Str.split`` on ``.`` (one leading and
    one trailing dot ignored, empty pieces between dots kept, so ``A..B`` is
    three pieces and goes by its long name), then one piece of <= 8 or two of
    <= 8 and <= 3 legal characters. The one model of this rule: the writer
    refuses names it would misread, ``check`` reports them.
    """
    if name in (b".", b".."):
        return name.ljust(11)
    parts = _split_dots(name)
    if not 1 <= len(parts) <= 2 or len(parts[0]) > 8 or not _legal(parts[0]):
        return None
    ext = parts[1] if len(parts) == 2 else b""
    if len(ext) > 3 or not _legal(ext):
        return None
    return parts[0].ljust(8) + ext.ljust(3)


def is_legal_dos_name(name: bytes) -> bool:
    """ocaml-fat's test for "look this name up as 8.3" (:func:`short_lookup` is not None)."""
    return short_lookup(name) is not None


def lookup_bytes(name: bytes) -> bytes:
    """The LFN bytes ocaml-fat compares a non-8.3 name with."""
    n = len(name)
    total = max(n + 1, (n + 1 + 12) // 13 * 13)
    out = bytearray(b"\xff" * (total * 2))
    for i, c in enumerate(name):
        out[2 * i] = c
        out[2 * i + 1] = 0
    out[2 * n] = out[2 * n + 1] = 0
    return bytes(out)


def find(name: bytes, recs: List[MRecord]) -> Optional[MRecord]:
    """The first record ocaml-fat matches ``name`` with, or None."""
    if is_legal_dos_name(name):
        if name in (b".", b".."):
            base, ext = name, b""
        else:
            parts = _split_dots(name)
            base = parts[0].strip(_OCAML_SPACE)
            ext = parts[1].strip(_OCAML_SPACE) if len(parts) > 1 else b""
        for r in recs:
            if r.base == base and r.ext == ext:
                return r
        return None
    want = lookup_bytes(name)
    for r in recs:
        if r.utf == want or r.utf == name:
            return r
    return None


def listed_name(r: MRecord) -> bytes:
    """The name ocaml-fat's listing shows for a record (low bytes of the LFN, or 8.3)."""
    u = r.utf
    chars = len(u) // 2
    for i in range(chars):
        pair = u[2 * i:2 * i + 2]
        if pair in (b"\x00\x00", b"\xff\xff"):
            chars = i
            break
    z = bytes(u[2 * i] for i in range(chars))
    if z:
        return z
    return r.base + b"." + r.ext if r.ext else r.base
