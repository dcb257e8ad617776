"""Choosing a backend by URL scheme or name, including third-party plugins.

``open_device("site.img")`` opens a file; ``"mmap:site.img"`` maps it;
``"file:/dev/sdb"`` opens a device node; ``"partition:2:disk.img"`` one partition
(a number, or a GPT partition's name) of a partitioned disk image. A plugin registers a factory in the
``blockimg.backends`` entry-point group under its scheme::

    [options.entry_points]
    blockimg.backends =
        nbd = blockimg_nbd:open_nbd

and the factory is called as ``factory(location, writable=..., sector_size=...)``
returning a :class:`~blockimg.block.base.BlockDevice`.
"""
from __future__ import annotations

import os
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Callable, Dict, Optional, Union

from ..errors import InvalidInput
from .base import BlockDevice
from .file import FileDevice

__all__ = ["open_device", "plugin_scheme", "backend_names", "ENTRY_POINT_GROUP"]

ENTRY_POINT_GROUP = "blockimg.backends"
if TYPE_CHECKING:
    Factory = Callable[..., BlockDevice]
else:   # (a name for annotations; typing not imported)
    Factory = 'Callable[..., BlockDevice]'

_BUILTIN: Dict[str, Factory] = {
    "file": lambda loc, writable=False, sector_size=512: FileDevice(
        loc, writable=writable, sector_size=sector_size),
    "mmap": lambda loc, writable=False, sector_size=512: _mmap_device()(
        loc, writable=writable, sector_size=sector_size),
    # partition:N:DISK (or partition:NAME:DISK): one partition of an MBR/GPT disk image.
    "partition": lambda loc, writable=False, sector_size=512: _partition(loc, writable),
}


def _partition(location: str, writable: bool) -> BlockDevice:
    from ..disk.reader import open_partition, split_partition_url
    selector, disk = split_partition_url(location, writable=writable)
    return open_partition(open_device(disk), selector, disk)


def _mmap_device() -> type:
    from .mmap import MmapDevice      # (imported when asked for: the mmap module)
    return MmapDevice

_URL = r"^([a-zA-Z][a-zA-Z0-9+.-]+):(?://)?(.*)$"


def _url_match(text: str):
    """``text`` matched as ``SCHEME:REST``, else None (a plain path: without a colon
    it is one, and re is not imported, ~8 ms of start-up)."""
    if ":" not in text:
        return None
    import re
    return re.match(_URL, text)


def _plugins() -> Dict[str, object]:
    from importlib import metadata
    try:
        eps = metadata.entry_points()
        group = (eps.select(group=ENTRY_POINT_GROUP) if hasattr(eps, "select")
                 else eps.get(ENTRY_POINT_GROUP, []))  # Python 3.9
    except Exception:  # a broken installed distribution must not break blockimg
        return {}
    return {ep.name: ep for ep in group}


def backend_names() -> list:
    """Names of every backend: built-in first, then plugins."""
    return list(_BUILTIN) + sorted(n for n in _plugins() if n not in _BUILTIN)


def plugin_scheme(text: str) -> Optional[str]:
    """The plugin scheme of a ``scheme:location`` target, or None for paths and built-ins."""
    m = _url_match(text)
    if not m or os.path.exists(text) or m.group(1).lower() in _BUILTIN:
        return None
    return m.group(1).lower()


def open_device(target: Union[str, os.PathLike, BlockDevice], *, writable: bool = False,
                sector_size: int = 512, backend: Optional[str] = None) -> BlockDevice:
    """Open ``target`` (a path, ``scheme:location`` URL, or a device) as a BlockDevice."""
    if isinstance(target, BlockDevice):
        return target
    text = os.fspath(target)
    scheme = backend
    location = text
    m = _url_match(text)
    if backend is None and m and not os.path.exists(text):
        scheme, location = m.group(1).lower(), m.group(2)
    scheme = scheme or "file"
    factory = _BUILTIN.get(scheme)
    if factory is None:
        ep = _plugins().get(scheme)
        if ep is None:
            raise InvalidInput(f"no block backend named {scheme!r} (have: "
                               f"{', '.join(backend_names())})", path=text,
                               rule="unknown backend")
        factory = ep.load()
    return factory(location, writable=writable, sector_size=sector_size)
