"""``blockimg.toml``: the volumes (and the disk holding them) that ``blockimg build`` makes.

Sans-I/O: :func:`parse` takes the config's text and directory and returns a
frozen :class:`BuildPlan`, or raises :class:`~blockimg.errors.InvalidInput`
(:class:`~blockimg.errors.Problems` for several) naming ``FILE:LINE``, the
table and the key of every problem at once. Paths are made absolute relative
to the config's directory; nothing is read or written here (the build itself
is :mod:`blockimg.deploy.build`).

One ``[volumes.NAME]`` table per volume, with ``create``'s options as keys
(``source``, ``format``, ``target``, ``platform``, ``size``, ``free`` ...;
``output`` defaults to ``NAME.img``). A volume without ``source`` is empty
space of ``size`` bytes, only for the disk. ``[disk]`` takes ``volumes``
(names, in partition order), ``output`` (default ``disk.img``), ``table``,
``align``, ``platform``, ``device-name`` and ``secret``.
"""
from __future__ import annotations

import datetime
import os
import re
import sys
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Tuple

from ..errors import InvalidInput, Problems
from ..record import record
from ..units import parse_size

if sys.version_info >= (3, 11):
    import tomllib
else:                                  # pragma: no cover - Python 3.10 and older
    import tomli as tomllib

__all__ = ["VolumeSpec", "DiskSpec", "BuildPlan", "parse", "DEFAULT_NAME"]

DEFAULT_NAME = "blockimg.toml"

#: Format options (config key -> create's keyword); sizes parse "64M" or take integers.
_SIZES = {"size": "size", "free": "free", "sector-size": "sector_size", "align": "align"}
_TEXTS = {"target": "target", "label": "label"}
_FAT_ONLY = ("free", "fat-type", "label", "volume-id")
_VOLUME_KEYS = ("source", "format", "output", "platform", "device-name", "secret", "manifest",
                "git-ref", "git-path", "exclude", "exclude-vcs", "mtime", "keep-links",
                "skip-special", "fat-type", "volume-id") + tuple(_SIZES) + tuple(_TEXTS)
_EMPTY_KEYS = ("size",)
_DISK_KEYS = ("volumes", "output", "table", "align", "platform", "device-name", "secret")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,35}$")


@record(frozen=True)
class VolumeSpec:
    """One volume: ``source`` None means empty space of ``size`` bytes (disk only)."""

    name: str
    source: Optional[str]
    output: Optional[str]
    format: Optional[str] = None
    options: Tuple[Tuple[str, object], ...] = ()    # create's format keywords
    platform: Optional[str] = None
    device_name: Optional[str] = None
    secret: bool = False
    manifest: Optional[str] = None
    git_ref: Optional[str] = None
    git_path: Optional[str] = None
    exclude: Tuple[str, ...] = ()
    exclude_vcs: bool = False
    keep_links: bool = False
    skip_special: bool = False
    mtime: Optional[int] = None
    size: int = 0                                   # empty space only


@record(frozen=True)
class DiskSpec:
    output: str
    volumes: Tuple[str, ...]
    table: str = "mbr"
    align: int = 1 << 20
    platform: Optional[str] = None
    device_name: Optional[str] = None
    secret: bool = False


@record(frozen=True)
class BuildPlan:
    config: str
    volumes: Tuple[VolumeSpec, ...]
    disk: Optional[DiskSpec] = None

    def outputs(self) -> List[str]:
        """Every file the build writes, in order (images, manifests, the disk)."""
        out = []
        for v in self.volumes:
            out += [p for p in (v.output, v.manifest) if p]
        return out + ([self.disk.output] if self.disk else [])


def _line_of(text: str, section: Tuple[str, ...], key: Optional[str]) -> Optional[int]:
    """The 1-based line of ``key`` in the table ``section`` (or of the table's header)."""
    lines = text.splitlines()
    parts = [rf"\s*(?:{re.escape(s)}|\"{re.escape(s)}\"|'{re.escape(s)}')\s*" for s in section]
    header = re.compile(r"^\s*\[" + r"\.".join(parts) + r"\]\s*(#.*)?$")
    any_header = re.compile(r"^\s*\[")
    start = -1 if not section else \
        next((i for i, line in enumerate(lines) if header.match(line)), None)
    if start is None:
        return None
    if key is None:
        return start + 1 if start >= 0 else None
    assign = re.compile(rf"^\s*(?:{re.escape(key)}|\"{re.escape(key)}\"|'{re.escape(key)}')"
                        r"\s*=")
    for i in range(start + 1, len(lines)):
        if any_header.match(lines[i]):
            break
        if assign.match(lines[i]):
            return i + 1
    return start + 1 if start >= 0 else None


class _Collector:
    """Problems of one config, each naming FILE:LINE, the table and the key."""

    def __init__(self, config: str, text: str) -> None:
        self.config, self.text, self.problems = config, text, []

    def add(self, section: Tuple[str, ...], key: Optional[str], message: str) -> None:
        line = _line_of(self.text, section, key)
        where = self.config + (f":{line}" if line else "")
        table = "[" + ".".join(section) + "] " if section else ""
        self.problems.append(InvalidInput(f"{table}{key + ': ' if key else ''}{message}",
                                          path=where, rule="build config"))


def _size(c: _Collector, section, key: str, value) -> Optional[int]:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        c.add(section, key, f"a size is a number of bytes or a string such as \"64M\", "
                            f"not {_type(value)}")
        return None
    if isinstance(value, int):
        return value
    try:
        return parse_size(value)
    except InvalidInput as e:
        c.add(section, key, e.message)
        return None


def _type(value) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "a table"}.get(type(value), type(value).__name__)


def _want(c: _Collector, section, key: str, value, kind: type) -> bool:
    if type(value) is not kind:
        c.add(section, key, f"must be {_type(kind())}, not {_type(value)}")
        return False
    return True


def _mtime(c: _Collector, section, value) -> Optional[int]:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return int(value.timestamp())
    if type(value) is int:
        return value
    c.add(section, "mtime", f"seconds since 1970 or a date-time such as 2024-05-01T12:00:00Z, "
                            f"not {_type(value)}")
    return None


def _path(base: str, value: str) -> str:
    return os.path.normpath(os.path.join(base, os.path.expanduser(value)))


class _Keys:
    """One table's keys, read with their checks: each problem goes to the collector (naming
    the key's line) and turns ``ok`` False."""

    def __init__(self, c: _Collector, section: Tuple[str, ...], table: dict) -> None:
        self.c, self.section, self.table, self.ok = c, section, table, True

    def bad(self, key: Optional[str], message: str) -> None:
        self.c.add(self.section, key, message)
        self.ok = False

    def typed(self, key: str, kind: type):
        """The key's value when it is of ``kind`` (None when absent or not)."""
        if key not in self.table:
            return None
        value = self.table[key]
        if type(value) is not kind:
            self.bad(key, f"must be {_type(kind())}, not {_type(value)}")
            return None
        return value

    def size(self, key: str, default: Optional[int] = None) -> Optional[int]:
        if key not in self.table:
            return default
        value = _size(self.c, self.section, key, self.table[key])
        self.ok &= value is not None
        return value

    def choice(self, key: str, default, allowed: Tuple, what: str):
        value = self.table.get(key, default)
        if value not in allowed:
            self.bad(key, f"{value!r}: {what}")
            return None
        return value

    def platform(self) -> Optional[str]:
        from . import platforms
        value = self.table.get("platform")
        if isinstance(value, str) and value not in platforms.NAMES:
            self.bad("platform", f"{value!r}: one of {', '.join(platforms.NAMES)}")
            return None
        return value if isinstance(value, str) else None

    def device_name(self, platform: Optional[str], output: str) -> Optional[str]:
        """``device-name``, checked against ``platform``'s naming rule (or the name the
        output gives when it is not set)."""
        from . import platforms
        name = self.table.get("device-name")
        name = name if isinstance(name, str) else None
        if platform is not None:
            for p in platforms.name_problems(platforms.get(platform),
                                             name or platforms.default_device_name(output)):
                self.c.add(self.section, "device-name" if name else "output", p)
        return name


_STRING_KEYS = ("source", "format", "output", "platform", "device-name", "manifest", "git-ref",
                "git-path", "fat-type") + tuple(_TEXTS)
_FLAG_KEYS = ("secret", "exclude-vcs", "keep-links", "skip-special")


def _volume(c: _Collector, name: str, table, base: str) -> Optional[VolumeSpec]:
    section = ("volumes", name)
    if not isinstance(table, dict):
        c.add(("volumes",), name, f"must be a table ([volumes.{name}]), not {_type(table)}")
        return None
    if not _NAME.match(name):
        c.add(section, None, f"volume name {name!r}: 1 to 36 letters, digits, '_', '.' or '-'")
    k = _Keys(c, section, table)
    _unknown_volume_keys(k)
    if "source" not in table:
        return _empty_volume(k, name)
    for key in _STRING_KEYS:
        if not (key == "fat-type" and type(table.get(key)) is int):
            k.typed(key, str)
    for key in _FLAG_KEYS:
        k.typed(key, bool)
    exclude = _exclude(k)
    fmt = k.choice("format", "tar", ("tar", "fat"), "tar or fat")
    for key in _FAT_ONLY if fmt == "tar" else ():
        if key in table:
            k.bad(key, "applies to format = \"fat\" only (this volume is tar)")
    options = _format_options(k)
    platform = k.platform()
    if "git-path" in table and "git-ref" not in table:
        k.bad("git-path", "needs git-ref")
    mtime = _mtime(c, section, table["mtime"]) if "mtime" in table else None
    if not k.ok:
        return None
    output = _path(base, table.get("output", f"{name}.img"))
    return VolumeSpec(
        name, _path(base, table["source"]), output, fmt, tuple(sorted(options.items())),
        platform, k.device_name(platform, output), table.get("secret", False),
        _path(base, table["manifest"]) if "manifest" in table else None,
        table.get("git-ref"), table.get("git-path"), tuple(exclude),
        table.get("exclude-vcs", False), table.get("keep-links", False),
        table.get("skip-special", False), mtime)


def _unknown_volume_keys(k: _Keys) -> None:
    empty = "source" not in k.table
    allowed = _EMPTY_KEYS if empty else _VOLUME_KEYS
    for key in k.table:
        if key not in allowed:
            k.c.add(k.section, key, "unknown key (a volume without source is empty space and "
                                    "takes only size)" if empty and key in _VOLUME_KEYS else
                    f"unknown key (have: {', '.join(sorted(allowed))})")


def _empty_volume(k: _Keys, name: str) -> VolumeSpec:
    """A volume without ``source``: empty space of ``size`` bytes."""
    size = k.size("size")
    if "size" not in k.table:
        k.bad(None, "no source and no size: give source (a directory, tar archive or git "
                    "repository), or size for empty space")
    elif size is not None and (size <= 0 or size % 512):
        k.bad("size", f"empty space of {size} bytes: must be a positive multiple of 512")
    return VolumeSpec(name, None, None, size=size or 0)


def _exclude(k: _Keys) -> List[str]:
    exclude = k.table.get("exclude", [])
    if isinstance(exclude, str):
        exclude = [exclude]
    if not isinstance(exclude, list) or not all(isinstance(x, str) for x in exclude):
        k.bad("exclude", "must be a pattern or an array of patterns")
        return []
    return exclude


def _format_options(k: _Keys) -> Dict[str, object]:
    """``create``'s format keywords from the volume's keys."""
    table = k.table
    options: Dict[str, object] = {kw: k.size(key) for key, kw in _SIZES.items() if key in table}
    options.update((kw, table[key]) for key, kw in _TEXTS.items() if key in table)
    if "target" in table:
        k.choice("target", None, ("mirage", "generic"), "mirage or generic")
    if "fat-type" in table:
        ft = k.choice("fat-type", None, (12, 16, 32, "12", "16", "32", "auto"),
                      "12, 16, 32 or \"auto\"")
        if ft is not None:
            options["fat_type"] = ft if ft == "auto" else int(ft)
    if "volume-id" in table:
        k.typed("volume-id", int)
        options["volume_id"] = table["volume-id"]
    return options


def _disk(c: _Collector, table, volumes: Dict[str, Optional[VolumeSpec]],
          base: str) -> Optional[DiskSpec]:
    section = ("disk",)
    if not isinstance(table, dict):
        c.add((), "disk", f"must be a table ([disk]), not {_type(table)}")
        return None
    for key in table:
        if key not in _DISK_KEYS:
            c.add(section, key, f"unknown key (have: {', '.join(sorted(_DISK_KEYS))})")
    k = _Keys(c, section, table)
    names = _disk_volumes(k, volumes)
    table_kind = k.choice("table", "mbr", ("mbr", "gpt"), "mbr or gpt")
    align = k.size("align", 1 << 20)
    output = k.typed("output", str)
    for key in ("platform", "device-name"):
        k.typed(key, str)
    k.typed("secret", bool)
    platform = k.platform()
    output = _path(base, output or "disk.img")
    device_name = k.device_name(platform, output)
    secret = table.get("secret") is True or any(
        volumes[n] is not None and volumes[n].secret for n in names if n in volumes)
    return DiskSpec(output, tuple(names), table_kind or "mbr", align or 0,
                    platform, device_name, secret)


def _disk_volumes(k: _Keys, volumes: Dict[str, Optional[VolumeSpec]]) -> List[str]:
    """``[disk] volumes``: names of volumes, each once, in partition order."""
    names = k.table.get("volumes")
    if names is None:
        k.bad(None, "no volumes: give volumes = [\"NAME\", ...] in partition order")
        return []
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        k.bad("volumes", "must be a non-empty array of volume names")
        return []
    for n in sorted({n for n in names if names.count(n) > 1}):
        k.bad("volumes", f"{n!r} listed twice")
    for n in names:
        if n not in volumes:
            k.bad("volumes", f"no [volumes.{n}] table")
    return names


def _load(text: str, config: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        # "Invalid value (at line 3, column 8)": the line leads, as for every other problem.
        m = re.search(r"at line (\d+)", str(e))
        raise InvalidInput(f"not valid TOML: {e}", path=config + (f":{m.group(1)}" if m else ""),
                           rule="TOML syntax") from None


def _top_level(c: _Collector, doc: dict) -> dict:
    """The ``[volumes]`` tables; every other top-level key is a problem."""
    for key, value in doc.items():
        if key not in ("volumes", "disk"):
            nested = isinstance(value, dict)
            c.add((key,) if nested else (), None if nested else key,
                  "unknown (have: [volumes.NAME], [disk])")
    raw = doc.get("volumes", {})
    if not isinstance(raw, dict) or not raw:
        c.add((), "volumes", "no volumes: give at least one [volumes.NAME] table")
        return {}
    return raw


def _outputs_problems(c: _Collector, plan: BuildPlan) -> None:
    """An output written twice, or inside a source directory."""
    seen = set()
    for path in plan.outputs():
        if path in seen:
            c.problems.append(InvalidInput("written twice (two outputs of the same name)",
                                           path=path, rule="build config"))
        seen.add(path)
    for v in plan.volumes:
        if v.source is None or v.git_ref is not None:
            continue
        for path in plan.outputs():
            if os.path.commonpath([v.source, path]) == v.source:
                c.add(("volumes", v.name), "source",
                      f"{path} would be written inside this source directory (and stored "
                      "in the next build); put the outputs outside it")


def parse(text: str, *, config: str = DEFAULT_NAME, base: str = ".") -> BuildPlan:
    """The build ``text`` (a ``blockimg.toml`` named ``config``) describes; relative paths
    are taken from ``base``. Raises InvalidInput/Problems naming every problem's line."""
    doc = _load(text, config)
    c = _Collector(config, text)
    raw = _top_level(c, doc)
    specs = {name: _volume(c, name, table, base) for name, table in raw.items()}
    disk = _disk(c, doc["disk"], specs, base) if "disk" in doc else None
    in_disk = set(disk.volumes) if disk else set()
    for name, spec in specs.items():
        if spec is not None and spec.source is None and name not in in_disk:
            c.add(("volumes", name), None, "empty space (no source) only exists in the disk: "
                                           "list it in [disk] volumes")
    plan = BuildPlan(config, tuple(s for s in specs.values() if s is not None), disk)
    if not c.problems:
        _outputs_problems(c, plan)
    if len(c.problems) > 1:
        raise Problems(c.problems, what=config)
    InvalidInput.raise_all(c.problems)
    return plan
