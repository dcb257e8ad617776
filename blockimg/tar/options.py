"""The tar format's options: one frozen value, validated when made."""
from __future__ import annotations

TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Optional

from ..errors import InvalidInput
from ..record import record
from ..units import check_power_of_two, size_message

__all__ = ["Options", "MIRAGE_PAD", "MIRAGE_RECORD_LIMIT"]

MIRAGE_PAD = 4096  # the Mirage target pads images to this, so 512- and 4096-byte devices mount it
MIRAGE_RECORD_LIMIT = 512  # tar-mirage asserts every extended payload is <= 512 bytes


@record(frozen=True)
class Options:
    """How to lay out a tar image.

    ``target``: ``"mirage"`` (default) refuses what the Mirage tar driver
    cannot read and pads the image to a multiple of max(4096, sector_size);
    ``"generic"`` stores anything tar can (pax records for what ustar cannot
    hold) and pads to ``sector_size`` only.
    ``sector_size``: the device sector size the image is padded to.
    ``align``: every non-empty regular file's data starts at a multiple of it.
    ``size``: the exact image size (content that does not fit is refused).
    """

    target: str = "mirage"
    sector_size: int = 512
    align: Optional[int] = None
    size: Optional[int] = None

    def __post_init__(self) -> None:
        if self.target not in ("mirage", "generic"):
            raise InvalidInput(f"must be mirage or generic, not {self.target}",
                               path="target", rule="tar target")
        check_power_of_two("sector_size", self.sector_size, 512, 65536)
        if self.align is not None:
            check_power_of_two("align", self.align, 512, 1 << 30)
        if self.size is not None:
            if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
                raise InvalidInput(f"must be a whole number of bytes, not {self.size}",
                                   path="size", rule="image size")
            if self.size % self.sector_size:
                raise InvalidInput(size_message(self.size, self.sector_size), path="size",
                                   rule="image length must be whole sectors")

    @property
    def mirage(self) -> bool:
        return self.target == "mirage"

    @property
    def pad_to(self) -> int:
        """The image length is rounded up to a multiple of this (without ``size``)."""
        return max(MIRAGE_PAD, self.sector_size) if self.mirage else self.sector_size
