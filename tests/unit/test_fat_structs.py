"""FAT on-disk structures: sizes, parse/build round trips, timestamps."""
import calendar

import pytest

from blockimg.fat import structs as s
from helpers import fat_construct as c

ALL = [("BPB", 36), ("EBPB", 26), ("BPB32", 28), ("BootSector16", 512), ("BootSector32", 512),
       ("FSInfo", 512), ("DirEntry", 32), ("LfnEntry", 32)]


@pytest.mark.parametrize("name,size", ALL)
def test_sizeof(name, size):
    assert getattr(c, name).sizeof() == size


@pytest.mark.parametrize("name,size", ALL)
def test_parse_build_round_trip(name, size):
    raw = bytes((i * 7 + 3) & 0xFF for i in range(size))
    st = getattr(c, name)
    assert st.build(st.parse(raw)) == raw


def test_boot_sector16_field_offsets():
    raw = bytearray(512)
    raw[11:13] = (4096).to_bytes(2, "little")
    raw[13] = 4
    raw[22:24] = (0x1234).to_bytes(2, "little")
    raw[39:43] = (0xCAFEBABE).to_bytes(4, "little")
    raw[43:54] = b"MYLABEL    "
    raw[54:62] = b"FAT16   "
    raw[510:512] = s.SIGNATURE
    bs = c.BootSector16.parse(bytes(raw))
    assert bs.bpb.BPB_BytsPerSec == 4096 and bs.bpb.BPB_SecPerClus == 4
    assert bs.bpb.BPB_FATSz16 == 0x1234
    assert bs.ebpb.BS_VolID == 0xCAFEBABE and bs.ebpb.BS_VolLab == b"MYLABEL    "
    assert bs.ebpb.BS_FilSysType == b"FAT16   " and bs.Signature_word == b"\x55\xaa"


def test_boot_sector32_field_offsets():
    raw = bytearray(512)
    raw[36:40] = (777).to_bytes(4, "little")
    raw[44:48] = (2).to_bytes(4, "little")
    raw[48:50] = (1).to_bytes(2, "little")
    raw[50:52] = (6).to_bytes(2, "little")
    raw[66] = 0x29
    raw[82:90] = b"FAT32   "
    bs = c.BootSector32.parse(bytes(raw))
    assert bs.bpb32.BPB_FATSz32 == 777 and bs.bpb32.BPB_RootClus == 2
    assert bs.bpb32.BPB_FSInfo == 1 and bs.bpb32.BPB_BkBootSec == 6
    assert bs.ebpb.BS_BootSig == 0x29 and bs.ebpb.BS_FilSysType == b"FAT32   "


def test_fsinfo_offsets():
    raw = c.FSInfo.build(dict(FSI_LeadSig=s.FSI_LEAD_SIG, FSI_Reserved1=bytes(480),
                              FSI_StrucSig=s.FSI_STRUC_SIG, FSI_Free_Count=5, FSI_Nxt_Free=9,
                              FSI_Reserved2=bytes(12), FSI_TrailSig=s.FSI_TRAIL_SIG))
    assert raw[:4] == b"RRaA" and raw[484:488] == b"rrAa"
    assert raw[488:492] == (5).to_bytes(4, "little") and raw[492:496] == (9).to_bytes(4, "little")
    assert raw[508:512] == b"\x00\x00\x55\xaa"


def test_dir_entry_offsets():
    raw = bytearray(32)
    raw[0:11] = b"README  TXT"
    raw[11] = s.ATTR_ARCHIVE
    raw[20:22] = (0x0001).to_bytes(2, "little")
    raw[26:28] = (0x0203).to_bytes(2, "little")
    raw[28:32] = (1000).to_bytes(4, "little")
    e = c.DirEntry.parse(bytes(raw))
    assert e.DIR_Name == b"README  TXT" and e.DIR_Attr == 0x20
    assert (e.DIR_FstClusHI << 16 | e.DIR_FstClusLO) == 0x10203 and e.DIR_FileSize == 1000


def test_datetime_utc():
    t = calendar.timegm((2020, 2, 29, 13, 45, 31))
    date, tod, tenth = s.fat_datetime(t)
    assert date == (40 << 9) | (2 << 5) | 29
    assert tod == (13 << 11) | (45 << 5) | 15 and tenth == 100
    assert s.unix_time(date, tod, tenth) == t


def test_datetime_clamps():
    assert s.fat_datetime(0) == ((0 << 9) | (1 << 5) | 1, 0, 0)          # 1970 -> 1980-01-01
    assert s.fat_datetime(-10**9) == s.fat_datetime(0)
    late = s.fat_datetime(calendar.timegm((2200, 1, 1, 0, 0, 0)))
    assert late == ((127 << 9) | (12 << 5) | 31, (23 << 11) | (59 << 5) | 29, 0)
    assert s.unix_time(*late) == s.FAT_END


def test_pack_entry_matches_construct():
    from blockimg.fat.directory import pack_entry
    t = calendar.timegm((2001, 9, 9, 1, 46, 41))
    date, tod, tenth = s.fat_datetime(t)
    raw = pack_entry(b"HELLO   TXT", s.ATTR_ARCHIVE, 0x00123456, 99, t)
    assert raw == c.DirEntry.build(dict(
        DIR_Name=b"HELLO   TXT", DIR_Attr=s.ATTR_ARCHIVE, DIR_NTRes=0, DIR_CrtTimeTenth=tenth,
        DIR_CrtTime=tod, DIR_CrtDate=date, DIR_LstAccDate=date, DIR_FstClusHI=0x12,
        DIR_WrtTime=tod, DIR_WrtDate=date, DIR_FstClusLO=0x3456, DIR_FileSize=99))


def test_lfn_slots_match_construct():
    from blockimg.fat.names import lfn_checksum
    from helpers.fat_reference import build_lfn
    slot, = build_lfn("index.txt", b"INDEX   TXT", always_terminate=True)
    units = [ord(c) for c in "index.txt"] + [0] + [0xFFFF] * 3
    raw = b"".join(u.to_bytes(2, "little") for u in units)
    assert slot == c.LfnEntry.build(dict(
        LDIR_Ord=0x41, LDIR_Name1=raw[:10], LDIR_Attr=s.ATTR_LONG_NAME, LDIR_Type=0,
        LDIR_Chksum=lfn_checksum(b"INDEX   TXT"), LDIR_Name2=raw[10:22], LDIR_FstClusLO=0,
        LDIR_Name3=raw[22:26]))


def test_named_offsets_match_the_construct_declarations():
    """The offsets the hot loops index with, against bytes the declarations build."""
    units = bytes(range(1, 27))
    slot = c.LfnEntry.build(dict(LDIR_Ord=1, LDIR_Name1=units[:10], LDIR_Attr=0xAB,
                                 LDIR_Type=0, LDIR_Chksum=0xCD, LDIR_Name2=units[10:22],
                                 LDIR_FstClusLO=0, LDIR_Name3=units[22:]))
    assert b"".join(slot[a:b] for a, b in s.LDIR_NAME_PIECES) == units
    assert slot[s.DIR_ATTR] == 0xAB and slot[s.LDIR_CHKSUM] == 0xCD
    values = {f: 0 for f in s.FIELDS["DirEntry"]}
    values.update(DIR_Name=b"A" * 11, DIR_Attr=0xAB)
    assert c.DirEntry.build(values)[s.DIR_ATTR] == 0xAB
    sector = c.BootSector16.parse(bytes(512))
    sector.Signature_word = b"\x55\xaa"
    assert c.BootSector16.build(sector)[s.SIGNATURE_AT:s.SIGNATURE_AT + 2] == b"\x55\xaa"


def test_field_format():
    assert s.field_format("DirEntry", "DIR_FstClusLO", "DIR_FileSize") == "<HI"
    assert s.field_format("DirEntry", "DIR_Name", "DIR_FileSize") == s.STRUCT_FORMATS["DirEntry"]
    assert s.field_format("DirEntry", "DIR_Attr", "DIR_WrtDate") == "<BBBHHHHHH"


@pytest.mark.parametrize("module", ["structs", "geometry", "layout", "options", "names",
                                    "directory", "table", "chains", "mirage", "writer"])
def test_all_lists_only_names_the_module_defines(module):
    """``__all__`` names what the module holds, none made on demand (issue 13 point 8)."""
    import importlib
    import subprocess
    import sys
    code = (f"import blockimg.fat.{module} as m\n"
            "print(sorted(n for n in m.__all__ if n not in vars(m)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
    assert not hasattr(importlib.import_module(f"blockimg.fat.{module}"), "__getattr__")
