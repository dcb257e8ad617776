"""Carrying a plan out: explicit structure, checksums, progress, reused devices, changes."""
from __future__ import annotations

import os

import pytest

import blockimg
from blockimg.block import FileDevice, MemoryDevice
from blockimg.copy import crc32c
from blockimg.errors import DoesNotFit, SourceChanged
from blockimg.source import from_pairs, walk
from blockimg.tar import Options, open_image, plan, write


def test_writes_over_old_bytes_on_a_reused_device():
    p = plan(from_pairs([("a", b"x" * 700), ("b/c", b"")], mtime=1), Options(align=4096))
    dev = MemoryDevice(p.image_size, fill=0xFF)
    write(p, dev)
    data = dev.getvalue()
    assert b"\xff" not in data[:p.archive_size]
    assert data[p.end_offset:p.archive_size] == bytes(1024)
    assert data[p.archive_size:] == b"\xff" * (p.image_size - p.archive_size)  # left alone
    assert open_image(dev).read("a") == b"x" * 700


def test_device_too_small():
    p = plan(from_pairs([("a", b"x" * 5000)]))
    with pytest.raises(DoesNotFit) as exc:
        write(p, MemoryDevice(4096))
    assert exc.value.needed == p.image_size and exc.value.available == 4096


def test_checksums_and_progress(tmp_path):
    big = tmp_path / "src" / "big.bin"
    big.parent.mkdir()
    payload = os.urandom(600_000)
    big.write_bytes(payload)
    (tmp_path / "src" / "small").write_bytes(b"small")
    p = plan(walk(tmp_path / "src"), Options(sector_size=4096))
    seen = []
    dev = MemoryDevice(p.image_size, sector_size=4096)
    crcs = write(p, dev, checksum=True, progress=lambda done, total: seen.append((done, total)))
    f = crc32c()
    assert crcs == {"big.bin": f(payload), "small": f(b"small")}
    assert seen[-1] == (600_005, 600_005)
    assert write(p, MemoryDevice(p.image_size)) == {}


def test_big_files_through_the_kernel_on_a_file_device(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    payload = os.urandom(3 << 20)
    (src / "big").write_bytes(payload)
    p = plan(walk(src), Options(align=65536))
    with FileDevice.create(str(tmp_path / "img"), p.image_size) as dev:
        write(p, dev)
    with blockimg.open(str(tmp_path / "img")) as img:
        assert img.read("big") == payload
        assert img.stat("big").extents[0][0] % 65536 == 0


def test_source_changed_after_planning(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    f = src / "f"
    f.write_bytes(b"12345")
    p = plan(walk(src))
    f.write_bytes(b"123")
    with pytest.raises(SourceChanged, match="size changed"):
        write(p, MemoryDevice(p.image_size))
    f.unlink()
    with pytest.raises(SourceChanged, match="vanished"):
        write(p, MemoryDevice(p.image_size))


def test_create_on_a_block_device_object():
    dev = MemoryDevice(1 << 20)
    s = blockimg.create([("x.txt", b"hello")], dev, format="tar")
    assert s.image_size == 4096 and s.files == 1
    with blockimg.open(dev) as img:
        assert img.read("x.txt") == b"hello"
