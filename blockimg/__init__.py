"""blockimg: FAT and tar block-device images for MirageOS unikernels, in pure Python.

Build::

    summary = blockimg.create("site/", "site.img", format="tar", align=4096)

Read::

    with blockimg.open("site.img") as img:
        for entry in img.list():
            ...
        data = img.read("index.html")
"""
from .lazy import lazy_names as _lazy_names

_TYPE_CHECKING = False   # typing is for annotations only: not imported at run time

if _TYPE_CHECKING:   # what __getattr__ gives, declared for readers and type checkers
    from .api import Summary, create, open
    from .block import (BlockDevice, FileDevice, MemoryDevice, MmapDevice, WindowDevice,
                        backend_names, open_device)
    from .errors import (BlockImgError, CorruptImage, DeviceError, DoesNotFit, InvalidInput,
                         NotFound, SourceChanged, Unsupported)
    from .read.extract import ExtractReport
    from .read.image import EntryInfo, Image, ImageFile
    from .sources.directory import Kind, SourceEntry, SourceTree, from_pairs, walk

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
    "EntryInfo": "read.image", "ExtractReport": "read.extract", "Image": "read.image",
    "ImageFile": "read.image",
    "Kind": "sources.directory", "SourceEntry": "sources.directory",
    "SourceTree": "sources.directory", "from_pairs": "sources.directory",
    "walk": "sources.directory",
}


__getattr__, __dir__ = _lazy_names(globals(), _LAZY)

__version__ = "0.1.0"

__all__ = [*_LAZY, "__version__"]
