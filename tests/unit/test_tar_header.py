"""The tar header declaration, number fields, checksums, ustar names and pax records."""
from __future__ import annotations

import tarfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blockimg.errors import CorruptImage
from blockimg.tar.header import (BLOCK, FIELDS, build_header, checksums, decode_number,
                                 decode_pax, encode_octal, encode_pax, octal_fits, pax_record,
                                 split_ustar)
from helpers.tar_reference import HEADER, build_with_construct


def test_declaration_is_one_block_with_the_posix_offsets():
    assert HEADER.sizeof() == BLOCK == 512
    assert FIELDS["name"] == (0, 100)
    assert FIELDS["size"] == (124, 136)
    assert FIELDS["chksum"] == (148, 156)
    assert FIELDS["typeflag"] == (156, 157)
    assert FIELDS["magic"] == (257, 263)
    assert FIELDS["prefix"] == (345, 500)


def test_construct_parse_build_round_trip():
    block = build_with_construct(name=b"dir/file.txt", mode=0o640, size=12345,
                                 mtime=1700000000, typeflag=b"0", linkname=b"",
                                 prefix=b"some/prefix")
    assert len(block) == BLOCK
    parsed = HEADER.parse(block)
    assert parsed.name == b"dir/file.txt"
    assert parsed.mode == 0o640
    assert parsed.size == 12345
    assert parsed.mtime == 1700000000
    assert parsed.prefix == b"some/prefix"
    assert parsed.magic == b"ustar\0" and parsed.version == b"00"
    again = HEADER.build(parsed)
    assert again == block


names = st.binary(min_size=1, max_size=100).filter(lambda b: b"\0" not in b)


@given(name=names, mode=st.integers(0, 0o7777), size=st.integers(0, 8 ** 11 - 1),
       mtime=st.integers(0, 8 ** 11 - 1), typeflag=st.sampled_from([b"0", b"5", b"2", b"1"]),
       link=st.binary(max_size=100).filter(lambda b: b"\0" not in b),
       prefix=st.binary(max_size=155).filter(lambda b: b"\0" not in b))
def test_fast_build_is_byte_identical_to_construct(name, mode, size, mtime, typeflag, link,
                                                    prefix):
    fast = build_header(name, mode, size, mtime, typeflag, link, prefix)
    slow = build_with_construct(name=name, mode=mode, size=size, mtime=mtime,
                                typeflag=typeflag, linkname=link, prefix=prefix)
    assert fast == slow
    parsed = HEADER.parse(fast)
    assert (parsed.name, parsed.size, parsed.mtime) == (name, size, mtime)


def test_header_is_read_by_pythons_tarfile():
    block = build_header(b"hello.txt", 0o644, 5, 1234, b"0")
    info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    assert (info.name, info.size, info.mtime, info.mode, info.uid, info.gid) == \
        ("hello.txt", 5, 1234, 0o644, 0, 0)
    assert info.uname == "" and info.gname == ""


def test_checksum_field_and_value():
    block = build_header(b"a", 0o644, 0, 0, b"0")
    unsigned, signed = checksums(block)
    assert unsigned == signed  # all bytes < 128
    assert block[148:156] == b"%06o\0 " % unsigned
    # the field itself is counted as spaces
    assert unsigned == sum(block[:148]) + 8 * 32 + sum(block[156:])
    high = bytearray(block)
    high[0] = 0xE9
    u, s = checksums(bytes(high))
    assert u - s == 256


@pytest.mark.parametrize("width,limit", [(8, 8 ** 7), (12, 8 ** 11)])
def test_octal_limits(width, limit):
    assert encode_octal(limit - 1, width) == b"7" * (width - 1) + b"\0"
    assert encode_octal(0, width) == b"0" * (width - 1) + b"\0"
    assert octal_fits(limit - 1, width) and not octal_fits(limit, width)
    assert not octal_fits(-1, width)
    with pytest.raises(OverflowError):
        encode_octal(limit, width)
    with pytest.raises(OverflowError):
        encode_octal(-1, width)
    with pytest.raises(OverflowError):
        if width == 12:
            build_header(b"x", 0o644, limit, 0, b"0")
        else:
            build_header(b"x", limit, 0, 0, b"0")


@pytest.mark.parametrize("raw,value", [
    (b"0000644\0", 0o644), (b"   644 \0", 0o644), (b"644\0\0\0\0\0", 0o644),
    (b"\0" * 8, 0), (b" " * 8, 0), (b"77777777777\0", 8 ** 11 - 1), (b"12345670", 0o12345670),
    (b"\x80" + bytes(10) + b"\x01", 1),
    (b"\x80\0\0\0\0\0\0\x02\0\0\0\0", 2 ** 33),
    (b"\xff" * 12, -1),
    (b"\xff" * 11 + b"\xfe", -2),
])
def test_decode_number(raw, value):
    assert decode_number(raw) == value


@pytest.mark.parametrize("raw", [b"0000x44\0", b"12 34\0\0\0", b"-000644\0", b"\x81\0\0\0\0\0\0\0",
                                 b"0644\0abc", b"8\0\0\0\0\0\0\0"])
def test_decode_number_refuses_garbage(raw):
    with pytest.raises(ValueError):
        decode_number(raw)


def test_split_ustar():
    assert split_ustar(b"short") == (b"", b"short")
    assert split_ustar(b"x" * 100) == (b"", b"x" * 100)
    path = b"p" * 150 + b"/" + b"n" * 100
    assert split_ustar(path) == (b"p" * 150, b"n" * 100)
    assert split_ustar(b"p" * 150 + b"/" + b"n" * 101) is None     # name too long
    assert split_ustar(b"p" * 156 + b"/" + b"n" * 10) is None      # prefix too long
    assert split_ustar(b"a" * 101) is None                          # no slash
    # the split uses the last slash that keeps the prefix <= 155
    assert split_ustar(b"a/" + b"b" * 60 + b"/" + b"c" * 60) == (b"a/" + b"b" * 60, b"c" * 60)
    # a directory's trailing slash stays in the name, never splits there
    d = b"d" * 120 + b"/" + b"e" * 20 + b"/"
    assert split_ustar(d) == (b"d" * 120, b"e" * 20 + b"/")
    assert split_ustar(b"d" * 101 + b"/") is None


@pytest.mark.parametrize("value_len", [0, 1, 2, 3, 4, 88, 89, 90, 91, 92, 93, 94, 95, 96, 987,
                                       988, 989, 990, 991, 992, 993, 994, 995, 996, 9990])
def test_pax_record_length_counts_itself(value_len):
    rec = pax_record(b"path", b"v" * value_len)
    length, _, rest = rec.partition(b" ")
    assert int(length) == len(rec)
    assert rest == b"path=" + b"v" * value_len + b"\n"


def test_pax_records_sorted_and_parsed_back():
    records = {b"path": b"a/b", b"mtime": b"-5", b"linkpath": b"x" * 200, b"size": b"9"}
    payload = encode_pax(records)
    parsed = decode_pax(payload, 0)
    assert [k for k, _ in parsed] == sorted(records)
    assert dict(parsed) == records
    assert encode_pax(dict(reversed(list(records.items())))) == payload


def test_pax_payload_read_by_tarfile():
    import io
    path = "ü/".encode() + b"z" * 300
    payload = encode_pax({b"path": path, b"mtime": b"-7"})
    blob = (build_header(b"././@PaxHeader", 0o644, len(payload), 0, b"x")
            + payload + bytes(-len(payload) % 512)
            + build_header(b"truncated", 0o644, 0, 0, b"0") + bytes(1024))
    with tarfile.open(fileobj=io.BytesIO(blob)) as t:
        (member,) = t.getmembers()
    assert member.name == path.decode() and member.mtime == -7
    assert decode_pax(payload + b"\0" * 7, 0) == [(b"mtime", b"-7"), (b"path", path)]


@pytest.mark.parametrize("payload,why", [
    (b"xx path=a\n", "decimal length"),
    (b"99 path=a\n", "impossible"),
    (b"4 path=a\n", "impossible"),
    (b"5 path=a\n", "newline"),
    (b"10 path=ab\n", "newline"),
    (b"10 pathab\nx", "key="),
    (b"9 patha\n\n", "key="),
    (b"8 =abcd\n", "key="),
    (b"10 path=a\n\0xyz", "decimal length"),
    (b"99999999999999999999999 path=a\n", "decimal length"),
])
def test_decode_pax_refuses_bad_records(payload, why):
    with pytest.raises(CorruptImage) as exc:
        decode_pax(payload, 1024)
    assert why in str(exc.value)
    assert exc.value.offset >= 1024
