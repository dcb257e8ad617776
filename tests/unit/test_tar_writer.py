"""Carrying a plan out: explicit structure, checksums, progress, reused devices, changes."""
from __future__ import annotations

import os

import pytest

import blockimg
from blockimg.block import FileDevice, MemoryDevice
from blockimg.trust.checksum import crc32c
from blockimg.errors import DoesNotFit, SourceChanged
from blockimg.sources.directory import from_pairs, walk
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


def test_memory_does_not_grow_with_file_size(tmp_path):
    """A 128 MiB file (sparse source) is written with a bounded buffer, with and without CRCs."""
    import subprocess
    import sys
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "big.bin", "wb") as f:
        f.truncate(128 << 20)
    code = f"""
import resource
from blockimg.block import FileDevice
from blockimg.sources.directory import walk
from blockimg.tar import plan, write
p = plan(walk({str(src)!r}))
growth = []
for checksum in (False, True):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    dev = FileDevice.create({str(tmp_path / "img")!r}, p.image_size)
    write(p, dev, checksum=checksum)
    dev.close()
    growth.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
print(max(growth))
"""
    from conftest import ROOT
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=str(ROOT), env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert res.returncode == 0, res.stderr
    assert int(res.stdout) < 32 * 1024          # KiB: far below the file's 128 MiB


GOLDEN = [("index.html", b"<h1>hi</h1>\n"), ("css/site.css", b"body{}\n" * 100), ("empty", b""),
          ("ü/" + "n" * 150, b"long"), ("dir", None)]


@pytest.mark.parametrize("opts,digest", [
    (dict(), "36e974df75c441b0e8827ed814faace2d7a40baf23440918b104b0670265e842"),
    (dict(align=4096), "b5efb59a66319434c1b463752fb99c59d58e678c4988a9cc1255bf201d3325a8"),
    (dict(target="generic", sector_size=4096),
     "36e974df75c441b0e8827ed814faace2d7a40baf23440918b104b0670265e842"),
    (dict(target="generic"), "6e71398780f4b90c4510ade71e66e319a2d0395d692be4d15079593f3d141ed1"),
])
def test_golden_bytes(opts, digest):
    """The same tree gives these exact bytes on every machine (a format change shows here)."""
    import hashlib
    p = plan(from_pairs(GOLDEN, mtime=1700000000), Options(**opts))
    dev = MemoryDevice(p.image_size)
    write(p, dev)
    assert hashlib.sha256(dev.getvalue()).hexdigest() == digest
