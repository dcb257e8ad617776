"""Writing to a block device node, with a real loop device (losetup, as root): written,
then refused without --force once it holds data, refused when mounted, and verified
against a manifest (tests/unit/test_device_guard.py covers the same logic with a fake
device node)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import blockimg
from blockimg.write import device_guard
from blockimg.block.file import FileDevice
from blockimg.errors import InvalidInput
from conftest import require_root, ROOT, require_tool


@pytest.fixture
def loop(tmp_path):
    require_root("attaches a loop device")
    losetup = require_tool("losetup")
    backing = tmp_path / "loop-backing.img"
    with open(backing, "wb") as f:
        f.truncate(32 << 20)
    res = subprocess.run([losetup, "-f", "--show", str(backing)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.fail(f"losetup failed (the tests need root): {res.stderr}")
    dev = res.stdout.strip()
    mnt = tmp_path / "mnt"
    try:
        yield dev, mnt
    finally:
        if os.path.ismount(mnt):
            subprocess.run(["umount", str(mnt)])
        subprocess.run([losetup, "-d", dev])


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "blockimg", *map(str, args)],
                          capture_output=True, text=True, cwd=str(ROOT))


def test_loop_device_written_then_guarded(loop, site_dir):
    dev, _mnt = loop
    res = run_cli("create", site_dir, "-o", dev, "--format", "fat", "--mtime", "0", "-q")
    assert res.returncode == 0, res.stderr
    with blockimg.open(dev) as img:
        assert img.read("robots.txt") == (site_dir / "robots.txt").read_bytes()
    # now it holds a file system: refused without --force
    res = run_cli("create", site_dir, "-o", dev, "--format", "tar", "--mtime", "0")
    assert res.returncode == 1
    assert "--force" in res.stderr
    with blockimg.open(dev) as img:
        assert img.format == "fat"
    res = run_cli("create", site_dir, "-o", dev, "--format", "tar", "--mtime", "0", "--force",
                  "-q")
    assert res.returncode == 0, res.stderr
    with blockimg.open(dev) as img:
        assert img.format == "tar"


def test_mounted_loop_device_is_refused(loop, site_dir):
    dev, mnt = loop
    # vfat may not be in the kernel; any mountable file system will do
    subprocess.run([require_tool("mkfs.ext4"), "-q", dev], check=True, capture_output=True)
    mnt.mkdir()
    res = subprocess.run(["mount", dev, str(mnt)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.fail(f"cannot mount the loop device: {res.stderr}")
    (mnt / "keep.txt").write_text("keep")
    with pytest.raises(InvalidInput, match="mounted|in use"):
        blockimg.create(site_dir, dev, format="tar", mtime=0, force=True)
    res = run_cli("create", site_dir, "-o", dev, "--force")
    assert res.returncode == 1
    assert "mounted" in res.stderr or "in use" in res.stderr
    assert (mnt / "keep.txt").read_text() == "keep"


def test_mounted_check_without_o_excl(loop, site_dir, monkeypatch):
    """The /proc/mounts check alone also refuses (for systems where O_EXCL does not)."""
    dev, mnt = loop
    subprocess.run([require_tool("mkfs.ext4"), "-q", dev], check=True, capture_output=True)
    mnt.mkdir()
    subprocess.run(["mount", dev, str(mnt)], check=True, capture_output=True)
    monkeypatch.setattr(device_guard, "open_exclusively", lambda p: FileDevice(p, writable=True))
    with pytest.raises(InvalidInput, match=f"mounted on {mnt}"):
        blockimg.create(site_dir, dev, format="tar", mtime=0, force=True)


def test_loop_device_manifest_and_verify(loop, site_dir, tmp_path):
    """On a device bigger than the image the manifest covers the image's bytes only."""
    dev, _mnt = loop
    man = tmp_path / "dev.json"
    res = run_cli("create", site_dir, "-o", dev, "--format", "tar", "--mtime", "0",
                  "--manifest", man, "-q")
    assert res.returncode == 0, res.stderr
    from blockimg.trust.manifest import load
    assert load(man).image_size < 32 << 20
    res = run_cli("verify", dev, "--manifest", man, site_dir)
    assert res.returncode == 0, res.stdout + res.stderr
    with open(dev, "r+b") as f:     # change one byte of a file's data on the device
        off = load(man).locate("index.html").extents[0][0]
        f.seek(off)
        f.write(b"#")
    res = run_cli("verify", dev, "--manifest", man, site_dir)
    assert res.returncode == 1
    assert "changed: index.html" in res.stdout and "sha256" in res.stdout
