"""Partitioned disks read by the kernel through a loop device (as root: losetup), byte for
byte the partitions blockimg wrote. The other disk read-back tests are in
tests/interop/test_disk_interop.py."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import require_root, require_tool, run
from helpers.disk_volumes import MTIME, blockimg, make_volumes, sfdisk_partitions


@pytest.fixture
def volumes(tmp_path):
    return make_volumes(tmp_path)


def _loop_partitions(disk: Path, parts: list) -> tuple:
    """Loop devices of the disk's partitions: ``losetup -P`` where this kernel parses
    partition tables, else one loop device per partition at its offset (kernels built
    without partition-table support, e.g. some microVM kernels, show no partitions)."""
    loop = run("losetup", "--find", "--show", "-P", "-r", disk).stdout.decode().strip()
    base = os.path.basename(loop)
    subprocess.run(["udevadm", "settle"], capture_output=True)
    if os.path.exists(f"/sys/block/{base}/{base}p1"):
        for i in range(1, len(parts) + 1):
            node = f"{loop}p{i}"
            if not os.path.exists(node):   # no udev: make the node the kernel announced
                major, minor = open(f"/sys/block/{base}/{base}p{i}/dev").read().split(":")
                os.mknod(node, 0o600 | 0o060000, os.makedev(int(major), int(minor)))
        return [loop], [f"{loop}p{i}" for i in range(1, len(parts) + 1)]
    run("losetup", "-d", loop)
    loops = [run("losetup", "--find", "--show", "-r", "-o", start, "--sizelimit", size,
                 disk).stdout.decode().strip() for start, size in parts]
    return loops, loops


@pytest.mark.parametrize("table", ["mbr", "gpt"])
def test_kernel_reads_the_partitions(volumes, tmp_path, table):
    require_root("losetup")
    site, keys, keys_img = volumes
    disk = tmp_path / "disk.img"
    blockimg("disk", "-o", disk, "--table", table, f"{site},name=site,format=fat",
             f"{keys_img},name=keys", "--mtime", MTIME)
    loops, nodes = _loop_partitions(disk, sfdisk_partitions(disk))
    try:
        # fsck.fat through the kernel's block layer; mounting is tested under qemu
        # (tests/interop/test_disk_qemu.py: this host kernel may lack vfat).
        run(require_tool("fsck.fat"), "-n", nodes[0])
        with open(nodes[0], "rb") as f:
            fat = f.read()
        start, size = sfdisk_partitions(disk)[0]
        assert fat == disk.read_bytes()[start:start + size]
        with open(nodes[1], "rb") as f:
            assert f.read() == keys_img.read_bytes()
    finally:
        for loop in loops:
            run("losetup", "-d", loop)
