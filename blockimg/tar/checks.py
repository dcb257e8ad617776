"""Structural checks of an opened tar image, and the Mirage driver's rules.

``check(image)`` lists what readers disagree on or refuse; with
``target="mirage"`` it adds every rule of ``MIRAGE.md`` (tar) the image
breaks: two zero blocks at the end, octal numbers only, extended payloads
of at most 512 bytes, no two ``x`` headers in a row, directories named with
a trailing ``/`` before their contents, only regular files carry content,
and a length that 4096-byte-sector devices can mount.
"""
from __future__ import annotations

TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Dict, List

from ..read.image import shorten
from ..quoting import escape
from .options import MIRAGE_PAD, MIRAGE_RECORD_LIMIT
from .reader import TarImage

__all__ = ["check"]


def check(image: TarImage, *, target: str = "generic") -> List[str]:
    """Problems found, each naming the byte offset (or path) and the rule.

    One pass over the members (:meth:`TarImage.each_member`): none is kept, so a
    check of many entries needs little more memory than the image's index.
    """
    problems = [f"byte {off}: {msg}" for off, msg in image.notes]
    problems += [f"'{escape(name)}': not extracted: {why}" for name, why in image.unsafe_names]
    general: List[str] = []
    mirage = _Mirage(image) if target == "mirage" else None

    def visit(m) -> None:
        if m.name.startswith("/"):
            general.append(f"byte {m.offset}: {m.name!r}: absolute name (readers store it "
                           "relative)")
        if m.note:
            general.append(f"byte {m.offset}: {m.name!r}: {m.note}")
        if m.size and m.kind not in ("file", "other") and m.typeflag != b"D":
            general.append(f"byte {m.offset}: {m.name!r}: a {m.kind} entry with {m.size} "
                           "bytes of data (Python's tarfile does not skip it; GNU tar and "
                           "Mirage do)")
        if mirage is not None:
            mirage.visit(m)

    image.each_member(visit)
    problems += general
    if mirage is not None:
        problems += mirage.out
    return problems


class _Mirage:
    """The Mirage rules, member by member (``out``: what breaks them, in order)."""

    def __init__(self, image: TarImage) -> None:
        out: List[str] = []
        size = image.device.size
        if size % MIRAGE_PAD:
            out.append(f"image length {size} is not a multiple of {MIRAGE_PAD}: Mirage mounts "
                       f"it on 512-byte-sector devices only (warning)")
        if image.end_of_archive is None:
            out.append("the archive does not end with two zero blocks: Mirage fails to "
                       "connect")
        self.out = out
        self.nodes: Dict[tuple, int] = {}        # (parent node, component) -> node
        self.seen: Dict[int, bool] = {}          # node of a Mirage key -> is a directory
        self.has_children: set = set()           # nodes

    def visit(self, m) -> None:
        out = self.out
        seen = self.seen
        has_children = self.has_children
        where = f"byte {m.offset}: {m.name!r}"
        for field in m.base256:
            out.append(f"{where}: {field} is a GNU base-256 number: Mirage reads octal only "
                       "and fails to mount")
        prev = None
        for ext, off, length in m.extended:
            if length > MIRAGE_RECORD_LIMIT:
                out.append(f"byte {off}: {ext!r} payload of {length} bytes for {m.name!r}: "
                           f"Mirage asserts at most {MIRAGE_RECORD_LIMIT} and fails to mount")
            if ext == "x" and prev == "x":
                out.append(f"byte {off}: two 'x' headers in a row: Mirage reads the second as "
                           "the entry itself")
            prev = ext
        if m.kind in ("symlink", "hardlink", "other"):
            out.append(f"{where}: a {m.kind} entry: Mirage reads it as an empty file")
        name = m.name
        if name.startswith("./"):
            name = name[2:]
        elif name.startswith("/"):
            name = name[1:]
        if not name:
            return
        is_dir = name.endswith("/")
        parts = [p for p in name.split("/") if p]
        # Paths as nodes of a tree ((parent node, component) -> node), so that a name of
        # many components costs time in proportion to its length, not to its square.
        nodes = self.nodes
        node = 0
        inside = None
        for i, part in enumerate(parts):
            if i:
                has_children.add(node)
                if inside is None and seen.get(node) is False:
                    inside = i
            node = nodes.setdefault((node, part), len(nodes) + 1)
        if inside is not None:
            anc = shorten("/".join(parts[:inside]))
            out.append(f"{where}: inside {anc!r}, which Mirage holds as a file (a file, "
                       "or a directory header without a trailing '/'): connect crashes")
        if is_dir and node in has_children:
            out.append(f"{where}: directory comes after entries inside it: Mirage empties it")
        seen[node] = is_dir
