"""blockimg's FAT images read by the Linux kernel's vfat driver (real-kernel tier).

Each case is a source tree written with ``blockimg create --format fat`` for
one target and sector size, attached read-only to a QEMU guest running
Debian's cloud kernel as a virtio-blk disk of one logical block size (see
tests/helpers/vm.py).  The guest mounts it with vfat, lists it, and opens every source file
*by name*; the test wants the kernel's listing to be the source tree and every
file's sha256 to be its source file's.  A reader that matches short names is
what catches an alias equal to another entry's name (issue 11, bug 1), which
``fsck.fat -n``, ``mcopy -s`` and blockimg's own reader do not.

All images (29 disks) share two boots, one per device block size, run once per module.
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Union

import pytest

from conftest import ROOT

from helpers import vm
from helpers.kernel_tier import require_vm_tools, source_of

EPOCH = "1700000000"


# -- source trees ----------------------------------------------------------------

def put(root: Path, rel: str, data: Union[bytes, None] = None) -> None:
    """A file whose bytes name it (so a wrong file is recognisable)."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if data is not None else (f"{rel}\n" * 3).encode())


def alias_tree(root: Path) -> None:
    """Real names shaped like the aliases of their neighbours' long names."""
    put(root, "longfile name.txt")
    for n in range(1, 12):
        put(root, f"longfile name {n}.txt")
    put(root, "longfi~3.txt")           # the case: lower-case, valid 8.3
    put(root, "LONGFI~5.TXT")           # upper-case 8.3 alias shape
    put(root, "abcdef~1.htm")
    put(root, "abcdefgh ijk.htm")
    # A directory named like an alias: its subtree must not be hidden.
    for d in ("longdirectory a", "longdirectory b"):
        put(root, f"dirs/{d}/same.txt")
        put(root, f"dirs/{d}/only in {d[-1]}.txt")
    put(root, "dirs/longdi~1/same.txt")
    put(root, "dirs/longdi~1/inside.txt")
    put(root, "dirs/longdi~1/deeper/leaf.txt")


def length_tree(root: Path) -> None:
    """Long names of 12-14, 26, 39 and 255 characters (long-name slot boundaries)."""
    for n in (12, 13, 14, 26, 39, 255):
        put(root, "n" * (n - 4) + ".txt")
        put(root, "x" * n)
    put(root, "d" * 255 + "/" + "f" * 251 + ".bin", bytes(range(256)) * 20)
    put(root, "mixed Case Name.Html")
    put(root, "lower.txt")
    put(root, "UPPER.TXT")
    put(root, "two.dots.in.name")


def unicode_tree(root: Path) -> None:
    """Long names outside ASCII (the generic target only)."""
    for rel in ("café.txt", "naïve résumé.txt", "日本語のファイル名.txt",
                "Ελληνικά/αρχείο.txt", "emoji 😀 smile.txt",
                "Ünïcödé directory/straße.txt", "é" * 125 + ".txt",   # 254 bytes: NAME_MAX on the host
                "Ωmega/" + "ж" * 40):
        put(root, rel)


def wide_tree(root: Path) -> None:
    """One directory with 300 entries: 200 long names sharing a prefix, 100 8.3 names."""
    for n in range(200):
        put(root, f"wide/entry number {n:03d}.txt")
    for n in range(100):
        put(root, f"wide/e_{n:03d}.txt")


def site_tree(root: Path) -> None:
    """The bundled example site."""
    import shutil
    shutil.copytree(ROOT / "fixtures" / "site", root, dirs_exist_ok=True)


TREES: Dict[str, Callable[[Path], None]] = {
    "alias": alias_tree, "lengths": length_tree, "unicode": unicode_tree,
    "wide300": wide_tree, "site": site_tree,
}


# -- cases -----------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    tree: str
    target: str
    sector: int      # the image's sector size (--sector-size)
    device: int      # the virtio disk's logical block size
    fat: str = ""    # --fat-type when not the default

    @property
    def image_key(self) -> tuple:
        return self.tree, self.target, self.sector, self.fat

    @property
    def id(self) -> str:
        fat = f"-fat{self.fat}" if self.fat else ""
        return f"{self.tree}-{self.target}{fat}-s{self.sector}-dev{self.device}"


def cases() -> List[Case]:
    """Mirage target (FAT16): 4096-byte sectors (its default) on both device
    sizes, 512-byte sectors on 512-byte devices.  Generic target (FAT12 for
    these small trees): the same, with Unicode names; and FAT32 for two trees."""
    out = []
    for tree in TREES:
        for target in ("mirage", "generic"):
            if tree == "unicode" and target == "mirage":
                continue        # the Mirage target takes ASCII names only
            out += [Case(tree, target, 4096, 512), Case(tree, target, 4096, 4096),
                    Case(tree, target, 512, 512)]
    out += [Case(tree, "generic", 512, 512, "32") for tree in ("alias", "site")]
    return out


CASES = cases()


@pytest.fixture(scope="module")
def kernel_results(tmp_path_factory):
    """Every case's image read by the kernel: {case id: (source, DiskResult | error text)}."""
    qemu, busybox, kernel = require_vm_tools()
    base = tmp_path_factory.mktemp("kernel")
    sources = {}
    for name, build in TREES.items():
        src = base / "src" / name
        src.mkdir(parents=True)
        build(src)
        sources[name] = (src, *source_of(src))
    images = {}
    disks: Dict[int, List[tuple]] = {}
    env = dict(os.environ, SOURCE_DATE_EPOCH=EPOCH)
    for case in CASES:
        key = case.image_key
        if key not in images:
            img = base / ("-".join(map(str, key)) + ".img")
            fat = ["--fat-type", case.fat] if case.fat else []
            res = subprocess.run(
                [sys.executable, "-m", "blockimg", "create", "--format", "fat", "-q",
                 "--target", case.target, "--sector-size", str(case.sector), *fat,
                 str(sources[case.tree][0]), "-o", str(img)],
                capture_output=True, text=True, env=env)
            assert res.returncode == 0, f"blockimg create {key}: {res.stderr}"
            images[key] = img
        src, files, dirs = sources[case.tree]
        disk = vm.Disk(images[key], tuple(sorted(files)), case.device)
        disks.setdefault(case.device, []).append((case, disk))
    results = {}
    for device, batch in sorted(disks.items()):
        for start in range(0, len(batch), vm.MAX_DISKS):
            chunk = batch[start:start + vm.MAX_DISKS]
            try:
                boot = vm.run_vm([d for _, d in chunk], qemu=qemu, busybox=busybox, kernel=kernel)
            except vm.VMError as e:
                for case, _ in chunk:
                    results[case.id] = (sources[case.tree], f"boot with {len(chunk)} disks: {e}")
                continue
            print(f"kernel tier: {len(chunk)} disks of {device}-byte blocks in {boot.seconds:.1f} s")
            for (case, _), r in zip(chunk, boot.disks):
                log = [ln for ln in boot.kernel_log if r.device and r.device in ln]
                results[case.id] = (sources[case.tree], r, log)
    return results


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_kernel_reads_every_file_by_name(case, kernel_results):
    (src, files, dirs), r, *rest = kernel_results[case.id]
    if isinstance(r, str):
        pytest.fail(r)
    log = "\n".join(rest[0]) if rest else ""
    assert r.mounted, f"vfat did not mount the image: {r.error}\nkernel: {log}"
    assert r.block_size == case.device
    by_hash = {}
    for path, digest in files.items():
        by_hash.setdefault(digest, path)
    problems = []
    for path, digest in sorted(files.items()):
        if path in r.errors:
            problems.append(f"{path!r}: {r.errors[path]}")
        elif r.hashes.get(path) != digest:
            got = r.hashes.get(path)
            other = by_hash.get(got)
            what = f"the bytes of {other!r}" if other else f"sha256 {got}"
            problems.append(f"{path!r}: opened by name, the kernel read {what}")
    listing = []
    if r.files != set(files):
        listing.append(f"files only in source {sorted(set(files) - r.files)[:10]}, "
                       f"only in the kernel's listing {sorted(r.files - set(files))[:10]}")
    if r.dirs != dirs:
        listing.append(f"dirs only in source {sorted(dirs - r.dirs)[:10]}, "
                       f"only in the kernel's listing {sorted(r.dirs - dirs)[:10]}")
    if r.others:
        listing.append(f"neither file nor directory: {sorted(r.others)[:10]}")
    assert not problems and not listing, (
        f"{len(problems)} of {len(files)} files read wrong by name:\n  "
        + "\n  ".join(problems[:30] + listing) + (f"\nkernel: {log}" if log else ""))
