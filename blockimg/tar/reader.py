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

import gc

TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Tuple

from ..block.base import BlockDevice
from ..errors import CorruptImage, NotFound
from ..read.image import DERIVED_ENTRY, EntryInfo, Image, normalize_member_path, shorten
from .decoder import END, ENTRY, MEMBER_FIELDS, READ, Decoder, Member, unrelated_names
from .header import BLOCK, padded, stored_checksum

__all__ = ["TarImage", "clean_key", "detect"]

WINDOW = 1 << 16
#: A step between headers up to DENSE bytes reads a whole WINDOW; a longer one SPARSE bytes.
DENSE = 4096
SPARSE = 2 * 512
#: A lookup reads LOOKUP_WINDOW bytes after passing over up to LOOKUP_DENSE bytes of
#: data: a read of its own per header costs more than copying that much (cat of one file
#: of 20,000 members of 1-16 KiB, callgrind: 620 M instructions at DENSE and WINDOW,
#: 541 M at 16 KiB, 492 M with 256 KiB windows).
LOOKUP_DENSE = 1 << 14
LOOKUP_WINDOW = 1 << 18
#: A lookup passes over headers (:func:`_pass_unrelated`) once it has decoded this many
#: one by one: its patterns cost ``re`` (~24 M instructions of start-up, with the enum
#: and functools it imports), which the pass over repays after about 1,000 headers
#: (~23 k instructions fewer a header), so an archive of up to this many members is read
#: without it (cat of one file of a one-member archive: 85 M -> 56 M instructions; of
#: the 20,000-member one: 463 M -> 461 M with the other start-up savings, 467 M at 256).
PASS_AFTER = 128
_ZEROS = bytes(BLOCK)
#: Where a member's offset and size are in the tuple of its fields (Decoder.fields).
_OFFSET, _SIZE = MEMBER_FIELDS.index("offset"), MEMBER_FIELDS.index("size")


def detect(device: BlockDevice) -> bool:
    """A valid header checksum at byte 0, or an empty archive (zeros only)."""
    if device.size < BLOCK:
        return False
    block = bytes(device.pread(0, BLOCK))
    if block == _ZEROS:
        head = bytes(device.pread(0, min(device.size, 1 << 20)))
        return not head.strip(b"\0")
    try:
        return stored_checksum(block)[1]
    except ValueError:
        return False


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
        self._fill(offset, WINDOW if step <= DENSE else max(n, SPARSE))
        return self.buf[:n]

    def around(self, offset: int) -> Tuple[bytes, int]:
        """``(buf, start)``: the window, from image offset ``start``, holding the header at
        ``offset``: the one read last if it does, else a new one there -- twice the last
        one's bytes (``WINDOW`` at first, at most ``LOOKUP_WINDOW``) when the data passed
        over since the last one's end was at most ``LOOKUP_DENSE`` bytes, else
        ``SPARSE``."""
        end = self.start + len(self.buf)
        if not self.start <= offset <= end - BLOCK:
            self.last = offset
            # (dense: twice the last window, from WINDOW up to LOOKUP_WINDOW)
            self._fill(offset, min(2 * max(len(self.buf), WINDOW // 2), LOOKUP_WINDOW)
                       if offset - end <= LOOKUP_DENSE else SPARSE)
        return self.buf, self.start

    def _fill(self, offset: int, n: int) -> None:
        self.start = offset
        self.buf = b""                        # the old window goes before the new comes
        self.buf = bytes(self.device.pread(offset, min(n, self.size - offset)))


def _pass_unrelated(win: _Window, dec: Decoder, pos: int, unrelated) -> Tuple[int, int]:
    """``(offset, n)``: from ``pos`` on, the ``n`` headers in a row that cannot decide the
    lookup (``unrelated``: :func:`~blockimg.tar.decoder.unrelated_names`) are passed over
    (:meth:`Decoder.pass_over`), one window at a time, their data unread; ``offset`` is
    the header after them."""
    n = 0
    while pos + BLOCK <= win.size:
        buf, start = win.around(pos)
        pos, k = dec.pass_over(buf, start, pos, win.size, unrelated)
        n += k
        if pos + BLOCK <= start + len(buf):     # stopped at a header the Decoder decides
            break
    return pos, n


def _past_the_end(m: Member, dev_size: int) -> CorruptImage:
    return CorruptImage(f"entry {m.name!r} claims {m.size} bytes of data, past the end of "
                        f"the image ({dev_size} bytes)", offset=m.offset, field="size",
                        value=m.size)


def _check_not_pending(dec: Decoder) -> None:
    """At the end of the image: no extended header may still wait for its entry."""
    if dec.pending is not None:
        ext, off, _ = dec.pending
        raise CorruptImage(f"the image ends after a {ext!r} extended header, before its "
                           "entry", offset=off)


def _link_of(kind: str, linkname: str) -> Optional[str]:
    """The link target an entry of ``kind`` keeps: a symlink's as stored, a hard link's
    as an index key (no empty or ``.`` components); None for the other kinds."""
    if kind == "symlink":
        return linkname
    if kind == "hardlink":
        return "/".join(p for p in linkname.split("/") if p not in ("", "."))
    return None


def clean_key(name: str) -> Optional[str]:
    """The index key of a member named ``name`` when the name is clean -- relative, no
    empty, ``.`` or ``..`` component, no component starting with ``.``; GNU tar's
    ``./`` before it and one ``/`` after it allowed --, else None.

    The fast form of :func:`~blockimg.read.image.normalize_member_path`, which gives the
    same key for such a name (tests/unit/test_tar_member_key.py) and decides every other
    one. Measured reason: the ``./name`` members of ``tar -C DIR .`` all went through it,
    7 % of building an image from such an archive (docs/ARCHITECTURE.md)."""
    s = name[2:] if name[:2] == "./" else name
    path = s[:-1] if s[-1:] == "/" else s
    if not path or path[0] in "./" or "//" in s or "/." in s:
        return None
    return path


class TarImage(Image):
    """A tar image opened for reading (see :class:`blockimg.read.image.Image`).

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
        # (the index holds one small acyclic object per member: the collector's passes
        # over them while they are made are waste)
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._scan(want=want)
        finally:
            if collecting:
                gc.enable()
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
        """Decode every header with the :class:`~blockimg.tar.decoder.Decoder`; index each
        entry (or, ``replay``, only hand it over; or, ``want``, index only the entries
        that decide that path: itself, its ancestors and what lies below it, under the
        same rules).

        A lookup passes over the runs of headers whose members cannot decide its path
        (:func:`_pass_unrelated`), where nothing is pending in the Decoder; of those
        only the checksum, size and name are decoded, and what the whole index alone
        needs -- ``flavours``, the numbers of those members -- is left out.
        """
        dev_size = self.device.size
        win = _Window(self.device)
        dec = Decoder()
        take = (lambda fields: replay(Member(*fields))) if replay is not None else \
            self._add if want is None else (lambda fields: self._add(fields, want))
        count = 0
        pos = 0
        # (the pattern is made once the lookup has decoded PASS_AFTER headers one by one)
        unrelated = None
        # (``while True``: CPython 3.11 specializes the code of a function called once, as
        # this, only at an unconditional jump back; a ``while cond`` loop stays generic)
        while True:
            if pos + BLOCK > dev_size:
                _check_not_pending(dec)
                break
            if unrelated is None and want is not None and count >= PASS_AFTER:
                unrelated = unrelated_names(want.encode("utf-8", "surrogateescape"))
            if unrelated is not None and dec.idle:
                pos, n = _pass_unrelated(win, dec, pos, unrelated)
                count += n
                if pos + BLOCK > dev_size:
                    break
            buf = win.buf                  # (win.get, without a call for a header in it)
            rel = pos - win.start
            if 0 <= rel <= len(buf) - BLOCK:
                win.last = pos
                block = buf[rel:rel + BLOCK]
            else:
                block = win.get(pos, BLOCK)
            action, value = dec.fields(block, pos)
            if action is ENTRY:
                size = value[_SIZE]
                pos = value[_OFFSET] + BLOCK + size
                if pos > dev_size:
                    raise _past_the_end(Member(*value), dev_size)
                count += 1
                take(value)
                pos += -size % BLOCK
            elif action is READ:
                pos = self._read_payload(dec, win, pos, value)
            elif action is END:
                if replay is None:
                    self.end_of_archive = value
                break
            else:
                pos += BLOCK
        if replay is not None:
            return
        if self.end_of_archive is None:
            self.notes.append((pos, "the archive has only one zero block at its end "
                                    "(Mirage needs two)" if dec.zero_at is not None
                               else "the archive has no end-of-archive zero blocks "
                                    "(Mirage needs two)"))
        self._member_count += count
        self.notes[:0] = dec.notes
        self.flavours = dec.flavours
        self.warnings.extend(f"byte {off}: {msg}" for off, msg in self.notes)

    @staticmethod
    def _read_payload(dec: Decoder, win: _Window, pos: int, size: int) -> int:
        """Hand the Decoder the ``size``-byte extended payload after the header at ``pos``;
        the offset of the next header."""
        start = pos + BLOCK
        if start + size > win.size:
            raise CorruptImage(f"extended header payload of {size} bytes runs past "
                               f"the end of the image ({win.size} bytes)",
                               offset=pos, field="size", value=size)
        dec.payload(win.get(start, size))
        return start + padded(size)

    def _add(self, fields: tuple, want: Optional[str] = None) -> None:
        """Index the member of ``fields`` (:meth:`Decoder.fields`; with ``want``, only if
        it decides that path): missing parents become directories, and a non-directory
        that replaces a directory drops what was below it."""
        hoff, offset, name, linkname, _, kind, size, mtime, mode, _, _, _, note = fields
        if note:
            self.warnings.append(f"byte {offset}: {name!r}: {note}")
        if kind == "label":
            return
        path = clean_key(name)
        if path is None:
            path = self._member_key(name)
        if path is None or (want is not None and not (
                path == want or path.startswith(want + "/") or want.startswith(path + "/"))):
            return
        if kind == "file":
            extents, link = ((offset + BLOCK, size),) if size else (), None
        else:
            size, extents, link = 0, (), _link_of(kind, linkname)
        same = self._same
        info = EntryInfo(path, kind, size, same(mtime, mtime), same(mode, mode), extents,
                         link, hoff)
        index = self._idx
        cut = path.rfind("/")
        if cut > 0:
            p = index.get(path[:cut])
            if p is None or p.kind != "dir":
                self._make_parents(path, hoff)
        old = index.get(path)
        if old is not None and old.kind == "dir" and kind != "dir":
            self._drop_below(path)
        index[path] = info
        if self._children is not None:
            self._children.setdefault(path[:max(cut, 0)], []).append(path)

    def _member_key(self, name: str) -> Optional[str]:
        """The index key of a member named ``name`` that is not clean (see
        :func:`clean_key`); None (recorded in ``unsafe_names`` or ``padding_entries``) for
        one left out."""
        path, reason = normalize_member_path(name)
        if path is None:
            self.unsafe_names.append((name, reason))
        elif path == "":
            self.padding_entries += 1
        else:
            return path
        return None

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
