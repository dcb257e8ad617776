"""Pure tar layout: a source tree and options in, every byte's place out.

The archive is the tree's entries in order (parents before children,
directories as ``name/``), each as its header set (a pax ``x`` header with
its records when ustar cannot hold a value, then the ustar header) followed
by the file's data padded to 512 bytes; then two zero blocks; then the rest
of the image up to its size (a multiple of the sector size, of 4096 for the
Mirage target, or exactly ``size``), which every reader ignores and the
writer leaves unwritten.

Alignment (``align=N``): before the header set of a non-empty regular file
whose data would not start on a multiple of N, the planner inserts ``k``
filler entries, each a single 512-byte ustar directory header named ``./``
(mode 0755, no data), with ``k`` the number of blocks that moves the data
onto the boundary (0 <= k < N / 512). Every reader treats ``./`` as the
archive root:

* tar-mirage strips a leading ``./`` and ignores an entry whose name is
  then empty, so fillers add nothing to the Mirage key-value store;
* GNU tar and bsdtar list each filler as ``./`` (Python's tarfile as
  ``.``) and, on extraction, find the destination directory already there:
  no file is created or changed. The only trace is on the destination
  directory itself: GNU tar and bsdtar set its mode to 0755 (tarfile too,
  except with its ``data`` filter), and GNU tar and tarfile set its mtime
  to the fillers' mtime, the newest mtime in the tree (checked by the
  interop tests: listings minus ``./`` and extracted trees are identical
  to those of the unaligned image).

Fillers are whole headers, never extended records, so they never put two
``x`` headers in a row (tar-mirage reads the header after an ``x`` as the
entry, unconditionally) and never add to a record's payload.
"""
from __future__ import annotations

TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Iterator, List, Optional, Tuple

from ..errors import DoesNotFit, InvalidInput
from ..record import record
from ..sources.directory import Kind, OrderedEntries, SourceEntry, SourceTree
from ..units import align_up
from .codec import encode_entry, one_header, pad_entry
from .header import BLOCK, padded
from .options import Options

__all__ = ["PlannedEntry", "TarPlan", "plan", "END_BLOCKS"]

END_BLOCKS = 2 * BLOCK   # the end-of-archive marker: two zero blocks


class PlannedEntry:
    """``head`` (fillers + header set) goes at ``offset``; file data at ``data_offset``.

    Read-only. ``head`` is encoded again when asked for, unless the planner kept it
    (the few entries that need extended headers): a plan of many files holds no
    header bytes, so memory stays small (the writer encodes each header once).
    """

    __slots__ = ("entry", "offset", "data_offset", "fillers", "_head", "_mirage", "_filler")

    def __init__(self, entry: SourceEntry, offset: int, head: Optional[bytes],
                 data_offset: int, fillers: int = 0, *, mirage: bool = True,
                 filler: bytes = b"") -> None:
        if head is None and fillers and len(filler) != BLOCK:
            raise ValueError("a lazily encoded head with fillers needs the filler block")
        # The slots' own descriptors (past the read-only __setattr__).
        _set_entry(self, entry)
        _set_offset(self, offset)
        _set_data_offset(self, data_offset)
        _set_fillers(self, fillers)
        _set_head(self, head)
        _set_mirage(self, mirage)
        _set_filler(self, filler if head is None else b"")

    def __setattr__(self, name, value):
        raise AttributeError(f"PlannedEntry is read-only (cannot set {name!r})")

    __delattr__ = __setattr__

    @property
    def kept_head(self) -> Optional[bytes]:
        """The head the planner kept (fillers included), or None: encode the entry."""
        return self._head

    @property
    def filler(self) -> bytes:
        """The filler block (for a head encoded later, with ``fillers``)."""
        return self._filler

    @property
    def head(self) -> bytes:
        if self._head is not None:
            return self._head
        head = encode_entry(self.entry, mirage=self._mirage)
        return self._filler * self.fillers + head if self.fillers else head

    def _key(self):
        return (self.entry, self.offset, self.head, self.data_offset, self.fillers)

    def __eq__(self, other):
        if not isinstance(other, PlannedEntry):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"PlannedEntry(entry={self.entry!r}, offset={self.offset}, "
                f"data_offset={self.data_offset}, fillers={self.fillers})")

    @property
    def end(self) -> int:
        """Where the next entry starts (data padded to 512 bytes)."""
        return self.data_offset + padded(self.entry.size if self.entry.kind is Kind.FILE else 0)


(_set_entry, _set_offset, _set_data_offset, _set_fillers, _set_head, _set_mirage,
 _set_filler) = [getattr(PlannedEntry, name).__set__ for name in PlannedEntry.__slots__]


@record(frozen=True)
class TarPlan:
    """Every header and data extent of one tar image."""

    items: Tuple[PlannedEntry, ...]
    end_offset: int          # where the two zero blocks go
    image_size: int
    sector_size: int
    options: Options
    file_bytes: int

    @property
    def archive_size(self) -> int:
        """Bytes of archive proper (through the end-of-archive blocks)."""
        return self.end_offset + END_BLOCKS

    def extents(self) -> Iterator[Tuple[str, List[Tuple[int, int]]]]:
        """``(path, [(offset, length)])`` of every regular file, in image order."""
        for it in self.items:
            e = it.entry
            if e.kind is Kind.FILE:
                yield e.path, ([(it.data_offset, e.size)] if e.size else [])


def plan(tree: SourceTree, options: Optional[Options] = None) -> TarPlan:
    """Place every header and data extent of ``tree`` (pure: no I/O).

    Raises InvalidInput for what the target cannot store (every entry it
    cannot store at once: :class:`~blockimg.errors.Problems` when more than
    one) and DoesNotFit when ``options.size`` is too small (saying by how much).
    """
    options = options or Options()
    return _plan(tree, options)


def _plan(tree: SourceTree, options: Options) -> TarPlan:
    mirage = options.mirage
    align = options.align
    filler = pad_entry(max((e.mtime for e in tree.entries), default=0)) if align else b""
    items: List[PlannedEntry] = []
    problems: list = []
    pos = 0
    file_bytes = 0
    FILE = Kind.FILE
    append = items.append
    entries = tree.entries
    # A walk's entries are already in order (OrderedEntries); others are sorted and checked.
    for entry in (entries if type(entries) is OrderedEntries else _in_order(entries)):
        # One ustar header and nothing else: the writer encodes it (memory: no bytes here).
        head = None if one_header(entry, mirage) else _encoded(entry, mirage, problems)
        length = BLOCK if head is None else len(head)
        k = 0
        is_file = entry.kind is FILE
        if align and is_file and entry.size:
            k = (-(pos + length) % align) // BLOCK
            length += k * BLOCK
            if k and head is not None:
                head = filler * k + head
        append(PlannedEntry(entry, pos, head, pos + length, k, mirage=mirage, filler=filler))
        pos += length
        if is_file:
            file_bytes += entry.size
            pos += padded(entry.size)
    archive = pos + END_BLOCKS
    if options.size is not None and archive > options.size:
        problems.append(DoesNotFit("the tar archive does not fit the requested image size",
                                   needed=align_up(archive, options.sector_size),
                                   available=options.size))
    InvalidInput.raise_all(problems)
    image_size = options.size if options.size is not None else align_up(archive,
                                                                         options.pad_to)
    return TarPlan(tuple(items), pos, image_size, options.sector_size, options, file_bytes)


def _encoded(entry: SourceEntry, mirage: bool, problems: list) -> bytes:
    """The entry's header set; a placeholder block when it cannot be encoded (the
    reason appended to ``problems``: the plan goes on to find every other one)."""
    if mirage and entry.kind is not Kind.FILE and entry.kind is not Kind.DIR:
        problems.append(_link_refused(entry))
    try:
        return encode_entry(entry, mirage=mirage)
    except InvalidInput as e:
        problems.append(e)
        return bytes(BLOCK)


def _link_refused(entry: SourceEntry) -> InvalidInput:
    """Mirage target: tar-mirage reads link entries as empty files (MIRAGE.md tar rule 6)."""
    what = "symbolic link" if entry.kind is Kind.SYMLINK else "hard link"
    return InvalidInput(
        f"is a {what} (to {entry.link_target!r}); the Mirage tar driver reads link entries "
        "as empty files. Build without --keep-links to store a full copy of the target, "
        "or use --target generic to keep the link",
        path=entry.path, rule="Mirage target: only regular files carry content, no links")


def _in_order(entries) -> List[SourceEntry]:
    """Entries in image order, each path once, no entry inside a non-directory.

    Walks and ``from_pairs`` already give this; a hand-made SourceTree is
    sorted here so the bytes never depend on the order entries came in.
    """
    # sort_key order (component by component, by bytes), computed faster: NUL is
    # below every byte a name can hold, so it sorts like the component tuples
    ordered = sorted(entries, key=lambda e: e.path_bytes.replace(b"/", b"\0"))
    dirs = set()
    others = set()
    for e in ordered:
        path = e.path
        if path in dirs or path in others:
            raise InvalidInput("appears twice in the source", path=path, rule="unique paths")
        parent = path.rpartition("/")[0]
        if parent and parent not in dirs:
            parts = path.split("/")
            for i in range(1, len(parts)):
                anc = "/".join(parts[:i])
                if anc in others:
                    raise InvalidInput(f"is inside {anc!r}, which is not a directory",
                                       path=path, rule="parents are directories")
        (dirs if e.kind is Kind.DIR else others).add(path)
    return ordered
