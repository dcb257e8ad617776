"""The volumes of a disk, as the command line names them.

A VOLUME is ``WHAT[,key=value...]``. ``WHAT`` is an existing image file, a
source directory (built into the partition, tar by default), or
``empty:SIZE`` (zeroed space, e.g. a writable area). Keys: ``name`` (the
partition's name; default: the file or directory name, or ``empty``),
``format`` (``tar``/``fat``), ``target``, ``sector-size``, ``align``,
``size``, ``free`` and ``fat-type`` for a source directory, as
``blockimg create`` takes them. Paths containing commas are not supported.
"""
from __future__ import annotations

import os
import stat
from typing import Dict, List, Optional, Sequence

from ..errors import InvalidInput
from ..record import record
from ..units import parse_size

__all__ = ["Volume", "parse_volume", "parse_volumes"]

_SIZE_KEYS = {"sector-size": "sector_size", "align": "align", "size": "size", "free": "free"}
_TEXT_KEYS = {"target": "target", "fat-type": "fat_type"}


@record(frozen=True)
class Volume:
    """One partition's content: ``kind`` ``"image"``, ``"source"`` or ``"empty"``."""

    kind: str
    name: str
    path: Optional[str] = None
    size: int = 0
    format: Optional[str] = None
    options: tuple = ()        # ((key, value), ...) for a source's format options

    def format_options(self) -> Dict[str, object]:
        return dict(self.options)


def parse_volume(text: str) -> Volume:
    """One VOLUME argument; InvalidInput naming the argument and what is wrong."""
    what, *pairs = text.split(",")
    keys: Dict[str, str] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise InvalidInput(f"{pair!r} is not key=value", path=text, rule="VOLUME syntax")
        if key in keys:
            raise InvalidInput(f"{key} given twice", path=text, rule="VOLUME syntax")
        keys[key] = value
    known = {"name", "format"} | set(_SIZE_KEYS) | set(_TEXT_KEYS)
    unknown = sorted(set(keys) - known)
    if unknown:
        raise InvalidInput(f"unknown key {', '.join(unknown)} (have: {', '.join(sorted(known))})",
                           path=text, rule="VOLUME syntax")
    if what.startswith("empty:"):
        kind, path = "empty", None
        size = parse_size(what[len("empty:"):])
        if size <= 0 or size % 512:
            raise InvalidInput(f"empty space of {size} bytes: must be a positive multiple of "
                               "512", path=text, rule="whole sectors")
        default_name = "empty"
    else:
        path, size = what, 0
        try:
            st = os.stat(path)
        except OSError as e:
            raise InvalidInput(f"cannot use it: {e.strerror}", path=path,
                               rule="VOLUME is an image file, a directory or empty:SIZE") \
                from None
        if stat.S_ISDIR(st.st_mode):
            kind = "source"
        elif stat.S_ISREG(st.st_mode):
            kind, size = "image", st.st_size
            if size == 0 or size % 512:
                raise InvalidInput(f"an image of {size} bytes is not a positive multiple of "
                                   "512", path=path, rule="whole sectors")
        else:
            raise InvalidInput("is neither an image file nor a directory", path=path,
                               rule="VOLUME is an image file, a directory or empty:SIZE")
        default_name = os.path.basename(os.path.normpath(path)).split(".")[0] or "volume"
    options = []
    if kind != "source":
        extra = sorted(set(keys) - {"name"})
        if extra:
            raise InvalidInput(f"{', '.join(extra)} only apply to a source directory",
                               path=text, rule="VOLUME syntax")
    else:
        for key, value in keys.items():
            if key in _SIZE_KEYS:
                options.append((_SIZE_KEYS[key], parse_size(value)))
            elif key in _TEXT_KEYS:
                options.append((_TEXT_KEYS[key], value))
    fmt = keys.get("format")
    if fmt is not None and fmt not in ("tar", "fat"):
        raise InvalidInput(f"format {fmt!r}: tar or fat", path=text, rule="VOLUME syntax")
    name = keys.get("name", default_name)
    if not name or len(name.encode("utf-16-le")) > 72 or "\0" in name:
        raise InvalidInput(f"partition name {name!r}: 1 to 36 characters", path=text,
                           rule="GPT partition names")
    return Volume(kind, name, path, size, fmt or ("tar" if kind == "source" else None),
                  tuple(sorted(options)))


def parse_volumes(texts: Sequence[str]) -> List[Volume]:
    """Every VOLUME; default names made unique (``empty``, ``empty2`` ...), every problem
    reported at once."""
    volumes, problems = [], []
    for text in texts:
        try:
            volumes.append(parse_volume(text))
        except InvalidInput as e:
            problems.append(str(e))
    if problems:
        raise InvalidInput("; ".join(problems), rule="VOLUME")
    if not volumes:
        raise InvalidInput("no VOLUME given", rule="VOLUME")
    seen: Dict[str, int] = {}
    out = []
    for v, text in zip(volumes, texts):
        explicit = any(p.startswith("name=") for p in text.split(",")[1:])
        n = seen.get(v.name, 0) + 1
        seen[v.name] = n
        if n > 1:
            if explicit:
                raise InvalidInput(f"partition name {v.name!r} given twice", path=text,
                                   rule="partition names are unique")
            v = Volume(v.kind, f"{v.name}{n}", v.path, v.size, v.format, v.options)
        out.append(v)
    return out
