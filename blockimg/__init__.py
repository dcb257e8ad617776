"""blockimg: FAT and tar block-device images for MirageOS unikernels, in pure Python.

Build::

    summary = blockimg.create("site/", "site.img", format="tar", align=4096)

Read::

    with blockimg.open("site.img") as img:
        for entry in img.list():
            ...
        data = img.read("index.html")
"""
from .api import Summary, create, open
from .block import (BlockDevice, FileDevice, MemoryDevice, MmapDevice, WindowDevice,
                    backend_names, open_device)
from .errors import (BlockImgError, CorruptImage, DeviceError, DoesNotFit, InvalidInput,
                     NotFound, SourceChanged, Unsupported)
from .image import EntryInfo, ExtractReport, Image, ImageFile
from .source import Kind, SourceEntry, SourceTree, from_pairs, walk

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
