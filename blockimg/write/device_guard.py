"""Writing to a block device node safely: opened exclusively (Linux refuses one in use
with EBUSY), refused when it or one of its partitions is mounted or used as swap
(``/proc/mounts``, ``/proc/swaps``, ``/sys/dev/block``), and, without force, when it
already holds data."""
from __future__ import annotations

import errno
import os
import stat

from ..block.base import BlockDevice
from ..block.file import FileDevice
from ..errors import DeviceError, InvalidInput

__all__ = ["is_device_node", "open_exclusively", "refuse_unsafe", "mounted_devices",
           "partitions_of", "holds_data"]


def is_device_node(path: str) -> bool:
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except OSError:
        return False


def open_exclusively(path: str) -> FileDevice:
    """Open a block device for writing, exclusively: Linux refuses (EBUSY) one in use."""
    flags = os.O_RDWR | getattr(os, "O_CLOEXEC", 0) | os.O_EXCL
    try:
        fd = os.open(path, flags)
    except OSError as e:
        if e.errno == errno.EBUSY:
            raise InvalidInput("is in use (mounted, or claimed by another program); unmount "
                               "it first", path=path, rule="never write a mounted device") \
                from None
        raise DeviceError(f"{path}: cannot open: {e.strerror}", errno=e.errno) from None
    return FileDevice(path, writable=True, _fd=fd)


def mounted_devices() -> dict:
    """{st_rdev: mount point} of every block device in /proc/mounts and /proc/swaps."""
    out = {}
    for table, field_index in (("/proc/mounts", 1), ("/proc/swaps", None)):
        try:
            with open(table) as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if not fields or not fields[0].startswith("/"):
                continue
            try:
                st = os.stat(fields[0])
            except OSError:
                continue
            if stat.S_ISBLK(st.st_mode):
                out[st.st_rdev] = fields[field_index] if field_index is not None else "swap"
    return out


def partitions_of(rdev: int) -> list:
    """st_rdev of the partitions of a whole-disk device (from /sys)."""
    base = f"/sys/dev/block/{os.major(rdev)}:{os.minor(rdev)}"
    out = []
    try:
        names = os.listdir(base)
    except OSError:
        return out
    for n in names:
        try:
            with open(os.path.join(base, n, "dev")) as f:
                major, minor = f.read().strip().split(":")
            out.append(os.makedev(int(major), int(minor)))
        except (OSError, ValueError):
            continue
    return out


def refuse_unsafe(dev: FileDevice, force: bool) -> None:
    """Refuse a mounted device (or one with a mounted partition); ask for force on one
    that holds data."""
    try:
        rdev = os.fstat(dev.fd).st_rdev
    except (OSError, AttributeError):
        rdev = None
    mounted = mounted_devices()
    if rdev is not None:
        for r in [rdev] + partitions_of(rdev):
            if r in mounted:
                raise InvalidInput(f"is mounted on {mounted[r]}; unmount it first",
                                   path=dev.path, rule="never write a mounted device")
    if not force and holds_data(dev):
        raise InvalidInput("already holds data (a file system or partition table?); "
                           "pass --force to overwrite it", path=dev.path,
                           rule="overwrite guard")


def holds_data(dev: BlockDevice) -> bool:
    """Anything but zeros in the first MiB or the last 64 KiB (boot sectors, partition
    tables and their GPT backup, superblocks, tar headers)."""
    for off, n in ((0, min(dev.size, 1 << 20)),
                   (max(dev.size - (64 << 10), 0), min(dev.size, 64 << 10))):
        data = bytes(dev.pread(off, n))
        if data.count(0) != len(data):
            return True
    return False
