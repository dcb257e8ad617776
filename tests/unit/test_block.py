"""Block device backends: file (sparse), mmap (zero-copy), memory, window, plugin lookup."""
from __future__ import annotations

import os

import pytest

from blockimg.block import (BlockDevice, FileDevice, MemoryDevice, MmapDevice, WindowDevice,
                            backend_names, open_device)
from blockimg.block import registry
from blockimg.errors import DeviceError, InvalidInput


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "dev.img"
    with FileDevice.create(str(path), 64 * 4096) as dev:
        dev.pwrite(0, bytes(range(256)) * 16)
    return path


def test_file_device_create_is_sparse(tmp_path):
    path = tmp_path / "sparse.img"
    with FileDevice.create(str(path), 256 << 20) as dev:
        assert dev.size == 256 << 20 and dev.sector_count == (256 << 20) // 512
        dev.pwrite(100 << 20, b"x" * 512)
        dev.flush()
    st = os.stat(path)
    assert st.st_size == 256 << 20
    assert st.st_blocks * 512 < 1 << 20          # only the written block takes space
    with FileDevice(str(path)) as dev:
        assert bytes(dev.pread(100 << 20, 512)) == b"x" * 512
        assert bytes(dev.pread(0, 4096)) == bytes(4096)      # holes read as zeros


def test_file_device_sector_and_byte_access(image):
    with FileDevice(str(image), writable=True) as dev:
        assert bytes(dev.read(1)) == (bytes(range(256)) * 2)
        dev.write(2, b"\x07" * 1024)
        assert bytes(dev.read(2, 2)) == b"\x07" * 1024
        assert bytes(dev.pread(1022, 4)) == b"\xfe\xff\x07\x07"
        with pytest.raises(InvalidInput):
            dev.write(0, b"short")                      # not whole sectors
        with pytest.raises(DeviceError):
            dev.read(64 * 8)                            # past the end
        with pytest.raises(DeviceError):
            dev.pread(dev.size - 1, 2)
        with pytest.raises(DeviceError):
            dev.pread(-1, 1)
    with FileDevice(str(image)) as ro:
        with pytest.raises(DeviceError, match="read-only"):
            ro.pwrite(0, b"x")
    with pytest.raises(DeviceError, match="closed"):
        ro.pread(0, 1)


def test_file_device_refuses_partial_sectors(tmp_path):
    p = tmp_path / "odd.img"
    p.write_bytes(b"x" * 1000)
    with pytest.raises(InvalidInput, match="not a multiple"):
        FileDevice(str(p))
    with pytest.raises(InvalidInput):
        FileDevice.create(str(tmp_path / "n.img"), 1000)
    with pytest.raises(DeviceError, match="cannot open"):
        FileDevice(str(tmp_path / "missing.img"))
    with pytest.raises(InvalidInput, match="sector size"):
        MemoryDevice(4096, sector_size=1000)


def test_file_device_copy_from(tmp_path, image):
    src = tmp_path / "src.bin"
    payload = os.urandom(3 << 20)
    src.write_bytes(payload)
    fd = os.open(src, os.O_RDONLY)
    try:
        with FileDevice.create(str(tmp_path / "dst.img"), 4 << 20) as dev:
            assert dev.copy_from(512, fd, len(payload)) == len(payload)
            assert bytes(dev.pread(512, len(payload))) == payload
            assert dev.copy_from(0, fd, 100, src_offset=len(payload) - 10) == 10  # source ends
        mem = MemoryDevice(4 << 20)
        assert BlockDevice.copy_from(mem, 1000, fd, 5000) == 5000     # bounded-buffer path
        assert mem.getvalue()[1000:6000] == payload[:5000]
    finally:
        os.close(fd)


class StrictDevice(BlockDevice):
    """A backend that only takes whole, aligned sectors (like a real disk)."""

    def __init__(self, size, sector_size):
        super().__init__(sector_size, size // sector_size, True)
        self.data = bytearray(b"\xee" * size)
        self.calls = []

    def _read_at(self, offset, length):
        assert offset % self.sector_size == 0 and length % self.sector_size == 0
        return bytes(self.data[offset:offset + length])

    def _write_at(self, offset, data):
        assert offset % self.sector_size == 0 and len(data) % self.sector_size == 0
        self.calls.append((offset, len(data)))
        self.data[offset:offset + len(data)] = data


@pytest.mark.parametrize("offset,length", [(100, 5), (4000, 200), (100, 9000), (4096, 8192),
                                           (0, 4097), (8191, 1)])
def test_unaligned_pwrite_is_read_modify_write(offset, length):
    dev = StrictDevice(4 * 4096, 4096)
    data = bytes((i * 13) % 256 for i in range(length))
    dev.pwrite(offset, data)
    expected = bytearray(b"\xee" * dev.size)
    expected[offset:offset + length] = data
    assert dev.data == expected
    assert bytes(dev.pread(offset, length)) == data


def test_mmap_reads_are_zero_copy_views(image):
    with MmapDevice(str(image)) as dev:
        view = dev.pread(256, 16)
        assert isinstance(view, memoryview) and view.readonly
        assert bytes(view) == bytes(range(16))
        assert isinstance(dev.read(0), memoryview)
        with pytest.raises(DeviceError):
            dev.pread(dev.size, 1)
        del view
    with MmapDevice(str(image), writable=True) as dev:
        dev.pwrite(10, b"mm")
        dev.flush()
    assert image.read_bytes()[10:12] == b"mm"


def test_mmap_of_empty_file(tmp_path):
    p = tmp_path / "empty.img"
    p.write_bytes(b"")
    with MmapDevice(str(p)) as dev:
        assert dev.size == 0 and bytes(dev.pread(0, 0)) == b""


def test_memory_device():
    dev = MemoryDevice(2048, fill=0xAB)
    assert dev.getvalue() == b"\xab" * 2048
    dev.pwrite(3, b"xyz")
    assert bytes(dev.pread(2, 5)) == b"\xabxyz\xab"
    assert isinstance(dev.pread(0, 4), memoryview)
    assert MemoryDevice(data=b"q" * 512).getvalue() == b"q" * 512
    with pytest.raises(InvalidInput):
        MemoryDevice(data=b"q" * 100)
    ro = MemoryDevice(512, writable=False)
    with pytest.raises(DeviceError):
        ro.pwrite(0, b"x")


def test_window_bounds():
    parent = MemoryDevice(8 * 512)
    win = WindowDevice(parent, 1024, 2048)
    assert (win.size, win.sector_count, win.writable) == (2048, 4, True)
    win.pwrite(0, b"start")
    win.pwrite(2043, b"end!!")
    assert parent.getvalue()[1024:1029] == b"start"
    assert parent.getvalue()[3067:3072] == b"end!!"
    assert bytes(win.read(3))[-5:] == b"end!!"
    with pytest.raises(DeviceError):
        win.pwrite(2044, b"12345")                  # one byte past the window
    with pytest.raises(DeviceError):
        win.pread(2048, 1)
    with pytest.raises(DeviceError):
        win.read(4)
    with pytest.raises(InvalidInput, match="not aligned"):
        WindowDevice(parent, 100, 512)
    with pytest.raises(InvalidInput, match="ends past"):
        WindowDevice(parent, 3072, 2048)
    win.close()
    assert not parent.closed
    ro_parent = MemoryDevice(1024, writable=False)
    with pytest.raises(InvalidInput):
        WindowDevice(ro_parent, 0, 512, writable=True)
    assert WindowDevice(ro_parent, 512).size == 512


def test_open_device_schemes_and_plugins(image, monkeypatch):
    assert backend_names()[:2] == ["file", "mmap"]
    with open_device(str(image)) as dev:
        assert isinstance(dev, FileDevice)
    with open_device(f"mmap:{image}") as dev:
        assert isinstance(dev, MmapDevice)
    with open_device(str(image), backend="mmap") as dev:
        assert isinstance(dev, MmapDevice)
    with pytest.raises(InvalidInput, match="no block backend named 'nbd'") as exc:
        open_device("nbd://host/export")
    assert "file" in str(exc.value) and "mmap" in str(exc.value)

    made = {}

    class EntryPoint:
        name = "fake"

        def load(self):
            def factory(location, writable=False, sector_size=512):
                made["args"] = (location, writable, sector_size)
                return MemoryDevice(4096, sector_size=sector_size)
            return factory

    monkeypatch.setattr(registry, "_plugins", lambda: {"fake": EntryPoint()})
    dev = open_device("fake://somewhere", sector_size=4096)
    assert isinstance(dev, MemoryDevice) and made["args"] == ("somewhere", False, 4096)
    assert "fake" in backend_names()


def test_a_path_with_a_colon_is_a_path(tmp_path, monkeypatch):
    p = tmp_path / "x:y.img"
    p.write_bytes(bytes(512))
    monkeypatch.chdir(tmp_path)
    with open_device("x:y.img") as dev:
        assert isinstance(dev, FileDevice) and dev.size == 512


def test_a_real_installed_plugin_is_found_through_its_entry_point(tmp_path, monkeypatch,
                                                                 site_dir):
    """A distribution on sys.path that declares ``blockimg.backends`` is used by scheme,
    for reading and for ``create``."""
    (tmp_path / "blockimg_ramdisk.py").write_text(
        "from blockimg.block import MemoryDevice, WindowDevice\n"
        "DISKS = {}\n"
        "def open_ramdisk(location, writable=False, sector_size=512):\n"
        "    disk = DISKS.setdefault(location, MemoryDevice(64 << 20, sector_size=4096))\n"
        "    return WindowDevice(disk, 0, writable=writable)  # closing leaves the disk\n")
    info = tmp_path / "blockimg_ramdisk-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: blockimg-ramdisk\n"
                                   "Version: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[blockimg.backends]\nramdisk = blockimg_ramdisk:open_ramdisk\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "ramdisk" in backend_names()
    with open_device("ramdisk:a", writable=True) as dev:
        assert dev.size == 64 << 20 and dev.sector_size == 4096
        dev.write(1, b"\x01" * 4096)
        assert bytes(dev.read(1)) == b"\x01" * 4096

    import blockimg
    for fmt in ("tar", "fat"):
        summary = blockimg.create(site_dir, f"ramdisk:{fmt}", format=fmt, mtime=0)
        assert summary.path.startswith("ramdisk")
        with blockimg.open(f"ramdisk:{fmt}") as img:
            assert img.format == fmt
            assert img.read("index.html") == (site_dir / "index.html").read_bytes()
    assert not list(tmp_path.glob("ramdisk*"))    # no file was made by that name
