"""The CRC-32C (Castagnoli) of file contents, as written to manifests and checked by
``verify``."""
from __future__ import annotations

TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Callable

__all__ = ["crc32c"]


def crc32c() -> Callable[..., int]:
    """A fresh CRC-32C function from crcmod: ``f(data, crc=0) -> int``."""
    import crcmod.predefined
    return crcmod.predefined.mkPredefinedCrcFun("crc-32c")
