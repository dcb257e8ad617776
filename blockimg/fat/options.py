"""The FAT writer's options: one frozen value, validated on construction."""
from __future__ import annotations

TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Optional, Union

from ..errors import InvalidInput
from ..record import record
from ..units import check_power_of_two, size_message

__all__ = ["Options", "TARGETS", "SECTOR_SIZES", "DEFAULT_VOLUME_ID"]

TARGETS = ("mirage", "generic")
SECTOR_SIZES = (512, 1024, 2048, 4096)
#: The volume serial written when none is given (deterministic images).
DEFAULT_VOLUME_ID = 0x1234ABCD
LABEL_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 $%'-_@~`!(){}^#&")


@record(frozen=True)
class Options:
    """How to build a FAT volume.

    ``target``: ``"mirage"`` (default: FAT16, 4096-byte sectors, Mirage name
    rules, no label entry) or ``"generic"`` (any FAT type, the standard name
    form, label entry written). ``fat_type``: ``"auto"``, 12, 16 or 32.
    ``sector_size``: 512..4096 (default 4096 for mirage, 512 for generic).
    ``align``: the FATs, root directory and data region start on multiples of
    this many bytes (a power of two). ``size``: exact image size in bytes
    (default: the smallest that holds the tree plus ``free`` bytes; with
    ``size``, ``free`` is space that must be left over).
    ``label``: up to 11 characters, stored upper case (generic target only:
    fsck.fat wants a boot-sector label matched by a root entry, which the
    Mirage driver would list as a file). ``volume_id``: 32-bit
    serial (default fixed). ``cluster_size``: bytes per cluster (default:
    chosen from the volume size as the FAT specification's tables do).
    ``fats``: number of FAT copies (1 or 2).
    """

    target: str = "mirage"
    fat_type: Union[str, int] = "auto"
    sector_size: Optional[int] = None
    align: int = 4096
    size: Optional[int] = None
    free: int = 0
    label: Optional[str] = None
    volume_id: Optional[int] = None
    cluster_size: Optional[int] = None
    fats: int = 2

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise InvalidInput(f"must be one of {', '.join(TARGETS)}, not "
                               f"{self.target}", path="target", rule="FAT target")
        self._check_type()
        ss = self._check_sector_size()
        check_power_of_two("align", self.align, 1)
        if self.size is not None:
            if not isinstance(self.size, int) or self.size <= 0 or self.size % ss:
                raise InvalidInput(size_message(self.size, ss), path="size",
                                   rule="image size in whole sectors")
        if not isinstance(self.free, int) or self.free < 0:
            raise InvalidInput(f"must be a byte count of 0 or more, not {self.free}",
                               path="free", rule="free space")
        if self.cluster_size is not None:
            check_power_of_two("cluster_size", self.cluster_size, ss, min(128 * ss, 65536))
        if self.fats not in (1, 2):
            raise InvalidInput(f"must be 1 or 2, not {self.fats}", path="fats",
                               rule="FAT copies")
        if self.volume_id is not None and (not isinstance(self.volume_id, int)
                                           or not 0 <= self.volume_id <= 0xFFFFFFFF):
            raise InvalidInput(f"must be a 32-bit number (0 to 0xFFFFFFFF), not "
                               f"{self.volume_id}",
                               path="volume_id", rule="volume serial")
        if self.label is not None:
            self._check_label()

    def _check_type(self) -> None:
        """``fat_type``: auto, 12, 16 or 32 (digits as text too); only 16 for Mirage."""
        ft = self.fat_type
        if isinstance(ft, str) and ft.isdigit():
            ft = int(ft)
            object.__setattr__(self, "fat_type", ft)
        if ft not in ("auto", 12, 16, 32):
            raise InvalidInput(f"must be auto, 12, 16 or 32, not {ft}",
                               path="fat_type", rule="FAT type")
        if self.target == "mirage" and ft not in ("auto", 16):
            raise InvalidInput(f"the Mirage FAT driver reads only FAT16 (it misreads FAT{ft}); "
                               "use --target generic for other types", path="fat_type",
                               rule="Mirage target: FAT16 only")

    def _check_sector_size(self) -> int:
        """``sector_size``, its default filled in by target."""
        ss = self.sector_size
        if ss is None:
            ss = 4096 if self.target == "mirage" else 512
            object.__setattr__(self, "sector_size", ss)
        if ss not in SECTOR_SIZES:
            raise InvalidInput("must be 512, 1024, 2048 or 4096 (bytes), not "
                               f"{ss}",
                               path="sector_size", rule="FAT sector size")
        return ss

    def _check_label(self) -> None:
        """``label``: generic target only, stored upper case."""
        if self.target == "mirage":
            raise InvalidInput("the Mirage target writes no volume-label entry (the Mirage "
                               "driver lists it as an empty file), and fsck.fat rejects a "
                               "boot-sector label without one; use --target generic for a "
                               "label", path="label", rule="Mirage target: no volume label")
        lab = self.label.upper()
        if not 1 <= len(lab) <= 11 or any(c not in LABEL_CHARS for c in lab) \
                or lab.startswith(" "):
            raise InvalidInput(f"must be 1 to 11 characters from A-Z 0-9 space "
                               f"$%'-_@~`!(){{}}^#&, not starting with a space: "
                               f"{self.label!r}", path="label", rule="FAT volume label")
        object.__setattr__(self, "label", lab)

    @property
    def mirage(self) -> bool:
        return self.target == "mirage"

    @property
    def volume_serial(self) -> int:
        return DEFAULT_VOLUME_ID if self.volume_id is None else self.volume_id
