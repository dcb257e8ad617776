"""Planning a tar image (pure: no byte is written) and the tar options."""
from __future__ import annotations


import pytest

from blockimg.errors import DoesNotFit, InvalidInput
from blockimg.sources.directory import Kind, SourceEntry, SourceTree, from_pairs
from blockimg.tar import Options, plan
from blockimg.tar.codec import encode_entry
from blockimg.tar.header import decode_pax
from helpers.tar_reference import HEADER


def tree(*pairs, mtime=1700000000):
    return from_pairs(list(pairs), mtime=mtime)


# -- options ----------------------------------------------------------------
def test_options_defaults_and_frozen():
    o = Options()
    assert (o.target, o.sector_size, o.align, o.size) == ("mirage", 512, None, None)
    assert o.pad_to == 4096
    assert Options(target="generic").pad_to == 512
    assert Options(sector_size=8192).pad_to == 8192
    with pytest.raises(AttributeError):
        o.align = 4096


@pytest.mark.parametrize("kw", [dict(target="linux"), dict(sector_size=1000),
                                dict(sector_size=256), dict(sector_size=1 << 17),
                                dict(align=256), dict(align=3000), dict(size=-512),
                                dict(size=1000), dict(size="1M"),
                                dict(size=4096, sector_size=8192)])
def test_options_refused(kw):
    with pytest.raises(InvalidInput):
        Options(**kw)


def test_unknown_option_is_a_type_error():
    with pytest.raises(TypeError):
        Options(label="x")


# -- layout ---------------------------------------------------------------
def test_plan_places_headers_and_data():
    p = plan(tree(("a/x.txt", b"hello"), ("a/y", b""), ("b", None)))
    items = {it.entry.path: it for it in p.items}
    assert [it.entry.path for it in p.items] == ["a", "a/x.txt", "a/y", "b"]
    assert items["a"].offset == 0 and items["a"].data_offset == 512
    assert items["a/x.txt"].offset == 512 and items["a/x.txt"].data_offset == 1024
    assert items["a/y"].offset == 1536        # 5 bytes of data padded to one block
    assert p.end_offset == 2560                 # a/y at 1536, b at 2048
    assert p.archive_size == p.end_offset + 1024
    assert p.image_size == 4096 and p.image_size % 4096 == 0
    assert dict(p.extents()) == {"a/x.txt": [(1024, 5)], "a/y": []}
    assert p.file_bytes == 5
    name = HEADER.parse(items["a"].head).name
    assert name == b"a/"                                   # directories end with '/'


def test_generic_pads_to_sector_only():
    p = plan(tree(("f", b"x")), Options(target="generic"))
    assert p.archive_size == 512 * 4 and p.image_size == 2048
    p = plan(tree(("f", b"x")), Options(target="generic", sector_size=4096))
    assert p.image_size == 4096 and p.sector_size == 4096


def test_exact_size_and_does_not_fit():
    t = tree(("f", b"x" * 3000))
    assert plan(t, Options(size=1 << 20)).image_size == 1 << 20
    with pytest.raises(DoesNotFit) as exc:
        plan(t, Options(size=4096))
    # header 512 + data 3072 + end 1024 = 4608
    assert exc.value.needed == 4608 and exc.value.available == 4096
    assert "short by 512 bytes" in str(exc.value)


def test_empty_tree_is_just_the_end_marker():
    p = plan(SourceTree(()))
    assert p.items == () and p.end_offset == 0 and p.image_size == 4096


@pytest.mark.parametrize("align", [512, 1024, 4096, 65536])
def test_alignment_puts_every_non_empty_file_on_the_boundary(align):
    t = tree(("d/a", b"1"), ("d/b", b""), ("d/c" + "x" * 200, b"22"), ("d/e", b"3" * 5000),
             ("z" * 300, b"4"))
    p = plan(t, Options(align=align, target="generic"))
    for path, ext in p.extents():
        for off, _ in ext:
            assert off % align == 0, path
    for it in p.items:
        assert it.fillers < align // 512
        assert it.head[:it.fillers * 512] == (it.head[:512] * it.fillers)
        if it.fillers:
            hdr = HEADER.parse(it.head[:512])
            assert (hdr.name, hdr.typeflag, hdr.size) == (b"./", b"5", 0)
    empty = [it for it in p.items if it.entry.path == "d/b"][0]
    assert empty.fillers == 0                    # empty files need no alignment


def test_alignment_filler_count_is_minimal():
    p = plan(tree(("a", b"1"), ("b", b"2")), Options(align=4096))
    a, b = p.items
    # a: 7 fillers + header -> data at 4096; b: after a's data block (4608) 6 fillers + header
    assert (a.fillers, a.data_offset) == (7, 4096)
    assert (b.fillers, b.offset, b.data_offset) == (6, 4608, 8192)


def test_plan_is_deterministic_and_independent_of_entry_objects():
    t1 = tree(("b/c", b"x"), ("a", b"y"))
    t2 = tree(("a", b"y"), ("b/c", b"x"))
    assert [it.head for it in plan(t1).items] == [it.head for it in plan(t2).items]


# -- what one entry becomes --------------------------------------------------
def entry(path, kind=Kind.FILE, size=0, mtime=0, link=None, mode=0o644):
    return SourceEntry(path, kind, size, mtime, mode, data=b"" if kind is Kind.FILE else None,
                       link_target=link)


def pax_of(head):
    hdr = HEADER.parse(head[:512])
    assert hdr.typeflag == b"x"
    return dict(decode_pax(head[512:512 + hdr.size], 512)), HEADER.parse(head[-512:])


def test_ustar_when_it_fits_pax_when_not():
    assert len(encode_entry(entry("a" * 100), mirage=True)) == 512
    assert len(encode_entry(entry("p" * 150 + "/" + "n" * 100), mirage=True)) == 512
    head = encode_entry(entry("n" * 150), mirage=True)
    assert len(head) == 512 * 3
    records, real = pax_of(head)
    assert records == {b"path": b"n" * 150}
    assert real.typeflag == b"0"


def test_mirage_refuses_long_records_and_says_why():
    longest_ok = "d/" + "x" * 500            # 502 bytes: "512 path=<502>\n" is 512 bytes
    head = encode_entry(entry(longest_ok), mirage=True)
    assert pax_of(head)[0][b"path"] == longest_ok.encode()
    assert len(head) == 512 * 3
    with pytest.raises(InvalidInput) as exc:
        encode_entry(entry(longest_ok + "y"), mirage=True)
    assert exc.value.path == longest_ok + "y"
    assert "512" in str(exc.value)
    assert len(encode_entry(entry("x" * 5000), mirage=False)) == 512 * 12


def test_mirage_refuses_names_that_are_not_utf8():
    bad = b"caf\xe9".decode("utf-8", "surrogateescape")
    with pytest.raises(InvalidInput) as exc:
        encode_entry(entry(bad), mirage=True)
    assert "UTF-8" in str(exc.value)
    assert HEADER.parse(encode_entry(entry(bad), mirage=False)).name == b"caf\xe9"
    records, _ = pax_of(encode_entry(entry(bad + "x" * 200), mirage=False))
    assert records[b"hdrcharset"] == b"BINARY"


@pytest.mark.parametrize("kw,key", [(dict(mtime=-1), b"mtime"), (dict(mtime=8 ** 11), b"mtime"),
                                    (dict(size=8 ** 11), b"size")])
def test_numbers_octal_cannot_hold(kw, key):
    e = entry("f", **kw)
    with pytest.raises(InvalidInput) as exc:
        encode_entry(e, mirage=True)
    assert "octal" in str(exc.value) and exc.value.path == "f"
    records, real = pax_of(encode_entry(e, mirage=False))
    assert records == {key: str(kw[next(iter(kw))]).encode()}
    assert real.size == 0 and real.mtime in (0, 8 ** 11 - 1)


def test_links_and_directories():
    d = HEADER.parse(encode_entry(entry("dir", Kind.DIR, mode=0o750), mirage=True))
    assert (d.name, d.typeflag, d.mode, d.size) == (b"dir/", b"5", 0o750, 0)
    s = HEADER.parse(encode_entry(entry("l", Kind.SYMLINK, link="../t"), mirage=True))
    assert (s.typeflag, s.linkname) == (b"2", b"../t")
    h = HEADER.parse(encode_entry(entry("h", Kind.HARDLINK, link="a/b"), mirage=True))
    assert (h.typeflag, h.linkname, h.size) == (b"1", b"a/b", 0)
    records, real = pax_of(encode_entry(entry("l", Kind.SYMLINK, link="t" * 150), mirage=True))
    assert records == {b"linkpath": b"t" * 150} and real.typeflag == b"2"


def test_owner_fields_are_fixed():
    hdr = HEADER.parse(encode_entry(entry("f", size=0, mtime=5, mode=0o100755), mirage=True))
    assert (hdr.uid, hdr.gid, hdr.uname, hdr.gname, hdr.mode, hdr.mtime) == \
        (0, 0, b"", b"", 0o755, 5)


def test_hand_made_trees_are_ordered_and_checked():
    f = SourceEntry("d/f", Kind.FILE, 1, 0, 0o644, data=b"x")
    d = SourceEntry("d", Kind.DIR, 0, 0, 0o755)
    p = plan(SourceTree((f, d)))
    assert [it.entry.path for it in p.items] == ["d", "d/f"]      # directory first
    assert p.items[0].head == plan(SourceTree((d, f))).items[0].head
    with pytest.raises(InvalidInput, match="twice"):
        plan(SourceTree((d, f, f)))
    g = SourceEntry("d/f/x/g", Kind.FILE, 0, 0, 0o644, data=b"")
    with pytest.raises(InvalidInput, match="not a directory"):
        plan(SourceTree((d, f, g)))


def test_plan_order_is_the_source_sort_order():
    from blockimg.sources.directory import sort_key
    names = ["a", "a/b", "a.b", "a-b/c", "a/b/c", "ab", "a b", "é", "z", "a/ü", "a/z"]
    entries = []
    for n in names:
        entries.append(SourceEntry(n, Kind.DIR, 0, 0, 0o755))
    got = [it.entry.path for it in plan(SourceTree(tuple(reversed(entries)))).items]
    assert got == sorted(names, key=sort_key)
