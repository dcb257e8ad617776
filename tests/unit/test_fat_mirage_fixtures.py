"""The three ocaml-fat test fixtures parse to exactly the facts their README lists.

``bootsector.dat``, ``fat.dat`` and ``root.dat`` are pieces of one FAT16
volume; the last tests put them at their sectors in a MemoryDevice and
mount it.
"""
from __future__ import annotations

import calendar

import pytest

from conftest import mirage_fixtures

from blockimg.block.memory import MemoryDevice
from blockimg.fat.chains import ChainError, FatTable
from blockimg.fat.dirents import parse_directory
from blockimg.fat.geometry import parse
from blockimg.fat.names import lfn_checksum
from helpers.fat_reference import parse_lfn_slot
from blockimg.fat.reader import FatImage, detect
from blockimg.fat.structs import ATTR_ARCHIVE, unix_time

SECTOR = 512
TOTAL = 30720


def _piece(name: str) -> bytes:
    return (mirage_fixtures() / "fat" / name).read_bytes()


@pytest.fixture(scope="module")
def device() -> MemoryDevice:
    """Boot sector at 0, the FAT at sectors 4..35 (and its copy at 36..67), root at 68..99."""
    dev = MemoryDevice(TOTAL * SECTOR)
    dev.pwrite(0, _piece("bootsector.dat"))
    fat = _piece("fat.dat")
    dev.pwrite(4 * SECTOR, fat)
    dev.pwrite(36 * SECTOR, fat)
    dev.pwrite(68 * SECTOR, _piece("root.dat"))
    return dev


def test_boot_sector_fields():
    geo = parse(_piece("bootsector.dat"), TOTAL * SECTOR)
    assert geo.oem_name == b"mkdosfs\0"
    assert geo.bytes_per_sector == 512
    assert geo.sectors_per_cluster == 4
    assert geo.reserved_sectors == 4
    assert geo.num_fats == 2
    assert geo.root_entries == 512
    assert geo.total_sectors == 30720
    assert geo.sectors_per_fat == 32
    assert geo.hidden_sectors == 0
    assert geo.fat_type == 16


def test_fat_and_root_sectors():
    geo = parse(_piece("bootsector.dat"), TOTAL * SECTOR)
    assert geo.fat_offset // SECTOR == 4
    assert (geo.fat_offset + geo.fat_bytes) // SECTOR - 1 == 35
    assert geo.root_offset // SECTOR == 68
    assert (geo.root_offset + geo.root_bytes) // SECTOR - 1 == 99
    assert len(_piece("fat.dat")) == geo.fat_bytes
    assert len(_piece("root.dat")) == geo.root_bytes


def test_detected_as_fat16(device):
    assert detect(device)
    assert detect(MemoryDevice(data=_piece("bootsector.dat")))


def test_chains(device):
    geo = parse(_piece("bootsector.dat"), device.size)
    fat = FatTable(device, geo)
    runs = fat.chain(3, geo.cluster_count)
    assert runs == [(3, 2232)]
    assert [c for first, n in runs for c in range(first, first + n)] == list(range(3, 2235))
    assert fat.chain(2235, geo.cluster_count) == [(2235, 1)]
    with pytest.raises(ChainError):
        fat.chain(0, geo.cluster_count)


def test_root_entries():
    records, issues = parse_directory(_piece("root.dat"), fat32=False)
    assert issues == []
    assert len(records) == 5
    # ocaml-fat's test lists the entries last first
    assert [r.cluster for r in reversed(records)] == [0, 0, 0, 2235, 3]
    lower = list(reversed(records))[1]
    assert lower.name == "lower.txt"
    assert lower.lfn_offset == 160 and lower.offset == 192
    assert lower.short == b"LOWER   TXT"
    assert lower.attr == ATTR_ARCHIVE                 # archive; not ro/hidden/system/vol/dir
    assert lower.cluster == 0 and lower.size == 0
    cdate, ctime, ctenth = lower.crt
    assert unix_time(cdate, ctime) == calendar.timegm((2013, 11, 2, 16, 58, 52))
    assert ctenth == 100                              # the ".100" of 16:58:52.100
    slot = parse_lfn_slot(_piece("root.dat")[160:192])
    assert (slot.order, slot.last, slot.checksum) == (1, True, 252)
    assert lfn_checksum(lower.short) == 252


def test_lfn_checksums_of_short_names():
    assert lfn_checksum(b"MAKEFILE   ") == 193
    assert lfn_checksum(b"FAT     ML ") == 223


def test_mount_assembled_volume(device):
    img = FatImage(device)
    names = [e.path for e in img.list()]
    assert sorted(names) == ["CAPS.TXT", "boot", "kernel", "lower.txt", "this-is-a-test"]
    kernel = img.stat("kernel")
    assert kernel.extents == ((img.geometry.cluster_offset(3), kernel.size),)
    assert img.stat("boot").kind == "dir"
    assert img.stat("lower.txt").size == 0 and img.stat("lower.txt").extents == ()
    assert img.info()["fat_type"] == "FAT16"
