"""Reading tar images: one pass over the headers builds the index, then random access.

Reads ustar, GNU (``././@LongLink`` names and links, base-256 numbers),
pax (``x`` and ``g``: path, linkpath, size, mtime) and v7 archives. File
data is never copied at open: each file's index entry holds the offset of
its data, and reads go to the device there (zero-copy with MmapDevice).

Semantics follow the Mirage driver where readers differ: a repeated path
is replaced by the last one, a lone zero block does not end the archive
(noted in ``warnings``), a name ending in ``/`` is a directory. Names with
a ``..`` component are left out and listed in ``unsafe_names``.

Opened with ``lazy=True``, a lookup (``stat``, ``open``, ``read``) of one path
indexes nothing else: the same pass decodes every header to the end of the
archive -- a later member of that name, or a pax or GNU long name that renames
one into it, still wins -- but indexes only the members that decide the
path's entry (the path, its ancestors, what lies below it), and reads headers
only, skipping over the data between them (:class:`_Window`).
"""
from __future__ import annotations

TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Tuple

from ..block.base import BlockDevice
from ..errors import CorruptImage, NotFound
from ..image import DERIVED_ENTRY, EntryInfo, Image, normalize_member_path, shorten
from .codec import END, ENTRY, READ, Decoder, Member
from .header import (BLOCK, GNU_MAGIC, ascii_sum, checksums, decode_number, decode_pax,
                     padded)

__all__ = ["TarImage", "detect"]

WINDOW = 1 << 16
#: A step between headers up to DENSE bytes reads a whole WINDOW; a longer one SPARSE bytes.
DENSE = 4096
SPARSE = 2 * 512
_ZEROS = bytes(BLOCK)
#: Typeflags (as ints) the fast path of the scan decodes: file, directory, links.
_FAST_KIND = {0x30: "file", 0x00: "file", 0x37: "file", 0x35: "dir", 0x32: "symlink",
              0x31: "hardlink"}


def detect(device: BlockDevice) -> bool:
    """A valid header checksum at byte 0, or an empty archive (zeros only)."""
    if device.size < BLOCK:
        return False
    block = bytes(device.pread(0, BLOCK))
    if block == _ZEROS:
        head = bytes(device.pread(0, min(device.size, 1 << 20)))
        return not head.strip(b"\0")
    try:
        stored = decode_number(block[148:156])
    except ValueError:
        return False
    return stored in checksums(block)


class _Window:
    """Reads headers through a bounded buffer, so a run of small entries costs few preads.

    Where headers are dense (small files, directories) one ``WINDOW``-sized
    read serves many of them; where the last step between requests was
    long (large files) only ``SPARSE`` bytes are read at the next header,
    so the file data in between is never copied into the process.
    """

    def __init__(self, device: BlockDevice) -> None:
        self.device = device
        self.size = device.size
        self.start = 0
        self.buf = b""
        self.last = 0

    def get(self, offset: int, n: int) -> bytes:
        rel = offset - self.start
        step = offset - self.last
        self.last = offset
        if 0 <= rel and rel + n <= len(self.buf):
            return self.buf[rel:rel + n]
        if n > WINDOW:
            return bytes(self.device.pread(offset, n))
        want = WINDOW if step <= DENSE else max(n, SPARSE)
        self.start = offset
        self.buf = b""                        # the old window goes before the new comes
        self.buf = bytes(self.device.pread(offset, min(want, self.size - offset)))
        return self.buf[:n]


#: pax keys that change a member (besides ``GNU.sparse.*``): an ``x`` header with
#: any of these goes through the Decoder.
_PAX_KEYS = frozenset((b"path", b"linkpath", b"size", b"mtime"))


def _plain_header(block: bytes, pos: int, dev_size: int):
    """``(name, kind, size, mtime, mode, flavour, next_offset)`` of the common header,
    else None (the Decoder decides).

    Common: ASCII only, the usual ``%06o\\0 `` checksum and right, plain octal
    size/mtime/mode, a file, directory or link whose data lies inside the
    image. For those the Decoder gives the same member (tests/unit/test_tar_open_fast.py).
    """
    if not block.isascii():
        return None
    kind = _FAST_KIND.get(block[156])
    digits = block[148:154]
    if kind is None or block[154:156] != b"\0 " or not digits.isdigit():
        return None
    size = block[124:136].rstrip(b" \0")
    mtime = block[136:148].rstrip(b" \0")
    mode = block[100:108].rstrip(b" \0")
    try:
        # ASCII only: the signed and unsigned sums agree (sum(chksum field) is
        # sum(digits) + NUL + space).
        if not (int(digits, 8) == ascii_sum(block) + 224 - sum(digits)
                and size.isdigit() and mtime.isdigit() and mode.isdigit()):
            return None
        size, mtime, mode = int(size, 8), int(mtime, 8), int(mode, 8) & 0o7777
    except ValueError:                # an 8 or 9: the Decoder says what it is
        return None
    if pos + BLOCK + size > dev_size:
        return None
    i = block.find(b"\0", 0, 100)
    name = block[:i] if i >= 0 else block[:100]
    if block[257:263] == b"ustar\0":
        flavour = "ustar"
        i = block.find(b"\0", 345, 500)
        prefix = block[345:i] if i >= 0 else block[345:500]
        if prefix:
            name = prefix + b"/" + name
    elif block[257:265] == GNU_MAGIC:
        flavour = "gnu"
    else:
        flavour = "v7"
    name = name.decode()
    if kind == "file" and name.endswith("/"):
        kind = "dir"
    return name, kind, size, mtime, mode, flavour, pos + BLOCK + size + (-size % BLOCK)


def _plain_pax(win: _Window, block: bytes, pos: int, dev_size: int):
    """``(extended, next_pos, next_block)`` for an ``x`` header at ``pos`` that the
    Decoder would take and whose records change nothing (``atime``, ``ctime``...,
    as GNU tar's and bsdtar's pax archives have), else None.

    Plain: ASCII, the usual checksum form, a plain octal size of at most 4 KiB,
    records that decode_pax accepts, and a header block after the payload.
    """
    digits = block[148:154]
    size = block[124:136].rstrip(b" \0")
    if not (block.isascii() and block[154:156] == b"\0 " and digits.isdigit()
            and size.isdigit()):
        return None
    try:
        if int(digits, 8) != ascii_sum(block) + 224 - sum(digits):
            return None
        n = int(size, 8)
    except ValueError:
        return None
    start = pos + BLOCK
    nxt = start + padded(n)
    if n > 4096 or nxt + BLOCK > dev_size:
        return None
    try:
        records = decode_pax(win.get(start, n), start)
    except CorruptImage:
        return None
    for key, _ in records:
        if key in _PAX_KEYS or key.startswith(b"GNU.sparse."):
            return None
    return (("x", pos, n),), nxt, win.get(nxt, BLOCK)


def _skip_unrelated(device: BlockDevice, pos: int, block: bytes, dev_size: int,
                    want: bytes) -> Tuple[int, int]:
    """``(offset, n)``: from the header ``block`` at ``pos``, the ``n`` common headers in a row
    whose members cannot decide the path ``want`` (a clean name that is not ``want``,
    above it or below it) are passed over; ``offset`` is the header after them.

    Of those only the checksum and the size are decoded (what the next header
    needs). Reads go straight to the device, in windows of up to ``WINDOW`` where
    members are small and of one header where they are not (the data is skipped).
    Anything else -- another kind of header, an odd field -- stops the run: the
    full decoding decides it.
    """
    below = want + b"/"
    buf, start, n = block, pos, 0
    pread = device.pread
    step = 0
    while pos + BLOCK <= dev_size:
        rel = pos - start
        if rel + BLOCK > len(buf):
            # Small members: a window holds several headers; else the data is skipped.
            start, rel = pos, 0
            buf = bytes(pread(pos, min(WINDOW if step < WINDOW // 4 else BLOCK,
                                       dev_size - pos)))
        block = buf[rel:rel + BLOCK]
        if not (block.isascii() and block[156] in _FAST_KIND and block[154:156] == b"\0 "):
            break
        digits = block[148:154]
        size = block[124:136].rstrip(b" \0")
        try:
            if not (digits.isdigit() and size.isdigit() and
                    int(digits, 8) == ascii_sum(block) + 224 - sum(digits)):
                break
            size = int(size, 8)
        except ValueError:            # an 8 or a 9: the full decoding says what it is
            break
        i = block.find(b"\0", 0, 100)
        name = block[:i] if i >= 0 else block[:100]
        if block[257:263] == b"ustar\0" and block[345]:
            i = block.find(b"\0", 345, 500)
            name = (block[345:i] if i >= 0 else block[345:500]) + b"/" + name
        if name.endswith(b"/"):
            name = name[:-1]
        # (find, not ``in``: ``b"//" in name`` first tries b"//" as an int, at a cost.)
        if not (pos + BLOCK + size <= dev_size and name and name.find(b"//") < 0 and
                name.find(b"/.") < 0 and not name.startswith((b"/", b".")) and
                name != want and not name.startswith(below) and
                not want.startswith(name + b"/")):
            break
        step = size
        pos += BLOCK + size + (-size % BLOCK)
        n += 1
    return pos, n


class TarImage(Image):
    """A tar image opened for reading (see :class:`blockimg.image.Image`).

    Besides the index: ``members`` (every decoded entry, in order, for
    checks), ``flavours`` (ustar / gnu / pax / v7 seen), ``end_of_archive``
    (offset just after the two zero blocks, None when missing), ``notes``
    (``(offset, message)`` oddities), ``unsafe_names``.
    """

    format = "tar"

    def __init__(self, device: BlockDevice, *, owns_device: bool = False,
                 lazy: bool = False) -> None:
        self._lazy = lazy
        super().__init__(device, owns_device=owns_device)
        self._members: Optional[List[Member]] = None
        self._found: Dict[str, Optional[EntryInfo]] = {}
        self._start_index()
        if not lazy:
            self._index_all()

    def _start_index(self) -> None:
        """Empty the index and what the pass records beside it."""
        self._idx: Dict[str, EntryInfo] = {}
        self.unsafe_names: List[Tuple[str, str]] = []
        self.flavours: set = set()
        self.end_of_archive: Optional[int] = None
        self.notes: List[Tuple[int, str]] = []
        self.padding_entries = 0
        #: directory -> the keys placed in it, made when a file first replaces a directory
        self._children: Optional[Dict[str, List[str]]] = None
        self._member_count = 0

    def _index_all(self, want: Optional[str] = None) -> None:
        """Index the whole archive now; with ``want``, only what decides that path."""
        self._lazy = False
        self._start_index()
        if want is None:
            del self.warnings[:]
        # One int object per distinct mtime and mode (many entries share them).
        self._same = {}.setdefault
        try:
            self._scan(want=want)
        finally:
            del self._same
            self._children = None

    # -- looking one path up (lazy=True) ---------------------------------------------
    def stat(self, path: str) -> EntryInfo:
        if not self._lazy:
            return super().stat(path)
        key = self._key(path)
        if key == "":
            return EntryInfo("", "dir", mode=0o755)
        if key not in self._found:
            self._index_all(want=key)
            self._lazy = True
            # What a second lookup's pass reports again is reported once.
            self.warnings[:] = list(dict.fromkeys(self.warnings))
            self._found[key] = self._idx.get(key)
        info = self._found[key]
        if info is None:
            raise NotFound("no such file or directory in tar image", path=path,
                           rule="path exists")
        return info

    def exists(self, path: str) -> bool:
        if not self._lazy:
            return super().exists(path)
        try:
            self.stat(path)
        except NotFound:
            return False
        return True

    @property
    def members(self) -> List[Member]:
        """Every decoded entry, in archive order (for checks).

        Not kept from the opening pass -- the index is what reading needs,
        and 20,000 members would double its memory -- but decoded again on
        first use, by the same pass over the same headers.
        """
        if self._members is None:
            members: List[Member] = []
            self._scan(members.append)
            self._members = members
        return self._members

    def each_member(self, fn) -> None:
        """Call ``fn(member)`` for every decoded entry, in archive order, keeping none.

        The same pass as :attr:`members` (or the kept list, if that was already
        made), in the memory of one member at a time: what checks use.
        """
        if self._members is not None:
            for m in self._members:
                fn(m)
        else:
            self._scan(fn)

    # -- the one pass -----------------------------------------------------------
    def _scan(self, replay=None, want: Optional[str] = None) -> None:
        """Decode every header; index each entry (or, ``replay``, only hand it over;
        or, ``want``, index only the entries that decide that path: itself, its
        ancestors and what lies below it, under the same rules; of the other
        common headers only the checksum and size are decoded, and what the
        whole index alone needs -- ``flavours``, the numbers of those members --
        is left out).

        The common header -- ASCII only, plain octal numbers, the usual
        ``%06o\\0 `` checksum, a file, directory or link, no extended header
        pending -- is decoded by :func:`_plain_header` (tested against the Decoder in
        tests/unit/test_tar_open_fast.py); every other block goes through the Decoder,
        which gives the same member for those (its state is clean then).
        """
        dev_size = self.device.size
        win = _Window(self.device)
        dec = Decoder()
        flavours = dec.flavours
        clean = True                  # the Decoder holds nothing: the fast path may run
        place = self._place
        same = getattr(self, "_same", None)
        add = self._add if want is None else (lambda m: self._add(m, want))
        count = 0
        # ``want``: an entry decides it when it is ``want``, above it or below it.
        want_below = None if want is None else want + "/"
        want_b = None if want is None or not want.isascii() else want.encode()
        pos = 0
        while True:
            if pos + BLOCK > dev_size:
                if dec.pending is not None:
                    ext, off, _ = dec.pending
                    raise CorruptImage(f"the image ends after a {ext!r} extended header, "
                                       "before its entry", offset=off)
                if replay is not None:
                    return
                self.notes.append((pos, "the archive has only one zero block at its end "
                                        "(Mirage needs two)" if dec.zero_at is not None
                                   else "the archive has no end-of-archive zero blocks "
                                        "(Mirage needs two)"))
                break
            block = win.get(pos, BLOCK)
            # -- the fast path: the Decoder would give this same member ------------------
            hoff = pos
            ext = ()
            if clean and block[156] == 0x78:
                got = _plain_pax(win, block, pos, dev_size)
                if got is not None:         # an ``x`` header whose records change nothing
                    ext, xblock = got[0], block
                    pos, block = got[1], got[2]
            if want_b is not None and clean and not ext:
                # A lookup: run over the headers whose members cannot decide ``want``.
                nxt, n = _skip_unrelated(self.device, pos, block, dev_size, want_b)
                if n:
                    count += n
                    pos = nxt
                    continue
            plain = _plain_header(block, pos, dev_size) if clean else None
            if plain is not None:
                name, kind, size, mtime, mode, flavour, end = plain
                flavours.add(flavour)
                if ext:
                    flavours.add("pax")
                core = name[:-1] if name.endswith("/") else name
                if replay is None and (kind == "file" or kind == "dir") and core and \
                        "//" not in core and "/." not in core and \
                        not core.startswith(("/", ".")):
                    # TarImage._add for a clean name, without a Member.
                    if want is not None and not (
                            core == want or core.startswith(want_below)
                            or (want.startswith(core) and want[len(core)] == "/")):
                        count += 1
                        pos = end
                        continue
                    info = EntryInfo(core, kind, size if kind == "file" else 0,
                                     same(mtime, mtime), same(mode, mode),
                                     ((pos + BLOCK, size),) if kind == "file" and size else (),
                                     None, hoff)
                    place(core, kind, info)
                else:
                    i = block.find(b"\0", 157, 257)
                    link = block[157:i] if i >= 0 else block[157:257]
                    member = Member(hoff, pos, name, link.decode(), block[156:157], kind,
                                    size, mtime, mode, ext, (), flavour, None)
                    if replay is not None:
                        replay(member)
                    else:
                        add(member)
                count += 1
                pos = end
                continue
            # -- everything else: the Decoder ---------------------------------------------
            if ext:                           # from the ``x`` header, as if never read
                pos, block = hoff, xblock
            action, value = dec.header(block, pos)
            if action is ENTRY:
                if value.data_offset + value.size > dev_size:
                    raise CorruptImage(f"entry {value.name!r} claims {value.size} bytes of "
                                       f"data, past the end of the image ({dev_size} bytes)",
                                       offset=value.offset, field="size", value=value.size)
                if replay is not None:
                    replay(value)
                else:
                    count += 1
                    add(value)
                pos = value.end
            elif action is READ:
                start = pos + BLOCK
                if start + value > dev_size:
                    raise CorruptImage(f"extended header payload of {value} bytes runs past "
                                       f"the end of the image ({dev_size} bytes)",
                                       offset=pos, field="size", value=value)
                dec.payload(win.get(start, value))
                pos = start + padded(value)
            elif action is END:
                if replay is not None:
                    return
                self.end_of_archive = value
                break
            else:
                pos += BLOCK
            clean = dec.zero_at is None and dec.pending is None and not dec.global_records
        self._member_count += count
        self.notes[:0] = dec.notes
        self.flavours = dec.flavours
        self.warnings.extend(f"byte {off}: {msg}" for off, msg in self.notes)

    def _add(self, m: Member, want: Optional[str] = None) -> None:
        if m.note:
            self.warnings.append(f"byte {m.offset}: {m.name!r}: {m.note}")
        if m.kind == "label":
            return
        name = m.name
        core = name[:-1] if name.endswith("/") else name
        if core and "//" not in core and "/." not in core and not core.startswith(("/", ".")):
            path, reason = core, None            # already clean: the common case
        else:
            path, reason = normalize_member_path(name)
        if path is None:
            self.unsafe_names.append((m.name, reason))
            return
        if path == "":
            self.padding_entries += 1
            return
        if want is not None and not (path == want or path.startswith(want + "/") or
                                     want.startswith(path + "/")):
            return
        kind = m.kind
        is_file = kind == "file"
        link = None
        if kind == "symlink":
            link = m.linkname
        elif kind == "hardlink":
            link = "/".join(p for p in m.linkname.split("/") if p not in ("", "."))
        same = self._same
        info = EntryInfo(path, kind, m.size if is_file else 0, same(m.mtime, m.mtime),
                         same(m.mode, m.mode),
                         ((m.data_offset, m.size),) if is_file and m.size else (),
                         link, m.header_offset)
        self._place(path, kind, info)

    def _place(self, path: str, kind: str, info: EntryInfo) -> None:
        """Index ``info`` at ``path``: missing parents become directories, and a
        non-directory that replaces a directory drops what was below it."""
        index = self._index
        parent = path.rpartition("/")[0]
        if parent:
            p = index.get(parent)
            if p is None or p.kind != "dir":
                self._make_parents(path, info.header_offset)
        old = index.get(path)
        if old is not None and old.kind == "dir" and kind != "dir":
            self._drop_below(path)
        index[path] = info
        if self._children is not None:
            self._children.setdefault(parent, []).append(path)

    def _drop_below(self, path: str) -> None:
        """Forget every entry below ``path``. From the first time on, a map of each
        directory's children (kept from then on) finds them, so that a run of files
        replacing directories costs what it drops, not a look at the whole index each."""
        index = self._index
        children = self._children
        if children is None:
            children = self._children = {}
            for key in index:
                children.setdefault(key.rpartition("/")[0], []).append(key)
        stack = [path]
        while stack:
            for key in children.pop(stack.pop(), ()):
                if key in index:
                    del index[key]
                    stack.append(key)

    def _make_parents(self, path: str, offset: Optional[int]) -> None:
        """Make ``path``'s missing (or non-directory) ancestors directories.

        From the parent up to the first ancestor that is a directory (whose own
        ancestors then are too): each path made once, and counted against the
        readers' bound before it is made, so a name of many components costs
        time and memory in proportion to the image, not to its square.
        """
        index = self._index
        todo = []
        shown = shorten(path)
        what = f"entry {shown!r} ({path.count('/') + 1} components)"
        end = path.rfind("/")
        while end > 0:
            p = path[:end]
            cur = index.get(p)
            if cur is not None and cur.kind == "dir":
                break
            self._derive(end + DERIVED_ENTRY, what, offset)
            todo.append((p, cur))
            end = path.rfind("/", 0, end)
        children = self._children
        for p, cur in reversed(todo):
            if children is not None:
                children.setdefault(p.rpartition("/")[0], []).append(p)
            if cur is None:
                index[p] = EntryInfo(p, "dir", mode=0o755)
            else:
                self.warnings.append(f"{shorten(p)!r} was a {cur.kind} but {shown!r} is "
                                     "inside it: read as a directory")
                index[p] = EntryInfo(p, "dir", mode=0o755, mtime=cur.mtime)

    # -- facts ----------------------------------------------------------------------
    def data_alignment(self) -> Optional[int]:
        """The largest power of two (up to 1 MiB) every non-empty file's data starts on."""
        best = 1 << 20
        seen = False
        for e in self._index.values():
            if e.kind == "file" and e.extents:
                off = e.extents[0][0]
                best = min(best, off & -off)
                seen = True
        return best if seen else None

    def info(self) -> dict:
        d = super().info()
        d.update({
            "tar_entries": self._member_count,
            "padding_entries": self.padding_entries,
            "flavours": sorted(self.flavours),
            "end_of_archive": self.end_of_archive,
            "data_alignment": self.data_alignment(),
            "unsafe_names": len(self.unsafe_names),
        })
        return d
