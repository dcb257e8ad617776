"""Directory entries, writing side: the bytes of short entries, the ``.``/``..`` pair and
named children with their LFN slots (the reading side, bytes -> records, is
:mod:`.dirents`; the names themselves are :mod:`.names`)."""
from __future__ import annotations

import struct
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import List, Optional

from .structs import (ATTR_ARCHIVE, ATTR_DIRECTORY, ATTR_READ_ONLY, ATTR_VOLUME_ID,
                      DIR_ENTRY_SIZE, DOT, DOTDOT, OFFSETS, STRUCT_FORMATS, fat_datetime, field_format)

__all__ = ["pack_entry", "dot_entries", "label_entry", "NamedEntry", "children_bytes",
           "file_attr"]

#: One short entry, packed with the format of ``structs.LAYOUTS["DirEntry"]``.
_ENTRY = struct.Struct(STRUCT_FORMATS["DirEntry"])
assert _ENTRY.size == DIR_ENTRY_SIZE


_TIMES: dict = {}      # mtime -> fat_datetime(mtime): trees share few distinct times


def pack_entry(name11: bytes, attr: int, cluster: int, size: int, mtime: int,
               nt_res: int = 0) -> bytes:
    """A 32-byte short entry (same bytes as ``DirEntry.build``), times from ``mtime`` (UTC)."""
    got = _TIMES.get(mtime)
    if got is None:
        if len(_TIMES) > 4096:
            _TIMES.clear()
        got = _TIMES[mtime] = fat_datetime(mtime)
    date, tod, tenth = got
    return _ENTRY.pack(name11, attr, nt_res, tenth, tod, date, date, cluster >> 16,
                       tod, date, cluster & 0xFFFF, size)


def dot_entries(own: int, parent: int, mtime: int) -> bytes:
    """The ``.`` and ``..`` entries of a subdirectory (``parent`` 0 for the root)."""
    return (pack_entry(DOT, ATTR_DIRECTORY, own, 0, mtime)
            + pack_entry(DOTDOT, ATTR_DIRECTORY, parent, 0, mtime))


def label_entry(label: str, mtime: int) -> bytes:
    """The volume-label entry of the root directory."""
    return pack_entry(label.ljust(11).encode("ascii"), ATTR_VOLUME_ID, 0, 0, mtime)


def file_attr(mode: int, is_dir: bool) -> int:
    """DIR_Attr of an entry: directory or archive, read-only when no write bit is set."""
    attr = ATTR_DIRECTORY if is_dir else ATTR_ARCHIVE
    return attr if mode & 0o222 else attr | ATTR_READ_ONLY


class NamedEntry:
    """One child of a directory: its name, short name and LFN slots (fixed before placement).

    The LFN slots are kept as one bytes object (``lfn_bytes``). The planner makes
    these without ``__init__`` (its hot path, :func:`.layout._name_children`).
    """

    __slots__ = ("given_name", "short", "lfn_bytes", "attr", "mtime", "size", "cluster", "source")

    def __init__(self, name: str, short: bytes, lfn: List[bytes], attr: int, mtime: int,
                 size: int, source: Optional[object] = None) -> None:
        # The name is kept only when the source entry cannot give it back (memory).
        self.given_name = None if getattr(source, "name", None) == name else name
        self.short = short
        self.lfn_bytes = b"".join(lfn)
        self.attr = attr
        self.mtime = mtime
        self.size = size
        self.cluster = 0
        self.source = source

    @property
    def name(self) -> str:
        return self.source.name if self.given_name is None else self.given_name

    @property
    def slots(self) -> int:
        """Directory entries this child takes (LFN slots + the short entry)."""
        return len(self.lfn_bytes) // DIR_ENTRY_SIZE + 1

    def to_bytes(self) -> bytes:
        return self.lfn_bytes + pack_entry(self.short, self.attr, self.cluster, self.size,
                                           self.mtime)


#: A short entry in three pieces: the name, DIR_Attr .. DIR_WrtDate, the rest.
_MID = struct.Struct(field_format("DirEntry", "DIR_Attr", "DIR_WrtDate"))
_LO_SIZE = struct.Struct(field_format("DirEntry", "DIR_FstClusLO", "DIR_FileSize"))
assert _MID.size + _LO_SIZE.size + OFFSETS["DirEntry"]["DIR_Attr"] == DIR_ENTRY_SIZE
_MIDS: dict = {}                        # (attr, mtime, cluster >> 16) -> 15 bytes


def children_bytes(children) -> List[bytes]:
    """``[c.to_bytes() for c in children]`` as pieces to join (the same bytes, tested).

    Everything of a short entry between the name and the low cluster word
    depends only on the attribute, the time and the high cluster word, and is
    packed once per distinct triple.
    """
    out: List[bytes] = []
    add = out.append
    mids = _MIDS
    lo_size = _LO_SIZE.pack
    for c in children:
        cluster = c.cluster
        key = (c.attr, c.mtime, cluster >> 16)
        mid = mids.get(key)
        if mid is None:
            if len(mids) > 4096:
                mids.clear()
            got = _TIMES.get(key[1])
            if got is None:
                got = fat_datetime(key[1])
            date, tod, tenth = got
            mid = mids[key] = _MID.pack(key[0], 0, tenth, tod, date, date, key[2], tod, date)
        short = c.short
        if len(short) != 11:
            add(c.to_bytes())       # padded or cut by the struct, as pack_entry does
            continue
        lfn = c.lfn_bytes
        if lfn:
            add(lfn)
        add(short)
        add(mid)
        add(lo_size(cluster & 0xFFFF, c.size))
    return out
