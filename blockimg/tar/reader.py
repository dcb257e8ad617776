"""Reading tar images: one pass over the headers builds the index, then random access.

Reads ustar, GNU (``././@LongLink`` names and links, base-256 numbers),
pax (``x`` and ``g``: path, linkpath, size, mtime) and v7 archives. File
data is never copied at open: each file's index entry holds the offset of
its data, and reads go to the device there (zero-copy with MmapDevice).

Semantics follow the Mirage driver where readers differ: a repeated path
is replaced by the last one, a lone zero block does not end the archive
(noted in ``warnings``), a name ending in ``/`` is a directory. Names with
a ``..`` component are left out and listed in ``unsafe_names``.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

from ..block.base import BlockDevice
from ..errors import CorruptImage
from ..image import EntryInfo, Image, normalize_member_path
from .codec import END, ENTRY, READ, Decoder, Member
from .header import BLOCK, checksums, decode_number, padded

__all__ = ["TarImage", "detect"]

WINDOW = 1 << 16
#: A step between headers up to DENSE bytes reads a whole WINDOW; a longer one SPARSE bytes.
DENSE = 4096
SPARSE = 2 * 512
_ZEROS = bytes(BLOCK)


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
        self.buf = bytes(self.device.pread(offset, min(want, self.size - offset)))
        return self.buf[:n]


class TarImage(Image):
    """A tar image opened for reading (see :class:`blockimg.image.Image`).

    Besides the index: ``members`` (every decoded entry, in order, for
    checks), ``flavours`` (ustar / gnu / pax / v7 seen), ``end_of_archive``
    (offset just after the two zero blocks, None when missing), ``notes``
    (``(offset, message)`` oddities), ``unsafe_names``.
    """

    format = "tar"

    def __init__(self, device: BlockDevice, *, owns_device: bool = False) -> None:
        super().__init__(device, owns_device=owns_device)
        self.unsafe_names: List[Tuple[str, str]] = []
        self.flavours: set = set()
        self.end_of_archive: Optional[int] = None
        self.notes: List[Tuple[int, str]] = []
        self.padding_entries = 0
        self._members: Optional[List[Member]] = None
        self._member_count = 0
        # One int object per distinct mtime and mode (many entries share them).
        self._same = {}.setdefault
        self._scan()
        del self._same

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
    def _scan(self, replay=None) -> None:
        """Decode every header; index each entry (or, ``replay``, only hand it over)."""
        dev_size = self.device.size
        win = _Window(self.device)
        dec = Decoder()
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
            action, value = dec.header(win.get(pos, BLOCK), pos)
            if action is ENTRY:
                if value.data_offset + value.size > dev_size:
                    raise CorruptImage(f"entry {value.name!r} claims {value.size} bytes of "
                                       f"data, past the end of the image ({dev_size} bytes)",
                                       offset=value.offset, field="size", value=value.size)
                if replay is not None:
                    replay(value)
                else:
                    self._member_count += 1
                    self._add(value)
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
        self.notes[:0] = dec.notes
        self.flavours = dec.flavours
        self.warnings.extend(f"byte {off}: {msg}" for off, msg in self.notes)

    def _add(self, m: Member) -> None:
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
        index = self._index
        parent = path.rpartition("/")[0]
        if parent:
            p = index.get(parent)
            if p is None or p.kind != "dir":
                self._make_parents(path)
        old = index.get(path)
        if old is not None and old.kind == "dir" and kind != "dir":
            prefix = path + "/"
            for key in [k for k in index if k.startswith(prefix)]:
                del index[key]
        index[path] = info

    def _make_parents(self, path: str) -> None:
        parts = path.split("/")
        for i in range(1, len(parts)):
            p = "/".join(parts[:i])
            cur = self._index.get(p)
            if cur is None:
                self._index[p] = EntryInfo(p, "dir", mode=0o755)
            elif cur.kind != "dir":
                self.warnings.append(f"{p!r} was a {cur.kind} but {path!r} is inside it: "
                                     "read as a directory")
                self._index[p] = EntryInfo(p, "dir", mode=0o755, mtime=cur.mtime)

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
