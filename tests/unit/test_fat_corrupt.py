"""Corrupt FAT volumes: each broken rule raises CorruptImage naming the offset and the rule.

Each case patches a clean mkfs.fat volume; with ``strict=False`` the same
finding is a problem that ``check`` reports.
"""
from __future__ import annotations

import pytest

from helpers.fat_volume import Volume

from blockimg.block.memory import MemoryDevice
from blockimg.errors import CorruptImage
from blockimg.fat import check
from blockimg.fat.reader import FatImage


def corrupt(v: Volume, *words) -> CorruptImage:
    with pytest.raises(CorruptImage) as exc:
        v.open()
    msg = str(exc.value)
    for w in words:
        assert w in msg, msg
    lenient = v.open(strict=False)
    assert any(words[0] in p for p in lenient.problems), lenient.problems
    assert any(words[0] in p for p in check(lenient))
    return exc.value


# -- chains ----------------------------------------------------------------------------

def test_file_chain_loops():
    v = Volume()
    a = v.clusters("a.txt")
    v.set_fat(a[1], a[0])
    err = corrupt(v, "loops back to cluster", "a.txt")
    assert err.offset == v.fat_entry_offset(a[1])


def test_directory_chain_loops_on_itself():
    v = Volume()
    (sub,) = v.clusters("sub")
    v.set_fat(sub, sub)
    err = corrupt(v, "loops back", "directory sub")
    assert err.offset == v.fat_entry_offset(sub)


def test_chain_leaves_the_volume():
    v = Volume()
    a = v.clusters("a.txt")
    v.set_fat(a[0], v.geo.cluster_count + 10)
    err = corrupt(v, "out of range", "a.txt")
    assert err.offset == v.fat_entry_offset(a[0])


@pytest.mark.parametrize("start", [0, 1, 0xFFF0])
def test_start_cluster_out_of_range(start):
    v = Volume()
    v.set_start("b.txt", start)
    err = corrupt(v, f"start cluster {start} is out of range", "b.txt")
    assert err.offset == v.entry("b.txt") + 26


def test_chain_runs_into_a_free_cluster():
    v = Volume()
    a = v.clusters("a.txt")
    v.set_fat(a[1], v.geo.cluster_count)          # a free cluster near the end
    err = corrupt(v, "free cluster", "a.txt")
    assert err.offset == v.fat_entry_offset(v.geo.cluster_count)


def test_cross_linked_files():
    v = Volume()
    b, c = v.clusters("b.txt"), v.clusters("c.txt")
    v.set_start("c.txt", b[0])
    err = corrupt(v, f"cluster {b[0]} is in two chains", "b.txt", "c.txt", "cross-linked")
    assert err.offset == v.fat_entry_offset(b[0])
    # c.txt's own clusters are now lost
    assert any("lost cluster" in p and f"cluster {c[0]}" in p for p in check(v.open(strict=False)))


def test_file_cross_linked_with_a_directory():
    v = Volume()
    (sub,) = v.clusters("sub")
    v.set_start("Long File Name.txt", sub)
    corrupt(v, "in two chains", "sub", "Long File Name.txt")


# -- directories ---------------------------------------------------------------------

def test_directory_cycle_to_parent():
    v = Volume()
    (sub,) = v.clusters("sub")
    v.set_start("sub/inner", sub)
    err = corrupt(v, "directory cycle", "sub/inner")
    assert err.offset == v.entry("sub/inner") + 26


def test_directory_pointing_at_the_root():
    v = Volume()
    v.set_start("sub", 0)
    corrupt(v, "directory cycle", "sub")


def test_directory_entries_past_the_end_of_the_image():
    v = Volume()
    data = bytes(v.data[:v.geo.root_offset + 512])   # the root's first sector only
    with pytest.raises(CorruptImage) as exc:
        FatImage(MemoryDevice(data=data))
    assert "past the end" in str(exc.value) and exc.value.offset == 19


def test_file_data_past_the_end_of_the_image():
    v = Volume()
    (d0,) = v.clusters("sub/d.txt")[:1]
    end = v.geo.cluster_offset(d0)
    with pytest.raises(CorruptImage) as exc:
        FatImage(MemoryDevice(data=bytes(v.data[:end])))
    assert "past the end" in str(exc.value)
    assert any("truncated" in p for p in check(FatImage(MemoryDevice(data=bytes(v.data[:end])),
                                                        strict=False)))


# -- sizes -----------------------------------------------------------------------------

def test_size_larger_than_chain():
    v = Volume()
    v.set_size("a.txt", 5 * v.geo.cluster_size)
    err = corrupt(v, "needs 5 clusters but its chain has 3", "a.txt")
    assert err.offset == v.entry("a.txt") + 28


def test_size_smaller_than_chain():
    v = Volume()
    a = v.clusters("a.txt")
    v.set_size("a.txt", 10)
    err = corrupt(v, "longer than 1 clusters", "a.txt")
    assert err.offset == v.fat_entry_offset(a[0])


def test_empty_file_with_clusters():
    v = Volume()
    v.set_size("b.txt", 0)
    err = corrupt(v, "is empty but has start cluster", "b.txt")
    assert err.offset == v.entry("b.txt") + 28


def test_forged_size_with_a_self_loop_is_caught_fast():
    v = Volume()
    a = v.clusters("a.txt")
    v.set_size("a.txt", 0xFFFFFFFF)
    v.set_fat(a[0], a[0])
    corrupt(v, "loops back", "a.txt")


# -- boot sector -----------------------------------------------------------------------

@pytest.mark.parametrize("offset,size,value,field", [
    (11, 2, 0, "BPB_BytsPerSec"),
    (11, 2, 768, "BPB_BytsPerSec"),
    (13, 1, 0, "BPB_SecPerClus"),
    (13, 1, 3, "BPB_SecPerClus"),
    (14, 2, 0, "BPB_RsvdSecCnt"),
    (16, 1, 0, "BPB_NumFATs"),
    (17, 2, 0, "BPB_RootEntCnt"),
    (22, 2, 0, "BPB_FATSz16"),
    (22, 2, 1, "sectors per FAT"),
    (510, 2, 0, "Signature_word"),
])
def test_impossible_bpb_values(offset, size, value, field):
    v = Volume()
    v.data[offset:offset + size] = value.to_bytes(size, "little")
    if field == "BPB_TotSec16/BPB_TotSec32":
        v.data[32:36] = bytes(4)
    with pytest.raises(CorruptImage) as exc:
        v.open()
    assert field in str(exc.value)
    assert exc.value.offset == offset or field == "sectors per FAT"


def test_zero_total_sectors():
    v = Volume()
    v.data[19:21] = bytes(2)
    v.data[32:36] = bytes(4)
    with pytest.raises(CorruptImage) as exc:
        v.open()
    assert "total sector count is zero" in str(exc.value) and exc.value.offset == 19


def test_fat32_root_cluster_out_of_range():
    v = Volume("fat32")
    v.set_u32(44, v.geo.cluster_count + 2)
    with pytest.raises(CorruptImage) as exc:
        v.open()
    assert "root cluster" in str(exc.value) and exc.value.offset == 44
    v.set_u32(44, 1)
    with pytest.raises(CorruptImage):
        v.open()


def test_fat32_root_chain_loops():
    v = Volume("fat32")
    root = v.geo.root_cluster
    v.set_fat(root, root)
    with pytest.raises(CorruptImage) as exc:
        v.open()
    assert "root directory" in str(exc.value) and "loops" in str(exc.value)


# -- long names ------------------------------------------------------------------------

def test_bad_lfn_checksum_falls_back_to_short_name():
    v = Volume()
    off = v.entry("Long File Name.txt")
    v.data[off - 32 + 13] ^= 0xFF                    # both slots of its long name
    v.data[off - 64 + 13] ^= 0xFF
    img = v.open()
    names = [e.path for e in img.list("")]
    assert "Long File Name.txt" not in names
    short = [n for n in names if n.startswith("LONGFI")]
    assert short and img.read(short[0]) == b"long\n"
    assert any("checksum" in w for w in img.warnings)
    assert any("checksum" in p for p in check(img))


def test_lfn_sequence_broken():
    v = Volume()
    off = v.entry("Long File Name.txt")
    first = off - 64                                 # "Long File Name.txt" has 2 slots
    assert v.data[first] == 0x42
    v.data[first] = 0x43                             # claims 3 slots, has 2
    img = v.open()
    assert any("slot 1 out of sequence" in w for w in img.warnings)
    assert any("out of sequence" in p for p in check(img))
    assert img.read("LONGFI~1.TXT") == b"long\n"


def test_lfn_slot_checksums_disagree():
    v = Volume()
    off = v.entry("Long File Name.txt")
    v.data[off - 32 + 13] ^= 0xFF                    # slot 1 only
    img = v.open()
    assert any("slot 1 has checksum" in w for w in img.warnings)
    assert "LONGFI~1.TXT" in [e.path for e in img.list("")]
