"""The FAT reader's parts: detection, chains in windows, directory records, the index."""
from __future__ import annotations

import calendar
import struct
import subprocess
import sys

import pytest

from helpers.fat_volume import FILES, Volume

from blockimg.block.memory import MemoryDevice
from blockimg.block.mmap import MmapDevice
from blockimg.fat import chains, detect
from blockimg.fat.chains import ChainError, FatTable
from blockimg.fat.dirents import parse_directory
from blockimg.fat.names import lfn_checksum
from helpers.fat_reference import build_lfn
from blockimg.fat.reader import FatImage
from blockimg.fat.structs import fat_datetime
from helpers.fat_construct import DirEntry


def short_entry(name11: bytes, *, attr=0x20, nt=0, cluster=0, size=0, date=0x4362,
                time=0x875A) -> bytes:
    return DirEntry.build(dict(
        DIR_Name=name11, DIR_Attr=attr, DIR_NTRes=nt, DIR_CrtTimeTenth=0, DIR_CrtTime=time,
        DIR_CrtDate=date, DIR_LstAccDate=date, DIR_FstClusHI=cluster >> 16,
        DIR_WrtTime=time, DIR_WrtDate=date, DIR_FstClusLO=cluster & 0xFFFF,
        DIR_FileSize=size))


# -- detection --------------------------------------------------------------------------

def test_detect():
    assert detect(Volume("fat16").device())
    assert not detect(MemoryDevice(4096))
    assert not detect(MemoryDevice(0))
    tar_like = bytearray(1024)
    tar_like[:8] = b"file.txt"
    tar_like[257:263] = b"ustar\0"
    assert not detect(MemoryDevice(data=tar_like))
    boot = bytearray(Volume("fat16").data[:512])
    boot[11:13] = (1000).to_bytes(2, "little")      # bytes per sector not a power of two
    assert not detect(MemoryDevice(data=boot))


# -- chains -----------------------------------------------------------------------------

def test_fragmented_chain_becomes_runs():
    v = Volume()
    a = v.clusters("a.txt")                 # 3 contiguous clusters
    far = v.geo.cluster_count - 10
    v.set_fat(a[1], far)                    # a0 a1 -> far far+1 (EOC)
    v.set_fat(far, far + 1)
    v.set_fat(far + 1, 0xFFFF)
    v.set_fat(a[2], 0)
    v.set_size("a.txt", 4 * v.geo.cluster_size)
    img = v.open()
    cs = v.geo.cluster_size
    assert img.stat("a.txt").extents == ((v.geo.cluster_offset(a[0]), 2 * cs),
                                         (v.geo.cluster_offset(far), 2 * cs))
    assert check_clean(img)


def check_clean(img):
    from blockimg.fat import check
    return check(img) == []


def test_long_cycle_is_caught_by_the_cycle_test():
    v = Volume()
    geo = v.geo
    fat = FatTable(v.device(), geo)
    # 200 single-cluster runs, the last pointing back at the 100th
    cl = [geo.cluster_count - 2 * i for i in range(200)]
    for x, y in zip(cl, cl[1:]):
        v.set_fat(x, y)
    v.set_fat(cl[-1], cl[100])
    fat = FatTable(v.device(), geo)
    with pytest.raises(ChainError) as exc:
        fat.chain(cl[0], geo.cluster_count)
    assert "loops" in exc.value.rule


def test_chain_limit_and_runs_across_windows(monkeypatch):
    monkeypatch.setattr(chains, "WINDOW_BYTES", 256)      # 64 FAT32 entries per window
    v = Volume("fat32")
    geo = v.geo
    start = 1000
    for c in range(start, start + 300):
        v.set_fat(c, c + 1)
    v.set_fat(start + 300, 0x0FFFFFFF)
    fat = FatTable(v.device(), geo)
    assert fat.per_window == 64
    assert fat.chain(start, 301) == [(start, 301)]
    with pytest.raises(ChainError) as exc:
        fat.chain(start, 300)
    assert "longer than 300" in exc.value.rule
    assert len(fat._cache) <= chains.CACHE_WINDOWS


def test_small_windows_read_the_same(monkeypatch):
    monkeypatch.setattr(chains, "WINDOW_BYTES", 4096)
    v = Volume("fat32")
    img = v.open()
    assert len(img.fat._cache) <= chains.CACHE_WINDOWS
    for rel, data in FILES.items():
        assert img.read(rel) == data
    assert check_clean(img)
    assert img.info()["free_clusters"] == img.fsinfo()["free_count"]


# -- directory records ------------------------------------------------------------------

def test_lfn_with_surrogate_pairs_and_13_units():
    name = "smile 🙂 ok.txt"            # 15 UTF-16 units (the emoji is a pair)
    short = b"SMILE~1 TXT"
    data = b"".join(build_lfn(name, short, always_terminate=False)) + short_entry(short)
    name13 = "abcdefghijklm"
    short13 = b"ABCDEF~1   "
    data += b"".join(build_lfn(name13, short13, always_terminate=False))
    data += short_entry(short13)
    recs, issues = parse_directory(data, fat32=False)
    assert issues == []
    assert [r.name for r in recs] == [name, name13]
    assert len(recs[1].lfn_units) == 13


def test_nt_lower_case_flags_and_e5_lead_byte():
    data = (short_entry(b"INDEX   TXT", nt=0x18) + short_entry(b"README  TXT", nt=0x08)
            + short_entry(b"MAKE    MD ", nt=0x10) + short_entry(b"\x05ABC       "))
    recs, _ = parse_directory(data, fat32=False)
    # 0x05 stands for a leading 0xE5, which is sigma in code page 437
    assert [r.name for r in recs] == ["index.txt", "readme.TXT", "MAKE.md", "\u03c3ABC"]


def test_deleted_entries_end_marker_and_orphans():
    short = b"LONGNA~1TXT"
    slots = build_lfn("long name.txt", short, always_terminate=False)
    deleted = bytearray(short_entry(b"GONE    TXT"))
    deleted[0] = 0xE5
    data = (bytes(deleted) + slots[0] + short_entry(b"OTHER   TXT")
            + short_entry(b"KEPT    TXT") + bytes(32) + short_entry(b"AFTER   TXT"))
    recs, issues = parse_directory(data, fat32=False)
    assert [r.name for r in recs] == ["OTHER.TXT", "KEPT.TXT"]      # stops at 0x00
    assert any("checksum" in m for _, m in issues)                 # orphan slot, wrong sum


def test_invalid_utf16_falls_back():
    short = b"BAD~1   TXT"
    lone = struct.pack("<13H", 0xD800, 0x41, 0, *([0xFFFF] * 10))
    slot = bytearray(32)
    slot[0] = 0x41
    slot[1:11], slot[14:26], slot[28:32] = lone[:10], lone[10:22], lone[22:26]
    slot[11] = 0x0F
    slot[13] = lfn_checksum(short)
    recs, issues = parse_directory(bytes(slot) + short_entry(short), fat32=False)
    assert recs[0].name == "BAD~1.TXT"
    assert any("not valid UTF-16" in m for _, m in issues)


def test_fat32_high_cluster_word():
    e = short_entry(b"X          ", cluster=0x12345)
    assert parse_directory(e, fat32=True)[0][0].cluster == 0x12345
    assert parse_directory(e, fat32=False)[0][0].cluster == 0x2345


# -- the index --------------------------------------------------------------------------

def test_modes_mtime_and_read_only():
    v = Volume()
    off = v.entry("b.txt")
    v.data[off + 11] |= 0x01
    when = calendar.timegm((2021, 6, 7, 8, 9, 10))
    date, tod, _ = fat_datetime(when)
    v.set_u16(off + 22, tod)
    v.set_u16(off + 24, date)
    img = v.open()
    b = img.stat("b.txt")
    assert b.mode == 0o444 and b.mtime == when
    assert img.stat("a.txt").mode == 0o644
    assert img.stat("sub").mode == 0o755 and img.stat("sub").kind == "dir"


def test_unsafe_names_are_skipped_not_indexed():
    v = Volume()
    off = v.entry("b.txt")
    v.data[off:off + 11] = b"A/B     TXT"
    img = v.open()
    assert "b.txt" not in [e.path for e in img.list()]
    assert [p for p, _ in img.unsafe_names] == ["a/b.txt"]


def test_mmap_reads_are_zero_copy(tmp_path):
    path = tmp_path / "v.img"
    path.write_bytes(Volume().data)
    dev = MmapDevice(str(path))
    img = FatImage(dev, owns_device=True)
    view = img.view("a.txt")
    assert isinstance(view, memoryview) and bytes(view) == FILES["a.txt"]
    del view
    img.close()


def test_lenient_mode_keeps_reading():
    v = Volume()
    v.set_start("b.txt", 1)
    img = v.open(strict=False)
    assert img.problems and "b.txt" in img.problems[0]
    assert img.read("a.txt") == FILES["a.txt"]
    assert img.stat("b.txt").size == 0


def test_small_fat32_is_read_as_fat32_with_a_note(tmp_path):
    import subprocess
    from conftest import require_tool
    from blockimg.fat import check
    img = tmp_path / "small32.img"
    subprocess.run([require_tool("mkfs.fat"), "-F", "32", "-C", str(img), "20000"],
                   check=True, capture_output=True)
    fat = FatImage(MemoryDevice(data=img.read_bytes()))
    assert fat.geometry.fat_type == 32 and fat.geometry.cluster_count < 65525
    assert any("FAT32 volume with only" in w for w in fat.warnings)
    assert any("FAT32 volume with only" in p for p in check(fat))
    assert any(p.startswith("mirage: FAT32") for p in check(fat, target="mirage"))


@pytest.mark.parametrize("c_accessor", [True, False])
def test_record_is_a_tuple_with_named_fields(c_accessor):
    """dirents.Record (a tuple subclass, not a namedtuple: no collections import; see
    test_startup) reads each field by name, with CPython's C accessor or, without it, a
    plain property."""
    code = ("import sys\n"
            + ("" if c_accessor else "sys.modules['_collections'] = None\n")
            + "from blockimg.fat.dirents import Record, parse_directory\n"
            "fields = ('name kind short attr nt_res cluster size wdate wtime offset '\n"
            "          'lfn_offset lfn_raw crt').split()\n"
            "r = Record(*range(12))\n"
            "assert r == tuple(range(12)) + ((0, 0, 0),), r\n"
            "assert [getattr(r, f) for f in fields] == list(r)\n"
            "t = tuple.__new__(Record, tuple(range(100, 113)))\n"
            "assert [getattr(t, f) for f in fields] == list(range(100, 113))\n"
            "assert repr(t).startswith('Record(name=100, kind=101,')\n"
            "print(type(Record.__dict__['name']).__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["_tuplegetter" if c_accessor else "property"]
