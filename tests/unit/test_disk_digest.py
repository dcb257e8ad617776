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
