"""The scan's one decoding path (every header through the Decoder, whose usual header
is decoded in one step, Decoder._usual, and whose other headers pass each general step
on a fast first test: plain octal digits, an ASCII block's checksum) against the strict
rules alone, with the one-step form switched off: same index, warnings, notes, members
and errors, on archives from several writers and on mutated ones."""
from __future__ import annotations

import io
import random
import re
import tarfile

import pytest

import blockimg.tar.decoder as tar_decoder
import blockimg.tar.header as tar_header
import blockimg.tar.reader as tar_reader
from blockimg.block.memory import MemoryDevice
from blockimg.errors import BlockImgError
from blockimg.tar.checks import check
from blockimg.tar.reader import TarImage

SLOTS = ("header_offset", "offset", "name", "linkname", "typeflag", "kind", "size", "mtime",
         "mode", "extended", "base256", "flavour", "note")


def _archive(fmt, seed=0) -> bytes:
    rng = random.Random(seed)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        def add(name, kind=tarfile.REGTYPE, data=b"", **kw):
            ti = tarfile.TarInfo(name)
            ti.type = kind
            ti.size = len(data)
            ti.mtime = rng.randrange(0, 2 ** 33)
            ti.mode = rng.choice([0o644, 0o755, 0o4755, 0o600])
            for k, v in kw.items():
                setattr(ti, k, v)
            tf.addfile(ti, io.BytesIO(data) if data else None)
        add("d", tarfile.DIRTYPE)
        for i in range(12):
            add(f"d/f{i}", data=bytes(rng.randrange(256) for _ in range(rng.randrange(0, 1500))))
        add("d/sub/", tarfile.DIRTYPE)
        add("d/sub/x", data=b"x")
        add("d/link", tarfile.SYMTYPE, linkname="f1")
        add("d/hard", tarfile.LNKTYPE, linkname="d/f2")
        add("./d/dot", data=b"dot")
        add("d//double", data=b"dd")
        add("/abs", data=b"abs")
        add("d/../up", data=b"up")
        add("d/f1/inside", data=b"in")
        add("dir-as-file/", data=b"")
        add("p" * 60 + "/" + "n" * 80, data=b"prefix")     # ustar prefix field
        if fmt != tarfile.USTAR_FORMAT:
            add("e/" + "n" * 120, data=b"long")
            add("d/" + "\u00e9t\u00e9", data=b"utf8")
            add("d/" + "l" * 150, tarfile.SYMTYPE, linkname="t" * 140)
        if fmt == tarfile.PAX_FORMAT:
            add("d/atime", data=b"a", pax_headers={"atime": "1.5", "ctime": "2.25"})
            add("d/comment", data=b"c", pax_headers={"comment": "hello"})
        add("d/f0", data=b"again")
    return buf.getvalue()


def _describe(data: bytes):
    try:
        img = TarImage(MemoryDevice(data=data + bytes(-len(data) % 512)))
    except BlockImgError as e:
        return ("error", type(e).__name__, str(e))
    index = [(e.path, e.kind, e.size, e.mtime, e.mode, e.extents, e.link_target,
              e.header_offset) for e in img._index.values()]
    members = []
    try:
        img.each_member(lambda m: members.append(tuple(getattr(m, s) for s in SLOTS)))
        checks = (check(img), check(img, target="mirage"))
    except BlockImgError as e:
        checks = ("error", type(e).__name__, str(e))
    return (index, img.warnings, img.notes, img.unsafe_names, sorted(img.flavours),
            img.end_of_archive, img.padding_entries, img._member_count, members, checks)


def _strict_number(raw: bytes) -> int:
    """A numeric field by the rules alone: base-256, else spaces, octal digits, NULs/spaces."""
    if raw and raw[0] == 0x80:
        return int.from_bytes(raw[1:], "big")
    if raw and raw[0] == 0xFF:
        return int.from_bytes(raw, "big", signed=True)
    m = re.fullmatch(rb" *([0-7]*)[ \0]*", raw)
    if m is None:
        raise ValueError(f"not an octal number: {bytes(raw)!r}")
    return int(m.group(1) or b"0", 8)


def _strict_checksum(block: bytes):
    stored = _strict_number(block[148:156])
    return stored, stored in tar_header.checksums(block)


def _general(data: bytes, monkeypatch):
    """What the strict rules alone give (the one-step usual header and the fast first
    tests switched off)."""
    with monkeypatch.context() as m:
        m.setattr(tar_decoder.Decoder, "_usual", lambda self, block, offset: None)
        for module in (tar_header, tar_decoder, tar_reader):
            if hasattr(module, "decode_number"):
                m.setattr(module, "decode_number", _strict_number)
            if hasattr(module, "stored_checksum"):
                m.setattr(module, "stored_checksum", _strict_checksum)
        return _describe(data)


FORMATS = [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]


@pytest.mark.parametrize("fmt", FORMATS)
def test_fast_path_same_as_decoder(fmt, monkeypatch):
    data = _archive(fmt)
    assert _describe(data) == _general(data, monkeypatch)


def test_every_header_goes_through_the_decoder(monkeypatch):
    """Issue 13: one decoding path -- the scan decodes no header itself (it used to
    decode most of them inline, beside the Decoder)."""
    data = _archive(tarfile.PAX_FORMAT)
    headers = _headers(data)
    calls = []
    orig = tar_reader.Decoder.fields           # (Decoder.header is fields, as a Member)
    monkeypatch.setattr(tar_reader.Decoder, "fields",
                        lambda self, b, o: calls.append(o) or orig(self, b, o))
    img = TarImage(MemoryDevice(data=data))
    assert img._member_count > 20
    assert calls == sorted(headers + [img.end_of_archive - 1024, img.end_of_archive - 512])


def test_the_usual_headers_take_the_one_step_form(monkeypatch):
    """Files, directories and links of a ustar archive are decoded by Decoder._usual
    (so the comparisons above compare two forms)."""
    taken = []
    orig = tar_decoder.Decoder._usual
    monkeypatch.setattr(tar_decoder.Decoder, "_usual",
                        lambda self, b, o: taken.append(orig(self, b, o)) or taken[-1])
    TarImage(MemoryDevice(data=_archive(tarfile.USTAR_FORMAT)))
    assert sum(m is not None for m in taken) >= 20


def _headers(data: bytes):
    offs = []
    TarImage(MemoryDevice(data=data)).each_member(
        lambda m: offs.extend([m.offset] + [e[1] for e in m.extended]))
    return offs


_INTERESTING = b"0123456789 \0\x80\xff/.xgLK5217DSV\n=\xe9"


@pytest.mark.parametrize("fmt", FORMATS)
def test_mutated_headers_same_as_decoder(fmt, monkeypatch):
    base = _archive(fmt, seed=fmt)
    offs = _headers(base)
    rng = random.Random(fmt)
    for _ in range(150):
        b = bytearray(base)
        h = rng.choice(offs)
        for _ in range(rng.randint(1, 3)):
            pos = h + rng.randrange(1024 if rng.random() < 0.2 else 512)
            b[pos] = rng.choice(_INTERESTING) if rng.random() < 0.7 else rng.randrange(256)
        if rng.random() < 0.7:                    # most with a right checksum
            blk = b[h:h + 512]
            total = sum(blk[:148]) + 256 + sum(blk[156:])
            b[h + 148:h + 156] = b"%06o\0 " % total if rng.random() < 0.8 else b"%07o\0" % total
        if rng.random() < 0.1:
            b = b[:rng.randrange(1, len(b) // 512 + 1) * 512]
        data = bytes(b)
        assert _describe(data) == _general(data, monkeypatch)


def test_lone_zero_block_and_globals_go_through_the_decoder(monkeypatch):
    one = _archive(tarfile.USTAR_FORMAT)
    # A lone zero block in the middle, then more entries.
    data = one[:1024] + bytes(512) + one[1024:]
    assert _describe(data) == _general(data, monkeypatch)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT,
                      pax_headers={"comment": "global"}) as tf:
        for name in ("a", "b/", "b/c"):
            ti = tarfile.TarInfo(name)
            ti.type = tarfile.DIRTYPE if name.endswith("/") else tarfile.REGTYPE
            tf.addfile(ti)
    data = buf.getvalue()
    assert _describe(data) == _general(data, monkeypatch)


def _patch(data: bytes, offset: int, field: slice, value: bytes) -> bytes:
    b = bytearray(data)
    b[offset + field.start:offset + field.stop] = value
    blk = b[offset:offset + 512]
    b[offset + 148:offset + 156] = b"%06o\0 " % (sum(blk[:148]) + 256 + sum(blk[156:]))
    return bytes(b)


@pytest.mark.parametrize("field,value", [
    (slice(100, 108), b"0100644\0"),          # mode with file-type bits: masked
    (slice(100, 108), b"  644  \0"),          # leading spaces: the strict path
    (slice(100, 108), b"0000648\0"),          # not octal
    (slice(124, 136), b"\x80" + bytes(10) + b"\x05"),   # base-256 size
    (slice(124, 136), b"77777777777\0"),      # past the end
    (slice(136, 148), b"           \0"),      # empty mtime
    (slice(156, 157), b"7"), (slice(156, 157), b"\0"), (slice(156, 157), b"S"),
    (slice(156, 157), b"V"), (slice(156, 157), b"Q"), (slice(156, 157), b"x"),
    (slice(257, 265), b"ustar  \0"), (slice(257, 265), bytes(8)),
    (slice(0, 100), bytes(100)), (slice(0, 100), b"a" * 100),
    (slice(345, 500), b"pre/fix" + bytes(148)), (slice(345, 500), b"\xe9" + bytes(154)),
])
def test_patched_fields_same_as_decoder(field, value, monkeypatch):
    for fmt in FORMATS:
        base = _archive(fmt, seed=1)
        for h in _headers(base)[:6]:
            data = _patch(base, h, field, value)
            assert _describe(data) == _general(data, monkeypatch), (fmt, h)


def test_ascii_sum_is_sum():
    from blockimg.tar.header import ascii_sum
    rng = random.Random(7)
    blocks = [bytes(512), bytes([127]) * 512, bytes([1]) * 512]
    blocks += [bytes(rng.choice((rng.randrange(128), 127, 0)) for _ in range(512))
               for _ in range(3000)]
    for b in blocks:
        assert b.isascii() and ascii_sum(b) == sum(b)
