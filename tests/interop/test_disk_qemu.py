"""A Linux kernel reads blockimg's partitioned disks: Debian's cloud kernel boots under
qemu with the disk as a virtio drive, finds the partitions itself (MBR and GPT), mounts the
FAT partition read-only and reports every file's SHA-256, and the raw partitions' hashes.

Needs no root: the kernel under test is the guest's (``/boot/vmlinuz-*-cloud-amd64``, with
its modules), its userland busybox-static in a generated initramfs. The host kernel may
lack vfat and partition tables (microVMs), which is why the mount is done here.
"""
from __future__ import annotations

import glob
import gzip
import hashlib
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import IN_CI, require_tool

MTIME = 1_700_000_000
FILES = {
    "index.html": b"<html>home</html>\n",
    "manifest.json": b"{}\n",
    "css/style.css": b"body{}\n" * 50,
    "images/big.bin": bytes(range(256)) * 1500,
    "docs/a-rather-long-file-name-for-a-fat-directory.html": b"long\n",
}
#: The modules the guest needs, loaded in this order (each after what it depends on).
MODULES = ["virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
           "virtio_pci", "virtio_blk", "fat", "vfat", "nls_cp437", "nls_ascii",
           "nls_iso8859-1", "nls_utf8"]
INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in %s; do insmod /lib/$m.ko || echo "INSMOD $m failed"; done
for i in $(seq 300); do [ -e /dev/vda2 ] && break; sleep 0.1; done; dmesg | grep -i -E "virtio|vda" | tail -5
echo "PARTS $(ls /dev | grep vda | tr '\\n' ' ')"
mkdir /mnt; mount -t vfat -o ro /dev/vda1 /mnt && echo MOUNTED
cd /mnt && find . -type f | while read f; do echo "FILE $(sha256sum "$f")"; done
cd /
echo "RAW2 $(sha256sum /dev/vda2 | cut -d' ' -f1)"
umount /mnt && echo UNMOUNTED
echo DONE
poweroff -f
""" % " ".join(MODULES)


def kernel() -> tuple:
    kernels = sorted(glob.glob("/boot/vmlinuz-*cloud-amd64"))
    if not kernels:
        msg = "no /boot/vmlinuz-*-cloud-amd64 (apt-get install linux-image-cloud-amd64)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    vmlinuz = kernels[-1]
    version = vmlinuz.split("vmlinuz-", 1)[1]
    return vmlinuz, Path("/usr/lib/modules") / version


def cpio_newc(entries) -> bytes:
    """A newc cpio archive of ``(name, mode, data)`` entries (what the kernel unpacks)."""
    out = io.BytesIO()
    for ino, (name, mode, data) in enumerate(list(entries) + [("TRAILER!!!", 0, b"")]):
        raw = name.encode() + b"\0"
        fields = [ino + 1, mode, 0, 0, 1, MTIME, len(data), 0, 0, 0, 0, len(raw), 0]
        out.write(b"070701" + b"".join(b"%08X" % f for f in fields) + raw)
        out.write(bytes(-out.tell() % 4))
        out.write(data)
        out.write(bytes(-out.tell() % 4))
    return out.getvalue()


def initramfs(moddir: Path) -> bytes:
    busybox = Path(require_tool("busybox"))
    found = {Path(p).name[:-3]: p for p in glob.glob(str(moddir / "kernel/**/*.ko"),
                                                      recursive=True)}
    entries = [("bin", 0o40755, b""), ("lib", 0o40755, b""), ("proc", 0o40755, b""),
               ("sys", 0o40755, b""), ("dev", 0o40755, b""),
               ("bin/busybox", 0o100755, busybox.read_bytes()),
               ("init", 0o100755, INIT.encode())]
    for m in MODULES:
        if m not in found:
            pytest.fail(f"kernel module {m}.ko not found under {moddir}")
        entries.append((f"lib/{m}.ko", 0o100644, Path(found[m]).read_bytes()))
    return gzip.compress(cpio_newc(entries), 1, mtime=0)


def blockimg(*args):
    subprocess.run([sys.executable, "-m", "blockimg", *map(str, args)], check=True,
                   capture_output=True)


@pytest.mark.parametrize("table", ["mbr", "gpt"])
def test_linux_finds_and_mounts_the_partitions(tmp_path, table):
    qemu = require_tool("qemu-system-x86_64")
    vmlinuz, moddir = kernel()
    site = tmp_path / "site"
    for name, data in FILES.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_bytes(data)
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "k.pem").write_bytes(b"key\n")
    keys_img = tmp_path / "keys.img"
    blockimg("create", keys, "-o", keys_img, "--mtime", MTIME)
    disk = tmp_path / "disk.img"
    blockimg("disk", "-o", disk, "--table", table, f"{site},name=site,format=fat",
             f"{keys_img},name=keys", "--mtime", MTIME)
    rd = tmp_path / "initrd.gz"
    rd.write_bytes(initramfs(moddir))
    # TCG: software emulation works everywhere (nested KVM can hang); ~10 s here.
    res = subprocess.run(
        [qemu, "-accel", "tcg", "-m", "256", "-nographic", "-no-reboot", "-kernel", vmlinuz,
         "-initrd", str(rd), "-append", "console=ttyS0 panic=-1 quiet",
         "-drive", f"file={disk},if=virtio,format=raw,readonly=on"],
        capture_output=True, text=True, timeout=300)
    out = res.stdout.replace("\r", "")
    assert "DONE" in out, (out[-3000:], res.stderr[-2000:])
    assert re.search(r"PARTS .*vda1 vda2", out), out[-2000:]
    assert "MOUNTED" in out and "UNMOUNTED" in out, out[-2000:]
    got = {m.group(2): m.group(1) for m in re.finditer(r"FILE ([0-9a-f]{64})  \./(.*)", out)}
    assert got == {n: hashlib.sha256(d).hexdigest() for n, d in FILES.items()}
    raw2 = re.search(r"RAW2 ([0-9a-f]{64})", out).group(1)
    assert raw2 == hashlib.sha256(keys_img.read_bytes()).hexdigest()
