"""The tar reader's header window: the same index whatever the window, no data read at open.

Headers are read through a window that is large where headers are dense and
a couple of blocks where the last step was long (large files): opening an
archive of large files reads its headers, not its data.
"""
from __future__ import annotations

import io
import tarfile

import pytest

from blockimg.block.memory import MemoryDevice
from blockimg.tar import reader as tar_reader
from blockimg.tar.reader import TarImage


def _archive():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        def add(name, data=b"", kind=tarfile.REGTYPE, **pax):
            ti = tarfile.TarInfo(name)
            ti.type = kind
            ti.size = len(data) if kind == tarfile.REGTYPE else 0
            ti.mtime = 1700000000
            if pax:
                ti.pax_headers = pax
            tf.addfile(ti, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
        add("d", kind=tarfile.DIRTYPE)
        for i in range(40):
            add(f"d/small{i}", bytes([i]) * (i * 37))
        add("d/big1", b"B" * (3 << 20))
        add("d/" + "long" * 40, b"pax name")                   # pax path record
        add("d/big2", b"C" * (2 << 20) + b"tail")
        for i in range(10):
            add(f"e/tiny{i}", b"t")
        add("d/big3", b"D" * 70000, comment="x" * 5000)          # a long pax payload
    data = buf.getvalue()
    return data + bytes(-len(data) % 512)


def _index(img):
    return [(e.path, e.kind, e.size, e.mtime, e.mode, e.extents, e.link_target,
             e.header_offset) for e in img]


class CountingDevice(MemoryDevice):
    def __init__(self, data):
        super().__init__(data=data)
        self.bytes_read = 0

    def _read_at(self, offset, length):
        self.bytes_read += length
        return super()._read_at(offset, length)


@pytest.mark.parametrize("window,dense,sparse", [(1 << 16, 4096, 1024), (512, 0, 512),
                                                 (1 << 20, 1 << 30, 512), (4096, 512, 4096)])
def test_same_index_whatever_the_window(window, dense, sparse, monkeypatch):
    data = _archive()
    want = TarImage(MemoryDevice(data=data))
    monkeypatch.setattr(tar_reader, "WINDOW", window)
    monkeypatch.setattr(tar_reader, "DENSE", dense)
    monkeypatch.setattr(tar_reader, "SPARSE", sparse)
    got = TarImage(MemoryDevice(data=data))
    assert _index(got) == _index(want)
    assert got.warnings == want.warnings and got.end_of_archive == want.end_of_archive
    assert got.read("d/big2")[-4:] == b"tail"
    assert got.read("d/" + "long" * 40) == b"pax name"


def test_opening_reads_headers_not_data():
    data = _archive()
    dev = CountingDevice(data)
    img = TarImage(dev)
    assert img.stat("d/big1").size == 3 << 20
    # Three large files (5 MiB and more of data) cost a few windows of headers.
    assert dev.bytes_read < 4 * tar_reader.WINDOW


def test_members_are_decoded_again_on_first_use():
    data = _archive()
    img = TarImage(MemoryDevice(data=data))
    assert img._members is None                       # not kept by the opening pass
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        want = [(ti.name, ti.offset, ti.offset_data, ti.size) for ti in tf.getmembers()]
    got = [(m.name.rstrip("/"), m.header_offset, m.data_offset, m.size) for m in img.members]
    assert got == want
    assert img.members is img.members
    assert img.info()["tar_entries"] == len(want)
    before = (list(img.warnings), list(img.notes), img.end_of_archive, set(img.flavours))
    img._members = None
    img.members
    assert (img.warnings, img.notes, img.end_of_archive, img.flavours) == \
        (before[0], before[1], before[2], before[3])
