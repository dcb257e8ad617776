"""Fast paths give the same bytes as the declarations they stand in for.

Building an image never imports construct or numpy: FAT tables come from the
standard library's ``array`` (numpy only for very large tables), boot and
FSInfo sectors from ``struct``, tar header fields from a plain table. Each is
checked here against the construct declaration / numpy path it replaces.
"""
from __future__ import annotations

import calendar
import itertools
import random
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import fat_construct
from helpers import fat_reference as ref

from blockimg.fat import Options as FatOptions
from blockimg.fat import plan as fat_plan
from blockimg.fat import structs, table
from blockimg.fat.writer import boot_sector, fsinfo_sector
from blockimg.sources.directory import Kind, SourceEntry, SourceTree, from_pairs
from blockimg.tar import header
from helpers.tar_reference import build_with_construct, header_struct


# -- FAT tables ------------------------------------------------------------------
def _random_table(rng):
    ft = rng.choice([12, 16, 32])
    cc = rng.randint(1, {12: 4084, 16: 65524, 32: 200000}[ft])
    used_end = rng.randint(2, cc + 2)
    ends, c = [], 2
    while c < used_end:
        c = min(c + rng.randint(1, 60), used_end)
        ends.append(c - 1)
    size = table.table_bytes(ft, cc + 2) + rng.choice([0, 1, 5, 512, 4096])
    return table.RunTable(ft, cc, ends, used_end, size)


@pytest.mark.parametrize("seed", range(40))
def test_run_table_array_engine_matches_numpy(seed):
    rng = random.Random(seed)
    rt = _random_table(rng)
    chunk = rng.choice([3, 64, 999, 4096, 1 << 20])
    a = list(rt.chunks(chunk))
    assert b"".join(d for _, d in a) == ref.run_table_bytes(rt)
    assert [off for off, _ in a] == list(itertools.accumulate([0] + [len(d) for _, d in a[:-1]]))
    assert sum(len(d) for _, d in a) == rt.size


@pytest.mark.parametrize("fat_type", [12, 16, 32])
def test_entries_list_matches_numpy_entries(fat_type):
    rt = table.RunTable(fat_type, 4000, [2, 10, 11, 300, 3000], 3001,
                        table.table_bytes(fat_type, 4002))
    for start, stop in [(0, 4002), (0, 1), (1, 2), (5, 12), (2990, 3010), (3001, 4002)]:
        want = ref.run_entries(rt, start, stop)
        assert rt.entries_list(start, stop) == [int(v) for v in want]
        if fat_type != 12 or start % 2 == 0:
            assert rt.encode_range(start, stop) == ref.table_encode(want, fat_type)


# -- FAT sectors and entries -------------------------------------------------------
def _plans():
    small = from_pairs([("a.txt", b"a" * 5000), ("d/b.bin", b"b" * 70000)], mtime=1_600_000_000)
    yield fat_plan(small, FatOptions())
    yield fat_plan(small, FatOptions(target="generic", label="HELLO", volume_id=0xDEADBEEF))
    yield fat_plan(small, FatOptions(target="generic", fat_type=12))
    yield fat_plan(small, FatOptions(target="generic", fat_type=32, fats=1))
    yield fat_plan(small, FatOptions(target="generic", fat_type=32, size=600 << 20))
    yield fat_plan(small, FatOptions(target="generic", sector_size=4096, fat_type=32))
    big = SourceTree((SourceEntry("f", Kind.FILE, size=3 << 30, source="/nonexistent"),))
    yield fat_plan(big, FatOptions(target="generic"))


def test_boot_and_fsinfo_sectors_match_construct():
    n = 0
    for p in _plans():
        assert boot_sector(p) == ref.boot_sector_construct(p)
        assert len(boot_sector(p)) == p.sector_size
        if p.fat_type == 32:
            assert fsinfo_sector(p) == ref.fsinfo_sector_construct(p)
        n += 1
    assert n == 7


def _fields(decl):
    return [sc.name for sc in decl.subcons]


@pytest.mark.parametrize("name", sorted(structs.STRUCT_FORMATS))
def test_struct_formats_match_declarations(name):
    decl = fat_construct.DECLARATIONS[name]
    fmt = struct.Struct(structs.STRUCT_FORMATS[name])
    assert fmt.size == decl.sizeof() == structs.SIZES[name]
    if name in ("BootSector16", "BootSector32"):
        return      # nested: covered by the boot sector test above
    rng = random.Random(name)
    values = {}
    for sc in decl.subcons:
        size = sc.sizeof()
        kind = type(sc.subcon if hasattr(sc, "subcon") else sc).__name__
        if "Bytes" in repr(sc) or kind == "Bytes":
            values[sc.name] = bytes(rng.randrange(256) for _ in range(size))
        else:
            values[sc.name] = rng.randrange(1 << (8 * size))
    packed = fmt.pack(*[values[k] for k in _fields(decl)])
    assert packed == decl.build(values)


@pytest.mark.parametrize("name", sorted(structs.FIELDS))
def test_unpack_matches_construct_parse(name):
    """The reader's struct decoding gives the declaration's fields and values."""
    decl = fat_construct.DECLARATIONS[name]
    assert structs.FIELDS[name] == tuple(_fields(decl))
    rng = random.Random(name)
    for _ in range(50):
        raw = bytes(rng.randrange(256) for _ in range(structs.SIZES[name]))
        parsed = decl.parse(raw)
        fast = structs.unpack(name, raw + b"\xff" * rng.randrange(3))
        assert vars(fast) == {k: parsed[k] for k in structs.FIELDS[name]}
        assert list(vars(fast)) == list(structs.FIELDS[name])


def test_unix_time_matches_calendar_for_every_date_and_clamps_like_it():
    """Every 16-bit FAT date (valid or not) and a spread of times, against calendar.timegm."""
    for date in range(1 << 16):
        year = 1980 + (date >> 9)
        month = min(max((date >> 5) & 0xF, 1), 12)
        day = min(max(date & 0x1F, 1), calendar.monthrange(year, month)[1])
        tod = (date * 7919) & 0xFFFF
        hour, minute = min(tod >> 11, 23), min((tod >> 5) & 0x3F, 59)
        second = min((tod & 0x1F) * 2 + 1, 59)
        want = calendar.timegm((year, month, day, hour, minute, second))
        assert structs.unix_time(date, tod, 100) == want, (date, tod)


def test_fat_time_bounds_are_the_calendar_values():
    assert structs.FAT_EPOCH == calendar.timegm((1980, 1, 1, 0, 0, 0))
    assert structs.FAT_END == calendar.timegm((2107, 12, 31, 23, 59, 58))


# -- tar header --------------------------------------------------------------------
def test_tar_field_table_matches_declaration():
    pos, derived = 0, {}
    for sc in header_struct().subcons:
        derived[sc.name] = (pos, pos + sc.sizeof())
        pos += sc.sizeof()
    assert derived == header.FIELDS
    assert header_struct().sizeof() == header.BLOCK


# -- FAT names -----------------------------------------------------------------------
def _random_names(n, seed=7):
    rng = random.Random(seed)
    alphabet = ("abcXYZ019 ._-~!$%'()[]{}^#&@`+,;=\"*/:<>?\\|\x00\x1f\x7f\tÄéß\u00ff\u0130"
                "\u212a\ud800ABCDEFGH..")
    out = ["README", "FAT.ML", "A.B.C", ".x", "x.", "ABCDEFGHI", "ABC.DEFG", "A B",
           "manifest.json", "index.html", "~", "_", "a" * 255, "a" * 256]
    for _ in range(n):
        k = rng.choice([1, 2, 3, 5, 8, 9, 11, 12, 13, 14, 26, 27, 40])
        out.append("".join(rng.choice(alphabet) for _ in range(k)))
    return out


def _outcome(f, *args, **kw):
    try:
        return ("ok", f(*args, **kw))
    except Exception as e:          # the same exception type and message, or the same value
        return (type(e).__name__, str(e), getattr(e, "rule", None))


def test_fat_name_fast_paths_match_general_code():
    from blockimg.fat import names as n
    for name in _random_names(20000):
        assert n.is_short_name(name) == ref.is_short_name(name), name
        assert n.fold(name) == n._fold_general(name), name
        assert n._basis(name) == n._basis_general(name), name
        for mirage in (True, False):
            assert _outcome(n.check_name, name, path="p", mirage=mirage) == \
                _outcome(n._check_name_general, name, path="p", mirage=mirage), name


def test_build_lfn_matches_units():
    from blockimg.fat import names as n
    for name in _random_names(3000, seed=11):
        for term in (True, False):
            try:
                units = ref.lfn_units(name, always_terminate=term)
            except UnicodeEncodeError:
                continue
            raw = struct.pack(f"<{len(units)}H", *units)
            got = _outcome(ref.build_lfn, name, b"ABCDEFGHIJK", always_terminate=term)
            if len(units) // 13 > n.MAX_SLOTS:
                assert got[0] == "ValueError"
                continue
            slots = got[1]
            assert len(slots) == len(units) // 13
            for k, slot in enumerate(reversed(slots)):
                part = raw[k * 26:(k + 1) * 26]
                assert slot[1:11] + slot[14:26] + slot[28:32] == part
                assert slot[0] & 0x3F == k + 1 and slot[13] == n.lfn_checksum(b"ABCDEFGHIJK")


def test_tar_build_header_fast_path_matches_construct():
    rng = random.Random(3)
    for _ in range(500):
        name = bytes(rng.randrange(1, 256) for _ in range(rng.randint(1, 100)))
        mode = rng.randrange(0o10000)
        size = rng.choice([0, 1, 511, 512, rng.randrange(8 ** 11)])
        mtime = rng.choice([0, 1700000000, 8 ** 11 - 1])
        typeflag = rng.choice([b"0", b"5", b"2", b"1"])
        fast = header.build_header(name, mode, size, mtime, typeflag)
        assert fast == build_with_construct(name=name, mode=mode, size=size,
                                            mtime=mtime, typeflag=typeflag)
        assert header.decode_number(fast[148:156]) in header.checksums(fast)


def test_tar_encode_entry_plain_and_extended_agree_on_the_ustar_header():
    from blockimg.tar.codec import encode_entry
    for n in (1, 50, 98, 99, 100, 101, 150):
        for kind in (Kind.FILE, Kind.DIR):
            e = SourceEntry("d/" + "x" * n, kind, 3 if kind is Kind.FILE else 0, 1700000000,
                            0o100644)
            head = encode_entry(e, mirage=False)
            last = head[-512:]
            parsed = header_struct().parse(last)
            full = (parsed.prefix + b"/" + parsed.name) if parsed.prefix else parsed.name
            if len(head) == 512:
                assert full == e.path_bytes + (b"/" if kind is Kind.DIR else b"")
            assert parsed.mode == 0o644 and parsed.mtime == 1700000000


@given(name=st.binary(min_size=1, max_size=100), mode=st.integers(0, 0o7777),
       size=st.integers(0, 8 ** 11 - 1), mtime=st.integers(0, 8 ** 11 - 1),
       typeflag=st.sampled_from([b"0", b"1", b"2", b"5"]),
       linkname=st.binary(max_size=100), prefix=st.binary(max_size=155))
def test_build_header_equals_the_construct_reference(name, mode, size, mtime, typeflag,
                                                     linkname, prefix):
    """Issue 13: the library's one header encoder and the declaration-derived reference."""
    assert header.build_header(name, mode, size, mtime, typeflag, linkname, prefix) == \
        build_with_construct(name=name, mode=mode, size=size, mtime=mtime, typeflag=typeflag,
                             linkname=linkname, prefix=prefix)


def test_the_usual_header_s_checksum_at_its_largest_sum():
    """build_header sums the name and the numbers of the usual header by Adler-32, which
    is the byte sum only below 65,521: the largest sum they can have (a 100-byte name of
    0xFF bytes, the largest numbers) is still the reference's checksum."""
    top = 8 ** 11 - 1
    for name in (b"\xff" * 100, b"\x7f" * 100, b"a", b"\xff"):
        fast = header.build_header(name, 0o7777, top, top, b"0")
        assert fast == build_with_construct(name=name, mode=0o7777, size=top, mtime=top,
                                            typeflag=b"0")
        assert header.decode_number(fast[148:156]) in header.checksums(fast)
