"""Reading tar images: index, flavours, semantics, and hostile input."""
from __future__ import annotations

import random

import pytest

from blockimg.block import MemoryDevice, MmapDevice
from blockimg.errors import CorruptImage
from blockimg.tar import check, detect, open_image
from blockimg.tar.header import encode_pax, pax_record
from helpers.tar_archives import Z, blocks, corrupt, fix_checksum, gnu, hdr, image, make, v7
from helpers.tar_reference import build_with_construct


# -- round trip through the writer ---------------------------------------------
def test_writer_output_reads_back_and_leaves_no_stale_bytes():
    p, dev = make([("a/b.txt", b"hello"), ("a/empty", b""), ("c/" + "n" * 150, b"x" * 700)],
                  align=4096)
    data = dev.getvalue()
    assert b"\xaa" not in data[:p.archive_size]         # all structure written explicitly
    img = open_image(dev)
    assert [e.path for e in img.list()] == ["a", "a/b.txt", "a/empty", "c", "c/" + "n" * 150]
    assert img.read("a/b.txt") == b"hello"
    assert img.read("c/" + "n" * 150, 695) == b"xxxxx"
    assert img.stat("a/empty").size == 0
    assert img.stat("a").kind == "dir" and img.stat("a").mtime == 1700000000
    assert {e.path: list(e.extents) for e in img.list() if e.kind == "file"} == \
        {k: v for k, v in p.extents()}
    info = img.info()
    assert info["data_alignment"] == 4096 and info["end_of_archive"] == p.archive_size
    assert info["padding_entries"] > 0 and info["flavours"] == ["pax", "ustar"]
    assert check(img, target="mirage") == []


def test_mmap_reads_are_zero_copy(tmp_path):
    _, dev = make([("f", b"0123456789")])
    path = tmp_path / "i.tar"
    path.write_bytes(dev.getvalue())
    with MmapDevice(str(path)) as mdev:
        img = open_image(mdev)
        view = img.view("f", 2, 3)
        assert isinstance(view, memoryview) and bytes(view) == b"234"
        with img.open("f") as f:
            f.seek(-2, 2)
            assert f.read() == b"89"
        del view


def test_detect():
    _, dev = make([("f", b"x")])
    assert detect(dev)
    assert detect(MemoryDevice(4096))                    # empty archive: zeros only
    assert not detect(MemoryDevice(data=b"\0" * 1024 + b"junk" + bytes(508)))
    assert not detect(MemoryDevice(data=bytes(range(256)) * 2))
    bad = bytearray(dev.getvalue())
    bad[0] ^= 1
    assert not detect(MemoryDevice(data=bytes(bad)))
    assert open_image(MemoryDevice(4096)).list() == []


# -- flavours ---------------------------------------------------------------------
def test_gnu_long_names_links_and_base256():
    long_name = b"d" * 300 + b"/file"
    long_link = b"t" * 200
    b = bytearray(gnu(hdr(b"trunc", 3, mtime=0)))
    b[124:136] = b"\x80" + (3).to_bytes(11, "big")            # base-256 size
    b[136:148] = b"\xff" * 11 + b"\xfe"                        # base-256 mtime -2
    entry = fix_checksum(bytes(b))
    img = image(gnu(hdr(b"././@LongLink", len(long_name) + 1, b"L")),
                blocks(long_name + b"\0"), entry, blocks(b"abc"),
                gnu(hdr(b"././@LongLink", len(long_link) + 1, b"K")), blocks(long_link + b"\0"),
                gnu(hdr(b"ln", 0, b"2", link=b"short")))
    f = img.stat(long_name.decode())
    assert (f.size, f.mtime) == (3, -2)
    assert img.read(long_name.decode()) == b"abc"
    assert img.stat("ln").link_target == long_link.decode()
    assert img.flavours == {"gnu"}
    problems = check(img, target="mirage")
    assert any("base-256" in p and "size" in p for p in problems)
    assert any("base-256" in p and "mtime" in p for p in problems)


def test_pax_x_and_g_records():
    g = encode_pax({b"mtime": b"77", b"comment": b"global"})
    x = encode_pax({b"path": "ü/long".encode() * 40, b"size": b"4", b"mtime": b"-3.5"})
    img = image(hdr(b"pax_global", len(g), b"g"), blocks(g),
                hdr(b"a", 0), hdr(b"PaxHeader", len(x), b"x"), blocks(x),
                hdr(b"short", 0), blocks(b"data"), hdr(b"b", 0, mtime=5))
    assert img.stat("a").mtime == 77                   # the global record applies
    p = ("ü/long" * 40)
    assert img.stat(p).size == 4 and img.read(p) == b"data" and img.stat(p).mtime == -3
    assert img.stat("b").mtime == 77
    assert img.flavours == {"pax", "ustar"}


def test_v7_and_ustar_prefix():
    img = image(v7(hdr(b"old/", 0, b"\0")), v7(hdr(b"old/file", 2, b"\0")), blocks(b"hi"),
                hdr(b"name", 1, prefix=b"pre/fix"), blocks(b"!"))
    assert img.stat("old").kind == "dir"
    assert img.read("old/file") == b"hi"
    assert img.read("pre/fix/name") == b"!"
    assert img.flavours == {"v7", "ustar"}


def test_index_semantics():
    img = image(hdr(b"./a/b", 1), blocks(b"1"), hdr(b"a/b", 1), blocks(b"2"),  # last one wins
                hdr(b"/abs", 0),                                            # made relative
                hdr(b"../evil", 1), blocks(b"x"), hdr(b"ok/../../x", 0),
                hdr(b"./", 0, b"5"), hdr(b"sym", 0, b"2", link=b"a/b"),
                hdr(b"hard", 0, b"1", link=b"./a/b"), hdr(b"fifo", 0, b"6"),
                hdr(b"f", 1), blocks(b"f"), hdr(b"f/g", 0),                 # file becomes dir
                hdr(b"d/", 0, b"5"), hdr(b"d/x", 0), hdr(b"d", 1), blocks(b"D"))  # dir -> file
    paths = [e.path for e in img.list()]
    assert paths == ["a", "a/b", "abs", "sym", "hard", "fifo", "f", "f/g", "d"]
    assert img.read("a/b") == b"2"
    assert img.stat("a").kind == "dir"                  # implicit parent
    assert img.read("hard") == b"2"                     # hard links resolve
    assert img.stat("sym").link_target == "a/b"
    assert img.stat("f").kind == "dir"
    assert img.read("d") == b"D"
    assert [n for n, _ in img.unsafe_names] == ["../evil", "ok/../../x"]
    assert img.padding_entries == 1
    assert any("'f' was a file" in w for w in img.warnings)


def test_a_name_ending_in_two_slashes_is_its_directory():
    """``a//`` is the directory ``a`` (as GNU tar extracts it), not a key ``a/`` beside
    ``a``: the index took a name's last ``/`` off before looking for ``//``."""
    img = image(hdr(b"a//", 0, b"5"), hdr(b"b//", 1), blocks(b"B"), hdr(b"c/d//", 0, b"5"))
    assert [(e.path, e.kind) for e in img.list()] == [("a", "dir"), ("b", "dir"),
                                                      ("c", "dir"), ("c/d", "dir")]


def test_lone_zero_block_is_read_through_and_noted():
    img = image(hdr(b"a", 0), Z, hdr(b"b", 0))
    assert [e.path for e in img.list()] == ["a", "b"]
    assert any("lone zero block" in w for w in img.warnings)
    assert any("lone zero block" in p for p in check(img))


def test_missing_or_single_end_block_is_noted():
    img = image(hdr(b"a", 0), end=b"")
    assert img.end_of_archive is None
    assert any("no end-of-archive" in p for p in check(img, target="mirage"))
    img = image(hdr(b"a", 0), end=Z)
    assert any("only one zero block" in p for p in check(img, target="mirage"))


# -- hostile input -----------------------------------------------------------------
def test_bad_checksum():
    b = bytearray(hdr(b"a", 0))
    b[0] = ord("b")
    e = corrupt(hdr(b"ok", 0), bytes(b))
    assert e.offset == 512 + 148 and "checksum" in str(e)
    b[148:156] = b"garbage!"
    assert "checksum" in str(corrupt(bytes(b)))


def test_size_past_end():
    e = corrupt(hdr(b"a", 10 ** 9), end=b"")
    assert e.offset == 0 and "past the end" in str(e)
    x = encode_pax({b"size": b"99999999999"})
    e = corrupt(hdr(b"x", len(x), b"x"), blocks(x), hdr(b"a", 0))
    assert "past the end" in str(e)


def test_extended_payload_limits():
    assert "refused" in str(corrupt(hdr(b"x", 2 << 20, b"x")))          # 2 MiB claimed
    assert "past the end" in str(corrupt(hdr(b"x", 5000, b"x")))
    assert "refused" in str(corrupt(gnu(hdr(b"././@LongLink", 8 ** 11 - 1, b"L"))))


def test_lying_pax_lengths():
    for payload in (b"999 path=a\n", b"3 path=abc\n", b"-5 path=a\n", b"1" * 30 + b" a=b\n",
                    b"12 path=abc\n" + b"x"):
        e = corrupt(hdr(b"x", len(payload), b"x"), blocks(payload), hdr(b"a", 0))
        assert e.offset is not None and e.offset >= 512


def test_endless_extended_chains():
    x = pax_record(b"comment", b"c")
    e = corrupt(*(hdr(b"x", len(x), b"x") + blocks(x) for _ in range(200)))
    assert "in a row" in str(e)
    e = corrupt(*(hdr(b"g", len(x), b"g") + blocks(x) for _ in range(200)))
    assert "in a row" in str(e)


def test_extended_header_without_entry():
    x = pax_record(b"path", b"p")
    assert "zero block" in str(corrupt(hdr(b"x", len(x), b"x"), blocks(x)))
    assert "before its entry" in str(corrupt(hdr(b"x", len(x), b"x"), blocks(x), end=b""))


def test_nul_in_names():
    x = pax_record(b"path", b"a\0b")
    assert "NUL" in str(corrupt(hdr(b"x", len(x), b"x"), blocks(x), hdr(b"a", 0)))
    ln = b"abc\0def\0"
    assert "NUL" in str(corrupt(gnu(hdr(b"././@LongLink", len(ln), b"L")), blocks(ln),
                                gnu(hdr(b"a", 0))))


@pytest.mark.parametrize("field,raw", [("size", b"\xff" * 12), ("size", b"\x80" + b"\xff" * 11),
                                       ("mtime", b"\x80" + b"\xff" * 11),
                                       ("size", b"12x45670000\0"), ("mode", b"-0000644")])
def test_bad_numbers(field, raw):
    start = {"size": 124, "mtime": 136, "mode": 100}[field]
    b = bytearray(hdr(b"a", 0))
    b[start:start + len(raw)] = raw
    e = corrupt(fix_checksum(bytes(b)))
    assert e.field == field and e.offset == start


def test_bad_pax_numbers():
    for rec in (pax_record(b"size", b"-1"), pax_record(b"size", b"1e9"),
                pax_record(b"mtime", b"soon"), pax_record(b"size", b"9" * 30)):
        e = corrupt(hdr(b"x", len(rec), b"x"), blocks(rec), hdr(b"a", 0))
        assert "pax" in str(e)


def test_mutated_archives_open_or_raise_corrupt_image():
    _, dev = make([("d/a.txt", b"hello" * 50), ("d/" + "l" * 150, b"x"), ("e", b"")],
                  target="generic")
    good = dev.getvalue()[:4096]
    rng = random.Random(1234)
    outcomes = {"ok": 0, "corrupt": 0}
    for _ in range(400):
        data = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.5:      # keep checksums right so deeper checks run
            for off in range(0, len(data), 512):
                blk = bytes(data[off:off + 512])
                if blk.strip(b"\0") and blk[257:262] == b"ustar":
                    data[off:off + 512] = fix_checksum(blk)
        try:
            img = open_image(MemoryDevice(data=bytes(data)))
            for e in img.list():
                if e.kind == "file":
                    img.read(e.path)
            check(img, target="mirage")
            outcomes["ok"] += 1
        except CorruptImage:
            outcomes["corrupt"] += 1
    assert outcomes["ok"] and outcomes["corrupt"]


def test_construct_declaration_matches_what_the_reader_accepts():
    block = build_with_construct(name=b"via-construct", mode=0o600, size=3, mtime=42,
                                 typeflag=b"0")
    img = image(block, blocks(b"abc"))
    e = img.stat("via-construct")
    assert (e.size, e.mtime, e.mode) == (3, 42, 0o600)
