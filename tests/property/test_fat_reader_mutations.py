"""Mutated FAT volumes: opening, listing, reading, extracting and checking either work
or raise blockimg's error -- never another exception, never a hang.

Mutations hit the boot sector, the FATs and the directory areas of small
valid mkfs.fat volumes (FAT12, FAT16, FAT32).
"""
from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from blockimg.block.memory import MemoryDevice
from blockimg.errors import BlockImgError
from blockimg.fat import check, detect
from blockimg.fat.reader import FatImage
from helpers.fat_volume import Volume, seed

KINDS = ("fat12", "fat16", "fat32")


def _regions(kind: str):
    """(start, end) byte ranges worth mutating: boot sector(s), FAT starts, directories."""
    v = Volume(kind)
    g = v.geo
    regions = [(0, 512), (g.fat_offset, g.fat_offset + min(g.fat_bytes, 4096))]
    if g.num_fats > 1:
        regions.append((g.fat_copy_offset(1), g.fat_copy_offset(1) + 512))
    for path, ext in v.clean.walk.dirs.items():
        for off, n in ext:
            regions.append((off, off + min(n, 2048)))
    if g.fat_type == 32:
        regions.append((g.fsinfo_sector * 512, g.fsinfo_sector * 512 + 512))
    return regions


REGIONS = {}


def regions(kind):
    if kind not in REGIONS:
        REGIONS[kind] = _regions(kind)
    return REGIONS[kind]


mutation = st.tuples(st.integers(0, 10_000), st.integers(0, 10_000),
                     st.sampled_from([0, 1, 2, 0x0F, 0x29, 0x7F, 0x80, 0xE5, 0xF8, 0xFF]),
                     st.integers(0, 255), st.booleans())


def exercise(data: bytes, tmp: Path) -> None:
    dev = MemoryDevice(data=data)
    detect(dev)
    try:
        img = FatImage(dev)
        img.info()
        for e in img.list():
            if e.kind == "file":
                got = img.read(e.path)
                assert len(got) == e.size
                assert sum(n for _, n in e.extents) == e.size
                assert all(0 <= o and o + n <= dev.size for o, n in e.extents)
        img.extract(tmp)
    except BlockImgError:
        pass
    try:
        check(FatImage(dev, strict=False), target="mirage")
    except BlockImgError:
        pass


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(KINDS), muts=st.lists(mutation, min_size=1, max_size=8))
def test_mutated_volumes_work_or_raise_blockimg_errors(kind, muts, tmp_path_factory):
    data = bytearray(seed(kind))
    regs = regions(kind)
    for which, pos, special, rnd, use_special in muts:
        start, end = regs[which % len(regs)]
        data[start + pos % (end - start)] = special if use_special else rnd
    exercise(bytes(data), tmp_path_factory.mktemp("x"))


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=0, max_size=4096))
def test_detect_never_raises(blob):
    dev = MemoryDevice(data=blob + bytes(-len(blob) % 512))
    assert detect(dev) in (True, False)
