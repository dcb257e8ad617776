"""FAT images changed by ``blockimg update`` read by the Linux kernel's vfat driver
(real-kernel tier, see vm.py): after two rounds of updates (files changed, added,
removed, renamed, a directory grown past its cluster, an alias taken by a new 8.3
name) the guest lists exactly the last source tree and reads every file by name."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from helpers import vm
from helpers.kernel_tier import require_vm_tools, source_of

T0 = 1_700_000_000


def put(root: Path, rel: str, data: bytes) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    os.utime(p, (T0, T0))


def blockimg(*argv) -> None:
    res = subprocess.run([sys.executable, "-m", "blockimg", *map(str, argv)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_kernel_reads_an_updated_image(tmp_path):
    qemu, busybox, kernel = require_vm_tools()
    src = tmp_path / "src"
    put(src, "index.html", b"<h1>hi</h1>")
    put(src, "abcdefghijk.htm", b"long name, alias ABCDEF~1.HTM")
    put(src, "blog/one.html", b"one" * 3000)
    put(src, "blog/A long name.html", b"long")
    put(src, "old/gone.txt", b"gone")
    image = tmp_path / "site.img"
    blockimg("create", src, "-o", image, "--format", "fat", "-q")
    # Round 1: change, add, remove, rename, grow a directory.
    put(src, "blog/one.html", b"ONE" * 5000)
    put(src, "news.html", b"news")
    shutil.rmtree(src / "old")
    (src / "blog/A long name.html").rename(src / "blog/renamed long name.html")
    for i in range(40):
        put(src, f"blog/post number {i:03d} of the year.html", b"p%d" % i)
    blockimg("update", image, src, "-q")
    # Round 2: a new file takes the kept entry's alias as its 8.3 name.
    put(src, "abcdef~1.htm", b"the 8.3 name")
    (src / "index.html").unlink()
    blockimg("update", image, src, "-q")
    files, dirs = source_of(src)
    boot = vm.run_vm([vm.Disk(image, tuple(sorted(files)), 4096)], qemu=qemu,
                     busybox=busybox, kernel=kernel)
    r = boot.disks[0]
    assert r.mounted, r.error
    assert r.files == set(files) and r.dirs == dirs
    assert not r.errors
    assert r.hashes == files
    assert hashlib.sha256(b"the 8.3 name").hexdigest() == r.hashes["abcdef~1.htm"]
