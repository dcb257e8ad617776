"""Update a tar image in place by appending: the Mirage tar driver, GNU tar and bsdtar
all take the **last** member of a name, so new and changed files are appended where
the end-of-archive blocks were (as GNU ``tar -r`` does).

Layout of an append at ``E`` (the old archive's first end-of-archive zero block)::

    E        one "./" filler header (the switch block; every reader ignores it)
    E+512    new directories (parents before their contents), then new and changed
             files -- a tar plan of just those entries (:func:`blockimg.tar.layout.plan`)
    ...      two zero blocks; the image padded as ``create`` pads it

Write order (each step flushed before the next):

1. the file grows to its new size if needed (zeros after the old end: old tree intact);
2. everything from ``E+1024`` on (the old two zero blocks untouched: every reader
   still reads the old tree);
3. the block at ``E+512`` (the old second zero block): the old archive now ends in
   a lone zero block -- GNU tar, bsdtar and Python's tarfile stop there (old tree),
   the Mirage driver and blockimg read on (new tree, complete since step 2);
4. the filler at ``E``: one 512-byte write, the switch; every reader reads the new tree.

A crash after step 3 and before step 4 leaves a lone zero block followed by members:
:func:`interrupted` finds it (``blockimg check`` reports it) and the next update
writes the filler there first (:func:`complete`).

Directories already in the image are never stated again (a directory header after
entries under it empties that directory for Mirage), so a changed directory mtime
is not carried over; removals and a path that changes kind cannot be appended and
make :func:`plan_append` return None (the caller rebuilds the image).
"""
from __future__ import annotations

TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Iterable, List, Optional, Tuple

from ..block.base import BlockDevice, Buffer
from ..errors import CorruptImage, DoesNotFit
from ..record import record
from ..sources.directory import Kind, SourceTree
from ..tar.codec import pad_entry
from ..tar.header import BLOCK
from ..tar.layout import END_BLOCKS, TarPlan, plan as plan_tar
from ..tar.options import Options
from ..tar.writer import write as write_tar
from ..units import align_up
from .diff import Diff

__all__ = ["AppendPlan", "plan_append", "appended", "apply", "interrupted", "complete",
           "settled", "LONE_ZERO"]

LONE_ZERO = "lone zero block"


@record(frozen=True)
class AppendPlan:
    """Where the appended members go and what the image becomes."""

    start: int          # E: the old archive's first end-of-archive block (the filler)
    filler: bytes       # the one-block "./" header written last, at ``start``
    members: TarPlan    # the appended entries, offsets relative to start + 512
    image_size: int     # the image's size afterwards (never smaller than before)

    @property
    def bytes_written(self) -> int:
        """Bytes the update writes: the filler, the members and the end blocks."""
        return BLOCK + self.members.archive_size


def plan_append(d: Diff, tree: SourceTree, *, end_of_archive: Optional[int],
                old_size: int, options: Options,
                fixed_size: Optional[int] = None) -> Optional[AppendPlan]:
    """The append that makes the image read as ``tree``; None when appending cannot
    (something removed, or a path changing between file and directory).

    ``fixed_size``: the device cannot grow (raises DoesNotFit saying by how much).
    """
    if d.removed or any(e.kind is Kind.DIR for e in d.changed):
        return None
    if end_of_archive is None:
        raise CorruptImage("the tar archive has no end-of-archive blocks to append at",
                           rule="tar archives end with two zero blocks")
    start = end_of_archive - END_BLOCKS
    entries = appended(tree, d).entries
    sub = plan_tar(SourceTree(entries),
                   Options(target=options.target, sector_size=options.sector_size))
    end = start + BLOCK + sub.archive_size
    size = max(old_size, align_up(end, options.pad_to))
    if fixed_size is not None and size > fixed_size:
        raise DoesNotFit("the updated tar image does not fit the device", needed=size,
                         available=fixed_size)
    mtime = max((e.mtime for e in entries), default=0)
    return AppendPlan(start, pad_entry(mtime), sub, size)


def appended(tree: SourceTree, d: Diff) -> SourceTree:
    """The entries of ``tree`` an append states: the added and changed ones, in the
    tree's order (parents first; found by path, a string's hash being kept)."""
    want = {e.path for e in d.added} | {e.path for e in d.changed}
    return SourceTree(tuple([e for e in tree.entries if e.path in want]))


class _Held(BlockDevice):
    """``parent`` from ``base`` on, holding back writes to its first block (``held``)."""

    def __init__(self, parent: BlockDevice, base: int, size: int) -> None:
        # ``size``: what the writer checks its plan against (the plan is padded as a
        # whole image would be; only its archive part is written, inside ``parent``).
        super().__init__(parent.sector_size, size // parent.sector_size, True)
        self.parent = parent
        self.base = base
        self.held = bytearray(BLOCK)
        self.name = parent.name

    def _read_at(self, offset: int, length: int) -> Buffer:
        return self.parent._read_at(self.base + offset, length)

    def _write_at(self, offset: int, data: Buffer) -> None:
        mv = memoryview(data).cast("B")
        if offset < BLOCK:
            n = min(BLOCK - offset, len(mv))
            self.held[offset:offset + n] = mv[:n]
            mv, offset = mv[n:], offset + n
        if len(mv):
            self.parent._write_at(self.base + offset, mv)


def apply(p: AppendPlan, device: BlockDevice, *, grow=None) -> None:
    """Carry ``p`` out on ``device`` in the crash-safe order of the module docstring.

    ``grow(size)`` makes the device ``size`` bytes long when it must grow (a file).
    """
    if p.image_size > device.size:
        if grow is None:
            raise DoesNotFit("the updated tar image does not fit the device",
                             needed=p.image_size, available=device.size)
        grow(p.image_size)
    if device.sector_size > BLOCK:   # 512-byte writes need 512-byte sectors
        raise DoesNotFit(f"in-place tar update needs 512-byte writes; {device.name} has "
                         f"{device.sector_size}-byte sectors", needed=BLOCK,
                         available=device.sector_size)
    held = _Held(device, p.start + BLOCK, p.members.image_size)
    write_tar(p.members, held)                    # step 2 (step 3's block held back)
    device.flush()
    device.pwrite(p.start + BLOCK, bytes(held.held))   # step 3
    device.flush()
    device.pwrite(p.start, p.filler)                  # step 4: the switch
    device.flush()


def interrupted(notes: Iterable[Tuple[int, str]]) -> List[int]:
    """Offsets of lone zero blocks (followed by members): an append cut before its
    switch leaves one (see the module docstring)."""
    return [off for off, msg in notes if msg.startswith(LONE_ZERO)]


def complete(device: BlockDevice, offsets: Iterable[int], mtime: int = 0) -> int:
    """Finish an interrupted append: a "./" filler over each lone zero block (what
    the cut update would have written there). Returns the number of blocks written."""
    n = 0
    for off in offsets:
        device.pwrite(off, pad_entry(mtime))
        n += 1
    if n:
        device.flush()
    return n


def settled(device: BlockDevice, end: Optional[int], pad_to: int) -> bool:
    """Whether the image ends as ``create`` and a whole append leave it: at ``end`` (the
    end of its end-of-archive blocks) padded to ``pad_to`` with zeros. An append cut
    before its switch has grown the image or written past ``end``."""
    if end is None or device.size != align_up(end, pad_to):
        return False
    return not any(bytes(device.pread(end, device.size - end)))
