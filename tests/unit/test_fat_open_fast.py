"""The fast paths of opening a FAT image equal the general code they stand for.

``parse_directory`` decodes long names from the slots' raw bytes, computes
the checksum unrolled and short names inline; ``FatTable.chain`` answers a
whole single-run chain without its loop; ``Walk._files`` indexes whole
files inline. Each is compared here with the general form on random input.
"""
from __future__ import annotations

import random
import struct

import pytest

from helpers.fat_volume import Volume

from blockimg.errors import CorruptImage
from blockimg.fat import chains
from blockimg.fat.chains import ChainError, FatTable
from blockimg.fat.dirents import DOT, DOTDOT, _decode_raw, _parse, _whole, parse_directory
from blockimg.fat.names import MAX_SLOTS, lfn_checksum, parse_short
from helpers.fat_reference import build_lfn
from helpers.fat_reference import long_name as _long_name
from helpers.fat_reference import slot_units as _slot_units
from blockimg.fat.reader import FatImage
from blockimg.fat.walk import Walk
from blockimg.fat.structs import (ATTR_DIRECTORY, ATTR_LONG_NAME, ATTR_LONG_NAME_MASK,
                                  ATTR_VOLUME_ID, LAST_LONG_ENTRY, STRUCT_FORMATS)

_ENTRY = struct.Struct(STRUCT_FORMATS["DirEntry"])


def reference_parse(data, *, fat32):
    """parse_directory as it was written before the fast paths (units tuples, calls)."""
    records, issues = [], []
    slots = []
    checksum = expect = first_slot = 0
    mv = memoryview(bytes(data))
    for off in range(0, len(mv) - 32 + 1, 32):
        lead = mv[off]
        if lead == 0:
            break
        attr = mv[off + 11]
        if lead == 0xE5:
            if slots:
                issues.append((first_slot, "long-name slots not followed by their short entry "
                                           "(ignored)"))
                slots = []
            continue
        if attr & ATTR_LONG_NAME_MASK == ATTR_LONG_NAME:
            order = lead & 0x3F
            chk = mv[off + 13]
            if lead & LAST_LONG_ENTRY:
                if slots:
                    issues.append((first_slot, "long-name sequence interrupted by a new one "
                                               "(ignored)"))
                if not 1 <= order <= MAX_SLOTS or lead & 0x80:
                    issues.append((off, f"long-name slot with order {order} (must be "
                                        f"1..{MAX_SLOTS}; ignored)"))
                    slots = []
                    continue
                slots = [_slot_units(mv, off)]
                checksum, expect, first_slot = chk, order - 1, off
            elif slots and order == expect and chk == checksum and order >= 1:
                slots.append(_slot_units(mv, off))
                expect -= 1
            elif slots and order == expect:
                issues.append((off, f"long-name slot {order} has checksum {chk}, the slots "
                                    f"before it {checksum} (ignored)"))
                slots = []
            else:
                issues.append((off, f"long-name slot {order} out of sequence (ignored)"))
                slots = []
            continue
        (name11, attr, nt_res, ctenth, ctime, cdate, _ad, hi, wtime, wdate, lo,
         size) = _ENTRY.unpack_from(mv, off)
        cluster = (hi << 16 | lo) if fat32 else lo
        units = name = None
        lfn_off = off
        if slots:
            if expect != 0:
                issues.append((first_slot, f"long name is missing slots 1..{expect}; the "
                                           "short name is used"))
            elif checksum != lfn_checksum(name11):
                issues.append((first_slot, f"long-name checksum {checksum} does not match "
                                           f"the short name {bytes(name11)!r} "
                                           f"({lfn_checksum(name11)}); the short name is used"))
            else:
                cand = tuple(u for s in reversed(slots) for u in s)
                name = _long_name(cand)
                if name is None:
                    issues.append((first_slot, "long name is empty or not valid UTF-16; the "
                                               "short name is used"))
                else:
                    units, lfn_off = cand, first_slot
            slots = []
        if attr & ATTR_VOLUME_ID and not attr & ATTR_DIRECTORY:
            kind = "label"
        elif name11 == DOT:
            kind = "dot"
        elif name11 == DOTDOT:
            kind = "dotdot"
        else:
            kind = "dir" if attr & ATTR_DIRECTORY else "file"
        if name is None:
            name = parse_short(name11, nt_res if units is None else 0)
        records.append((name, kind, bytes(name11), attr, nt_res, cluster, size, wdate, wtime,
                        off, lfn_off, units, (cdate, ctime, ctenth)))
    if slots:
        issues.append((first_slot, "long-name slots at the end of the directory (ignored)"))
    return records, issues


_UNITS = [0x0000, 0xFFFF, 0xD800, 0xDBFF, 0xDC00, 0xDFFF, 0xD83D, 0xDE42, 0x0041, 0x002F,
          0x002E, 0x00E9, 0x4100, 0x0100, 0x0001, 0xFFFE]


def _random_units(rng, n):
    return [rng.choice(_UNITS) if rng.random() < 0.5 else rng.randrange(0x10000)
            for _ in range(n)]


def _random_short(rng):
    r = rng.random()
    if r < 0.4:
        base = "".join(rng.choice("ABCXYZ019~_ ") for _ in range(8))
        return (base + "".join(rng.choice("TXT ") for _ in range(3))).encode()
    if r < 0.5:
        return rng.choice([DOT, DOTDOT, b"\x05ABC    TXT", b"        TXT", b"           "])
    if r < 0.7:
        return bytes(rng.choice([0x41, 0x20, 0x80, 0xE9, 0xFF, 0x05, 0x00, 0x7F])
                     for _ in range(11))
    return bytes(rng.randrange(256) for _ in range(11))


def _short(rng, name11):
    e = bytearray(rng.randbytes(32))
    e[0:11] = name11
    e[11] = rng.choice([0x20, 0x10, 0x08, 0x18, 0x21, 0x01, 0x00, rng.randrange(256)])
    if e[11] & ATTR_LONG_NAME_MASK == ATTR_LONG_NAME:
        e[11] = 0x20
    e[12] = rng.choice([0, 0x08, 0x10, 0x18, rng.randrange(256)])
    if e[0] in (0, 0xE5):
        e[0] = 0x41
    return bytes(e)


def _random_directory(rng):
    out = []
    for _ in range(rng.randrange(1, 12)):
        r = rng.random()
        name11 = _random_short(rng)
        if r < 0.45:                                   # a long name, perhaps spoiled
            n = rng.randrange(1, 40)
            if rng.random() < 0.5:
                name = "".join(chr(rng.choice([0x41, 0x61, 0xE9, 0x3B1, 0x1F642, 0x2E]))
                               for _ in range(n))
            else:
                raw = struct.pack(f"<{n}H", *_random_units(rng, n))
                name = raw.decode("utf-16-le", "surrogatepass")
            try:
                slots = [bytearray(s) for s in build_lfn(name, name11,
                                                         always_terminate=rng.random() < 0.3)]
            except ValueError:
                continue
            for s in slots:
                k = rng.random()
                if k < 0.15:                           # one unit replaced
                    p = rng.choice([1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30])
                    s[p:p + 2] = rng.choice(_UNITS).to_bytes(2, "little")
                elif k < 0.2:
                    s[13] ^= 1 << rng.randrange(8)     # checksum
                elif k < 0.25:
                    s[0] = rng.randrange(256)           # order
            if rng.random() < 0.1 and len(slots) > 1:
                del slots[rng.randrange(len(slots))]
            out.extend(bytes(s) for s in slots)
            if rng.random() < 0.9:
                out.append(_short(rng, name11))
        elif r < 0.75:
            out.append(_short(rng, name11))
        elif r < 0.85:                                 # a stray slot
            s = bytearray(rng.randbytes(32))
            s[11] = rng.choice([0x0F, 0x3F, 0x4F, 0xCF])
            s[0] = rng.choice([0x41, 0x42, 0x01, 0x02, 0x40, 0x80, 0xC1, 0x7F, 0x54, 0x55])
            out.append(bytes(s))
        elif r < 0.95:
            out.append(b"\xe5" + rng.randbytes(31))
        else:
            out.append(bytes(32) if rng.random() < 0.5 else rng.randbytes(32))
    data = b"".join(out)
    if rng.random() < 0.2:
        data += rng.randbytes(rng.randrange(32))      # a torn last entry
    return data


def _comparable(records):
    return [tuple(r[:11]) + (r.lfn_units, r.crt) for r in records]


@pytest.mark.parametrize("seed", range(8))
def test_parse_directory_equals_the_general_code(seed):
    rng = random.Random(seed)
    for _ in range(400):
        data = _random_directory(rng)
        for fat32 in (False, True):
            recs, issues = parse_directory(data, fat32=fat32)
            want_recs, want_issues = reference_parse(data, fat32=fat32)
            assert (_comparable(recs), issues) == (want_recs, want_issues), data.hex()
            assert parse_directory(bytearray(data), fat32=fat32) == (recs, issues)
            assert parse_directory(memoryview(data), fat32=fat32) == (recs, issues)


def test_long_name_bytes_decode_as_the_units_do():
    rng = random.Random(7)
    for _ in range(20000):
        n = 13 * rng.randrange(1, 4)
        units = tuple(_random_units(rng, n))
        raw = struct.pack(f"<{n}H", *units)
        assert _decode_raw(raw) == _long_name(units), units


def test_lfn_units_are_the_slots_units():
    name = "a long name, longer than one slot.txt"
    short = b"ALONGN~1TXT"
    slots = build_lfn(name, short, always_terminate=False)
    data = b"".join(slots) + _short(random.Random(1), short)
    (rec,), issues = parse_directory(data, fat32=False)
    assert issues == [] and rec.name == name
    want = tuple(u for s in reversed(slots) for u in _slot_units(s, 0))
    assert rec.lfn_units == want and len(rec.lfn_raw) == 26 * len(slots)


# -- chains ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["fat12", "fat16", "fat32"])
def test_chain_fast_path_equals_the_loop(kind, monkeypatch):
    if kind == "fat32":
        monkeypatch.setattr(chains, "WINDOW_BYTES", 256)   # 64 entries: runs cross windows
    v = Volume(kind)
    geo = v.geo
    rng = random.Random(kind)
    top = geo.cluster_count + 2
    eoc = {12: 0xFFF, 16: 0xFFFF, 32: 0x0FFFFFFF}[geo.fat_type]
    bad, eoc_low = eoc - 8, eoc - 7                      # 0x..FF7 bad, 0x..FF8 end of chain
    lo = 2
    hi = min(top - 1, 400)
    for c in range(lo, hi):
        r = rng.random()
        v.set_fat(c, c + 1 if r < 0.6 else eoc if r < 0.8 else
                  rng.choice([0, bad, eoc_low, top, top - 1, 1, c, rng.randrange(lo, hi)]))
    fat = FatTable(v.device(), geo)
    for _ in range(3000):
        start = rng.choice([rng.randrange(0, hi + 2), top - 1, top, 0, 1])
        limit = rng.choice([1, 2, 3, 4, 5, 16, 17, 33, 40, 70, rng.randrange(0, 300)])
        try:
            got = ("ok", fat.chain(start, limit))
        except ChainError as e:
            got = ("err", e.rule, e.cluster, e.runs)
        runs = []
        try:
            want = ("ok", fat._chain(start, limit, runs))
        except ChainError as e:
            want = ("err", e.rule, e.cluster, [] if e.rule.startswith("chain loops") else runs)
        assert got == want, (start, limit)


# -- the index -----------------------------------------------------------------------

def _general_files(self, dirpath, dir_extents, it):
    """Walk._files without its inline case: every record through Walk.entry."""
    for rec in it:
        if rec.kind == "dir":
            return rec
        self.entry(dirpath, dir_extents, rec, None, None)
    return None


def _state(device, strict):
    try:
        im = FatImage(device, strict=strict)
    except CorruptImage as e:
        return ("error", str(e))
    return ([(e.path, e.kind, e.size, e.mtime, e.mode, e.extents) for e in im.list()],
            im.warnings, im.problems, im.unsafe_names, im.walk.where, im.walk.dirs,
            list(im.walk.runs.start), list(im.walk.runs.length), list(im.walk.runs.owner))


@pytest.mark.parametrize("kind", ["fat12", "fat16", "fat32"])
def test_inline_files_index_as_entry_does(kind, monkeypatch):
    rng = random.Random(kind)
    base = Volume(kind)
    clean = base.clean
    dir_bytes = [x for ext in clean.walk.dirs.values() for x in ext]
    for i in range(20 if kind == "fat32" else 150):
        v = object.__new__(Volume)                     # a copy of base, not opened
        v.data, v.geo = bytearray(base.data), base.geo
        for _ in range(rng.choice([1, 2, 4])):
            if rng.random() < 0.5:
                off, n = rng.choice(dir_bytes)
                pos = off + rng.randrange(n)
                pos -= (pos % 32)
                field = rng.choice([26, 27, 28, 29, 30, 31, 20, 11])
                v.data[pos + field] = rng.randrange(256)
            else:
                c = rng.choice(base.clusters(rng.choice(
                    [p for p in clean.index if clean.index[p].kind == "file"
                     and clean.index[p].size])))
                bad = {12: 0xFF7, 16: 0xFFF7, 32: 0x0FFFFFF7}[base.geo.fat_type]
                v.set_fat(c, rng.choice([0, c, c + 1, c + 2, bad, bad + 8,
                                         rng.randrange(2, 200)]))
        if rng.random() < 0.2:
            first = base.geo.data_offset // 512            # cut somewhere in the files' data
            v.data = v.data[:rng.randrange(first + 1, first + 64) * 512]
        for strict in (True, False):
            fast = _state(v.device(), strict)
            with monkeypatch.context() as m:
                m.setattr(Walk, "_files", _general_files)
                slow = _state(v.device(), strict)
            assert fast == slow, i


# -- whole directories, a column at a time ------------------------------------------------

def test_whole_directory_path_equals_the_entry_loop():
    """``_whole`` (every long name whole: the columns) answers exactly what the entry loop
    ``_parse`` does, or leaves the directory to it; both are taken on these inputs."""
    rng = random.Random(14)
    taken = left = 0
    for _ in range(3000):
        data = _random_directory(rng)
        if rng.random() < 0.5:                 # as writers leave them: nothing spoiled
            data = _clean_directory(rng)
        for fat32 in (False, True):
            whole = _whole(data, fat32)
            recs, issues = _parse(data, fat32)
            if whole is None:
                left += 1
            else:
                taken += 1
                assert (whole, []) == (recs, issues), data.hex()
            assert parse_directory(data, fat32=fat32) == (recs, issues)
    assert taken > 1000 and left > 1000


def _clean_directory(rng):
    """Short entries with whole long names (1 to 20 slots), deleted entries between them,
    perhaps a zero entry and garbage after it."""
    out = []
    for i in range(rng.randrange(0, 30)):
        r = rng.random()
        name11 = b"F%-10d" % i
        if r < 0.6:
            n = rng.choice([1, 5, 13, 14, 26, 27, 40, 255])
            name = "".join(rng.choice("abcXYZ09 .-é\U0001F600") for _ in range(n))
            try:
                out.extend(build_lfn(name, name11, always_terminate=rng.random() < 0.5))
            except ValueError:
                continue
        elif r < 0.7:
            out.append(b"\xe5" + rng.randbytes(31))
            continue
        out.append(_short(rng, name11))
    if rng.random() < 0.3:
        out.append(bytes(32) + rng.randbytes(32 * rng.randrange(3)))
    return b"".join(out)


def test_whole_directory_path_stops_at_what_it_does_not_decide():
    """A slot cut from its name, a checksum off by one, a deleted short entry after its
    slots, slots at the end: each is left to the entry loop, which names the problem."""
    short = b"ALONGN~1TXT"
    slots = build_lfn("a long name, longer than one slot.txt", short, always_terminate=False)
    entry = _short(random.Random(2), short)
    bad_chk = bytearray(slots[1])
    bad_chk[13] ^= 1
    for data in (slots[1] + entry, slots[0] + bytes(bad_chk) + entry,
                 b"".join(slots) + b"\xe5" + entry[1:], b"".join(slots),
                 entry + slots[0]):
        assert _whole(data, False) is None
        assert _parse(data, False)[1], data.hex()
    assert _whole(b"".join(slots) + entry, False) == _parse(b"".join(slots) + entry, False)[0]
