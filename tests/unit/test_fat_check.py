"""``check``: fsck-style structure problems and the Mirage target, one rule per test."""
from __future__ import annotations

import pytest

from helpers.fat_volume import Volume

from blockimg.errors import InvalidInput
from blockimg.fat import check
from blockimg.read.image import EntryInfo


def free_root_slot(v: Volume) -> int:
    """Device offset of the first unused entry of the root directory (FAT12/16)."""
    off = v.geo.root_offset
    while v.data[off] != 0:
        off += 32
    return off


def problems(v: Volume, target: str = "generic"):
    return check(v.open(strict=False), target=target)


def test_clean_volume_has_no_problems():
    for kind in ("fat12", "fat16", "fat32"):
        v = Volume(kind)
        assert check(v.open()) == []


def test_unknown_target_refused():
    with pytest.raises(InvalidInput):
        check(Volume().open(), target="xen")


def test_fat_copies_differ():
    v = Volume()
    (b,) = v.clusters("b.txt")[:1]
    v.set_fat(b, 0xFFFF, copies=[1])
    found = [p for p in problems(v) if "FAT 2 differs from FAT 1" in p]
    assert found and f"cluster {b}" in found[0]
    assert found[0].startswith(f"at byte {v.fat_entry_offset(b, 1)} ")
    assert v.open().read("b.txt") == b"b" * 1000      # reading uses FAT 1


def test_media_byte_mismatch():
    v = Volume()
    for k in range(v.geo.num_fats):
        v.data[v.geo.fat_copy_offset(k)] = 0xF0
    assert any("media byte 0xf0" in p and "0xf8" in p for p in problems(v))


def test_lost_clusters():
    v = Volume()
    far = v.geo.cluster_count - 3
    v.set_fat(far, 0xFFFF)
    found = [p for p in problems(v) if "lost cluster" in p]
    assert found == [f"at byte {v.fat_entry_offset(far)} (0x{v.fat_entry_offset(far):x}): "
                     f"1 lost cluster(s): allocated in the FAT but in no file or directory "
                     f"(first: cluster {far})"]


def test_cross_links_and_size_mismatch_are_problems():
    v = Volume()
    b = v.clusters("b.txt")
    v.set_start("c.txt", b[0])
    v.set_size("a.txt", 99_999)
    found = problems(v)
    assert any("cross-linked" in p and "c.txt" in p for p in found)
    assert any("a.txt" in p and "size disagrees" in p for p in found)


def test_duplicate_names():
    v = Volume()
    src = v.entry("b.txt")
    slot = free_root_slot(v)
    v.data[slot:slot + 32] = v.data[src:src + 32]
    v.set_u16(slot + 26, 0)
    v.set_u32(slot + 28, 0)
    img = v.open()
    assert img.read("b.txt") == b"b" * 1000          # the first entry wins
    assert [n for n, _ in img.skipped] == ["b.txt"]    # the later one, left out
    assert any(p.startswith("'b.txt': not extracted: duplicate name in /; the later entry "
                            "is ignored (entry at byte ") for p in check(img))


def test_dot_entries_of_subdirectories():
    v = Volume()
    (sub,) = v.clusters("sub")
    dotdot = v.geo.cluster_offset(sub) + 32
    assert bytes(v.data[dotdot:dotdot + 11]) == b"..         "
    v.set_u16(dotdot + 26, 7)
    assert any("'..' of sub points at cluster 7" in p for p in problems(v))
    dot = v.geo.cluster_offset(sub)
    v.set_u16(dot + 26, 9)
    assert any("'.' of sub points at cluster 9" in p for p in problems(v))


def test_fsinfo_free_count_wrong():
    v = Volume("fat32")
    fsi = v.geo.fsinfo_sector * v.geo.bytes_per_sector
    v.set_u32(fsi + 488, 12)
    assert any("FSInfo free count 12" in p for p in problems(v))
    v.set_u32(fsi + 488, 0xFFFFFFFF)                  # "unknown" is allowed
    assert problems(v) == []
    v.set_u32(fsi + 492, v.geo.cluster_count + 7)
    assert any("next-free hint" in p for p in problems(v))
    v.set_u32(fsi, 0)
    assert any("FSInfo signatures" in p for p in problems(v))


def test_backup_boot_sector_differs():
    v = Volume("fat32")
    backup = v.geo.backup_boot_sector * v.geo.bytes_per_sector
    v.data[backup + 3] ^= 0x20
    assert any("backup boot sector differs" in p for p in problems(v))


# -- Mirage ------------------------------------------------------------------------------

def mirage(v: Volume):
    return [p for p in problems(v, "mirage") if p.startswith("mirage: ")]


def test_mirage_lower_case_names_without_lfn():
    found = mirage(Volume())
    cannot = sorted(p.split(": ")[1][len("cannot find "):] for p in found
                    if "cannot find" in p)
    assert cannot == ["a.txt", "b.txt", "c.txt", "sub", "sub/d.txt", "sub/inner",
                      "sub/inner/e.txt"]
    assert any("Mirage finds it only as 'A.TXT'" in p for p in found)


def test_mirage_zero_padding_after_terminator():
    v = Volume()
    slot2 = v.entry("Long File Name.txt") - 64
    assert v.data[slot2] == 0x42
    for a, b in ((1, 11), (14, 26), (28, 32)):
        for i in range(a, b, 2):
            if v.data[slot2 + i:slot2 + i + 2] == b"\xff\xff":
                v.data[slot2 + i:slot2 + i + 2] = b"\0\0"
    assert v.open().read("Long File Name.txt") == b"long\n"   # readers accept it
    found = [p for p in mirage(v) if "Long File Name.txt" in p]
    assert found and "padded with 0x0000 instead of 0xFFFF" in found[0]


def test_mirage_label_entry():
    v = Volume()
    slot = free_root_slot(v)
    v.data[slot:slot + 11] = b"MYLABEL    "
    v.data[slot + 11] = 0x08
    img = v.open()
    assert img.label_entry == "MYLABEL"
    assert "MYLABEL" not in [e.path for e in img.list()]
    assert img.info()["label_entry"] == "MYLABEL"
    assert check(img) == []
    assert any("volume-label entry" in p for p in mirage(v))


def test_mirage_root_entries_not_whole_sectors():
    v = Volume()
    v.set_u16(17, 500)                                   # same 32 root sectors, 16000 bytes
    assert v.open().read("a.txt") == b"a" * 1500
    assert any("500 root entries" in p for p in mirage(v))


def test_mirage_files_of_2_gib():
    v = Volume()
    img = v.open(strict=False)
    img.index["huge.bin"] = EntryInfo("huge.bin", "file", 1 << 31)
    assert any("huge.bin" in p and "signed 32-bit" in p for p in check(img, target="mirage"))


def test_broken_chain_keeps_its_clusters_before_the_break():
    v = Volume()
    a = v.clusters("a.txt")
    v.set_fat(a[1], v.geo.cluster_count)             # a0 -> a1 -> a free cluster
    found = problems(v)
    assert any("a.txt" in p and "free cluster" in p for p in found)
    lost = [p for p in found if "lost cluster" in p]
    assert len(lost) == 1 and "1 lost cluster(s)" in lost[0] and f"cluster {a[2]})" in lost[0]
