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
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Sequence, Tuple

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


_WHAT = "VOLUME is an image file, a directory or empty:SIZE"


def _pairs(text: str, pairs: Sequence[str]) -> Dict[str, str]:
    """The ``key=value`` options after WHAT: known keys, each once."""
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
    return keys


def _empty(text: str, what: str) -> Tuple[str, Optional[str], int, str]:
    size = parse_size(what[len("empty:"):])
    if size <= 0 or size % 512:
        raise InvalidInput(f"empty space of {size} bytes: must be a positive multiple of "
                           "512", path=text, rule="whole sectors")
    return "empty", None, size, "empty"


def _file(path: str) -> Tuple[str, Optional[str], int, str]:
    """``(kind, path, size, default name)`` of an image file or a source directory."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise InvalidInput(f"cannot use it: {e.strerror}", path=path, rule=_WHAT) from None
    default_name = os.path.basename(os.path.normpath(path)).split(".")[0] or "volume"
    if stat.S_ISDIR(st.st_mode):
        return "source", path, 0, default_name
    if not stat.S_ISREG(st.st_mode):
        raise InvalidInput("is neither an image file nor a directory", path=path, rule=_WHAT)
    if st.st_size == 0 or st.st_size % 512:
        raise InvalidInput(f"an image of {st.st_size} bytes is not a positive multiple of "
                           "512", path=path, rule="whole sectors")
    return "image", path, st.st_size, default_name


def _format_options(text: str, kind: str, keys: Dict[str, str]) -> tuple:
    """A source's format options as sorted ``(key, value)`` pairs; other kinds take none."""
    if kind != "source":
        extra = sorted(set(keys) - {"name"})
        if extra:
            raise InvalidInput(f"{', '.join(extra)} only apply to a source directory",
                               path=text, rule="VOLUME syntax")
        return ()
    options = [(_SIZE_KEYS[k], parse_size(v)) for k, v in keys.items() if k in _SIZE_KEYS]
    options += [(_TEXT_KEYS[k], v) for k, v in keys.items() if k in _TEXT_KEYS]
    return tuple(sorted(options))


def parse_volume(text: str) -> Volume:
    """One VOLUME argument; InvalidInput naming the argument and what is wrong."""
    what, *pairs = text.split(",")
    keys = _pairs(text, pairs)
    kind, path, size, default_name = _empty(text, what) if what.startswith("empty:") \
        else _file(what)
    options = _format_options(text, kind, keys)
    fmt = keys.get("format")
    if fmt is not None and fmt not in ("tar", "fat"):
        raise InvalidInput(f"format {fmt!r}: tar or fat", path=text, rule="VOLUME syntax")
    name = keys.get("name", default_name)
    if not name or len(name.encode("utf-16-le")) > 72 or "\0" in name:
        raise InvalidInput(f"partition name {name!r}: 1 to 36 characters", path=text,
                           rule="GPT partition names")
    return Volume(kind, name, path, size, fmt or ("tar" if kind == "source" else None),
                  options)


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
