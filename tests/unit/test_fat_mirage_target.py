"""The Mirage target: every point of MIRAGE.md's FAT section.

Names are checked against an emulation of ocaml-fat's lookup
(``fat_name.ml``: ``is_legal_dos_name``, ``ascii_to_utf16``, ``name_match``).
"""
import pytest

from blockimg.block import MemoryDevice
from blockimg.errors import InvalidInput
from blockimg.fat import Options, plan, write
from blockimg.fat.mirage import short_lookup
from blockimg.fat.names import lfn_checksum
from blockimg.fat.structs import ATTR_LONG_NAME, ATTR_VOLUME_ID
from helpers.fat_construct import BootSector16
from blockimg.sources.directory import Kind, SourceEntry, SourceTree, from_pairs

MiB, GiB = 1 << 20, 1 << 30

NAMES = ["README", "FAT.ML", "MAKEFILE", "index.txt", "Dockerfile", "manifest.json",
         "abcdefghijklmnopqrstuvwxyz", "x" * 39, "x" * 12, "y" * 14, "a.b.c", ".hidden",
         "LONGFILENAME.HTML", "mixed Case name.Tar.GZ"]


def records(data: bytes):
    """Directory bytes -> [(lfn raw bytes in name order, short 11, attr, slots)], as ocaml-fat."""
    out, pending = [], []
    for i in range(0, len(data), 32):
        e = data[i:i + 32]
        if e[0] == 0:
            break
        if e[11] == ATTR_LONG_NAME:
            pending.append(e)
            continue
        slots = sorted(pending, key=lambda s: s[0] & 0x3F)
        raw = b"".join(s[1:11] + s[14:26] + s[28:32] for s in slots)
        out.append((raw, e[:11], e[11], pending))
        pending = []
    return out


def ocaml_ascii_to_utf16(name: str) -> bytes:
    n = len(name)
    total = max(n + 1, (n + 1 + 12) // 13 * 13)
    out = bytearray(b"\xff" * (total * 2))
    for i, c in enumerate(name.encode("ascii")):
        out[2 * i:2 * i + 2] = bytes([c, 0])
    out[2 * n:2 * n + 2] = b"\0\0"
    return bytes(out)


def ocaml_find(name: str, recs):
    short = short_lookup(name.encode())
    for raw, short11, attr, _ in recs:
        if short is not None:
            if short11 == short:
                return short11
        elif raw == ocaml_ascii_to_utf16(name):
            return short11
    return None


def root_of(names, **opts):
    p = plan(from_pairs([(n, b"data") for n in names]), Options(**opts))
    return p, records(p.root.data)


def test_defaults_fat16_4096():
    o = Options()
    assert o.target == "mirage" and o.sector_size == 4096
    p, _ = root_of(["README"])
    assert p.fat_type == 16 and p.sector_size == 4096


def test_every_name_found_by_ocaml_fat_lookup():
    _, recs = root_of(NAMES)
    for name in NAMES:
        assert ocaml_find(name, recs) is not None, name


@pytest.mark.parametrize("length,slots", [(12, 1), (13, 2), (25, 2), (26, 3), (38, 3), (39, 4)])
def test_terminator_slot_when_length_multiple_of_13(length, slots):
    name = ("abcdefghij" * 4)[:length]
    _, recs = root_of([name])
    raw, short11, _, pending = recs[0]
    assert len(pending) == slots
    units = [raw[i] | raw[i + 1] << 8 for i in range(0, len(raw), 2)]
    assert units[length] == 0                              # always a terminator
    assert all(u == 0xFFFF for u in units[length + 1:])    # then 0xFFFF padding
    assert len(units) == slots * 13
    assert all(s[13] == lfn_checksum(short11) for s in pending)


def test_lfn_for_every_name_but_upper_case_83():
    _, recs = root_of(["README", "FAT.ML", "index.txt", "Makefile", "lower"])
    by_short = {r[1]: r for r in recs}
    assert by_short[b"README     "][3] == [] and by_short[b"FAT     ML "][3] == []
    assert by_short[b"INDEX   TXT"][3] and by_short[b"MAKEFILE   "][3]
    assert all(r[1][11:12] == b"" and r[2] != ATTR_VOLUME_ID for r in recs)
    # No NT lower-case flags: ocaml-fat never reads them, LFN carries the case.
    p, _ = root_of(["index.txt"])
    assert p.root.data[-32 + 12] == 0


def test_no_label_entry_and_label_refused():
    p, recs = root_of(["README"])
    assert all(attr & ATTR_VOLUME_ID == 0 or attr == ATTR_LONG_NAME for _, _, attr, _ in recs)
    assert all(p.root.data[i + 11] != ATTR_VOLUME_ID for i in range(0, len(p.root.data), 32))
    with pytest.raises(InvalidInput, match="no volume label"):
        Options(label="SITE")


def test_cluster_range_tiny_and_large():
    p, _ = root_of(["README"])
    assert p.cluster_count == 4085                    # padded up to the FAT16 minimum
    p, _ = root_of(["README"], sector_size=512)
    assert 4085 <= p.cluster_count <= 65524
    big = SourceTree((SourceEntry("f", Kind.FILE, size=1500 * MiB, source="/x"),))
    p = plan(big, Options())
    assert p.fat_type == 16 and 4085 <= p.cluster_count <= 65524


def test_too_big_for_fat16_refused():
    big = SourceTree(tuple(SourceEntry(f"f{i}", Kind.FILE, size=GiB, source="/x")
                           for i in range(3)))
    with pytest.raises(InvalidInput, match="FAT16"):
        plan(big, Options())


def test_fixed_size_in_range():
    p = plan(from_pairs([("a", b"1")]), Options(size=64 * MiB))
    assert p.image_size == 64 * MiB and 4085 <= p.cluster_count <= 65524
    with pytest.raises(InvalidInput, match="4085"):
        plan(from_pairs([("a", b"1")]), Options(size=8 * MiB))


@pytest.mark.parametrize("fat_type", [12, 32, "12", "32"])
def test_other_fat_types_refused(fat_type):
    with pytest.raises(InvalidInput, match="FAT16 only"):
        Options(fat_type=fat_type)
    assert Options(fat_type=16).fat_type == 16


@pytest.mark.parametrize("name", ["héllo.txt", "日本.txt", "naïve"])
def test_non_ascii_refused_naming_the_file(name):
    with pytest.raises(InvalidInput) as ei:
        plan(from_pairs([(f"docs/{name}", b"x")]), Options())
    assert f"docs/{name}" in str(ei.value) and "ASCII" in str(ei.value)


@pytest.mark.parametrize("name", ["MY FILE.TXT", ".HIDDEN", "A B.TXT"])
def test_names_ocaml_would_misroute_refused(name):
    with pytest.raises(InvalidInput, match="8.3"):
        plan(from_pairs([(name, b"x")]), Options())


@pytest.mark.parametrize("name", ["A..B", "X..Y.Z", "AB..C"])
def test_names_ocaml_reads_by_long_name_written(name):
    """ocaml-fat's Re.Str.split keeps the empty piece between two dots: three pieces,
    not 8.3, so the driver looks the name up by its long name; the writer stores one
    and the checker's model (mirage.find) finds the entry."""
    from blockimg.fat import mirage
    p, recs = root_of([name])
    assert ocaml_find(name, recs) is not None
    found = mirage.find(name.encode(), mirage.records(p.root.data))
    assert found is not None and mirage.listed_name(found) == name.encode()


@pytest.mark.parametrize("ss", [512, 4096])
def test_boot_sector_and_geometry(ss):
    p = plan(from_pairs([("sub/index.html", b"<html>"), ("README", b"r")]),
             Options(sector_size=ss))
    dev = MemoryDevice(p.image_size, sector_size=ss, fill=0xAA)
    write(p, dev)
    img = dev.getvalue()
    assert img[0] == 0xEB and img[510:512] == b"\x55\xaa"          # boot sector at byte 0
    bs = BootSector16.parse(img[:512])
    assert bs.bpb.BPB_BytsPerSec == ss
    assert bs.bpb.BPB_RootEntCnt * 32 % ss == 0
    assert 112 <= bs.bpb.BPB_RootEntCnt and bs.bpb.BPB_NumFATs in (1, 2)
    assert bs.ebpb.BS_FilSysType == b"FAT16   " and bs.ebpb.BS_VolLab == b"NO NAME    "
    assert len(img) % 4096 == 0                                     # also fits 4K devices
    assert (p.cluster_count == (bs.bpb.BPB_TotSec16 or bs.bpb.BPB_TotSec32)
            // bs.bpb.BPB_SecPerClus - p.geometry.data_sector // bs.bpb.BPB_SecPerClus)


#: ASCII names on both sides of ocaml-fat's "look it up as 8.3" rule (issue 13 point 7).
RULE_NAMES = ["A..B", "X..Y.Z", "AB..C", "A...B", "A B", ".HIDDEN", "MY FILE.TXT", "A B.TXT",
              ".A.B", "..AB", "A.B", "README", "~$!.{}", "readme.txt", "a..b", "A.B.C",
              "ABCDEFGHI", "A.BCDE", "AB+C", "A;B", "A=B.TXT", "A,B", "A[1]"]


@pytest.mark.parametrize("name", RULE_NAMES)
def test_writer_and_checker_share_the_8_3_lookup_rule(name):
    """One rule, both ways: the Mirage writer refuses a name exactly when ``check --target
    mirage`` of an image holding it (written by the generic target) says ocaml-fat cannot
    find it."""
    from blockimg.fat import check, open_image
    try:
        plan(from_pairs([(name, b"x")]), Options())
        refused = False
    except InvalidInput as e:
        assert "8.3" in str(e), e
        refused = True
    p = plan(from_pairs([(name, b"x")]), Options(target="generic", sector_size=4096,
                                                fat_type=16))
    dev = MemoryDevice(p.image_size, sector_size=4096)
    write(p, dev)
    problems = check(open_image(dev), target="mirage")
    missed = [m for m in problems if f"cannot find {name}:" in m]
    assert bool(missed) == refused, (refused, problems)
