"""The MBR/GPT codecs: declared sizes, encode -> decode round trips, every corruption a
reader relies on refused with the offset and field, and the disk layout's rules."""
from __future__ import annotations

import uuid
import zlib

import pytest

from blockimg.block.memory import MemoryDevice
from blockimg.disk.layout import plan_disk
from blockimg.disk.reader import read_table, table_problems
from blockimg.disk.structs import GPT_ENTRY, GPT_HEADER, MBR, MBR_ENTRY
from blockimg.disk.table import encode_gpt, encode_mbr, is_boot_sector
from blockimg.disk.volumes import parse_volume
from blockimg.errors import CorruptImage, InvalidInput

MIB = 1 << 20
DISK = 8 * MIB


def test_struct_sizes_and_offsets():
    assert (MBR.size, MBR_ENTRY.size, GPT_HEADER.size, GPT_ENTRY.size) == (512, 16, 92, 128)
    assert MBR.offset("PartitionRecord") == 446 and MBR.offset("Signature") == 510
    assert GPT_HEADER.offset("HeaderCRC32") == 16
    assert GPT_HEADER.offset("PartitionEntryArrayCRC32") == 88
    assert GPT_ENTRY.offset("PartitionName") == 56
    fields = {f: i for i, f in enumerate(GPT_ENTRY.fields)}
    raw = GPT_ENTRY.pack(PartitionTypeGUID=b"t" * 16, UniquePartitionGUID=b"u" * 16,
                         StartingLBA=1, EndingLBA=2, Attributes=3, PartitionName=b"n\0")
    assert GPT_ENTRY.unpack(raw)["EndingLBA"] == 2 and len(fields) == 6


def mbr_disk(parts=((MIB, 2 * MIB, 0x0E), (3 * MIB, MIB, 0xDA))) -> MemoryDevice:
    dev = MemoryDevice(DISK)
    dev.pwrite(0, encode_mbr(list(parts), 0x12345678))
    return dev


def gpt_disk(names=("site", "keys")) -> MemoryDevice:
    dev = MemoryDevice(DISK)
    parts = [(MIB * (i + 1), MIB, uuid.UUID(int=1), uuid.UUID(int=i + 2), n)
             for i, n in enumerate(names)]
    for off, data in encode_gpt(parts, uuid.UUID(int=99), DISK).items():
        dev.pwrite(off, data)
    return dev


def test_mbr_round_trip():
    t = read_table(mbr_disk())
    assert t.kind == "mbr" and t.disk_id == "0x12345678"
    assert [(p.number, p.start, p.size, p.type) for p in t.partitions] == \
        [(1, MIB, 2 * MIB, "0x0e"), (2, 3 * MIB, MIB, "0xda")]
    assert t.find("2").start == 3 * MIB and t.find("site") is None


def test_gpt_round_trip_and_backup():
    dev = gpt_disk()
    t = read_table(dev)
    assert t.kind == "gpt" and t.disk_id == str(uuid.UUID(int=99))
    assert [(p.name, p.start, p.size) for p in t.partitions] == \
        [("site", MIB, MIB), ("keys", 2 * MIB, MIB)]
    assert t.find("keys").number == 2 and t.find("2").name == "keys"
    assert table_problems(dev, t) == []
    # a broken backup is reported by check
    dev.pwrite(DISK - 512 + 20, b"\xff")
    assert "backup GPT" in table_problems(dev, t)[0]


def test_plain_volumes_have_no_table():
    assert read_table(MemoryDevice(DISK)) is None      # zeros (tar-like)
    boot = bytearray(512)
    boot[0], boot[11:13], boot[13], boot[510:512] = 0xEB, (512).to_bytes(2, "little"), 8, \
        b"\x55\xaa"
    assert is_boot_sector(bytes(boot))
    dev = MemoryDevice(DISK)
    dev.pwrite(0, bytes(boot))
    assert read_table(dev) is None                                # a FAT boot sector


def test_corrupt_mbr():
    dev = mbr_disk()
    dev.pwrite(446 + 12, DISK.to_bytes(4, "little"))              # past the end
    with pytest.raises(CorruptImage) as e:
        read_table(dev)
    assert "StartingLBA/SizeInLBA" in str(e.value) and "at byte 454" in str(e.value)


def test_not_an_mbr():
    """Sector 0 of something else: an entry of type 0 with bytes set (boot code there),
    or no entry used at all (a boot sector with zeros there), is no partition table."""
    dev = mbr_disk()
    dev.pwrite(446 + 16 + 4, b"\x00")                              # type 0, LBA fields set
    assert read_table(dev) is None
    assert read_table(mbr_disk(())) is None


def test_overlapping_partitions_refused():
    dev = mbr_disk(((MIB, 2 * MIB, 0x0E), (2 * MIB, MIB, 0xDA)))
    with pytest.raises(CorruptImage, match="overlap"):
        read_table(dev)


@pytest.mark.parametrize("offset,field", [
    (512 + 20, "HeaderCRC32"),          # header byte changed
    (1024 + 40, "PartitionEntryArrayCRC32"),   # entry array byte changed
    (512, "Signature"),
])
def test_corrupt_gpt(offset, field):
    dev = gpt_disk()
    dev.pwrite(offset, b"X")
    with pytest.raises(CorruptImage) as e:
        read_table(dev)
    assert field in str(e.value) and "at byte" in str(e.value)


def test_gpt_entry_count_bounded():
    dev = gpt_disk()
    header = bytearray(dev.pread(512, 92))
    header[80:84] = (1 << 30).to_bytes(4, "little")
    header[16:20] = bytes(4)
    header[16:20] = zlib.crc32(bytes(header)).to_bytes(4, "little")
    dev.pwrite(512, bytes(header))
    with pytest.raises(CorruptImage, match="entries"):
        read_table(dev)


def test_layout_rules():
    plan = plan_disk([("a", "tar", 4096), ("b", "empty", 3 * MIB)], table="gpt")
    assert [(s.start, s.size) for s in plan.slots] == [(MIB, 4096), (2 * MIB, 3 * MIB)]
    assert plan.disk_size == 6 * MIB          # GPT backup needs the last MiB
    plan = plan_disk([("a", "tar", 4096)], table="mbr", align=4096)
    assert plan.slots[0].start == 4096 and plan.disk_size == 8192
    with pytest.raises(InvalidInput) as e:
        plan_disk([("a", "tar", 100)] * 5, table="mbr", align=3)
    msg = str(e.value)
    assert "at most 4" in msg and "align 3" in msg and "given more than once" in msg \
        and "100 bytes" in msg


def test_volume_syntax(tmp_path):
    (tmp_path / "site").mkdir()
    v = parse_volume(f"{tmp_path}/site,name=www,format=fat,sector-size=4096,free=1M")
    assert (v.kind, v.name, v.format) == ("source", "www", "fat")
    assert v.format_options() == {"sector_size": 4096, "free": MIB}
    assert parse_volume("empty:2M").size == 2 * MIB
    for bad, why in (("empty:100", "multiple of 512"), ("nope/", "cannot use it"),
                     ("empty:1M,format=fat", "only apply to a source"),
                     (f"{tmp_path}/site,colour=red", "unknown key"),
                     (f"{tmp_path}/site,name=" + "x" * 40, "1 to 36")):
        with pytest.raises(InvalidInput, match=why):
            parse_volume(bad)
