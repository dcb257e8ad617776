"""Boot Debian's cloud kernel under QEMU and read FAT images with its vfat driver.

Everything comes from installed Debian packages (qemu-system-x86,
linux-image-cloud-amd64, busybox-static); nothing is downloaded.  The helper
builds a small initramfs (static busybox, the virtio/FAT/NLS modules and a
shell ``/init``), attaches every image read-only as a virtio-blk disk with the
asked-for logical block size, and the guest, for each disk:

* mounts it with ``-o ro,shortname=mixed,utf8,codepage=437`` (see MOUNT_OPTIONS),
* lists every file and directory (``find``), and
* opens every expected path *by name* and prints its sha256,

all on the serial console, then powers off.  :func:`run_vm` parses the console
into one :class:`DiskResult` per disk.  A boot that times out, crashes or does
not finish raises :class:`VMError` with the tail of the console.  QEMU runs in
its own session and is killed (by its process id) whatever happens.
"""
from __future__ import annotations

import gzip
import lzma
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

#: Modules the guest loads (with their dependencies from modules.dep).
MODULES = ("virtio_pci", "virtio_blk", "fat", "vfat", "nls_cp437", "nls_ascii", "nls_utf8")

#: Mount options.  ``ro``: the disks are attached read-only.  ``shortname=mixed``:
#: the kernel's default, named in issue 11; short names are shown as stored and
#: lookups still match both long and short names, which is what exposes an alias
#: equal to another entry's name.  ``utf8``: long names (UTF-16 on disk) come out
#: as UTF-8, the encoding of the source names we compare with.  ``codepage=437``:
#: the OEM code page of the short names (the kernel's default, said explicitly).
MOUNT_OPTIONS = "ro,shortname=mixed,utf8,codepage=437"

#: Seconds a whole boot may take before QEMU is killed (software emulation on a
#: shared CI machine; a normal boot with 16 disks takes well under a minute).
DEFAULT_TIMEOUT = float(os.environ.get("BLOCKIMG_KERNEL_TIMEOUT", "240"))

MAX_DISKS = 24      # virtio-blk-pci disks per boot (the pc machine has ~29 free PCI slots)

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules/order); do
  insmod /modules/$m || echo "@@FAIL insmod $m"
done
echo "@@BOOTED"
find_dev() {
  for b in /sys/block/vd*; do
    [ "$(cat $b/serial 2>/dev/null)" = "$1" ] && { echo ${b##*/}; return; }
  done
}
for s in $(cat /job/disks); do
  dev=""
  tries=0
  while [ -z "$dev" ] && [ $tries -lt 20 ]; do
    dev=$(find_dev $s)
    [ -n "$dev" ] || { sleep 0.5; tries=$((tries+1)); }
  done
  if [ -z "$dev" ]; then echo "@@NODEV $s"; continue; fi
  mkdir -p /mnt/$s
  if ! out=$(mount -t vfat -o "$(cat /job/options)" /dev/$dev /mnt/$s 2>&1); then
    echo "@@MOUNTFAIL $s $out"; continue
  fi
  echo "@@MOUNTED $s $dev $(cat /sys/block/$dev/queue/logical_block_size)"
  cd /mnt/$s
  find . -mindepth 1 -type d | sed "s|^\./|@@L $s d |"
  find . -mindepth 1 -type f | sed "s|^\./|@@L $s f |"
  find . -mindepth 1 ! -type d ! -type f | sed "s|^\./|@@L $s o |"
  xargs -0 -r sha256sum < /job/$s.list 2>&1 | sed "s|^|@@H $s |"
  cd /
  umount /mnt/$s
done
dmesg | grep -iE 'fat|vfat|virtio|vd[a-z]' | while IFS= read -r l; do echo "@@K $l"; done
echo "@@DONE"
sync
poweroff -f
"""


HASH_LINE = re.compile(r"[0-9a-f]{64}  ")


class VMError(Exception):
    """QEMU did not boot, run or finish the guest script; carries the console tail."""


@dataclass(frozen=True)
class Disk:
    """An image to attach: ``paths`` are the files the guest opens by name."""
    image: Path
    paths: Tuple[str, ...]
    block_size: int = 512


@dataclass
class DiskResult:
    """What the kernel made of one disk."""
    mounted: bool = False
    error: str = ""                          # mount failure / missing device
    device: str = ""                         # the guest's name for it (vda, ...)
    block_size: int = 0                      # logical block size the guest saw
    dirs: set = field(default_factory=set)   # relative paths listed by find
    files: set = field(default_factory=set)
    others: set = field(default_factory=set)
    hashes: Dict[str, str] = field(default_factory=dict)   # path -> sha256
    errors: Dict[str, str] = field(default_factory=dict)   # path -> open/read error


@dataclass
class Boot:
    """One guest run: per-disk results, the kernel's FAT/virtio messages, the console."""
    disks: List[DiskResult]
    kernel_log: List[str]
    console: str
    seconds: float


# -- the kernel, modules and initramfs -------------------------------------------

def find_kernel() -> Optional[Tuple[Path, Path]]:
    """(vmlinuz, modules dir) of the newest installed cloud kernel, or None."""
    found = []
    for vmlinuz in Path("/boot").glob("vmlinuz-*-cloud-amd64"):
        version = vmlinuz.name[len("vmlinuz-"):]
        moddir = Path("/lib/modules") / version
        if (moddir / "modules.dep").is_file():
            key = tuple(int(x) if x.isdigit() else 0 for x in re.split(r"[.-]", version))
            found.append((key, vmlinuz, moddir))
    if not found:
        return None
    _, vmlinuz, moddir = max(found)
    return vmlinuz, moddir


def is_static(path: Path) -> bool:
    """True if the ELF file has no program interpreter (a statically linked binary)."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:      # 64-bit ELF only
            return False
        end = "<" if head[5] == 1 else ">"
        phoff, = struct.unpack_from(end + "Q", head, 32)
        phentsize, phnum = struct.unpack_from(end + "HH", head, 54)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return all(struct.unpack_from(end + "I", table, i * phentsize)[0] != 3   # PT_INTERP
               for i in range(phnum))


def module_order(moddir: Path, names: Sequence[str] = MODULES) -> List[str]:
    """Module files (relative to ``moddir``) in load order: dependencies first."""
    deps: Dict[str, List[str]] = {}
    by_name: Dict[str, str] = {}
    for line in (moddir / "modules.dep").read_text().splitlines():
        path, _, rest = line.partition(":")
        deps[path] = rest.split()
        base = Path(path).name.split(".ko")[0]
        by_name[base.replace("-", "_")] = path
    order: List[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        for dep in reversed(deps.get(path, [])):
            visit(dep)
        order.append(path)

    for name in names:
        if name not in by_name:
            raise VMError(f"module {name} is not in {moddir}/modules.dep")
        visit(by_name[name])
    return order


def read_module(path: Path) -> bytes:
    """A module's bytes, decompressed (.ko, .ko.xz, .ko.zst, .ko.gz)."""
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    if path.name.endswith(".zst"):
        zstd = shutil.which("zstd")
        if zstd is None:
            raise VMError(f"{path} is zstd-compressed and zstd is not installed")
        return subprocess.run([zstd, "-dc", str(path)], check=True,
                              capture_output=True).stdout
    return data


class Cpio:
    """A newc ("070701") cpio archive, the format the kernel unpacks as initramfs."""

    def __init__(self) -> None:
        self.parts: List[bytes] = []
        self.ino = 1

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: Tuple[int, int] = (0, 0)):
        raw = name.encode() + b"\0"
        fields = (self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(raw), 0)
        self.ino += 1
        head = b"070701" + b"".join(b"%08X" % f for f in fields) + raw
        self.parts += [head, b"\0" * (-len(head) % 4), data, b"\0" * (-len(data) % 4)]

    def dir(self, name: str) -> None:
        self._entry(name, 0o040755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, 0o100000 | mode, data)

    def chardev(self, name: str, major: int, minor: int) -> None:
        self._entry(name, 0o020600, rdev=(major, minor))

    def bytes(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return b"".join(self.parts)


def build_initramfs(moddir: Path, busybox: Path, disks: Sequence[Disk],
                    serials: Sequence[str]) -> bytes:
    """The whole initramfs for one boot: busybox, modules, /init and the job files."""
    cpio = Cpio()
    for d in ("bin", "dev", "proc", "sys", "mnt", "modules", "job"):
        cpio.dir(d)
    cpio.chardev("dev/console", 5, 1)
    cpio.file("bin/busybox", busybox.read_bytes(), 0o755)
    cpio.file("init", INIT.encode(), 0o755)
    names = []
    for rel in module_order(moddir):
        name = Path(rel).name.split(".ko")[0] + ".ko"
        cpio.file(f"modules/{name}", read_module(moddir / rel))
        names.append(name)
    cpio.file("modules/order", "\n".join(names).encode() + b"\n")
    cpio.file("job/options", MOUNT_OPTIONS.encode() + b"\n")
    cpio.file("job/disks", "\n".join(serials).encode() + b"\n")
    for serial, disk in zip(serials, disks):
        for p in disk.paths:
            if not p or "\n" in p or "\0" in p or p.startswith("/"):
                raise ValueError(f"path {p!r} cannot be passed to the guest")
        cpio.file(f"job/{serial}.list", "".join(p + "\0" for p in disk.paths).encode())
    return cpio.bytes()


# -- running QEMU ----------------------------------------------------------------

def qemu_command(qemu: str, vmlinuz: Path, initrd: Path, disks: Sequence[Disk],
                 serials: Sequence[str]) -> List[str]:
    cmd = [qemu, "-machine", "pc,accel=tcg", "-m", "256", "-smp", "1",
           "-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none",
           "-serial", "stdio", "-no-reboot", "-net", "none",
           "-kernel", str(vmlinuz), "-initrd", str(initrd),
           "-append", "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init"]
    for i, (serial, disk) in enumerate(zip(serials, disks)):
        cmd += ["-drive", f"file={disk.image},if=none,id=d{i},format=raw,readonly=on",
                "-device", f"virtio-blk-pci,drive=d{i},serial={serial},"
                           f"logical_block_size={disk.block_size},"
                           f"physical_block_size={disk.block_size}"]
    return cmd


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def run_vm(disks: Sequence[Disk], *, qemu: str, busybox: Path, kernel: Tuple[Path, Path],
           timeout: float = DEFAULT_TIMEOUT) -> Boot:
    """Boot once with ``disks`` attached; raises VMError if the guest does not finish."""
    if not 1 <= len(disks) <= MAX_DISKS:
        raise ValueError(f"{len(disks)} disks (1..{MAX_DISKS} per boot)")
    vmlinuz, moddir = kernel
    serials = [f"bi{i:02d}" for i in range(len(disks))]
    with tempfile.TemporaryDirectory(prefix="blockimg-vm-") as tmp:
        initrd = Path(tmp) / "initramfs.cpio"
        initrd.write_bytes(build_initramfs(moddir, busybox, disks, serials))
        log = Path(tmp) / "console.log"
        cmd = qemu_command(qemu, vmlinuz, initrd, disks, serials)
        start = time.monotonic()
        with open(log, "wb") as out:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            try:
                proc.wait(timeout=timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        seconds = time.monotonic() - start
        console = log.read_bytes().decode("utf-8", "replace").replace("\r", "")
    if timed_out:
        raise VMError(f"QEMU timed out after {timeout:.0f} s and was killed; console tail:\n"
                      + tail(console))
    if "@@DONE" not in console.splitlines():
        raise VMError(f"the guest did not finish (QEMU exit status {proc.returncode}); "
                      f"console tail:\n{tail(console)}")
    boot = parse_console(console, disks, serials)
    boot.seconds = seconds
    return boot


def parse_console(console: str, disks: Sequence[Disk], serials: Sequence[str]) -> Boot:
    """The guest's ``@@`` lines, per disk (anything else on the console is ignored)."""
    results = {s: DiskResult() for s in serials}
    expected = dict(zip(serials, (set(d.paths) for d in disks)))
    kernel_log: List[str] = []
    for line in console.splitlines():
        if line.startswith("@@FAIL "):
            raise VMError(f"guest: {line[7:]}; console tail:\n{tail(console)}")
        if line.startswith("@@K "):
            kernel_log.append(line[4:])
            continue
        tag, _, rest = line.partition(" ")
        serial, _, rest = rest.partition(" ")
        r = results.get(serial)
        if r is None:
            continue
        if tag == "@@MOUNTED":
            r.mounted = True
            r.device, size = rest.split()[:2]
            r.block_size = int(size)
        elif tag in ("@@MOUNTFAIL", "@@NODEV"):
            r.error = f"{tag[2:].lower()}: {rest}"
        elif tag == "@@L":
            kind, _, path = rest.partition(" ")
            {"d": r.dirs, "f": r.files}.get(kind, r.others).add(path)
        elif tag == "@@H":
            if HASH_LINE.match(rest) and rest[66:] in expected[serial]:
                r.hashes[rest[66:]] = rest[:64]
            else:   # sha256sum's message: "can't open 'PATH': ...", "PATH: ..."
                named = [p for p in expected[serial] if p in rest]
                path = max(named, key=len) if named else ""
                r.errors[path] = rest
    return Boot([results[s] for s in serials], kernel_log, console, 0.0)
