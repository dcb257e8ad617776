"""The kernel tier's QEMU helper on its own: initramfs contents, module order,
console parsing, and what it does when QEMU hangs or the guest dies (a stand-in
script plays QEMU, so these run in a second without a kernel)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from helpers import vm


@pytest.fixture
def moddir(tmp_path):
    """A modules directory shaped like /lib/modules/<ver> (empty modules)."""
    d = tmp_path / "modules"
    dep = {"kernel/fs/fat/vfat.ko": "kernel/fs/fat/fat.ko",
           "kernel/fs/fat/fat.ko": "",
           "kernel/drivers/virtio/virtio_pci.ko.xz":
               "kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko",
           "kernel/drivers/virtio/virtio.ko": "kernel/drivers/virtio/virtio_ring.ko",
           "kernel/drivers/virtio/virtio_ring.ko": "",
           "kernel/drivers/virtio/virtio_pci_modern_dev.ko": "",
           "kernel/drivers/block/virtio_blk.ko":
               "kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko",
           "kernel/fs/nls/nls_cp437.ko": "", "kernel/fs/nls/nls_ascii.ko": "",
           "kernel/fs/nls/nls_utf8.ko": ""}
    import lzma
    for path in dep:
        (d / path).parent.mkdir(parents=True, exist_ok=True)
        data = f"module {path}".encode()
        (d / path).write_bytes(lzma.compress(data) if path.endswith(".xz") else data)
    (d / "modules.dep").write_text("".join(f"{k}: {v}\n" for k, v in dep.items()))
    return d


def test_modules_load_after_their_dependencies(moddir):
    order = [Path(p).name for p in vm.module_order(moddir)]
    assert order == ["virtio_ring.ko", "virtio.ko", "virtio_pci_modern_dev.ko",
                     "virtio_pci.ko.xz", "virtio_blk.ko", "fat.ko", "vfat.ko",
                     "nls_cp437.ko", "nls_ascii.ko", "nls_utf8.ko"]


def test_static_binaries_are_told_from_dynamic_ones():
    assert vm.is_static(Path("/bin/busybox")) or not Path("/bin/busybox").exists()
    assert not vm.is_static(Path(sys.executable).resolve())


def read_newc(data: bytes) -> dict:
    """{name: (mode, bytes, (rdev major, minor))} of a newc cpio archive."""
    out, pos = {}, 0
    while True:
        assert data[pos:pos + 6] == b"070701"
        f = [int(data[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = f[1], f[6], f[11]
        name = data[pos + 110:pos + 110 + namesize - 1].decode()
        pos += 110 + namesize
        pos += -pos % 4
        body = data[pos:pos + size]
        pos += size + (-size % 4)
        if name == "TRAILER!!!":
            assert pos == len(data)
            return out
        out[name] = (mode, body, (f[9], f[10]))


def test_initramfs_holds_init_busybox_modules_and_the_job(moddir, tmp_path):
    busybox = tmp_path / "busybox"
    busybox.write_bytes(b"\x7fELF stand-in")
    disks = [vm.Disk(tmp_path / "a.img", ("x.txt", "dir/ü y.txt")),
             vm.Disk(tmp_path / "b.img", ("z",), 4096)]
    files = read_newc(vm.build_initramfs(moddir, busybox, disks, ["s0", "s1"]))
    assert files["init"][0] == 0o100755 and files["init"][1].startswith(b"#!/bin/busybox sh\n")
    assert files["bin/busybox"] == (0o100755, b"\x7fELF stand-in", (0, 0))
    assert files["dev/console"][0] == 0o020600 and files["dev/console"][2] == (5, 1)
    assert files["modules/virtio_pci.ko"][1] == \
        b"module kernel/drivers/virtio/virtio_pci.ko.xz"     # decompressed
    assert files["modules/order"][1].split()[:2] == [b"virtio_ring.ko", b"virtio.ko"]
    assert files["job/disks"][1] == b"s0\ns1\n"
    assert files["job/s0.list"][1] == "x.txt\0dir/ü y.txt\0".encode()
    assert files["job/options"][1] == vm.MOUNT_OPTIONS.encode() + b"\n"


@pytest.mark.parametrize("bad", ["", "/abs", "new\nline"])
def test_paths_the_guest_cannot_take_are_refused(moddir, tmp_path, bad):
    (tmp_path / "bb").write_bytes(b"")
    with pytest.raises(ValueError, match="cannot be passed"):
        vm.build_initramfs(moddir, tmp_path / "bb", [vm.Disk(tmp_path / "a", (bad,))], ["s0"])


def test_console_parsing():
    disks = [vm.Disk(Path("a"), ("a.txt", "d/b c.txt", "gone")), vm.Disk(Path("b"), ("x",))]
    h1, h2 = "1" * 64, "2" * 64
    console = "\n".join([
        "[    1.0] noise", "@@BOOTED",
        "@@MOUNTED s0 vda 4096", "@@L s0 d d", "@@L s0 f a.txt", "@@L s0 f d/b c.txt",
        f"@@H s0 {h1}  a.txt", f"@@H s0 {h2}  d/b c.txt",
        "@@H s0 sha256sum: can't open 'gone': No such file or directory",
        "@@MOUNTFAIL s1 mount: mounting /dev/vdb on /mnt/s1 failed: Invalid argument",
        "@@K [ 2.0] FAT-fs (vdb): bogus number of reserved sectors", "@@DONE"])
    boot = vm.parse_console(console, disks, ["s0", "s1"])
    a, b = boot.disks
    assert (a.mounted, a.device, a.block_size) == (True, "vda", 4096)
    assert a.dirs == {"d"} and a.files == {"a.txt", "d/b c.txt"} and not a.others
    assert a.hashes == {"a.txt": h1, "d/b c.txt": h2}
    assert a.errors == {"gone": "sha256sum: can't open 'gone': No such file or directory"}
    assert not b.mounted and "Invalid argument" in b.error
    assert boot.kernel_log == ["[ 2.0] FAT-fs (vdb): bogus number of reserved sectors"]


def fake_qemu(tmp_path: Path, body: str) -> str:
    """A script standing in for qemu-system-x86_64; it records its pid."""
    script = tmp_path / "qemu"
    script.write_text(f"#!/bin/sh\necho $$ > {tmp_path}/pid\n{body}\n")
    script.chmod(0o755)
    return str(script)


def gone(pid: int) -> bool:
    """No such process, or only a zombie left for its new parent to reap (a
    killed grandchild can take a moment to die: wait up to 10 s for it)."""
    for _ in range(100):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            return True
        if "\nState:\tZ" in status:
            return True
        time.sleep(0.1)
    return False


def test_a_hung_qemu_is_killed_with_its_children_and_the_console_shown(moddir, tmp_path):
    qemu = fake_qemu(tmp_path, "echo 'booting...'\n"
                               "sleep 300 &\necho $! > " f"{tmp_path}/child\n" "wait")
    (tmp_path / "bb").write_bytes(b"")
    with pytest.raises(vm.VMError, match=r"timed out after 2 s and was killed") as err:
        vm.run_vm([vm.Disk(tmp_path / "a", ("x",))], qemu=qemu, busybox=tmp_path / "bb",
                  kernel=(tmp_path / "vmlinuz", moddir), timeout=2)
    assert "booting..." in str(err.value)
    for name in ("pid", "child"):
        assert gone(int((tmp_path / name).read_text()))


def test_a_guest_that_does_not_finish_is_an_error_with_the_console_tail(moddir, tmp_path):
    qemu = fake_qemu(tmp_path, "echo '@@BOOTED'\necho 'Kernel panic - not syncing: boom'\nexit 0")
    (tmp_path / "bb").write_bytes(b"")
    with pytest.raises(vm.VMError, match="did not finish") as err:
        vm.run_vm([vm.Disk(tmp_path / "a", ("x",))], qemu=qemu, busybox=tmp_path / "bb",
                  kernel=(tmp_path / "vmlinuz", moddir), timeout=60)
    assert "Kernel panic - not syncing: boom" in str(err.value)
    assert gone(int((tmp_path / "pid").read_text()))


def test_a_module_that_does_not_load_is_an_error(moddir, tmp_path):
    qemu = fake_qemu(tmp_path, "echo '@@FAIL insmod vfat.ko'\necho '@@DONE'")
    (tmp_path / "bb").write_bytes(b"")
    with pytest.raises(vm.VMError, match="insmod vfat.ko"):
        vm.run_vm([vm.Disk(tmp_path / "a", ("x",))], qemu=qemu, busybox=tmp_path / "bb",
                  kernel=(tmp_path / "vmlinuz", moddir), timeout=60)
