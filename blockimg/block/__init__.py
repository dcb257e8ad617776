"""Block devices: the protocol and the built-in backends.

Names are imported on first use (PEP 562): opening an image file loads the file
backend alone, not mmap, memory, window or the registry of plugins.
"""
from ..lazy import lazy_names as _lazy_names

_TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if _TYPE_CHECKING:   # what __getattr__ gives, declared for readers and type checkers
    from .base import BlockDevice
    from .file import FileDevice
    from .memory import MemoryDevice
    from .mmap import MmapDevice
    from .registry import ENTRY_POINT_GROUP, backend_names, open_device
    from .window import WindowDevice

_LAZY = {"BlockDevice": "base", "FileDevice": "file", "MemoryDevice": "memory",
         "MmapDevice": "mmap", "WindowDevice": "window", "open_device": "registry",
         "backend_names": "registry", "ENTRY_POINT_GROUP": "registry"}

__getattr__, __dir__ = _lazy_names(globals(), _LAZY)

__all__ = list(_LAZY)
