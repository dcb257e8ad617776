"""Block devices: the protocol and the built-in backends."""
from .base import BlockDevice
from .file import FileDevice
from .memory import MemoryDevice
from .mmap import MmapDevice
from .registry import ENTRY_POINT_GROUP, backend_names, open_device
from .window import WindowDevice

__all__ = ["BlockDevice", "FileDevice", "MemoryDevice", "MmapDevice", "WindowDevice",
           "open_device", "backend_names", "ENTRY_POINT_GROUP"]
