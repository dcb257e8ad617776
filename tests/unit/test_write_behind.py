"""Write-behind: full buffers are written on a helper thread while the next one fills.

The bytes must not depend on it, its errors must reach the caller's thread
(at the next submit or wait), and its thread must end with the Copier.
"""
from __future__ import annotations

import errno
import threading
import time

from pathlib import Path

import pytest
from conftest import assert_read_back

from blockimg.write import copier as copymod
from blockimg.block.file import FileDevice
from blockimg.errors import DeviceError
from blockimg.fat import Options as FatOptions
from blockimg.fat import plan as fat_plan
from blockimg.fat import write as fat_write
from blockimg.sources.directory import from_pairs, walk
from blockimg.tar import plan as tar_plan
from blockimg.tar import write as tar_write
from blockimg.write.write_behind import WriteBehind


def _ends(wb: WriteBehind) -> bool:
    """Whether ``wb``'s thread has ended (a closed helper takes a moment to return)."""
    deadline = time.monotonic() + 10
    while wb.running and time.monotonic() < deadline:
        time.sleep(0.01)
    return not wb.running


def _source(tmp_path, n=300) -> Path:
    src = tmp_path / "src"
    for i in range(n):
        d = src / f"d{i % 7}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:04d}.bin").write_bytes(bytes([i % 251]) * (1 + (i * 7919) % 20000))
    (src / "big.bin").write_bytes(bytes(range(251)) * 1200)      # > SMALL_FILE: kernel copy
    return src


def _build(src: Path, fmt: str, path: Path, *, behind: bool, slow: bool) -> None:
    tree = walk(src, mtime=1_700_000_000)
    p = tar_plan(tree) if fmt == "tar" else fat_plan(tree, FatOptions())
    dev = FileDevice.create(str(path), p.image_size)
    if slow:
        # Each gathered write takes a while, so the next buffer fills while it is in flight.
        real = dev.pwrite
        dev.pwrite = lambda offset, data: (time.sleep(0.002), real(offset, data))[1]
    orig = copymod.Copier.__init__

    def init(self, *a, **k):
        orig(self, *a, **dict(k, behind=behind, buffer_size=64 * 1024, behind_after=0))
    copymod.Copier.__init__ = init
    try:
        (tar_write if fmt == "tar" else fat_write)(p, dev)
    finally:
        copymod.Copier.__init__ = orig
        dev.close()


@pytest.mark.parametrize("fmt", ["tar", "fat"])
def test_bytes_are_the_same_with_and_without_write_behind(tmp_path, fmt):
    src = _source(tmp_path)
    plain, behind = tmp_path / "plain.img", tmp_path / "behind.img"
    _build(src, fmt, plain, behind=False, slow=False)
    _build(src, fmt, behind, behind=True, slow=True)
    assert behind.read_bytes() == plain.read_bytes()
    assert_read_back(fmt, behind, src, tmp_path / "out")


def test_a_file_device_writes_behind_and_the_thread_ends(tmp_path):
    dev = FileDevice.create(str(tmp_path / "x.img"), 1 << 20)
    with copymod.Copier(dev, buffer_size=4096, behind_after=0) as cp:
        wb = cp._behind
        assert wb is not None and not wb.running          # no thread before a write
        cp.put(0, b"a" * 1000)
        cp.put(1000, b"b" * 4000)                         # the buffer fills: written behind
        assert wb.running
        cp.flush()
    assert _ends(wb)
    dev.close()
    assert (tmp_path / "x.img").read_bytes()[:5001] == b"a" * 1000 + b"b" * 4000 + b"\0"


def test_the_first_bytes_are_written_here_and_the_thread_starts_after_them(tmp_path):
    """A small build starts no thread: the first ``behind_after`` bytes (by default
    BEHIND_AFTER) are written in the calling thread, the buffers after them behind."""
    dev = FileDevice.create(str(tmp_path / "x.img"), 1 << 20)
    with copymod.Copier(dev, buffer_size=4096) as cp:
        for i in range(64):                               # 63 buffers spilled: 252 KB
            cp.put(i * 4000, bytes([i]) * 4000)
        cp.flush()
        assert not cp._behind.running and cp._other is None
    assert copymod.BEHIND_AFTER > 1 << 20
    with copymod.Copier(dev, buffer_size=4096, behind_after=10000) as cp:
        for i in range(4):                                # 3 buffers spilled: 12,000 bytes
            cp.put(i * 4000, bytes([i]) * 4000)
        assert not cp._behind.running
        cp.put(4 * 4000, bytes([4]) * 4000)               # past 10,000 bytes: behind
        assert cp._behind.running
        cp.put(5 * 4000, bytes([5]) * 4000)
        cp.flush()
    assert _ends(cp._behind)
    dev.close()
    data = (tmp_path / "x.img").read_bytes()
    assert data[:6 * 4000] == b"".join(bytes([i]) * 4000 for i in range(6))
    assert data[6 * 4000:64 * 4000] == b"".join(bytes([i]) * 4000 for i in range(6, 64))


def test_a_copier_dropped_without_close_ends_its_thread(tmp_path):
    dev = FileDevice.create(str(tmp_path / "x.img"), 1 << 20)
    cp = copymod.Copier(dev, buffer_size=4096, behind_after=0)
    for i in range(4):
        cp.put(i * 3000, b"c" * 3000)
    cp.flush()
    wb = cp._behind
    assert wb.running
    del cp
    assert _ends(wb)
    dev.close()


def test_an_error_in_the_helper_reaches_the_caller_at_the_next_call():
    seen = []

    def write(offset, data):
        if offset == 512:
            raise DeviceError("disk full at byte 512", errno=errno.ENOSPC)
        seen.append((offset, bytes(data)))

    wb = WriteBehind(write)
    wb.submit(0, b"x")
    wb.submit(512, b"y")                 # fails on the helper thread
    with pytest.raises(DeviceError, match="disk full at byte 512"):
        wb.wait()
    wb.wait()                            # reported once
    wb.submit(1024, b"z")
    wb.wait()
    wb.close()
    wb.close()                           # idempotent
    assert _ends(wb)
    assert seen == [(0, b"x"), (1024, b"z")]
    with pytest.raises(ValueError, match="closed"):
        wb.submit(0, b"late")


def test_submit_waits_for_the_pending_write():
    started, release = threading.Event(), threading.Event()
    order = []

    def write(offset, data):
        order.append(("start", offset))
        if offset == 0:
            started.set()
            release.wait(10)
        order.append(("end", offset))

    wb = WriteBehind(write)
    wb.submit(0, b"a")
    assert started.wait(10)
    t = threading.Thread(target=wb.submit, args=(1, b"b"))
    t.start()
    t.join(0.2)
    assert t.is_alive()                  # blocked behind write 0
    release.set()
    t.join(10)
    wb.wait()
    wb.close()
    assert order == [("start", 0), ("end", 0), ("start", 1), ("end", 1)]


def test_a_device_error_from_the_helper_names_the_image(tmp_path, monkeypatch):
    tree = from_pairs([(f"f{i}", bytes([i]) * 3000) for i in range(50)], mtime=1_700_000_000)
    p = tar_plan(tree)
    dev = FileDevice.create(str(tmp_path / "t.img"), p.image_size)
    real = dev.pwrite
    calls = []

    def failing(offset, data):
        calls.append(threading.get_ident())
        if len(calls) == 2:
            raise DeviceError(f"{dev.path}: write at byte {offset} failed: No space left",
                              errno=errno.ENOSPC)
        real(offset, data)
    monkeypatch.setattr(dev, "pwrite", failing)
    with pytest.raises(DeviceError, match="t.img: write at byte"):
        with copymod.Copier(dev, buffer_size=16 * 1024, behind_after=0) as cp:
            cp.put_records(((0, b"h" * 512, None),), 512)
            for i in range(40):
                cp.put(512 + i * 4000, b"q" * 4000)
            cp.flush()
    dev.close()
    assert threading.get_ident() not in calls          # written on the helper thread
    assert _ends(cp._behind)
