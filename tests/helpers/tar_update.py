"""The source site of the update tests (tar and FAT), and the check every updated image passes: GNU
tar and bsdtar extract the source exactly, blockimg reads it, the Mirage rules hold
(tests/unit/test_update_tar.py, tests/root/test_update_tar_root.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from blockimg import api
from blockimg.sources.directory import walk
from blockimg.update import diff_image
from conftest import assert_read_back, assert_same_tree, require_tool, run

T0 = 1_700_000_000


def write(root: Path, rel: str, data: bytes, mtime: int = T0) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    os.utime(p, (mtime, mtime))


def settle_dirs(root: Path) -> None:
    """Directory mtimes fixed (a tar update does not re-state existing directories)."""
    for d, _dirs, _files in os.walk(root):
        os.utime(d, (T0, T0))


def cli(*argv, check=True) -> subprocess.CompletedProcess:
    """``blockimg ARGV`` (text); with check, a failure fails the test."""
    if check:
        return run(sys.executable, "-m", "blockimg", *map(str, argv), text=True)
    return subprocess.run([sys.executable, "-m", "blockimg", *map(str, argv)],
                          capture_output=True, text=True)


def assert_exact(image: Path, src: Path, tmp: Path) -> None:
    """GNU tar and bsdtar extract ``src`` exactly; blockimg reads it; Mirage rules hold."""
    n = len(list(tmp.glob("out*")))
    assert_read_back("tar", image, src, tmp / f"out{n}")
    bsd = tmp / f"outb{n}"
    bsd.mkdir()
    run(require_tool("bsdtar"), "-xf", image, "-C", bsd)
    assert_same_tree(src, bsd)
    with api.open(image) as img:
        assert diff_image(img, walk(src)).empty
        for e in walk(src).entries:
            if e.kind.value == "file":
                assert img.read(e.path) == (src / e.path).read_bytes()
    assert "OK for the Mirage driver" in cli("check", "--target", "mirage", image).stdout
    assert image.stat().st_size % 4096 == 0


def make_site(src: Path) -> Path:
    """The small site the update tests change: four files in three directories."""
    write(src, "index.html", b"<h1>hi</h1>\n")
    write(src, "blog/one.html", b"one" * 1000)
    write(src, "blog/two.html", b"two" * 10)
    write(src, "img/logo.png", bytes(range(256)) * 40)
    settle_dirs(src)
    return src


#: ``python -c PAUSE_AT_FLUSH IMAGE SRC N``: ``blockimg.update.update`` that prints
#: "paused" and sleeps after its Nth flush (the tests SIGKILL it there).
PAUSE_AT_FLUSH = r"""
import sys, time
from blockimg.block.file import FileDevice
from blockimg.update import update
stop = int(sys.argv[3])
flushes = [0]
real = FileDevice.flush
def flush(self):
    real(self)
    flushes[0] += 1
    if flushes[0] == stop:
        print("paused", flush=True)
        time.sleep(60)
FileDevice.flush = flush
update(sys.argv[1], sys.argv[2])
"""


def _under_a_file(src: Path, name: str) -> bool:
    """Whether a parent of ``name`` is a file in ``src``."""
    return any((src / "/".join(name.split("/")[:i])).is_file()
               for i in range(1, name.count("/") + 1))


def apply_round(src: Path, ops, mtime: int, *, keep_one: bool = False) -> None:
    """One round of random ``(op, name, other, data)`` changes to ``src`` (add, change,
    remove, rename; ones the tree cannot take are passed over), new files at ``mtime``;
    empty directories removed; ``keep_one``: never remove the last file."""
    for op, name, other, data in ops:
        files = sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file())
        blocked = (src / name).is_dir() or _under_a_file(src, name)
        if op in ("add", "change") and not blocked:
            write(src, name, data, mtime)
        elif op == "remove" and len(files) > (1 if keep_one else 0):
            (src / files[sum(name.encode()) % len(files)]).unlink()
        elif op == "rename" and files and not (src / other).exists() \
                and not _under_a_file(src, other):
            old = src / files[sum(name.encode()) % len(files)]
            (src / other).parent.mkdir(parents=True, exist_ok=True)
            old.rename(src / other)
    for d in sorted((p for p in src.rglob("*") if p.is_dir()), reverse=True):
        if not any(d.iterdir()):
            d.rmdir()
    settle_dirs(src)
