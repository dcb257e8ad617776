"""Sans-I/O tar codec: entries to header bytes, header blocks to members.

:func:`encode_entry` turns one source entry into its header set (an
optional pax ``x`` header with its records, then the ustar header).
:class:`Decoder` is fed 512-byte header blocks by a reader and answers what
to do next: read an extended payload of N bytes (and feed it back), take an
entry, or stop at the end of the archive. Neither touches a device.
"""
from __future__ import annotations

import re
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Tuple

from ..errors import CorruptImage, InvalidInput
from ..source import Kind, SourceEntry
from .header import _CONST_SUM_TAIL as _TAIL_SUM
from .header import _TAIL as _HEADER_TAIL
from .header import _ZERO_IDS
from .header import (BLOCK, FIELDS, GNU_MAGIC, ascii_sum, build_header, checksums,
                     decode_number, decode_pax, encode_pax, is_base256, padded, split_ustar)

__all__ = ["encode_entry", "plain_encoder", "pad_entry", "Member", "Decoder", "READ", "ENTRY", "ZERO", "END",
           "MIRAGE_RECORD_LIMIT", "MAX_PAYLOAD", "MAX_CHAIN", "PAX_NAME"]

PAX_NAME = b"././@PaxHeader"
MIRAGE_RECORD_LIMIT = 512     # tar-mirage asserts every extended payload is <= 512 bytes
MAX_PAYLOAD = 1 << 20         # longest pax / long-name payload the reader accepts
MAX_CHAIN = 64                # most extended headers in a row before an entry
MAX_INT = (1 << 63) - 1

_TYPEFLAG = {Kind.FILE: b"0", Kind.DIR: b"5", Kind.SYMLINK: b"2", Kind.HARDLINK: b"1"}
_ZEROS = bytes(BLOCK)
_MAX11 = 8 ** 11          # what an 11-digit octal field holds


# -- encoding -------------------------------------------------------------
def _refuse(entry: SourceEntry, message: str, rule: str) -> InvalidInput:
    return InvalidInput(message, path=entry.path, rule=rule)


def _utf8(entry: SourceEntry, raw: bytes, what: str) -> None:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _refuse(entry, f"{what} is not valid UTF-8", "Mirage target: names must be "
                      "valid UTF-8 (use --target generic to store raw bytes)") from None


def encode_entry(entry: SourceEntry, *, mirage: bool) -> bytes:
    """The header blocks of ``entry``: [pax ``x`` header + records] + ustar header.

    Values ustar cannot hold go to pax records (sorted by key). With
    ``mirage`` set, what the Mirage driver cannot read is refused with an
    InvalidInput naming the file and the rule.
    """
    kind = entry.kind
    name = entry.path_bytes + (b"/" if kind is Kind.DIR else b"")
    if kind is Kind.FILE or kind is Kind.DIR:
        # The common case first: one ustar header, nothing to refuse or to put in records.
        size = entry.size if kind is Kind.FILE else 0
        mtime = int(entry.mtime)
        if len(name) <= 100 and 0 <= size < _MAX11 and 0 <= mtime < _MAX11 and \
                (not mirage or name.isascii()):
            return build_header(name, entry.mode & 0o7777, size, mtime, _TYPEFLAG[kind])
    link = b""
    if entry.link_target is not None and kind in (Kind.SYMLINK, Kind.HARDLINK):
        link = entry.link_target.encode("utf-8", "surrogateescape")
    if mirage:
        _utf8(entry, name, "name")
        if link:
            _utf8(entry, link, "link target")
    records: Dict[bytes, bytes] = {}
    split = split_ustar(name)
    if split is None:
        records[b"path"] = name
        prefix, hname = b"", name[:100]
    else:
        prefix, hname = split
    if len(link) > 100:
        records[b"linkpath"] = link
        link = link[:100]
    size = entry.size if kind is Kind.FILE else 0
    if not 0 <= size < _MAX11:
        if mirage:
            raise _refuse(entry, f"is {size} bytes, more than the 8 GiB an octal size field "
                          "holds", "Mirage target: numbers must fit octal fields "
                          "(use --target generic for pax size records)")
        records[b"size"] = b"%d" % size
        size = 0
    mtime = int(entry.mtime)
    if not 0 <= mtime < _MAX11:
        if mirage:
            raise _refuse(entry, f"mtime {mtime} is outside 1970..2242, which octal header "
                          "fields hold", "Mirage target: numbers must fit octal fields "
                          "(use --mtime, or --target generic for pax mtime records)")
        records[b"mtime"] = b"%d" % mtime
        mtime = 0 if mtime < 0 else 8 ** 11 - 1
    if (b"path" in records or b"linkpath" in records) and not _is_utf8(name + link):
        records[b"hdrcharset"] = b"BINARY"
    header = build_header(hname, entry.mode & 0o7777, size, mtime, _TYPEFLAG[kind],
                          link, prefix)
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


def plain_encoder(cache_limit: int = 4096):
    """A function ``f(entry) -> bytes or None``: the header of a plain entry, fast.

    Plain: a regular file or directory whose ASCII path (with a directory's
    ``/``) fits the 100-byte name field and whose size and mtime fit their octal
    fields -- one ustar header, nothing to refuse or to put in pax records.
    For those ``f`` gives byte for byte what :func:`encode_entry` gives
    (tested); for any other entry it gives None. Faster: the fields that many
    entries share (mode, uid/gid, mtime, typeflag) and their part of the
    checksum are made once per distinct (kind, mode, mtime) and reused (at
    most ``cache_limit`` kept).
    """
    cache: Dict[tuple, Tuple[bytes, bytes, bytes, int]] = {}
    FILE, DIR = Kind.FILE, Kind.DIR
    nul = b"\0"
    tail = _HEADER_TAIL

    def encode(entry: SourceEntry) -> Optional[bytes]:
        kind = entry.kind
        key = (kind, entry.mode, entry.mtime)
        parts = cache.get(key)
        if parts is None:
            mtime = int(entry.mtime)
            if not ((kind is FILE or kind is DIR) and 0 <= mtime < _MAX11):
                return None
            if len(cache) >= cache_limit:
                cache.clear()
            mid = b"%07o\0%s" % (entry.mode & 0o7777, _ZERO_IDS)
            field = b"%011o\0" % mtime
            flag = _TYPEFLAG[kind]
            parts = cache[key] = (mid, field, flag, _TAIL_SUM + sum(mid) + sum(field) + flag[0])
        mid, mtime_field, flag, base = parts
        if kind is FILE:
            name = entry.path.encode("utf-8", "surrogateescape")
            if not 0 <= entry.size < _MAX11:
                return None
            size = b"%011o\0" % entry.size
        else:
            name = entry.path.encode("utf-8", "surrogateescape") + b"/"
            size = _ZERO_SIZE
        if len(name) > 100 or not name.isascii():    # (non-ASCII: the Mirage rules apply)
            return None
        return b"".join((name.ljust(100, nul), mid, size, mtime_field,
                         b"%06o\0 " % (base + sum(name) + sum(size)), flag, tail))

    return encode


_ZERO_SIZE = b"%011o\0" % 0


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def pad_entry(mtime: int) -> bytes:
    """One ``./`` directory header: the 512-byte alignment filler (see layout)."""
    mtime = min(max(int(mtime), 0), 8 ** 11 - 1)
    return build_header(b"./", 0o755, 0, mtime, b"5")


# -- decoding -------------------------------------------------------------
READ, ENTRY, ZERO, END = "read", "entry", "zero", "end"

_KIND = {b"0": "file", b"\0": "file", b"7": "file", b"1": "hardlink", b"2": "symlink",
         b"5": "dir", b"D": "dir", b"3": "other", b"4": "other", b"6": "other",
         b"S": "other", b"M": "other", b"N": "other", b"V": "label"}
_EXTENDED = {b"x": "x", b"g": "g", b"L": "L", b"K": "K"}
_DECIMAL = re.compile(rb"[0-9]{1,19}\Z")
_TIME = re.compile(rb"(-?[0-9]{1,19})(\.[0-9]*)?\Z")


def _plain(raw: bytes) -> bytes:
    """The digits of a plain octal field, or ValueError (then the strict path decides)."""
    digits = raw.rstrip(b" \0")
    if digits.isdigit():
        return digits
    raise ValueError


class Member:
    """One decoded entry: its final name, kind, numbers and where it lies.

    ``offset`` is the entry's own header; ``header_offset`` the first block
    of its header set (extended headers included); data follows ``offset``.
    ``extended`` lists ``(type, offset, payload length)`` of the extended
    headers that led to it; ``base256`` the fields stored in base-256.
    """

    __slots__ = ("header_offset", "offset", "name", "linkname", "typeflag", "kind", "size",
                 "mtime", "mode", "extended", "base256", "flavour", "note")

    def __init__(self, header_offset: int, offset: int, name: str, linkname: str,
                 typeflag: bytes, kind: str, size: int, mtime: int, mode: int,
                 extended: tuple = (), base256: tuple = (), flavour: str = "ustar",
                 note: Optional[str] = None) -> None:
        self.header_offset = header_offset
        self.offset = offset
        self.name = name
        self.linkname = linkname
        self.typeflag = typeflag
        self.kind = kind
        self.size = size
        self.mtime = mtime
        self.mode = mode
        self.extended = extended
        self.base256 = base256
        self.flavour = flavour
        self.note = note

    @property
    def data_offset(self) -> int:
        return self.offset + BLOCK

    @property
    def end(self) -> int:
        """Offset of the next header."""
        return self.offset + BLOCK + padded(self.size)

    def __repr__(self) -> str:
        return f"<Member {self.name!r} {self.kind} {self.size}B at {self.offset}>"


def _corrupt(rule: str, offset: int, field: Optional[str] = None, value=None) -> CorruptImage:
    return CorruptImage(rule, offset=offset, field=field, value=value)


class Decoder:
    """Feed header blocks with :meth:`header`; payloads with :meth:`payload`.

    ``header(block, offset)`` returns ``(READ, n)`` -- read the ``n``-byte
    extended payload that follows the header and pass it to
    :meth:`payload` --, ``(ENTRY, member)``, ``(ZERO, None)`` or
    ``(END, offset_after_archive)``. Oddities that are not errors go to
    ``notes`` as ``(offset, message)``; errors raise CorruptImage.
    """

    def __init__(self, *, max_payload: int = MAX_PAYLOAD, max_chain: int = MAX_CHAIN) -> None:
        self.max_payload = max_payload
        self.max_chain = max_chain
        self.global_records: Dict[bytes, bytes] = {}
        self.flavours: set = set()
        self.notes: List[Tuple[int, str]] = []
        self.zero_at: Optional[int] = None      # offset of a pending first zero block
        self._pax: Dict[bytes, bytes] = {}
        self._longname: Optional[bytes] = None
        self._longlink: Optional[bytes] = None
        self._chain: List[Tuple[str, int, int]] = []
        self._want: Optional[Tuple[str, int, int]] = None

    @property
    def pending(self) -> Optional[Tuple[str, int, int]]:
        """The last extended header still waiting for its entry, if any."""
        return self._chain[-1] if self._chain else None

    # -- blocks -------------------------------------------------------------
    def header(self, block: bytes, offset: int):
        """Decode the header ``block`` found at ``offset``."""
        if self._want is not None:
            raise RuntimeError("Decoder.payload must be called first")
        if len(block) != BLOCK:
            raise _corrupt(f"truncated header ({len(block)} of 512 bytes)", offset)
        if block == _ZEROS:
            if self._chain:
                raise _corrupt("an extended header is followed by a zero block instead of "
                               "its entry", offset)
            if self.zero_at is not None:
                self.zero_at = None
                return END, offset + BLOCK
            self.zero_at = offset
            return ZERO, None
        if self.zero_at is not None:
            self.notes.append((self.zero_at, "lone zero block: GNU tar and Python's tarfile "
                                             "stop reading here, Mirage reads on (an interrupted "
                                             "'blockimg update' leaves one: run it again)"))
            self.zero_at = None
        self._verify(block, offset)
        typeflag = block[156:157]
        ext = _EXTENDED.get(typeflag)
        if ext is not None:
            size = self._number(block, "size", offset, [])
            if size > self.max_payload:
                raise _corrupt(f"{ext!r} extended header claims a {size}-byte payload "
                               f"(more than {self.max_payload} is refused)", offset,
                               "size", size)
            if len(self._chain) >= self.max_chain:
                raise _corrupt(f"more than {self.max_chain} extended headers in a row",
                               offset)
            self._want = (ext, offset, size)
            self._chain.append(self._want)
            self.flavours.add("pax" if ext in "xg" else "gnu")
            return READ, size
        return ENTRY, self._member(block, offset)

    def payload(self, data: bytes) -> None:
        ext, offset, size = self._want
        self._want = None
        data = bytes(data)
        if len(data) != size:
            raise _corrupt("extended header payload is cut short", offset + BLOCK)
        start = offset + BLOCK
        if ext in ("x", "g"):
            records = dict(decode_pax(data, start))
            if ext == "g":
                self.global_records.update(records)
            else:
                self._pax.update(records)
            return
        value = data.split(b"\0", 1)
        if len(value) == 2 and value[1].strip(b"\0"):
            raise _corrupt("NUL byte inside a GNU long name", start, "long name")
        if ext == "L":
            self._longname = value[0]
        else:
            self._longlink = value[0]

    # -- helpers ------------------------------------------------------------
    @staticmethod
    def _verify(block: bytes, offset: int) -> None:
        raw = block[148:156]
        try:
            stored = decode_number(raw)
        except ValueError:
            raise _corrupt("header checksum field is not a number (not a tar header?)",
                           offset + 148, "chksum", bytes(raw)) from None
        if isinstance(block, bytes) and block.isascii():
            # Every byte < 128: the signed and unsigned sums agree, and ascii_sum is
            # faster than sum().
            if stored == ascii_sum(block) + 256 - sum(raw):
                return
        elif stored == sum(block) - sum(raw) + 256:        # the usual, unsigned sum
            return
        if stored not in checksums(block):
            raise _corrupt(f"header checksum {stored} does not match the header's bytes "
                           f"({checksums(block)[0]})", offset + 148, "chksum", stored)

    @staticmethod
    def _number(block: bytes, field: str, offset: int, base256: list) -> int:
        start, end = FIELDS[field]
        raw = block[start:end]
        digits = raw.rstrip(b" \0")
        if digits.isdigit() and b"8" not in digits and b"9" not in digits:
            return int(digits, 8)                          # plain octal: the usual case
        try:
            value = decode_number(raw)
        except ValueError as e:
            raise _corrupt(str(e), offset + start, field) from None
        if is_base256(raw):
            base256.append(field)
        if not -MAX_INT <= value <= MAX_INT or (field == "size" and value < 0):
            raise _corrupt(f"{field} {value} is out of range", offset + start, field, value)
        return value

    def _member(self, block: bytes, offset: int) -> Member:
        base256: list = []
        try:                                   # plain octal everywhere: the usual case
            size = int(_plain(block[124:136]), 8)
            mtime = int(_plain(block[136:148]), 8)
            mode = int(_plain(block[100:108]), 8)
        except ValueError:
            size = self._number(block, "size", offset, base256)
            mtime = self._number(block, "mtime", offset, base256)
            mode = self._number(block, "mode", offset, base256)
        typeflag = block[156:157]
        name = block[:100].split(b"\0", 1)[0]
        link = block[157:257].split(b"\0", 1)[0]
        magic = block[257:265]
        if magic[:6] == b"ustar\0":
            flavour = "ustar"
            prefix = block[345:500].split(b"\0", 1)[0]
            if prefix:
                name = prefix + b"/" + name
        elif magic == GNU_MAGIC:
            flavour = "gnu"
        else:
            flavour = "v7"
        self.flavours.add(flavour)
        if base256:
            self.flavours.add("gnu")
        records = self._pax
        if self.global_records:
            records = dict(self.global_records)
            records.update(self._pax)
        note = None
        if self._longname is not None:
            name = self._longname
        if self._longlink is not None:
            link = self._longlink
        if records:
            name = self._text(records, b"path", name, offset)
            link = self._text(records, b"linkpath", link, offset)
            if b"size" in records:
                size = self._decimal(records[b"size"], b"size", offset)
            if b"mtime" in records:
                m = _TIME.match(records[b"mtime"])
                if m is None:
                    raise _corrupt("pax mtime is not a decimal time", offset, "pax mtime",
                                   records[b"mtime"])
                mtime = int(m.group(1))
            if any(k.startswith(b"GNU.sparse.") for k in records):
                note = "GNU sparse file (not supported; listed as 'other')"
        kind = _KIND.get(typeflag, "file")
        if kind == "file" and typeflag in (b"0", b"\0", b"7") and name.endswith(b"/"):
            kind = "dir"
        if typeflag == b"S":
            note = "GNU sparse file (not supported; listed as 'other')"
        if note is not None:
            kind = "other"
        elif typeflag not in _KIND:
            note = f"unknown type {typeflag!r} read as a regular file"
        member = Member(header_offset=self._chain[0][1] if self._chain else offset,
                        offset=offset, name=name.decode("utf-8", "surrogateescape"),
                        linkname=link.decode("utf-8", "surrogateescape"), typeflag=typeflag,
                        kind=kind, size=size, mtime=mtime, mode=mode & 0o7777,
                        extended=tuple(self._chain), base256=tuple(base256), flavour=flavour,
                        note=note)
        self._pax = {}
        self._longname = self._longlink = None
        self._chain = []
        return member

    @staticmethod
    def _text(records: Dict[bytes, bytes], key: bytes, default: bytes, offset: int) -> bytes:
        value = records.get(key)
        if not value:
            return default
        if b"\0" in value:
            raise _corrupt(f"NUL byte inside pax {key.decode()}", offset, f"pax {key.decode()}")
        return value

    @staticmethod
    def _decimal(raw: bytes, key: bytes, offset: int) -> int:
        if _DECIMAL.match(raw) is None or int(raw) > MAX_INT:
            raise _corrupt(f"pax {key.decode()} is not a non-negative decimal number",
                           offset, f"pax {key.decode()}", raw)
        return int(raw)
