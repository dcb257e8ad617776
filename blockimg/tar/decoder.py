"""Sans-I/O tar decoding: header blocks in, members out.

:class:`Decoder` is fed 512-byte header blocks by a reader and answers what
to do next: read an extended payload of N bytes (and feed it back), take an
entry, or stop at the end of the archive. It touches no device. Every
header goes through the same steps (checksum, numbers, names, pending
extended records); the usual header -- ASCII, plain octal numbers, nothing
pending -- passes each of them on its first, fast test.
"""
from __future__ import annotations

TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    import re
    from typing import Dict, List, Optional, Tuple

from zlib import adler32

from ..errors import CorruptImage
from .header import (BLOCK, CHKSUM, GNU_MAGIC, LINKNAME, MAGIC, MAGIC_VERSION, MODE, MTIME,
                     NAME, NUL, PREFIX, SIZE, TYPE_AT, TYPEFLAG, USTAR_MAGIC, ascii_sum, checksums,
                     decode_number, decode_pax, header_path, is_base256, padded,
                     stored_checksum)

__all__ = ["Member", "MEMBER_FIELDS", "Decoder", "READ", "ENTRY", "ZERO", "END", "MAX_PAYLOAD",
           "MAX_CHAIN", "LISTED_KIND", "PASSABLE", "unrelated_names"]

MAX_PAYLOAD = 1 << 20         # longest pax / long-name payload the reader accepts
MAX_CHAIN = 64                # most extended headers in a row before an entry
MAX_INT = (1 << 63) - 1

READ, ENTRY, ZERO, END = "read", "entry", "zero", "end"

#: The kind each typeflag (as an int) is listed as.
LISTED_KIND = {0x30: "file", 0x00: "file", 0x37: "file", 0x31: "hardlink", 0x32: "symlink",
               0x35: "dir", 0x44: "dir", 0x33: "other", 0x34: "other", 0x36: "other",
               0x53: "other", 0x4D: "other", 0x4E: "other", 0x56: "label"}
_REGULAR = frozenset(b"0\x007")       # typeflags of a regular file (a name ending in / : a dir)
_EXTENDED = {0x78: "x", 0x67: "g", 0x4C: "L", 0x4B: "K"}
_ZEROS = bytes(BLOCK)
#: The usual header's typeflags (see :meth:`Decoder._usual`) and the kind of each.
_USUAL = {0x30: "file", 0x00: "file", 0x35: "dir", 0x32: "symlink", 0x31: "hardlink"}
#: Typeflags (as ints) of the members a lookup may pass over: files, directories, links.
PASSABLE = frozenset(b"0\x00752" + b"1")
#: The checksum field as tar writes it: six octal digits, then NUL and space.
_CHK_DIGITS = slice(CHKSUM.start, CHKSUM.stop - 2)
_CHK_TAIL = slice(CHKSUM.stop - 2, CHKSUM.stop)
_SPACE_NUL = b" \0"
_USTAR = USTAR_MAGIC[:MAGIC.stop - MAGIC.start]      # the magic field alone
#: The flavour of the two usual magic and version fields (the rest: see Decoder._usual).
_FLAVOUR = {USTAR_MAGIC: "ustar", GNU_MAGIC: "gnu"}
#: Where the usual header's name, link name and prefix fields are (as plain ints).
_NAME_STOP, _LINK_AT, _LINK_STOP, _PREFIX_AT = NAME.stop, LINKNAME.start, LINKNAME.stop, \
    PREFIX.start
#: The compiled expressions, made on first use (:func:`_compile`): listing or extracting
#: an archive without pax records needs none, and ``re`` (with the ``enum`` and
#: ``functools`` it imports) is a third of such a command's start-up.
_PLAIN = _DECIMAL = _TIME = None


def _compile() -> None:
    """Compile ``_PLAIN`` (the size, checksum and typeflag fields as tar writes them,
    matched from ``SIZE.start``: eleven octal digits and a NUL or space, six digits, NUL
    and space, a passable type), ``_DECIMAL`` and ``_TIME`` (pax numbers)."""
    global _PLAIN, _DECIMAL, _TIME
    import re
    _PLAIN = re.compile(rb"([0-7]{%d})[\0 ](?s:.{%d})([0-7]{%d})\0 [%s]" % (
        SIZE.stop - SIZE.start - 1, MTIME.stop - MTIME.start, CHKSUM.stop - CHKSUM.start - 2,
        re.escape(bytes(sorted(PASSABLE)))))
    _DECIMAL = re.compile(rb"[0-9]{1,19}\Z")
    _TIME = re.compile(rb"(-?[0-9]{1,19})(\.[0-9]*)?\Z")
_SPARSE_NOTE = "GNU sparse file (not supported; listed as 'other')"


class Member:
    """One decoded entry: its final name, kind, numbers and where it lies.

    ``offset`` is the entry's own header; ``header_offset`` the first block
    of its header set (extended headers included); data follows ``offset``.
    ``extended`` lists ``(type, offset, payload length)`` of the extended
    headers that led to it; ``base256`` the fields stored in base-256.
    """

    __slots__ = ("header_offset", "offset", "name", "linkname", "typeflag", "kind", "size",
                 "mtime", "mode", "extended", "base256", "flavour", "note")
    # (MEMBER_FIELDS, below, is this order: Decoder.fields gives a member as that tuple)

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


#: The order of a member's fields in the plain tuple :meth:`Decoder.fields` gives;
#: ``Member(*fields)`` is the member.
MEMBER_FIELDS = Member.__slots__


def _corrupt(rule: str, offset: int, field: Optional[str] = None, value=None) -> CorruptImage:
    return CorruptImage(rule, offset=offset, field=field, value=value)


def _number(block: bytes, field: slice, name: str, offset: int, base256: list) -> int:
    """The numeric field ``name`` (at ``field``) of ``block``; a base-256 one is
    listed in ``base256``. CorruptImage when it is not a number or out of range."""
    raw = block[field]
    try:
        value = decode_number(raw)
    except ValueError as e:
        raise _corrupt(str(e), offset + field.start, name) from None
    if raw[0] >= 0x80 and is_base256(raw):             # (the first test: octal is ASCII)
        base256.append(name)
        if not -MAX_INT <= value <= MAX_INT or (name == "size" and value < 0):
            raise _corrupt(f"{name} {value} is out of range", offset + field.start, name,
                           value)
    return value


def _kind(typeflag: int, name: bytes, note: Optional[str]) -> Tuple[str, Optional[str]]:
    """``(kind, note)`` of a member: a sparse file (or one a note was made on) is
    ``other``, an unknown type a file, a regular file named ``.../`` a directory."""
    if typeflag == 0x53:
        note = _SPARSE_NOTE
    if note is not None:
        return "other", note
    kind = LISTED_KIND.get(typeflag)
    if kind is None:
        return "file", f"unknown type {bytes([typeflag])!r} read as a regular file"
    if typeflag in _REGULAR and name.endswith(b"/"):
        return "dir", None
    return kind, None


def unrelated_names(path: bytes) -> re.Pattern:
    """A pattern whose ``match(name_field)`` says that a member of that name cannot decide
    the lookup of ``path`` (a clean index key, as bytes): the name is clean -- what
    ``normalize_member_path`` keeps as it is: not empty, no leading ``.`` or ``/``, no
    ``//`` or ``/.`` (a trailing ``/`` aside) -- and neither ``path``, above it nor below
    it. The name ends at a NUL or at the end of what is matched. One pattern per lookup:
    the name is then read, checked and compared in one step (Decoder.pass_over); its
    repeats are possessive (``*+``: what they take is never given back, as nothing after
    them could use it), which spares the matcher its backtracking records."""
    import re
    parts = path.split(b"/")
    above = b"|".join(re.escape(b"/".join(parts[:k])) for k in range(1, len(parts) + 1))
    return re.compile(rb"(?!(?:%s)/?(?:\0|\Z)|%s/)" % (above, re.escape(path))
                      + rb"[^./\0][^/\0]*+(?:/[^./\0][^/\0]*+)*+/?(?:\0|\Z)")


class Decoder:
    """Feed header blocks with :meth:`header`; payloads with :meth:`payload`.

    ``header(block, offset)`` returns ``(READ, n)`` -- read the ``n``-byte
    extended payload that follows the header and pass it to
    :meth:`payload` --, ``(ENTRY, member)``, ``(ZERO, None)`` or
    ``(END, offset_after_archive)``. Oddities that are not errors go to
    ``notes`` as ``(offset, message)``; errors raise CorruptImage.
    :meth:`fields` is the same step, giving an entry as the plain tuple of
    its fields (:data:`MEMBER_FIELDS`): what an index takes, no object made.
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

    @property
    def idle(self) -> bool:
        """Nothing carried over to the next header: no extended header waiting for its
        entry, no zero block, no global records. The next header's member then depends
        on that block alone."""
        return not self._chain and self.zero_at is None and not self.global_records

    # -- blocks -------------------------------------------------------------
    def pass_over(self, buf: bytes, start: int, pos: int, end: int,
                  unrelated: re.Pattern) -> Tuple[int, int]:
        """``(offset, n)``: from the header at image offset ``pos`` on (``buf`` holds the
        image's bytes from offset ``start``; the image ends at ``end``), the ``n``
        headers in a row, wholly in ``buf``, whose members cannot decide a lookup are
        passed over, their data unread; ``offset`` is the header after them. Only while
        nothing is pending (:attr:`idle`).

        Passed over: a valid header of a file, directory or link, data inside the image,
        whose name ``unrelated`` (:func:`unrelated_names`) matches. Of it only the
        checksum, size and name are decoded; anything else stops the run, and
        :meth:`fields` decides that header. Measured reason: a lookup of one path in the
        20,000-member archive is this loop (docs/ARCHITECTURE.md).
        """
        n = 0
        if self._chain or self.zero_at is not None or self.global_records:   # (not idle)
            return pos, n
        last = start + len(buf) - BLOCK          # the last header offset wholly in buf
        if _PLAIN is None:
            _compile()
        plain, named = _PLAIN.match, unrelated.match
        size_at, prefix_at, name_end = SIZE.start, PREFIX.start, NAME.stop
        # (``while True``: CPython 3.11 specializes the code of a function called once only
        # at an unconditional jump back; a ``while cond`` loop would stay generic)
        while True:
            if pos > last:
                break
            i = pos - start
            block = buf[i:i + BLOCK]
            m = plain(block, size_at)
            if m is not None and block.isascii():   # (as _usual: ASCII, tar's forms)
                size, digits = m.groups()           # (octal digits only)
                if int(digits, 8) != ascii_sum(block) + 224 - sum(digits):
                    break
                size = int(size, 8)
            else:                                   # the header codecs' general forms
                if block[TYPE_AT] not in PASSABLE:
                    break
                try:
                    if not stored_checksum(block)[1]:
                        break
                    size = decode_number(block[SIZE])
                except ValueError:
                    break
                if size < 0:
                    break
            nxt = pos + BLOCK + size
            if nxt > end:
                break
            if block[prefix_at]:
                if named(header_path(block)) is None:
                    break
            elif named(block, 0, name_end) is None:
                break
            pos = nxt + (-size % BLOCK)
            n += 1
        return pos, n

    def header(self, block: bytes, offset: int):
        """Decode the header ``block`` found at ``offset``."""
        action, value = self.fields(block, offset)
        if action is ENTRY:
            return ENTRY, Member(*value)
        return action, value

    def fields(self, block: bytes, offset: int):
        """:meth:`header`, an entry given as the tuple of its fields (``(ENTRY, fields)``,
        in the order of :data:`MEMBER_FIELDS`)."""
        if self._want is not None:
            raise RuntimeError("Decoder.payload must be called first")
        if len(block) != BLOCK:
            raise _corrupt(f"truncated header ({len(block)} of 512 bytes)", offset)
        if type(block) is not bytes:
            block = bytes(block)
        if block == _ZEROS:
            return self._zero(offset)
        if self.zero_at is not None:
            self.notes.append((self.zero_at, "lone zero block: GNU tar and Python's tarfile "
                                             "stop reading here, Mirage reads on (an interrupted "
                                             "'blockimg update' leaves one: run it again)"))
            self.zero_at = None
        if not self._chain and not self.global_records:
            fields = self._usual(block, offset)
            if fields is not None:
                return ENTRY, fields
        try:
            stored, ok = stored_checksum(block)
        except ValueError:
            raise _corrupt("header checksum field is not a number (not a tar header?)",
                           offset + CHKSUM.start, "chksum", block[CHKSUM]) from None
        if not ok:
            raise _corrupt(f"header checksum {stored} does not match the header's bytes "
                           f"({checksums(block)[0]})", offset + CHKSUM.start, "chksum", stored)
        ext = _EXTENDED.get(block[TYPE_AT])
        if ext is not None:
            return READ, self._extended(ext, block, offset)
        return ENTRY, self._fields(block, offset)

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
        value = data.split(NUL, 1)
        if len(value) == 2 and value[1].strip(NUL):
            raise _corrupt("NUL byte inside a GNU long name", start, "long name")
        if ext == "L":
            self._longname = value[0]
        else:
            self._longlink = value[0]

    # -- steps --------------------------------------------------------------
    def _zero(self, offset: int):
        if self._chain:
            raise _corrupt("an extended header is followed by a zero block instead of "
                           "its entry", offset)
        if self.zero_at is not None:
            self.zero_at = None
            return END, offset + BLOCK
        self.zero_at = offset
        return ZERO, None

    def _extended(self, ext: str, block: bytes, offset: int) -> int:
        size = _number(block, SIZE, "size", offset, [])
        if size > self.max_payload:
            raise _corrupt(f"{ext!r} extended header claims a {size}-byte payload "
                           f"(more than {self.max_payload} is refused)", offset, "size", size)
        if len(self._chain) >= self.max_chain:
            raise _corrupt(f"more than {self.max_chain} extended headers in a row", offset)
        self._want = (ext, offset, size)
        self._chain.append(self._want)
        self.flavours.add("pax" if ext in "xg" else "gnu")
        return size

    def _usual(self, block: bytes, offset: int) -> Optional[tuple]:
        """The member (its fields) of the usual header, in one step: a file, directory or
        link with nothing pending, ASCII only, the checksum as tar writes it (six octal
        digits, NUL, space) and right, plain octal size, mtime and mode. None for any
        other header: the general steps (:meth:`_fields`) decide, and give the same member
        for this one (tests/unit/test_tar_open_fast.py). Measured reason: a tar scan is
        mostly these headers, and the general steps cost 9 % more instructions on the
        20,000-member archive (docs/ARCHITECTURE.md)."""
        kind = _USUAL.get(block[TYPE_AT])
        if kind is None or block[_CHK_TAIL] != b"\0 " or not block.isascii():
            return None
        digits = block[_CHK_DIGITS]
        size = block[SIZE].rstrip(_SPACE_NUL)
        mtime = block[MTIME].rstrip(_SPACE_NUL)
        mode = block[MODE].rstrip(_SPACE_NUL)
        if not (digits.isdigit() and size.isdigit() and mtime.isdigit() and mode.isdigit()):
            return None
        try:
            # ASCII only: signed and unsigned sums agree (ascii_sum, inline); the field
            # itself sums to sum(digits) + NUL + space, counted as eight spaces instead.
            if int(digits, 8) != (adler32(block) & 0xFFFF) + 223 - sum(digits):
                return None
            size, mtime, mode = int(size, 8), int(mtime, 8), int(mode, 8)
        except ValueError:                  # an 8 or a 9
            return None
        if block[_PREFIX_AT]:
            name = header_path(block)
        else:                               # (header_path's first step, without the call)
            i = block.find(NUL, 0, _NAME_STOP)
            name = block[:i] if i >= 0 else block[NAME]
        if block[_LINK_AT]:
            i = block.find(NUL, _LINK_AT, _LINK_STOP)
            link = (block[_LINK_AT:i] if i >= 0 else block[LINKNAME]).decode()
        else:
            link = ""
        magic = block[MAGIC_VERSION]
        flavour = _FLAVOUR.get(magic)
        if flavour is None:
            flavour = "ustar" if magic.startswith(_USTAR) else "gnu" if magic == GNU_MAGIC \
                else "v7"
        self.flavours.add(flavour)
        if kind == "file" and name.endswith(b"/"):
            kind = "dir"
        # (ASCII: plain decode() is the UTF-8 one, without looking up an error handler)
        return (offset, offset, name.decode(), link, block[TYPEFLAG], kind, size, mtime,
                mode & 0o7777, (), (), flavour, None)

    def _fields(self, block: bytes, offset: int) -> tuple:
        base256: list = []
        size = _number(block, SIZE, "size", offset, base256)
        mtime = _number(block, MTIME, "mtime", offset, base256)
        mode = _number(block, MODE, "mode", offset, base256)
        name = header_path(block)
        i = block.find(NUL, LINKNAME.start, LINKNAME.stop)
        link = block[LINKNAME.start:i] if i >= 0 else block[LINKNAME]
        magic = block[MAGIC_VERSION]
        flavour = "ustar" if magic.startswith(_USTAR) else "gnu" if magic == GNU_MAGIC else "v7"
        self.flavours.add(flavour)
        if base256:
            self.flavours.add("gnu")
        note = None
        chain = self._chain
        if chain or self.global_records:        # (long names and pax records come in a chain)
            name, link, size, mtime, note = self._extend(name, link, size, mtime, offset)
            self._chain = []
        kind, note = _kind(block[TYPE_AT], name, note)
        return (chain[0][1] if chain else offset, offset,
                name.decode("utf-8", "surrogateescape"),
                link.decode("utf-8", "surrogateescape") if link else "", block[TYPEFLAG],
                kind, size, mtime, mode & 0o7777, tuple(chain), tuple(base256), flavour, note)

    def _extend(self, name: bytes, link: bytes, size: int, mtime: int, offset: int):
        """``(name, link, size, mtime, note)`` after the pending GNU long names and pax
        records (the entry's own over the global ones); the pending ones are used up."""
        if self._longname is not None:
            name = self._longname
        if self._longlink is not None:
            link = self._longlink
        records = self._pax
        if self.global_records:
            records = dict(self.global_records)
            records.update(self._pax)
        self._pax = {}
        self._longname = self._longlink = None
        note = None
        if records:
            name = self._text(records, b"path", name, offset)
            link = self._text(records, b"linkpath", link, offset)
            if b"size" in records:
                size = self._decimal(records[b"size"], b"size", offset)
            if _TIME is None:
                _compile()
            if b"mtime" in records:
                m = _TIME.match(records[b"mtime"])
                if m is None:
                    raise _corrupt("pax mtime is not a decimal time", offset, "pax mtime",
                                   records[b"mtime"])
                mtime = int(m.group(1))
            if any(k.startswith(b"GNU.sparse.") for k in records):
                note = _SPARSE_NOTE
        return name, link, size, mtime, note

    @staticmethod
    def _text(records: Dict[bytes, bytes], key: bytes, default: bytes, offset: int) -> bytes:
        value = records.get(key)
        if not value:
            return default
        if NUL in value:
            raise _corrupt(f"NUL byte inside pax {key.decode()}", offset, f"pax {key.decode()}")
        return value

    @staticmethod
    def _decimal(raw: bytes, key: bytes, offset: int) -> int:
        if _DECIMAL is None:
            _compile()
        if _DECIMAL.match(raw) is None or int(raw) > MAX_INT:
            raise _corrupt(f"pax {key.decode()} is not a non-negative decimal number",
                           offset, f"pax {key.decode()}", raw)
        return int(raw)
