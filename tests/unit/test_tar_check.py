"""check(): every Mirage tar rule an image can break, and the generic problems."""
from __future__ import annotations

import pytest

from blockimg.block import MemoryDevice
from blockimg.tar import check, open_image
from blockimg.tar.header import encode_pax, pax_record
from helpers.tar_archives import Z, archive, blocks, gnu, hdr, image, make


def mirage(*parts, **kw):
    """Mirage problems of an archive padded to 4096 bytes (so length is not one)."""
    data = archive(*parts, **kw).getvalue()
    return check(open_image(MemoryDevice(data=data + bytes(-len(data) % 4096))),
                 target="mirage")


def one(problems, text):
    hits = [p for p in problems if text in p]
    assert len(hits) == 1, problems
    return hits[0]


def test_clean_image_has_no_problems():
    _, dev = make([("a/b", b"x"), ("c", b"")], align=4096)
    assert check(open_image(dev), target="mirage") == []
    assert check(open_image(dev)) == []


def test_record_payload_over_512():
    x = encode_pax({b"path": b"p" * 600})
    p = one(mirage(hdr(b"x", len(x), b"x"), blocks(x), hdr(b"short", 0)), "at most 512")
    assert p.startswith("byte 0:") and "'x' payload of 610 bytes" in p
    ln = b"l" * 600 + b"\0"
    one(mirage(gnu(hdr(b"././@LongLink", len(ln), b"L")), blocks(ln), gnu(hdr(b"s", 0))),
        "'L' payload of 601 bytes")
    assert check(image(hdr(b"x", len(x), b"x"), blocks(x), hdr(b"s", 0))) == []


def test_directory_after_its_contents():
    p = one(mirage(hdr(b"d/f", 0), hdr(b"d/", 0, b"5")), "Mirage empties it")
    assert p.startswith("byte 512:")
    assert mirage(hdr(b"d/", 0, b"5"), hdr(b"d/f", 0)) == []


def test_directory_without_slash_or_file_followed_by_children():
    one(mirage(hdr(b"d", 0, b"5"), hdr(b"d/f", 0)), "connect crashes")
    one(mirage(hdr(b"f", 0), hdr(b"f/g", 0)), "connect crashes")


def test_links_and_specials_read_as_empty():
    problems = mirage(hdr(b"s", 0, b"2", link=b"t"), hdr(b"h", 0, b"1", link=b"s"),
                      hdr(b"fifo", 0, b"6"))
    assert sum("reads it as an empty file" in p for p in problems) == 3
    assert check(image(hdr(b"s", 0, b"2", link=b"t"))) == []


@pytest.mark.parametrize("length,warn", [(512 * 8, False), (512 * 10, True)])
def test_length_not_a_multiple_of_4096(length, warn):
    data = hdr(b"a", 0) + Z + Z
    dev = MemoryDevice(data=data + bytes(length - len(data)))
    problems = check(open_image(dev), target="mirage")
    assert any("multiple of 4096" in p for p in problems) == warn


def test_end_of_archive_rules():
    def raw(**kw):      # not padded: padding zeros would end the archive
        return check(image(hdr(b"a", 0), **kw), target="mirage")
    one(raw(end=Z), "only one zero block")
    one(raw(end=b""), "no end-of-archive")
    one(raw(end=b""), "does not end with two zero blocks")
    one(check(image(hdr(b"a", 0), Z, hdr(b"b", 0))), "lone zero block")


def test_two_x_headers_in_a_row():
    x = pax_record(b"mtime", b"5")
    problems = mirage(hdr(b"x", len(x), b"x"), blocks(x), hdr(b"x", len(x), b"x"), blocks(x),
                      hdr(b"a", 0))
    assert one(problems, "two 'x' headers in a row").startswith("byte 1024:")
    g = pax_record(b"comment", b"c")
    assert mirage(hdr(b"g", len(g), b"g"), blocks(g), hdr(b"g", len(g), b"g"), blocks(g),
                  hdr(b"a", 0)) == []


def test_generic_problems():
    problems = check(image(hdr(b"/abs", 0), hdr(b"../up", 0), hdr(b"d/", 3, b"5"), blocks(b"abc")))
    one(problems, "absolute name")
    one(problems, "'../up': not extracted")
    one(problems, "a dir entry with 3 bytes of data")
