"""Where each volume goes on the disk: a pure function from volume sizes to a plan."""
from __future__ import annotations

TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Sequence, Tuple

from ..errors import InvalidInput
from ..record import record
from ..units import align_up, is_power_of_two
from .structs import SECTOR
from .table import GPT_ARRAY_BYTES, GPT_ENTRIES, gpt_overhead

__all__ = ["Slot", "DiskPlan", "plan_disk", "TABLES", "DEFAULT_ALIGN"]

TABLES = ("mbr", "gpt")
DEFAULT_ALIGN = 1 << 20
_MBR_LIMIT = 0xFFFFFFFF * SECTOR


@record(frozen=True)
class Slot:
    """One partition of the plan: its name, content kind (``fat16``, ``tar``, ``empty`` ...),
    first byte and length."""

    name: str
    kind: str
    start: int
    size: int

    @property
    def end(self) -> int:
        return self.start + self.size


@record(frozen=True)
class DiskPlan:
    table: str
    align: int
    disk_size: int
    slots: Tuple[Slot, ...]


def plan_disk(volumes: Sequence[Tuple[str, str, int]], *, table: str = "mbr",
              align: int = DEFAULT_ALIGN, size_multiple: int = 1) -> DiskPlan:
    """Place ``(name, kind, size)`` volumes in order, each at the next ``align`` boundary.

    The disk ends at the next boundary of ``max(align, size_multiple)`` after the last
    partition (and, for GPT, the backup table). Every problem is reported at once.
    """
    problems = []
    if table not in TABLES:
        problems.append(f"table {table!r}: mbr or gpt")
    if not is_power_of_two(align) or align < SECTOR:
        problems.append(f"align {align}: a power of two of at least {SECTOR}")
    limit = 4 if table == "mbr" else GPT_ENTRIES
    if len(volumes) > limit:
        problems.append(f"{len(volumes)} volumes: an {table.upper()} holds at most {limit}")
    names = [n for n, _, _ in volumes]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        problems.append(f"partition names given more than once: {', '.join(dupes)}")
    for name, _, size in volumes:
        if size <= 0 or size % SECTOR:
            problems.append(f"volume {name}: {size} bytes is not a positive multiple of "
                            f"{SECTOR}")
    if problems:
        raise InvalidInput("; ".join(problems), rule="disk layout")
    pos = align_up(SECTOR + (GPT_ARRAY_BYTES if table == "gpt" else 0), align)
    slots = []
    for name, kind, size in volumes:
        slots.append(Slot(name, kind, pos, size))
        pos = align_up(pos + size, align)
    end = slots[-1].end + (gpt_overhead() if table == "gpt" else 0)
    disk_size = align_up(end, max(align, size_multiple))
    if table == "mbr" and disk_size > _MBR_LIMIT:
        raise InvalidInput(f"a disk of {disk_size} bytes: MBR addresses at most {_MBR_LIMIT} "
                           "bytes; use --table gpt", rule="disk layout")
    return DiskPlan(table, align, disk_size, tuple(slots))
