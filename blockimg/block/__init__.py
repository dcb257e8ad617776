"""Block devices: the protocol and the built-in backends.

Names are imported on first use (PEP 562): opening an image file loads the file
backend alone, not mmap, memory, window or the registry of plugins.
"""
import importlib as _importlib

_LAZY = {"BlockDevice": "base", "FileDevice": "file", "MemoryDevice": "memory",
         "MmapDevice": "mmap", "WindowDevice": "window", "open_device": "registry",
         "backend_names": "registry", "ENTRY_POINT_GROUP": "registry"}

__all__ = ["BlockDevice", "FileDevice", "MemoryDevice", "MmapDevice", "WindowDevice",
           "open_device", "backend_names", "ENTRY_POINT_GROUP"]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
