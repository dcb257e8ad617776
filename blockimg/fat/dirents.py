"""Directory bytes -> records (pure): short entries with their long names, as read back.

A long name is used only when its slots form a complete sequence (last
slot first, orders n..1) whose checksums all match the short entry, and its
UTF-16 decodes; otherwise the short name is used, as Windows does, and the
reason is returned as an issue. Deleted entries (0xE5) are skipped; 0x00
ends the directory. Short entries are unpacked with one ``struct`` format
laid out by ``structs.STRUCT_FORMATS["DirEntry"]`` (this loop is the hot path); the
offsets of the long-name slot fields come from ``structs`` too.
"""
from __future__ import annotations

import struct
from codecs import utf_16_le_decode
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import List, Optional, Tuple

from .names import MAX_SLOTS, lfn_checksum, lfn_checksums_at, parse_short
from .structs import (ATTR_DIRECTORY, ATTR_LONG_NAME, ATTR_LONG_NAME_MASK, ATTR_VOLUME_ID,
                      DIR_ATTR, DIR_ENTRY_SIZE, DOT, DOTDOT, LAST_LONG_ENTRY, LDIR_CHKSUM,
                      LDIR_NAME_PIECES, STRUCT_FORMATS)

__all__ = ["Record", "parse_directory", "DOT", "DOTDOT"]

# DIR_Name, Attr, NTRes, CrtTimeTenth, CrtTime, CrtDate, LstAccDate, FstClusHI,
# WrtTime, WrtDate, FstClusLO, FileSize
_ENTRY = struct.Struct(STRUCT_FORMATS["DirEntry"])
assert _ENTRY.size == DIR_ENTRY_SIZE

(_N1, _N1_END), (_N2, _N2_END), (_N3, _N3_END) = LDIR_NAME_PIECES


try:
    # The C field accessor namedtuple's attributes are (CPython's, in the built-in
    # _collections module, not the collections package): a Python property instead costs
    # ~19 M instructions (0.8 %) of ``ls -l`` of 20,000 files, where the walk reads
    # fields by name.
    from _collections import _tuplegetter as _getter
except ImportError:                                     # pragma: no cover (not CPython)
    def _getter(index: int, doc: str):
        return property(lambda self: self[index], doc=doc)


def _field(index: int):
    """The attribute of field ``index`` of a :class:`Record`."""
    return _getter(index, f"field {index}")


class Record(tuple):
    """One short entry (and its long name) of a directory: a tuple of the fields
    ``name kind short attr nt_res cluster size wdate wtime offset lfn_offset lfn_raw
    crt``, each also an attribute.

    ``kind`` is ``file``, ``dir``, ``dot``, ``dotdot`` or ``label``;
    ``offset`` is the short entry's offset in the directory data,
    ``lfn_offset`` that of its first long-name slot (== offset without one);
    ``lfn_raw`` the 26 name bytes of each slot of its valid long name (slot 1
    first), or None; ``lfn_units`` the same as UTF-16 units; ``crt`` DIR_CrtDate,
    DIR_CrtTime, DIR_CrtTimeTenth. Types: str name, kind; bytes short; int attr,
    nt_res, cluster, size, wdate, wtime, offset, lfn_offset; Optional[bytes] lfn_raw;
    Tuple[int, int, int] crt. (Not a ``collections.namedtuple``: ``collections`` is
    ~8 M instructions of start-up; :func:`parse_directory` makes records with
    ``tuple.__new__``.)
    """

    __slots__ = ()

    def __new__(cls, name, kind, short, attr, nt_res, cluster, size, wdate, wtime, offset,
                lfn_offset, lfn_raw, crt=(0, 0, 0)):
        return tuple.__new__(cls, (name, kind, short, attr, nt_res, cluster, size, wdate,
                                   wtime, offset, lfn_offset, lfn_raw, crt))

    def __repr__(self) -> str:
        return "Record(" + ", ".join(f"{f}={v!r}" for f, v in zip(_FIELDS, self)) + ")"

    name = _field(0)
    kind = _field(1)
    short = _field(2)
    attr = _field(3)
    nt_res = _field(4)
    cluster = _field(5)
    size = _field(6)
    wdate = _field(7)
    wtime = _field(8)
    offset = _field(9)
    lfn_offset = _field(10)
    lfn_raw = _field(11)
    crt = _field(12)

    @property
    def lfn_units(self) -> Optional[Tuple[int, ...]]:
        """The units of the valid long name (slot 1 first, padding included), or None."""
        raw = self[11]
        return None if raw is None else struct.unpack(f"<{len(raw) // 2}H", raw)


_FIELDS = ("name", "kind", "short", "attr", "nt_res", "cluster", "size", "wdate", "wtime",
           "offset", "lfn_offset", "lfn_raw", "crt")


def _slot_bytes(data: bytes, first: int, end: int) -> bytes:
    """The name bytes of the consecutive slots in ``data[first:end]``, slot 1 (the last) first."""
    if end - first == DIR_ENTRY_SIZE:
        return (data[first + _N1:first + _N1_END] + data[first + _N2:first + _N2_END]
                + data[first + _N3:end])
    if end - first == 2 * DIR_ENTRY_SIZE:   # (most names of 14 to 26 units)
        o = first + DIR_ENTRY_SIZE
        return b"".join((data[o + _N1:o + _N1_END], data[o + _N2:o + _N2_END],
                         data[o + _N3:end], data[first + _N1:first + _N1_END],
                         data[first + _N2:first + _N2_END], data[first + _N3:o]))
    return b"".join([data[o + _N1:o + _N1_END] + data[o + _N2:o + _N2_END]
                     + data[o + _N3:o + _N3_END]
                     for o in range(end - DIR_ENTRY_SIZE, first - 1, -DIR_ENTRY_SIZE)])


def _decode_raw(raw: bytes) -> Optional[str]:
    """The name held by UTF-16-LE ``raw`` (up to the first 0x0000 unit), or None when it is
    empty or not valid UTF-16."""
    end = raw.find(b"\0\0")
    while end > 0 and end & 1:              # a NUL byte pair straddling two units
        end = raw.find(b"\0\0", end + 1)
    if end == 0:
        return None
    try:
        # The codec function itself: raw.decode("utf-16-le") looks the codec up and goes
        # through its Python wrapper each time (~4x slower; once per long name).
        return utf_16_le_decode(raw if end < 0 else raw[:end], "strict", True)[0]
    except UnicodeDecodeError:
        return None


#: Attribute byte -> the kind of a short entry (before the ``.``/``..`` names are seen).
_KIND = tuple("label" if a & ATTR_VOLUME_ID and not a & ATTR_DIRECTORY else
              "dir" if a & ATTR_DIRECTORY else "file" for a in range(256))
_DOTS = {DOT: "dot", DOTDOT: "dotdot"}
#: Lead byte -> 1 for the first slot of a long name in order (``LAST_LONG_ENTRY`` | 1..20).
_FIRST_SLOT = bytes(1 if b & 0xC0 == LAST_LONG_ENTRY and 1 <= b & 0x3F <= MAX_SLOTS else 0
                    for b in range(256))


#: Lead byte -> 0 for a deleted entry (0xE5), else 2; attribute byte -> 2 for a long-name
#: slot, else 0. ANDed together: 2 marks a live slot, 0 a short or deleted entry.
_LIVE = bytes(0 if b == 0xE5 else 2 for b in range(256))
_SLOT = bytes(2 if a & ATTR_LONG_NAME_MASK == ATTR_LONG_NAME else 0 for a in range(256))
#: k -> the lead bytes of a whole k-slot long name, in on-disk order (LAST_LONG_ENTRY | k,
#: then k-1 down to 1).
_ORDERS = (b"",) + tuple(bytes([LAST_LONG_ENTRY | k, *range(k - 1, 0, -1)])
                         for k in range(1, MAX_SLOTS + 1))


def parse_directory(data, *, fat32: bool) -> Tuple[List[Record], List[Tuple[int, str]]]:
    """Records of one directory's bytes, and issues as ``(offset, message)``.

    With no issues, every entry before the end that is not deleted belongs to a
    record (a short entry, or a slot of its long name)."""
    if type(data) is not bytes:
        data = bytes(data)
    records = _whole(data, fat32)
    if records is not None:
        return records, []
    return _parse(data, fat32)


def _whole(data: bytes, fat32: bool) -> Optional[List[Record]]:
    """The records of a directory whose every long name is whole (its slots in order
    right before their short entry, checksums matching, valid UTF-16: what writers
    write), or None when anything is not (:func:`_parse` then applies every rule and
    says what is wrong).

    Column at a time: each entry's lead and attribute bytes, its checksum as a slot
    and as a short name (:func:`lfn_checksums_at`) are taken for all entries at once;
    the loop visits only the short entries, and checks the slots before each by
    comparing byte strings.
    """
    total = len(data) // DIR_ENTRY_SIZE
    end = total * DIR_ENTRY_SIZE
    leads = data[0:end:DIR_ENTRY_SIZE]
    n = leads.find(0)
    if n < 0:
        n = total
    if not n:
        return []
    end = n * DIR_ENTRY_SIZE
    leads = leads[:n]
    live = (int.from_bytes(leads.translate(_LIVE), "little")
            & int.from_bytes(data[DIR_ATTR:end:DIR_ENTRY_SIZE].translate(_SLOT), "little")
            ).to_bytes(n, "little")
    runs = live.split(b"\0")               # the live slots before each stop, and at the end
    if runs[-1]:
        return None                         # slots at the end, with no short entry
    chks = data[LDIR_CHKSUM:end:DIR_ENTRY_SIZE]
    sums = lfn_checksums_at(data, DIR_ENTRY_SIZE, n)
    rows, text = _name_rows(data, n, live)
    records: List[Record] = []
    append = records.append
    unpack_from = _ENTRY.unpack_from
    new = tuple.__new__
    orders = _ORDERS
    lead_1 = orders[1][0]
    i = 0                                   # the first slot before entry j
    for run in runs[:-1]:
        k = len(run)
        j = i + k
        off = j * DIR_ENTRY_SIZE
        lead = leads[j]
        if lead == 0xE5:
            if k:
                return None                 # slots followed by a deleted entry
            i = j + 1
            continue
        (name11, attr, nt_res, ctenth, ctime, cdate, _ad, hi, wtime, wdate, lo,
         size) = unpack_from(data, off)
        if k == 1:                          # (names of up to 13 units: most)
            if lead_1 != leads[i] or chks[i] != sums[j]:
                return None
            first = i * DIR_ENTRY_SIZE
            lfn = rows[26 * i:26 * j]
            if text is None:
                name = _decode_raw(lfn)
                if name is None:
                    return None
            else:
                name = text[13 * i:13 * j]
                cut = name.find("\0")
                if cut >= 0:
                    if not cut:
                        return None
                    name = name[:cut]
        elif k:
            if k > MAX_SLOTS or leads[i:j] != orders[k] or chks[i:j] != sums[j:j + 1] * k:
                return None
            first = i * DIR_ENTRY_SIZE
            if k == 2:
                lfn = rows[26 * i + 26:26 * j] + rows[26 * i:26 * i + 26]
            else:
                lfn = b"".join([rows[o:o + 26] for o in range(26 * j - 26, 26 * i - 1, -26)])
            if text is None:
                name = _decode_raw(lfn)
                if name is None:
                    return None
            else:
                name = "".join([text[u:u + 13] for u in range(13 * j - 13, 13 * i - 1, -13)])
                cut = name.find("\0")
                if cut >= 0:
                    if not cut:
                        return None
                    name = name[:cut]
        else:
            first = off
            lfn = None
            name = parse_short(name11, nt_res)
        kind = _KIND[attr]
        if lead == 0x2E and kind != "label":
            kind = _DOTS.get(name11, kind)
        append(new(Record, (name, kind, name11, attr, nt_res, (hi << 16 | lo) if fat32 else lo,
                            size, wdate, wtime, off, first, lfn, (cdate, ctime, ctenth))))
        i = j + 1
    return records


#: The offsets of a long-name slot's 26 name bytes, in name order.
_NAME_AT = tuple(range(_N1, _N1_END)) + tuple(range(_N2, _N2_END)) + tuple(range(_N3, _N3_END))
assert len(_NAME_AT) == 26
#: Live-slot flag (2, see _LIVE) -> 0xFF; anything else -> 0.
_KEEP = bytes(0xFF if b == 2 else 0 for b in range(256))


def _name_rows(data: bytes, n: int, live: bytes) -> Tuple[bytes, Optional[str]]:
    """``(rows, text)`` for the first ``n`` entries of ``data`` (``live``: 2 per live
    long-name slot): ``rows``, the 26 name bytes of each entry, one column at a time
    (a slot's name bytes are ``rows[26 * i:26 * i + 26]``, what :func:`_slot_bytes`
    joins); ``text``, the live slots' rows decoded at once (13 characters a slot, the
    other rows zeroed), or None when they are not valid UTF-16 or hold a surrogate
    pair (a pair can straddle two rows: each name is then decoded by itself)."""
    rows = bytearray(26 * n)
    end = n * DIR_ENTRY_SIZE
    for k, at in enumerate(_NAME_AT):
        rows[k::26] = data[at:end:DIR_ENTRY_SIZE]
    keep = bytearray(26 * n)
    mask = live.translate(_KEEP)
    for k in range(26):
        keep[k::26] = mask
    rows = bytes(rows)
    slots = (int.from_bytes(rows, "little") & int.from_bytes(keep, "little")
             ).to_bytes(26 * n, "little")
    try:
        text = utf_16_le_decode(slots, "strict", True)[0]
    except UnicodeDecodeError:
        return rows, None
    return rows, (text if len(text) == 13 * n else None)


def _parse(data: bytes, fat32: bool) -> Tuple[List[Record], List[Tuple[int, str]]]:
    """:func:`parse_directory`, one entry at a time, every rule applied."""
    records: List[Record] = []
    append = records.append
    issues: List[Tuple[int, str]] = []
    pending = 0                             # pending long-name slots (consecutive entries)
    checksum = first_slot = 0
    expect = -1                             # the next slot's order; -1 when none pending
    unpack_from = _ENTRY.unpack_from
    new = tuple.__new__
    for off in range(0, len(data) - DIR_ENTRY_SIZE + 1, DIR_ENTRY_SIZE):
        lead = data[off]
        if lead == 0:
            break
        if lead == 0xE5:
            if pending:
                issues.append((first_slot, "long-name slots not followed by their short entry "
                                           "(ignored)"))
                pending, expect = 0, -1
            continue
        if data[off + DIR_ATTR] & ATTR_LONG_NAME_MASK == ATTR_LONG_NAME:
            # The common slots here (the next of a sequence; the first, with nothing
            # pending), every other one in _slot, which applies all the rules.
            if lead == expect and data[off + LDIR_CHKSUM] == checksum:      # (lead is never 0 here)
                pending += 1
                expect -= 1
            elif _FIRST_SLOT[lead] and not pending:
                pending, checksum = 1, data[off + LDIR_CHKSUM]
                expect, first_slot = (lead & 0x3F) - 1, off
            else:
                pending, checksum, expect, first_slot = _slot(
                    data, off, pending, checksum, expect, first_slot, issues)
            continue
        (name11, attr, nt_res, ctenth, ctime, cdate, _ad, hi, wtime, wdate, lo,
         size) = unpack_from(data, off)
        lfn = name = None
        lfn_off = off
        if pending:
            name, lfn, lfn_off = _long_name(data, first_slot, off, expect, checksum, name11,
                                            issues)
            pending, expect = 0, -1
        kind = _KIND[attr]
        if lead == 0x2E and kind != "label":
            kind = _DOTS.get(name11, kind)
        if name is None:                    # (so lfn is None too)
            name = parse_short(name11, nt_res)
        append(new(Record, (name, kind, name11, attr, nt_res, (hi << 16 | lo) if fat32 else lo,
                            size, wdate, wtime, off, lfn_off, lfn, (cdate, ctime, ctenth))))
    if pending:
        issues.append((first_slot, "long-name slots at the end of the directory (ignored)"))
    return records, issues


def _slot(data: bytes, off: int, pending: int, checksum: int, expect: int, first_slot: int,
          issues: List[Tuple[int, str]]) -> Tuple[int, int, int, int]:
    """The long-name slot at ``off`` taken in: ``(pending, checksum, expect, first_slot)``
    after it (what is wrong with it added to ``issues``; ``expect`` -1: none pending)."""
    lead = data[off]
    order = lead & 0x3F
    chk = data[off + LDIR_CHKSUM]
    if lead & LAST_LONG_ENTRY:
        if pending:
            issues.append((first_slot, "long-name sequence interrupted by a new one "
                                       "(ignored)"))
        if not 1 <= order <= MAX_SLOTS or lead & 0x80:
            issues.append((off, f"long-name slot with order {order} (must be "
                                f"1..{MAX_SLOTS}; ignored)"))
            return 0, checksum, -1, first_slot
        return 1, chk, order - 1, off
    if pending and order == expect and chk == checksum and order >= 1:
        return pending + 1, checksum, expect - 1, first_slot
    if pending and order == expect:
        issues.append((off, f"long-name slot {order} has checksum {chk}, the slots "
                            f"before it {checksum} (ignored)"))
    else:
        issues.append((off, f"long-name slot {order} out of sequence (ignored)"))
    return 0, checksum, -1, first_slot


def _long_name(data: bytes, first_slot: int, off: int, expect: int, checksum: int,
               name11: bytes, issues: List[Tuple[int, str]]):
    """``(name, raw UTF-16, offset of its first slot)`` of the long name whose slots run
    from ``first_slot`` to the short entry at ``off``, or ``(None, None, off)`` with the
    reason added to ``issues`` (the short name is then used)."""
    if expect != 0:
        issues.append((first_slot, f"long name is missing slots 1..{expect}; the short name "
                                   "is used"))
        return None, None, off
    s = lfn_checksum(name11)
    if checksum != s:
        issues.append((first_slot, f"long-name checksum {checksum} does not match the short "
                                   f"name {name11!r} ({s}); the short name is used"))
        return None, None, off
    raw = _slot_bytes(data, first_slot, off)
    name = _decode_raw(raw)
    if name is None:
        issues.append((first_slot, "long name is empty or not valid UTF-16; the short name "
                                   "is used"))
        return None, None, off
    return name, raw, first_slot
