"""Sans-I/O tar encoding: a source entry in, its header set out.

:func:`encode_entry` gives an entry's headers: an optional pax ``x`` header
with its records (what ustar cannot hold), then the ustar header built by
:func:`~blockimg.tar.header.build_header`. Reading is the other half of the
codec, in :mod:`blockimg.tar.decoder`.
"""
from __future__ import annotations

TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Dict, Tuple

from ..errors import InvalidInput
from ..sources.directory import Kind, SourceEntry
from .header import (LINKNAME, MTIME, NAME, SIZE, build_header, encode_pax, octal_fits,
                     padded, split_ustar, width)
from .options import MIRAGE_RECORD_LIMIT

__all__ = ["encode_entry", "one_header", "pad_entry", "PAX_NAME"]

PAX_NAME = b"././@PaxHeader"

_TYPEFLAG = {Kind.FILE: b"0", Kind.DIR: b"5", Kind.SYMLINK: b"2", Kind.HARDLINK: b"1"}
_NAME_MAX = width(NAME)
_LINK_MAX = width(LINKNAME)
_SIZE_WIDTH = width(SIZE)
_MTIME_WIDTH = width(MTIME)
_MTIME_MAX = 8 ** (_MTIME_WIDTH - 1) - 1
# The common-case tests below compare with these limits in line (octal_fits' rule, without
# its call: four a member).
_SIZE_LIMIT = 8 ** (_SIZE_WIDTH - 1)
_MTIME_LIMIT = _MTIME_MAX + 1


def _refuse(entry: SourceEntry, message: str, rule: str) -> InvalidInput:
    return InvalidInput(message, path=entry.path, rule=rule)


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _utf8(entry: SourceEntry, raw: bytes, what: str) -> None:
    if not _is_utf8(raw):
        raise _refuse(entry, f"{what} is not valid UTF-8", "Mirage target: names must be "
                      "valid UTF-8 (use --target generic to store raw bytes)")


def encode_entry(entry: SourceEntry, *, mirage: bool) -> bytes:
    """The header blocks of ``entry``: [pax ``x`` header + records] + ustar header.

    Values ustar cannot hold go to pax records (sorted by key). With
    ``mirage`` set, what the Mirage driver cannot read is refused with an
    InvalidInput naming the file and the rule.
    """
    kind = entry.kind
    name = entry.path_bytes + b"/" if kind is Kind.DIR else entry.path_bytes
    size = entry.size if kind is Kind.FILE else 0
    mtime = int(entry.mtime)
    link = b""
    if entry.link_target is not None and (kind is Kind.SYMLINK or kind is Kind.HARDLINK):
        link = entry.link_target.encode("utf-8", "surrogateescape")
    if len(name) <= _NAME_MAX and len(link) <= _LINK_MAX and 0 <= size < _SIZE_LIMIT \
            and 0 <= mtime < _MTIME_LIMIT and (not mirage or (name + link).isascii()):
        # The common case: one ustar header, nothing to refuse or to put in records.
        return build_header(name, entry.mode & 0o7777, size, mtime, _TYPEFLAG[kind], link)
    if mirage:
        _utf8(entry, name, "name")
        if link:
            _utf8(entry, link, "link target")
    records: Dict[bytes, bytes] = {}
    prefix, hname, hlink = _path_fields(name, link, records)
    size, mtime = _number_fields(entry, size, mtime, mirage, records)
    header = build_header(hname, entry.mode & 0o7777, size, mtime, _TYPEFLAG[kind], hlink,
                          prefix)
    if not records:
        return header
    payload = encode_pax(records)
    if mirage and len(payload) > MIRAGE_RECORD_LIMIT:
        raise _refuse(entry, f"needs a {len(payload)}-byte pax record (path of {len(name)} "
                      f"bytes); the Mirage tar driver reads at most {MIRAGE_RECORD_LIMIT} "
                      "(paths up to 502 bytes)", "Mirage target: extended header payload "
                      f"<= {MIRAGE_RECORD_LIMIT} bytes")
    xhdr = build_header(PAX_NAME, 0o644, len(payload), 0, b"x")
    return xhdr + payload + bytes(padded(len(payload)) - len(payload)) + header


def one_header(entry: SourceEntry, mirage: bool) -> bool:
    """Is ``entry`` a file or directory whose headers are one ustar header, with nothing
    to refuse or to put in pax records (:func:`encode_entry`'s common case)?"""
    kind = entry.kind
    if kind is not Kind.FILE and kind is not Kind.DIR:
        return False
    path = entry.path
    # An ASCII path is its own UTF-8 bytes: no need to encode it to measure it. (< : a
    # directory's name takes a "/".)
    return (len(path) < _NAME_MAX and path.isascii() or len(entry.path_bytes) < _NAME_MAX
            and (not mirage or entry.path_bytes.isascii())) \
        and 0 <= entry.size < _SIZE_LIMIT and 0 <= entry.mtime < _MTIME_LIMIT


def _path_fields(name: bytes, link: bytes,
                 records: Dict[bytes, bytes]) -> Tuple[bytes, bytes, bytes]:
    """``(prefix, name, linkname)`` fields of ``name`` and ``link``; what they cannot
    hold goes to ``records`` (``path``, ``linkpath``, ``hdrcharset``)."""
    split = split_ustar(name)
    if split is None:
        records[b"path"] = name
        prefix, hname = b"", name[:_NAME_MAX]
    else:
        prefix, hname = split
    hlink = link
    if len(link) > _LINK_MAX:
        records[b"linkpath"] = link
        hlink = link[:_LINK_MAX]
    if records and not _is_utf8(name + link):
        records[b"hdrcharset"] = b"BINARY"
    return prefix, hname, hlink


def _number_fields(entry: SourceEntry, size: int, mtime: int, mirage: bool,
                   records: Dict[bytes, bytes]) -> Tuple[int, int]:
    """``(size, mtime)`` fields; values octal cannot hold go to ``records`` (refused
    for the Mirage target)."""
    rule = "Mirage target: numbers must fit octal fields"
    if not octal_fits(size, _SIZE_WIDTH):
        if mirage:
            raise _refuse(entry, f"is {size} bytes, more than the 8 GiB an octal size field "
                          "holds", f"{rule} (use --target generic for pax size records)")
        records[b"size"] = b"%d" % size
        size = 0
    if not octal_fits(mtime, _MTIME_WIDTH):
        if mirage:
            raise _refuse(entry, f"mtime {mtime} is outside 1970..2242, which octal header "
                          f"fields hold", f"{rule} (use --mtime, or --target generic for pax "
                          "mtime records)")
        records[b"mtime"] = b"%d" % mtime
        mtime = 0 if mtime < 0 else _MTIME_MAX
    return size, mtime


def pad_entry(mtime: int) -> bytes:
    """One ``./`` directory header: the 512-byte alignment filler (see layout)."""
    mtime = min(max(int(mtime), 0), _MTIME_MAX)
    return build_header(b"./", 0o755, 0, mtime, b"5")
