"""The partition digest computed while writing (blockimg.disk.digest.HashingWindow) is
the SHA-256 of the partition's final bytes, whatever the order and kind of the writes."""
from __future__ import annotations

import hashlib
import os
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

from blockimg.block.file import FileDevice
from blockimg.disk.digest import HashingWindow

SIZE = 64 * 512
START = 8 * 512         # the window's place on the disk: bytes outside it are never hashed

# One write: (how, offset, data); offsets are any byte, sector writes whole sectors.
writes = st.lists(st.tuples(st.sampled_from(["pwrite", "copy_from", "write"]),
                            st.integers(0, SIZE - 1), st.binary(min_size=1, max_size=3000)),
                  max_size=12)


def _apply(win: HashingWindow, how: str, offset: int, data: bytes, src_fd: int) -> None:
    if how == "write":
        sector = offset // 512
        n = max(1, len(data) // 512) * 512
        n = min(n, SIZE - sector * 512)
        win.write(sector, (data * (n // len(data) + 1))[:n])
        return
    data = data[:SIZE - offset]
    if how == "pwrite":
        win.pwrite(offset, data)
    else:
        os.pwrite(src_fd, data, 0)
        assert win.copy_from(offset, src_fd, len(data)) == len(data)


def _digest(ops, sequential_prefix: int = 0) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        disk = os.path.join(tmp, "disk")
        with open(disk, "wb") as f:
            f.write(b"\xee" * START)             # not the window's: must not count
            f.truncate(START + SIZE + 4096)
        src_fd = os.open(os.path.join(tmp, "src"), os.O_RDWR | os.O_CREAT, 0o600)
        dev = FileDevice(disk, writable=True)
        try:
            win = HashingWindow(dev, START, SIZE)
            pos = 0
            for _ in range(sequential_prefix):     # in-order writes, hashed on the way
                chunk = os.urandom(700)[:SIZE - pos]
                win.pwrite(pos, chunk)
                pos += len(chunk)
            for how, offset, data in ops:
                _apply(win, how, offset, data, src_fd)
            got = win.hexdigest()
            dev.pwrite(START + SIZE, b"\xff" * 512)   # past the window: not its bytes
        finally:
            dev.close()
            os.close(src_fd)
        with open(disk, "rb") as f:
            f.seek(START)
            assert got == hashlib.sha256(f.read(SIZE)).hexdigest()


@settings(max_examples=150, deadline=None)
@given(ops=writes, prefix=st.integers(0, 20))
def test_digest_is_the_sha256_of_the_final_bytes(ops, prefix):
    _digest(ops, prefix)


def test_rewriting_hashed_bytes_is_seen():
    """A write over bytes already hashed (a FAT written twice, say) is not lost."""
    _digest([("pwrite", 0, b"first"), ("pwrite", 1000, b"x" * 100), ("pwrite", 2, b"ZZ")])
    _digest([("copy_from", 0, b"a" * 4000), ("copy_from", 100, b"b" * 10)])
    _digest([("pwrite", 0, b"a" * 1024), ("write", 0, b"c" * 512)])


def test_in_order_writes_are_not_read_back(monkeypatch):
    """Writes that come in order are hashed as they pass: nothing but the unwritten tail
    is read back from the disk."""
    read = []
    with tempfile.TemporaryDirectory() as tmp:
        dev = FileDevice.create(os.path.join(tmp, "d"), SIZE)
        try:
            win = HashingWindow(dev, 0, SIZE)
            orig = dev.pread
            monkeypatch.setattr(dev, "pread", lambda o, n: read.append((o, n)) or orig(o, n))
            for off in range(0, SIZE - 4096, 1000):
                win.pwrite(off, bytes([off % 251]) * 1000)
            win.hexdigest()
        finally:
            dev.close()
    written = (SIZE - 4096 + 999) // 1000 * 1000
    assert read == [(written, SIZE - written)]


@settings(max_examples=60, deadline=None)
@given(ops=writes, prefix=st.integers(0, 20))
def test_digest_with_kernel_copies_in_small_pieces(ops, prefix):
    """Copies read through small pieces, each hashed by the helper thread while the next
    is read and written, mixed with other writes: still the final bytes' SHA-256."""
    from blockimg.disk import digest
    old, digest.PIECE = digest.PIECE, 512
    try:
        _digest(ops, prefix)
        _digest([("copy_from", 0, bytes(range(256)) * 11), ("pwrite", 2816, b"t" * 700),
                 ("copy_from", 3516, b"u" * 2000)] + ops, 0)
    finally:
        digest.PIECE = old


def test_in_order_copies_are_hashed_on_the_way_and_close_ends_the_thread(monkeypatch):
    """A copy in order is hashed on the helper thread as it passes: nothing is read back
    from the disk, and the kernel does not copy it (it would have to be read back). A
    window closed without its digest leaves no thread behind."""
    import threading
    from blockimg.disk import digest
    monkeypatch.setattr(digest, "PIECE", 4096)
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "src")
        with open(src, "wb") as f:
            f.write(os.urandom(SIZE))
        dev = FileDevice.create(os.path.join(tmp, "d"), SIZE)
        read = []
        orig = dev.pread
        monkeypatch.setattr(dev, "pread", lambda o, n: read.append((o, n)) or orig(o, n))
        monkeypatch.setattr(dev, "copy_from", None)      # no kernel copy
        fd = os.open(src, os.O_RDONLY)
        try:
            win = HashingWindow(dev, 0, SIZE)
            assert win.copy_from(0, fd, SIZE - 1000) == SIZE - 1000
            assert win.copy_from(SIZE - 1000, fd, 1000, SIZE - 1000) == 1000
            with open(src, "rb") as f:
                assert win.hexdigest() == hashlib.sha256(f.read()).hexdigest()
            assert read == []
            assert win.copy_from(SIZE, fd, 0) == 0
            other = HashingWindow(dev, 0, SIZE)
            other.copy_from(0, fd, SIZE)
            helpers = [t for t in threading.enumerate() if t.name == "blockimg write-behind"]
            assert helpers
            other.close()
            for t in helpers:
                t.join(10)
                assert not t.is_alive()
        finally:
            os.close(fd)
            dev.close()
