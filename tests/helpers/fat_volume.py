"""Small mkfs.fat + mtools volumes for the reader's tests, and helpers to break them.

``seed(kind)`` returns the bytes of a clean volume (built once per session);
``Volume`` wraps a mutable copy with helpers that find entries and patch
FAT entries, directory fields and boot-sector fields.
"""
from __future__ import annotations

import functools
import os
import struct
import subprocess
import tempfile
from pathlib import Path

from conftest import require_tool

from blockimg.block.memory import MemoryDevice
from blockimg.fat.reader import FatImage
from blockimg.fat.walk import device_offset

# kind: (mkfs arguments, size in KiB)
KINDS = {
    "fat12": (["-F", "12", "-s", "1"], 400),
    "fat16": (["-F", "16", "-s", "1"], 2200),
    "fat32": (["-F", "32", "-s", "1"], 34000),
}

FILES = {
    "a.txt": b"a" * 1500,                # 3 clusters
    "b.txt": b"b" * 1000,                # 2 clusters
    "c.txt": b"c" * 1000,                # 2 clusters
    "Long File Name.txt": b"long\n",
    "sub/d.txt": b"d" * 600,
    "sub/inner/e.txt": b"e",
}


@functools.lru_cache(maxsize=None)
def seed(kind: str) -> bytes:
    args, kib = KINDS[kind]
    env = dict(os.environ, LC_ALL="C.UTF-8", MTOOLS_SKIP_CHECK="1")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "src")
        for rel, data in FILES.items():
            p = src / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        img = Path(tmp, "v.img")
        subprocess.run([require_tool("mkfs.fat"), "-C", *args, "-i", "0badcafe", str(img),
                        str(kib)], check=True, capture_output=True)
        for top in sorted(src.iterdir()):
            subprocess.run([require_tool("mcopy"), "-s", "-Q", "-i", str(img), str(top), "::/"],
                           check=True, capture_output=True, env=env)
        return img.read_bytes()


class Volume:
    """A mutable copy of a seed volume."""

    def __init__(self, kind: str = "fat16") -> None:
        self.data = bytearray(seed(kind))
        self.refresh()

    def refresh(self) -> None:
        self.clean = FatImage(self.device(), strict=False)
        self.geo = self.clean.geometry

    def device(self) -> MemoryDevice:
        return MemoryDevice(data=self.data)

    def open(self, **kw) -> FatImage:
        return FatImage(self.device(), **kw)

    # -- finding things --------------------------------------------------------------
    def entry(self, path: str) -> int:
        """Device offset of the short directory entry of ``path``."""
        dirpath, off = self.clean.walk.where[path]
        return device_offset(self.clean.walk.dirs[dirpath], off)

    def clusters(self, path: str):
        info = self.clean.stat(path)
        if info.kind == "dir":
            return [self.clean.walk.dir_clusters[path]]
        cs = self.geo.cluster_size
        return [(off - self.geo.data_offset) // cs + 2 + i
                for off, n in info.extents for i in range(-(-n // cs))]

    # -- patching ------------------------------------------------------------------
    def fat_entry_offset(self, cluster: int, copy: int = 0) -> int:
        return self.geo.fat_copy_offset(copy) + cluster * self.geo.fat_type // 8

    def set_fat(self, cluster: int, value: int, copies=None) -> None:
        bits = self.geo.fat_type
        for k in (range(self.geo.num_fats) if copies is None else copies):
            off = self.fat_entry_offset(cluster, k)
            if bits == 16:
                struct.pack_into("<H", self.data, off, value)
            elif bits == 32:
                old = struct.unpack_from("<I", self.data, off)[0]
                struct.pack_into("<I", self.data, off, (old & 0xF0000000) | value)
            else:
                pair = struct.unpack_from("<H", self.data, off)[0]
                if cluster % 2:
                    pair = (pair & 0x000F) | (value << 4)
                else:
                    pair = (pair & 0xF000) | value
                struct.pack_into("<H", self.data, off, pair)

    def set_u8(self, off: int, v: int) -> None:
        self.data[off] = v

    def set_u16(self, off: int, v: int) -> None:
        struct.pack_into("<H", self.data, off, v)

    def set_u32(self, off: int, v: int) -> None:
        struct.pack_into("<I", self.data, off, v)

    def set_start(self, path: str, cluster: int) -> None:
        off = self.entry(path)
        self.set_u16(off + 26, cluster & 0xFFFF)
        if self.geo.fat_type == 32:
            self.set_u16(off + 20, cluster >> 16)

    def set_size(self, path: str, size: int) -> None:
        self.set_u32(self.entry(path) + 28, size)
