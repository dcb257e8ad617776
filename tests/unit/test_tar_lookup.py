"""A tar lookup (``open(lazy=True)``, one path): the same entry as the whole index.

The lookup decodes every header but indexes only what decides the path; a
later member of the same name wins, also one renamed into the path by a pax
``path`` record or a GNU long name, and a file that replaces a directory
drops what was below it. Property test against the whole index on archives
with repeated, replaced, renamed and unclean names; a count of the bytes read
shows the data of the other members is skipped.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import blockimg
from blockimg.block.memory import MemoryDevice
from blockimg.errors import BlockImgError, NotFound
from blockimg.tar.decoder import Decoder, unrelated_names
from blockimg.tar import reader as tar_reader
from blockimg.tar.reader import TarImage
from conftest import ROOT, require_tool
from helpers.tar_lookup_reference import cannot_decide, pass_over_reference

NAMES = ["a", "a/b", "a/b/c", "a/c", "b", "ab", "a/bc", "./a/b", "a//b", "a/./b/c"]
KINDS = ["file", "dir", "symlink", "hardlink"]


def _tar(members, fmt) -> bytes:
    """``members``: (name, kind, size, how) with how: plain, pax (path record), gnu (L)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for i, (name, kind, size, how) in enumerate(members):
            ti = tarfile.TarInfo(name)
            ti.mtime = 1700000000 + i
            ti.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE,
                       "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE}[kind]
            if kind in ("symlink", "hardlink"):
                ti.linkname = "a/b"
            data = bytes([65 + i % 26]) * size if kind == "file" else b""
            ti.size = len(data)
            if how == "pax":              # a pax path record renames the member
                ti.name = "renamed-by-pax"
                ti.pax_headers = {"path": name}
            elif how == "long":           # a GNU long name (over 100 bytes)
                ti.name = "x" * 120
            tf.addfile(ti, io.BytesIO(data) if data else None)
    data = buf.getvalue()
    return data + bytes(-len(data) % 512)


def _entry(img: TarImage, path: str):
    try:
        e = img.stat(path)
    except NotFound:
        return None
    return (e.path, e.kind, e.size, e.mtime, e.mode, e.extents, e.link_target,
            e.header_offset)


@pytest.fixture(autouse=True, scope="module")
def _pass_over_from_the_first_header():
    """These archives are small: their lookups pass over headers from the first one on
    (a lookup does so after PASS_AFTER headers; see the test of that below)."""
    default = tar_reader.PASS_AFTER
    tar_reader.PASS_AFTER = 0
    yield
    tar_reader.PASS_AFTER = default


def test_a_lookup_passes_over_headers_after_pass_after_of_them(monkeypatch):
    """Below PASS_AFTER headers a lookup decodes each (no pattern, no ``re``), then
    passes over; the entry is the whole index's either way."""
    monkeypatch.setattr(tar_reader, "PASS_AFTER", 256)
    names = [f"d{i % 7}/f{i}" for i in range(300)] + ["d1/f3"]
    members = [(n, "file", i % 3 * 700, "plain") for i, n in enumerate(names)]
    data = _tar(members, tarfile.GNU_FORMAT)
    passed = []
    real = Decoder.pass_over
    monkeypatch.setattr(Decoder, "pass_over", lambda self, buf, start, pos, end, u: (
        passed.append(pos) or real(self, buf, start, pos, end, u)))
    _same_as_whole_index(data, ["d1/f3", "d0/f0", "d6/f299", "d2", "zz"])
    assert passed and min(passed) >= 256 * 512
    passed.clear()
    _same_as_whole_index(_tar(members[:200] + members[-1:], tarfile.GNU_FORMAT),
                         ["d1/f3", "d6/f6"])                  # 201 members: decoded each
    assert not passed


def _same_as_whole_index(data: bytes, paths) -> None:
    try:
        whole = TarImage(MemoryDevice(data=data))
    except BlockImgError as e:
        with pytest.raises(type(e)):
            TarImage(MemoryDevice(data=data), lazy=True).stat(paths[0])
        return
    for path in paths:
        lazy = TarImage(MemoryDevice(data=data), lazy=True)
        assert _entry(lazy, path) == _entry(whole, path), path
        assert lazy.skipped == whole.skipped


member = st.tuples(st.sampled_from(NAMES), st.sampled_from(KINDS),
                   st.sampled_from([0, 1, 700, 5000]), st.sampled_from(["plain", "pax"]))


@settings(max_examples=150, deadline=None)
@given(st.lists(member, min_size=1, max_size=12),
       st.sampled_from([tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT]))
def test_lookup_is_the_whole_index_s_entry(members, fmt):
    if fmt == tarfile.USTAR_FORMAT:
        members = [(n, k, s, "plain") for n, k, s, _ in members]
    data = _tar(members, fmt)
    _same_as_whole_index(data, ["a", "a/b", "a/b/c", "a/c", "b", "ab", "a/bc", "zz"])


def test_a_later_member_of_the_same_name_wins():
    data = _tar([("a/b", "file", 10, "plain"), ("a/c", "file", 5000, "plain"),
                 ("a/b", "file", 20, "plain")], tarfile.GNU_FORMAT)
    img = TarImage(MemoryDevice(data=data), lazy=True)
    assert img.read("a/b") == b"C" * 20


@pytest.mark.parametrize("fmt,how", [(tarfile.PAX_FORMAT, "pax"), (tarfile.GNU_FORMAT, "long")])
def test_a_later_member_renamed_into_the_path_wins(fmt, how):
    """The last member's own header names something else; its pax path record or GNU
    long name makes it ``a/b``."""
    members = [("a/b", "file", 10, "plain"), ("a/c", "file", 5000, "plain")]
    if how == "long":
        long_name = "a/" + "n" * 120
        members += [(long_name, "file", 30, "plain")]
        data = _tar(members, fmt)
        img = TarImage(MemoryDevice(data=data), lazy=True)
        assert img.read(long_name) == b"C" * 30
        assert img.read("a/b") == b"A" * 10
    else:
        members += [("a/b", "file", 30, "pax")]
        data = _tar(members, fmt)
        img = TarImage(MemoryDevice(data=data), lazy=True)
        assert img.read("a/b") == b"C" * 30


def test_a_file_replacing_the_parent_drops_the_path():
    data = _tar([("a/b", "file", 10, "plain"), ("a", "file", 3, "plain")], tarfile.GNU_FORMAT)
    img = TarImage(MemoryDevice(data=data), lazy=True)
    with pytest.raises(NotFound):
        img.stat("a/b")
    assert img.read("a") == b"B" * 3


def test_an_unclean_name_that_normalizes_to_the_path_wins():
    data = _tar([("a/b", "file", 10, "plain"), ("./a//b", "file", 7, "plain")],
                tarfile.GNU_FORMAT)
    img = TarImage(MemoryDevice(data=data), lazy=True)
    assert img.read("a/b") == b"B" * 7


class CountingDevice(MemoryDevice):
    def __init__(self, data):
        super().__init__(data=data)
        self.bytes_read = 0

    def _read_at(self, offset, length):
        self.bytes_read += length
        return super()._read_at(offset, length)


def test_the_lookup_reads_headers_not_the_data_of_large_members():
    members = [(f"d/f{i}", "file", 200_000, "plain") for i in range(30)]
    data = _tar(members + [("d/last", "file", 10, "plain")], tarfile.GNU_FORMAT)
    dev = CountingDevice(data)
    img = TarImage(dev, lazy=True)
    assert img.read("d/last") == b"E" * 10
    assert dev.bytes_read < 2 * 65536 + 31 * 1024, dev.bytes_read
    assert len(data) > 30 * 200_000


def test_what_needs_the_whole_tree_indexes_it(tmp_path):
    data = _tar([("a/b", "file", 10, "plain"), ("c", "file", 1, "plain")], tarfile.GNU_FORMAT)
    p = tmp_path / "x.tar"
    p.write_bytes(data)
    with blockimg.open(str(p), lazy=True) as img:
        assert img.read("c") == b"B"
        assert [e.path for e in img.list()] == ["a", "a/b", "c"]
        assert img.read("a/b") == b"A" * 10


@pytest.mark.parametrize("field,value", [(slice(124, 136), b"00000000009\0"),
                                         (slice(148, 154), b"000009"),
                                         (slice(124, 136), b"0000000001x\0")])
def test_an_odd_number_in_another_member_is_decided_as_the_whole_index_does(field, value):
    """Digits 8 and 9 pass isdigit() but are not octal (found by the fuzzer): the lookup
    leaves such a header to the full decoding, which refuses it or reads it as the whole
    index does."""
    data = bytearray(_tar([("x", "file", 10, "plain"), ("a/b", "file", 5, "plain")],
                          tarfile.GNU_FORMAT))
    data[field] = value
    _same_as_whole_index(bytes(data), ["a/b", "a", "x", "zz"])


# -- the pass over headers: the same as its simple form -------------------------------
_NAME_BYTES = [b"a", b"b", b"/", b".", b"\0", b"\xe9", b"ab"]
LOOKED_UP = [b"a", b"a/b", b"a/b/c", b"ab", b"\xe9/a"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_NAME_BYTES), max_size=8), st.sampled_from(LOOKED_UP))
def test_the_lookup_pattern_is_the_rule_written_out(parts, path):
    name = b"".join(parts)
    field = (name + bytes(100))[:100]
    expected = cannot_decide(name.split(b"\0", 1)[0][:100], path)
    assert (unrelated_names(path).match(field, 0, 100) is not None) == expected, (name, path)


def test_the_lookup_pattern_reads_a_name_that_fills_its_field():
    path = b"d/" + b"n" * 98
    assert unrelated_names(path).match(path, 0, 100) is None
    assert unrelated_names(path[:-1] + b"m").match(path, 0, 100) is not None


_BYTES = b"0123456789 \0\x80\xff/.xgLK5217DSV\n=\xe9"


@settings(max_examples=150, deadline=None)
@given(st.lists(member, min_size=1, max_size=10),
       st.sampled_from([tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT]),
       st.lists(st.tuples(st.integers(0, 10 ** 6), st.sampled_from(_BYTES)), max_size=3),
       st.booleans(), st.sampled_from(["a", "a/b", "a/b/c", "b", "zz"]))
def test_pass_over_is_its_simple_form(members, fmt, flips, fix_checksum, want):
    """From every header on, Decoder.pass_over passes the headers the simple form does
    (tests/helpers/tar_lookup_reference.py), on archives with repeated, renamed and
    unclean names and with bytes changed (checksums made right again, or not)."""
    data = bytearray(_tar(members, fmt))
    starts = []
    TarImage(MemoryDevice(data=bytes(data))).each_member(
        lambda m: starts.extend([m.offset] + [e[1] for e in m.extended]))
    for where, value in flips:
        h = starts[where % len(starts)]
        data[h + where % 512] = value
        if fix_checksum:
            blk = data[h:h + 512]
            data[h + 148:h + 156] = b"%06o\0 " % (sum(blk[:148]) + 256 + sum(blk[156:]))
    data = bytes(data)
    path = want.encode()
    for pos in starts:
        got = Decoder().pass_over(data, 0, pos, len(data), unrelated_names(path))
        assert got == pass_over_reference(data, pos, path), pos
        # A window that ends early: the run stops at its last whole header.
        cut = data[:pos + 512 * 3]
        got = Decoder().pass_over(cut, 0, pos, len(data), unrelated_names(path))
        ref_pos, ref_n = pass_over_reference(data, pos, path)
        assert got[1] <= ref_n and (got[1] == ref_n or got[0] + 512 > len(cut))


# -- cat: a later member of the name wins, a broken header after it is reported ------------
def _cat(tmp_path, data: bytes, path: str):
    image = tmp_path / "x.tar"
    image.write_bytes(data)
    return subprocess.run([sys.executable, "-m", "blockimg", "cat", str(image), path],
                          capture_output=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))


LONG = "a/" + "n" * 120


@pytest.mark.parametrize("fmt,how,path", [
    (tarfile.GNU_FORMAT, "plain", "a/b"),
    (tarfile.PAX_FORMAT, "pax", "a/b"),           # its own header names something else
    (tarfile.PAX_FORMAT, "plain", LONG),          # a pax path record (over 100 bytes)
    (tarfile.GNU_FORMAT, "plain", LONG),          # a GNU long name (././@LongLink)
])
def test_cat_gives_the_last_member_of_the_name(tmp_path, fmt, how, path):
    members = [(path, "file", 10, "plain"), ("a/c", "file", 5000, "plain"),
               ("z/y", "file", 300, "plain"), (path, "file", 30, how),
               ("z/w", "file", 20000, "plain")]
    r = _cat(tmp_path, _tar(members, fmt), path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == bytes([65 + 3]) * 30          # the fourth member's bytes ("D")
    # As GNU tar extracts it (the later member replaces the earlier).
    require_tool("tar")
    (tmp_path / "out").mkdir()
    subprocess.run(["tar", "-xf", str(tmp_path / "x.tar"), "-C", str(tmp_path / "out"), path],
                   check=True)
    assert (tmp_path / "out" / path).read_bytes() == r.stdout


def _broken_after_the_match(kind):
    members = [("a/b", "file", 10, "plain"), ("a/c", "file", 5000, "plain"),
               ("z/y", "file", 300, "plain"), ("z/w", "file", 20, "plain")]
    data = bytearray(_tar(members, tarfile.GNU_FORMAT))
    h = 512 + 512 + 512 + 5120                        # z/y's header
    assert data[h:h + 4] == b"z/y\0"
    if kind == "checksum":
        data[h + 1] = ord("q")
    elif kind == "size":                              # data past the end of the image
        data[h + 124:h + 136] = b"%011o\0" % (10 ** 9)
        blk = data[h:h + 512]
        data[h + 148:h + 156] = b"%06o\0 " % (sum(blk[:148]) + 256 + sum(blk[156:]))
    else:                                             # cut after z/w's header: no data
        data = data[:h + 512 + 512 + 512]
    return bytes(data), h


@pytest.mark.parametrize("kind,rule,at", [
    ("checksum", "header checksum", 148),               # (the checksum field's offset)
    ("size", "past the end of the image", 0),
    ("cut", "past the end of the image", 1024)])        # (z/w's header)
def test_cat_reports_a_broken_header_after_the_match(tmp_path, kind, rule, at):
    """The file comes before the broken header, and the lookup still refuses the image,
    naming the byte and the rule, as opening it whole does."""
    data, h = _broken_after_the_match(kind)
    r = _cat(tmp_path, data, "a/b")
    assert r.returncode != 0 and r.stdout == b""
    err = r.stderr.decode()
    assert err.count("\n") == 1 and err.startswith("blockimg: "), err
    assert rule in err and f"byte {h + at} " in err, err
    with pytest.raises(BlockImgError) as whole:
        TarImage(MemoryDevice(data=data + bytes(-len(data) % 512)))
    assert rule in str(whole.value)
