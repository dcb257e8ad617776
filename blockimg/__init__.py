"""blockimg: FAT and tar block-device images for MirageOS unikernels, in pure Python.

Build::

    summary = blockimg.create("site/", "site.img", format="tar", align=4096)

Read::

    with blockimg.open("site.img") as img:
        for entry in img.list():
            ...
        data = img.read("index.html")
"""
import sys as _sys
_TYPE_CHECKING = False   # typing is for annotations only: not imported at run time

if _TYPE_CHECKING:   # what __getattr__ gives, declared for readers and type checkers
    from .api import Summary, create, open
    from .block import (BlockDevice, FileDevice, MemoryDevice, MmapDevice, WindowDevice,
                        backend_names, open_device)
    from .errors import (BlockImgError, CorruptImage, DeviceError, DoesNotFit, InvalidInput,
                         NotFound, SourceChanged, Unsupported)
    from .image import EntryInfo, ExtractReport, Image, ImageFile
    from .source import Kind, SourceEntry, SourceTree, from_pairs, walk

# Names are imported on first use (PEP 562), so ``blockimg create`` loads only what a
# build needs: no reader, manifest or backend registry.
_LAZY = {
    "create": "api", "open": "api", "Summary": "api",
    "BlockDevice": "block", "FileDevice": "block", "MemoryDevice": "block",
    "MmapDevice": "block", "WindowDevice": "block", "backend_names": "block",
    "open_device": "block",
    "BlockImgError": "errors", "CorruptImage": "errors", "DeviceError": "errors",
    "DoesNotFit": "errors", "InvalidInput": "errors", "NotFound": "errors",
    "SourceChanged": "errors", "Unsupported": "errors",
    "EntryInfo": "image", "ExtractReport": "image", "Image": "image", "ImageFile": "image",
    "Kind": "source", "SourceEntry": "source", "SourceTree": "source", "from_pairs": "source",
    "walk": "source",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    __import__(f"{__name__}.{module}")     # (not importlib: ~1 ms of start-up)
    value = getattr(_sys.modules[f"{__name__}.{module}"], name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__version__ = "0.1.0"

__all__ = [
    "create", "open", "Summary",
    "BlockDevice", "FileDevice", "MemoryDevice", "MmapDevice", "WindowDevice",
    "open_device", "backend_names",
    "Image", "ImageFile", "EntryInfo", "ExtractReport",
    "SourceTree", "SourceEntry", "Kind", "walk", "from_pairs",
    "BlockImgError", "InvalidInput", "DoesNotFit", "SourceChanged", "CorruptImage",
    "Unsupported", "DeviceError", "NotFound",
    "__version__",
]
