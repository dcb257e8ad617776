"""BlockDevice.copy_to: the same bytes by every way (copy_file_range, sendfile, chunks).

Every backend, every kind of output (regular file, ``O_APPEND`` file, pipe,
``/dev/null``), with the kernel ways taken away one by one; writes land at
the output's position; errors on the output are the ``OSError`` they are;
a range outside the device or an image that shrank is a DeviceError.
"""
from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading

import pytest

from blockimg.block import base as block_base
from blockimg.block.file import FileDevice
from blockimg.block.memory import MemoryDevice
from blockimg.block.mmap import MmapDevice
from blockimg.block.window import WindowDevice
from blockimg.errors import DeviceError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZE = 3 * block_base.COPY_CHUNK + 4096          # more than one chunk of the fallback


@pytest.fixture(scope="module")
def content():
    return bytes((i * 7 + i // 4096) & 0xFF for i in range(SIZE))


@pytest.fixture()
def image(tmp_path, content):
    p = tmp_path / "img.bin"
    p.write_bytes(content)
    return str(p)


def _open(kind, path, content):
    if kind == "file":
        return FileDevice(path)
    if kind == "mmap":
        return MmapDevice(path)
    if kind == "memory":
        return MemoryDevice(data=content)
    if kind == "window":
        return WindowDevice(FileDevice(path), 4096)
    raise AssertionError(kind)


KINDS = ["file", "mmap", "memory", "window"]
RANGES = [(0, SIZE), (1, 4095), (4096 + 3, 2 * block_base.COPY_CHUNK + 17), (SIZE - 1, 1),
          (5, 0)]


def _expect(kind, content, off, n):
    base = 4096 if kind == "window" else 0
    return content[base + off:base + off + n]


def _no_kernel(monkeypatch, which):
    def refuse(*a, **k):
        raise OSError(errno.EINVAL if which == "sendfile" else errno.EXDEV, "not here")
    if which in ("cfr", "both"):
        monkeypatch.setattr(os, "copy_file_range", refuse, raising=False)
    if which in ("sendfile", "both"):
        monkeypatch.setattr(os, "sendfile", refuse, raising=False)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("without", ["nothing", "cfr", "sendfile", "both"])
def test_to_a_regular_file_at_its_position(kind, without, image, content, tmp_path,
                                           monkeypatch):
    _no_kernel(monkeypatch, without)
    dev = _open(kind, image, content)
    size = dev.size
    for off, n in RANGES:
        if off + n > size:
            continue
        out = tmp_path / "out.bin"
        fd = os.open(str(out), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"head")
            assert dev.copy_to(off, n, fd) == n
            assert os.lseek(fd, 0, os.SEEK_CUR) == 4 + n
            os.write(fd, b"tail")
        finally:
            os.close(fd)
        assert out.read_bytes() == b"head" + _expect(kind, content, off, n) + b"tail"
    dev.close()


@pytest.mark.parametrize("kind", KINDS)
def test_to_an_append_only_file(kind, image, content, tmp_path):
    dev = _open(kind, image, content)
    out = tmp_path / "log.bin"
    out.write_bytes(b"before")
    fd = os.open(str(out), os.O_WRONLY | os.O_APPEND)
    try:
        assert dev.copy_to(7, 100000, fd) == 100000
    finally:
        os.close(fd)
    assert out.read_bytes() == b"before" + _expect(kind, content, 7, 100000)
    dev.close()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("without", ["nothing", "sendfile"])
def test_to_a_pipe(kind, without, image, content, monkeypatch):
    _no_kernel(monkeypatch, without)
    dev = _open(kind, image, content)
    n = dev.size - 9
    r, w = os.pipe()
    got = []

    def drain():
        while True:
            b = os.read(r, 1 << 16)
            if not b:
                break
            got.append(b)

    t = threading.Thread(target=drain)
    t.start()
    try:
        assert dev.copy_to(9, n, w) == n
    finally:
        os.close(w)
        t.join()
        os.close(r)
    assert b"".join(got) == _expect(kind, content, 9, n)
    dev.close()


def _copy_all(dev, path: str) -> int:
    """``dev.copy_to`` of the whole device into ``path`` (created if missing)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        return dev.copy_to(0, dev.size, fd)
    finally:
        os.close(fd)


@pytest.mark.parametrize("kind", KINDS)
def test_to_dev_null(kind, image, content):
    dev = _open(kind, image, content)
    assert _copy_all(dev, os.devnull) == dev.size
    dev.close()


@pytest.mark.parametrize("kind", KINDS)
def test_closed_pipe_is_a_broken_pipe(kind, image, content):
    dev = _open(kind, image, content)
    r, w = os.pipe()
    os.close(r)
    try:
        with pytest.raises(BrokenPipeError):
            dev.copy_to(0, dev.size, w)
    finally:
        os.close(w)
        dev.close()


@pytest.mark.parametrize("kind", KINDS)
def test_outside_the_device_is_refused(kind, image, content, tmp_path):
    dev = _open(kind, image, content)
    fd = os.open(str(tmp_path / "o"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for off, n in ((dev.size - 10, 11), (-1, 5), (0, -1)):
            with pytest.raises(DeviceError):
                dev.copy_to(off, n, fd)
        assert os.fstat(fd).st_size == 0
    finally:
        os.close(fd)
        dev.close()


@pytest.mark.parametrize("without", ["nothing", "cfr", "both"])
def test_image_that_shrank_is_a_device_error(without, image, tmp_path, monkeypatch):
    _no_kernel(monkeypatch, without)
    dev = FileDevice(image)
    os.truncate(image, 8192)
    fd = os.open(str(tmp_path / "o"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(DeviceError):
            dev.copy_to(4096, 3 * block_base.COPY_CHUNK, fd)
    finally:
        os.close(fd)
        dev.close()


def test_kernel_errors_other_than_not_supported_are_raised(image, tmp_path, monkeypatch):
    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "copy_file_range", full, raising=False)
    dev = FileDevice(image)
    fd = os.open(str(tmp_path / "o"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(OSError) as exc:
            dev.copy_to(0, 4096, fd)
        assert exc.value.errno == errno.ENOSPC
    finally:
        os.close(fd)
        dev.close()


def test_kernel_way_used_for_files_and_pipes(image, tmp_path, monkeypatch):
    """No bytes pass through Python when the kernel can copy them."""
    def no_pread(*a, **k):
        raise AssertionError("read through Python")
    dev = FileDevice(image)
    monkeypatch.setattr(dev, "_read_at", no_pread)
    monkeypatch.setattr(dev, "pread", no_pread)
    try:
        assert _copy_all(dev, str(tmp_path / "o")) == dev.size
        assert _copy_all(dev, os.devnull) == dev.size
    finally:
        dev.close()


def test_memory_stays_bounded_without_kernel_copies(tmp_path):
    """The chunked way holds one chunk: copying 256 MiB raises peak RSS by far less."""
    img = tmp_path / "big.img"
    with open(img, "wb") as f:
        f.truncate(256 << 20)
    code = (
        "import os, resource, sys\n"
        "from blockimg.block.file import FileDevice\n"
        "def refuse(*a, **k):\n"
        "    raise OSError(22, 'no')\n"
        "os.copy_file_range = refuse\n"
        "os.sendfile = refuse\n"
        f"dev = FileDevice({str(img)!r})\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "fd = os.open(os.devnull, os.O_WRONLY)\n"
        "assert dev.copy_to(0, dev.size, fd) == dev.size\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(after - before)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=REPO), check=True)
    assert int(res.stdout) < 16 * 1024           # KiB


def test_a_way_that_refuses_is_tried_after_the_one_that_worked(image, content, tmp_path,
                                                               monkeypatch):
    """copy_file_range refused (EXDEV: another file system) is not asked again first."""
    dev = FileDevice(image)
    calls = []

    def cfr(src, dst, count, offset_src):
        calls.append("cfr")
        raise OSError(errno.EXDEV, "cross-device")

    real_sendfile = os.sendfile

    def sendfile(out, src, offset, count):
        calls.append("sendfile")
        return real_sendfile(out, src, offset, count)
    monkeypatch.setattr(os, "copy_file_range", cfr)
    monkeypatch.setattr(os, "sendfile", sendfile)
    outs = []
    for i in range(3):
        p = tmp_path / f"out{i}"
        with open(p, "wb") as f:
            assert dev.copy_to(4096 * i, 5000, f.fileno()) == 5000
        outs.append(p.read_bytes())
    dev.close()
    assert outs == [content[4096 * i:4096 * i + 5000] for i in range(3)]
    assert calls == ["cfr", "sendfile", "sendfile", "sendfile"]
