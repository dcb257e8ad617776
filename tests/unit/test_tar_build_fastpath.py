"""The fast paths of building a tar image of many small files.

``Copier.put_records`` (one open and one read per small file, straight into
the write buffer, no fstat), ``codec.encode_entry`` (against a plain
reference), ``source.walk``'s ``OrderedEntries`` (planners skip the
sort) and the tar check's single pass: each gives the same bytes and the
same errors as the general code it stands in for.
"""
from __future__ import annotations

import gc
import os
import random
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blockimg.block import MemoryDevice
from blockimg.trust.checksum import crc32c
from blockimg.write.copier import Copier
from blockimg.errors import DeviceError, InvalidInput, SourceChanged
from blockimg.sources.directory import (Kind, OrderedEntries, SourceEntry, SourceTree, paused_gc,
                             sort_key, walk)
from blockimg.tar import Options, open_image, plan, write
from blockimg.tar.checks import check
from blockimg.tar.codec import encode_entry, one_header
from helpers.tar_reference import reference_encode
from blockimg.tar.layout import PlannedEntry, TarPlan


# -- Copier.put_records --------------------------------------------------------------
def _files(root, sizes):
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for i, n in enumerate(sizes):
        p = root / f"f{i:03d}"
        p.write_bytes(bytes([(i * 7 + k) % 251 for k in range(n)]) if n else b"")
        out.append(SourceEntry(p.name, Kind.FILE, n, 0, 0o644, source=str(p)))
    return out


def _expected(records, pad, size):
    img = bytearray(size)
    for off, head, entry in records:
        img[off:off + len(head)] = head
        if entry is not None:
            data = entry.data if entry.data is not None else open(entry.source, "rb").read()
            start = off + len(head)
            img[start:start + len(data)] = data
            img[start + len(data):start + len(data) + (-len(data) % pad)] = \
                bytes(-len(data) % pad)
    return bytes(img)


@pytest.mark.parametrize("buffer_size", [600, 4096, 1 << 20])
def test_put_records_places_heads_data_and_padding(tmp_path, buffer_size):
    sizes = [1, 511, 512, 513, 0, 5000, 300_000, 100, 4095]
    entries = _files(tmp_path / "src", sizes)
    entries.insert(3, SourceEntry("given", Kind.FILE, 7, 0, 0o644, data=b"1234567"))
    records, off = [], 0
    for i, e in enumerate(entries):
        head = bytes([0xA0 + i % 16]) * 512
        records.append((off, head, e))
        off += 512 + -(-e.size // 512) * 512
        if i == 5:                                     # a gap: not contiguous
            off += 1024
        if i == 2:                                     # a record without a file
            records.append((off, b"D" * 512, None))
            off += 512
    size = off + 4096
    dev = MemoryDevice(size, fill=0xFF)
    cp = Copier(dev, checksum=True, buffer_size=buffer_size)
    cp.put_records(records, 512)
    cp.flush()
    want = _expected(records, 512, size)
    got = dev.getvalue()
    for off, head, e in records:          # every record exactly; gaps left as they were
        end = off + len(head) + (-(-e.size // 512) * 512 if e else 0)
        assert got[off:end] == want[off:end], e
    assert got[-4096:] == b"\xff" * 4096
    f = crc32c()
    assert cp.crcs == {e.path: f(e.data if e.data is not None else
                                 open(e.source, "rb").read()) for e in entries}
    assert cp.done == sum(sizes) + 7


def _one_file_plan(tmp_path, content=b"x" * 3000):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(b"first")
    (src / "victim.txt").write_bytes(content)
    (src / "z").write_bytes(b"last")
    p = plan(walk(src), Options())
    return src, p


@pytest.mark.parametrize("how", ["grow", "shrink", "vanish", "empty", "replaced-by-dir"])
def test_small_file_changed_after_planning_is_named(tmp_path, how):
    src, p = _one_file_plan(tmp_path)
    victim = src / "victim.txt"
    if how == "grow":
        victim.write_bytes(b"x" * 3001)
    elif how == "shrink":
        victim.write_bytes(b"x" * 2999)
    elif how == "vanish":
        victim.unlink()
    elif how == "empty":
        victim.write_bytes(b"")
    else:
        victim.unlink()
        victim.mkdir()
    dev = MemoryDevice(p.image_size)
    with pytest.raises((SourceChanged, DeviceError)) as ei:
        write(p, dev)
    assert "victim.txt" in str(ei.value)
    if how != "replaced-by-dir":
        assert isinstance(ei.value, SourceChanged)


def test_small_file_grown_by_one_byte_in_the_padding_is_seen(tmp_path):
    """The probe byte of the read lands in the block padding: still a change."""
    src, p = _one_file_plan(tmp_path, b"y" * 100)
    with open(src / "victim.txt", "ab") as f:
        f.write(b"!")
    with pytest.raises(SourceChanged, match="size changed from 100 to 101|grew"):
        write(p, MemoryDevice(p.image_size))


def test_file_changed_mid_build_is_named(tmp_path):
    """A later small file changes while earlier ones are being copied (the batch is
    read file by file, so the change is seen when its turn comes)."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(50):
        (src / f"f{i:02d}").write_bytes(b"%d" % i * 100)
    p = plan(walk(src), Options())
    calls = []

    def progress(done, total):
        calls.append(done)
        if len(calls) == 3:
            os.truncate(src / "f40", 10)
    with pytest.raises(SourceChanged, match="f40") as ei:
        write(p, MemoryDevice(p.image_size), progress=progress)
    assert "shrank" in str(ei.value) or "size changed" in str(ei.value)


def test_unchanged_tree_through_put_records_reads_back(tmp_path):
    src = tmp_path / "src"
    rng = random.Random(5)
    files = {}
    for i in range(300):
        d = src / f"d{i % 7}"
        d.mkdir(parents=True, exist_ok=True)
        data = rng.randbytes(rng.choice([0, 1, 100, 511, 512, 513, 4096, 20000]))
        (d / f"f{i:03d}").write_bytes(data)
        files[f"d{i % 7}/f{i:03d}"] = data
    for align in (0, 4096):
        p = plan(walk(src), Options(align=align) if align else Options())
        dev = MemoryDevice(p.image_size, fill=0xEE)
        write(p, dev)
        img = open_image(dev)
        assert {path: img.read(path) for path in files} == files
        with tarfile.open(fileobj=__import__("io").BytesIO(dev.getvalue())) as tf:
            assert sorted(m.name for m in tf.getmembers() if m.isfile()) == sorted(files)


# -- encode_entry ---------------------------------------------------------------------
_alphabet = st.sampled_from(list("abcXYZ019._-/") + ["\u00e9", "\udcff"])


@settings(max_examples=400, deadline=None)
@given(kind=st.sampled_from([Kind.FILE, Kind.DIR, Kind.SYMLINK, Kind.HARDLINK]),
       path=st.one_of(st.text(_alphabet, min_size=1, max_size=8),
                      st.integers(1, 300).map(lambda n: ("d/" * 60 + "x" * n)[-n:])),
       link=st.text(_alphabet, min_size=1, max_size=150),
       size=st.sampled_from([0, 1, 511, 512, 8 ** 11 - 1, 8 ** 11]),
       mtime=st.sampled_from([0, 1, 1_700_000_000, 8 ** 11 - 1, 8 ** 11, -1]),
       mode=st.sampled_from([0o644, 0o755, 0o100644, 0o7777]))
def test_encode_entry_equals_the_reference(kind, path, link, size, mtime, mode):
    """The library's one encoder and the plain reference (tests/helpers/tar_reference.py):
    the same header set, for the Mirage target too where it refuses nothing."""
    path = path.strip("/") or "x"
    e = SourceEntry(path, kind, size if kind is Kind.FILE else 0, mtime, mode,
                    link_target=link if kind in (Kind.SYMLINK, Kind.HARDLINK) else None)
    want = reference_encode(e)
    assert encode_entry(e, mirage=False) == want
    try:
        assert encode_entry(e, mirage=True) == want
    except InvalidInput:
        pass
    if one_header(e, False):
        assert len(want) == 512


def test_writer_falls_back_for_a_hand_made_lazy_head():
    """A PlannedEntry with no head whose entry is not plain is encoded the general way."""
    e = SourceEntry("d/" + "n" * 120, Kind.FILE, 3, 5, 0o644, data=b"abc")
    head = encode_entry(e, mirage=False)
    item = PlannedEntry(e, 0, None, len(head), mirage=False)
    assert item.head == head
    end = len(head) + 512
    p = TarPlan((item,), end, end + 1024 + 512, 512, Options(target="generic"), 3)
    dev = MemoryDevice(p.image_size)
    write(p, dev)
    assert dev.getvalue()[:len(head)] == head
    assert open_image(dev).read("d/" + "n" * 120) == b"abc"


# -- walk order -----------------------------------------------------------------------
def test_walk_gives_ordered_entries_in_byte_order(tmp_path):
    src = tmp_path / "src"
    names = ["b", "B", "a-", "a", "a.txt", "Z", "é", "e", "~", "ab", "a b", "_"]
    for n in names:
        (src / "d").mkdir(parents=True, exist_ok=True)
        (src / n).write_bytes(b"1")
        (src / "d" / n).write_bytes(b"22")
    raw = os.fsencode(str(src / "raw")) + b"\xff\xfe"
    with open(raw, "wb") as f:
        f.write(b"3")
    tree = walk(src)
    assert type(tree.entries) is OrderedEntries
    paths = [e.path for e in tree.entries]
    assert paths == sorted(paths, key=sort_key)
    assert len(paths) == 2 * len(names) + 2
    # The planner takes them as they are; the same tree as a plain tuple is sorted:
    # both give the same image.
    opts = Options(target="generic")
    shuffled = list(tree.entries)
    random.Random(1).shuffle(shuffled)
    a, b = plan(tree, opts), plan(SourceTree(tuple(shuffled)), opts)
    assert a == b
    da, db = MemoryDevice(a.image_size), MemoryDevice(b.image_size)
    write(a, da)
    write(b, db)
    assert da.getvalue() == db.getvalue()
    assert tree.files == 2 * len(names) + 1
    assert tree.total_bytes == len(names) * 3 + 1
    # what is made from the ordered tuple is a plain tuple again
    assert type(tree.entries[1:]) is tuple and type(tree.entries + ()) is tuple


def test_paused_gc_restores_the_collector_state():
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(KeyError):
        with paused_gc():
            raise KeyError
    assert gc.isenabled()


# -- the check's single pass ------------------------------------------------------------
def test_check_keeps_no_members_and_finds_the_same_problems(tmp_path):
    import io
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for name, kind in [("f.txt", tarfile.REGTYPE), ("d", tarfile.DIRTYPE),
                           ("d/x", tarfile.REGTYPE), ("l", tarfile.SYMTYPE),
                           ("/abs", tarfile.REGTYPE), ("n" * 150, tarfile.REGTYPE)]:
            ti = tarfile.TarInfo(name)
            ti.type = kind
            data = b"data" if kind == tarfile.REGTYPE else b""
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    data = buf.getvalue()
    from blockimg.tar.reader import TarImage
    img = TarImage(MemoryDevice(data=data))
    first = {t: check(img, target=t) for t in ("generic", "mirage")}
    assert img._members is None                      # the pass kept nothing
    assert any("absolute name" in p for p in first["generic"])
    assert any("symlink entry" in p for p in first["mirage"])
    assert first["mirage"][:len(first["generic"])] == first["generic"]
    img.members                                       # kept list: the same answers
    assert {t: check(img, target=t) for t in ("generic", "mirage")} == first


def test_plan_itself_leaves_the_collector_alone(monkeypatch):
    """Issue 13: plan() is pure; pausing the collector (process-wide state) is the
    caller's choice (blockimg.create pauses it around the plan)."""
    import gc

    import blockimg.tar

    def refuse():
        raise AssertionError("plan() touched the garbage collector")
    monkeypatch.setattr(gc, "disable", refuse)
    from blockimg.sources.directory import from_pairs
    tree = from_pairs([("a", b"x"), ("d", None), ("d/b", b"yy")])
    assert blockimg.tar.plan(tree).image_size > 0
