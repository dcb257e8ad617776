"""Writing to a block device node: supported, but refused when the device is mounted
(or in use) and, without force, when it already holds data.

Tested twice: here with a fake device node (monkeypatching), so the logic is covered
where loop devices are not available, and with a real loop device (losetup, as root)
in tests/root/test_device_guard_loop.py.
"""
from __future__ import annotations

import errno
import os

import pytest

import blockimg
from blockimg.write import device_guard
from blockimg.block.file import FileDevice
from blockimg.errors import InvalidInput


# ---------------------------------------------------------------- fake node ----
@pytest.fixture
def fake_node(tmp_path, monkeypatch):
    """A regular file that blockimg.create treats as a block device node."""
    node = tmp_path / "fake-sdx"
    node.write_bytes(bytes(8 << 20))
    monkeypatch.setattr(device_guard, "is_device_node", lambda p: os.fspath(p) == str(node))
    monkeypatch.setattr(device_guard, "open_exclusively",
                        lambda p: FileDevice(p, writable=True))
    monkeypatch.setattr(device_guard, "mounted_devices", lambda: {})
    return node


def test_fake_blank_device_is_written_in_place(fake_node, site_dir):
    s = blockimg.create(site_dir, fake_node, format="tar", mtime=0)
    assert fake_node.stat().st_size == 8 << 20  # not replaced by a file of the image's size
    with blockimg.open(fake_node) as img:
        assert img.read("robots.txt") == (site_dir / "robots.txt").read_bytes()
    assert s.path == str(fake_node)


def test_fake_device_holding_data_needs_force(fake_node, site_dir):
    with open(fake_node, "r+b") as f:
        f.write(b"\xeb\x3cSOMEFS")
    with pytest.raises(InvalidInput, match="--force"):
        blockimg.create(site_dir, fake_node, format="tar", mtime=0)
    assert fake_node.read_bytes()[:8] == b"\xeb\x3cSOMEFS"
    blockimg.create(site_dir, fake_node, format="tar", mtime=0, force=True)
    with blockimg.open(fake_node) as img:
        assert img.exists("index.html")


def test_fake_mounted_device_is_refused_even_with_force(fake_node, site_dir, monkeypatch):
    monkeypatch.setattr(device_guard, "mounted_devices", lambda: {os.stat(fake_node).st_rdev: "/mnt"})
    with pytest.raises(InvalidInput, match="mounted on /mnt"):
        blockimg.create(site_dir, fake_node, format="tar", mtime=0, force=True)
    assert fake_node.read_bytes() == bytes(8 << 20)


def test_busy_device_is_refused(tmp_path, monkeypatch):
    """O_EXCL on a block device fails with EBUSY when it is mounted or claimed."""
    real_open = os.open

    def fake_open(path, flags, *a):
        if os.fspath(path).endswith("busy") and flags & os.O_EXCL:
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
        return real_open(path, flags, *a)
    monkeypatch.setattr(os, "open", fake_open)
    with pytest.raises(InvalidInput, match="in use"):
        device_guard.open_exclusively(str(tmp_path / "busy"))


def test_fake_device_too_small(fake_node, tmp_path):
    big = tmp_path / "big"
    big.mkdir()
    (big / "f").write_bytes(os.urandom(9 << 20))
    with pytest.raises(blockimg.DoesNotFit):
        blockimg.create(big, fake_node, format="tar", mtime=0)

