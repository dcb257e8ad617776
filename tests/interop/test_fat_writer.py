"""FAT images from the writer, read back by fsck.fat, mtools, pyfatfs and blockimg.

Every image: ``fsck.fat -n`` prints only its banner and summary; ``mcopy -s``,
pyfatfs and blockimg's reader give back exactly the source tree (names and
bytes) and ``blockimg check`` finds nothing (with the Mirage rules for Mirage
images); written
twice over storage pre-filled with two different marker bytes, the images
differ only in free clusters (nothing structural forgotten).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from blockimg.block import FileDevice, MemoryDevice
from blockimg.fat import Options, plan, write
from blockimg.sources.directory import walk

from conftest import require_tool, run
from helpers.fat_readback import build_image, fsck_clean, mtools_env, verify

MTIME = 1700000000          # 2023-11-14 22:13:20 UTC


# -- the source tree -------------------------------------------------------------

def make_tree(root: Path, *, unicode: bool = False) -> Path:
    root.mkdir()
    (root / "README").write_bytes(b"upper-case 8.3 name\n")
    (root / "FAT.ML").write_bytes(b"let x = 1\n")
    (root / "index.txt").write_bytes(b"lower-case 8.3 name\n")
    (root / "manifest.json").write_bytes(b"{}\n")                       # 13 characters
    (root / "abcdefghijklmnopqrstuvwxyz").write_bytes(b"26")            # 26 characters
    (root / ("n" * 39)).write_bytes(b"39")                               # 39 characters
    (root / "a name with spaces.tar.gz").write_bytes(os.urandom(5000))
    (root / ".hidden").write_bytes(b"dot")
    (root / "empty").write_bytes(b"")
    (root / "one-cluster.bin").write_bytes(os.urandom(4096))
    (root / "two-clusters.bin").write_bytes(os.urandom(8192))
    (root / "big.bin").write_bytes(os.urandom(300_000))                 # kernel-copy path
    (root / "emptydir").mkdir()
    deep = root / "sub" / "Deeper" / "deepest"
    deep.mkdir(parents=True)
    (deep / "leaf.TXT").write_bytes(b"leaf")
    many = root / "sub" / "many"
    many.mkdir()
    for i in range(110):                    # > 1 cluster of entries, tails past ~9 and ~99
        (many / f"longname{i:03d}.html").write_bytes(b"%d" % i)
    if unicode:
        (root / "héllo wörld.txt").write_bytes(b"latin")
        (root / "日本語のファイル名.txt").write_bytes(b"cjk")
        (root / "Ωmega").mkdir()
        (root / "Ωmega" / "ß.txt").write_bytes(b"sharp s")
    for p in sorted(root.rglob("*"), reverse=True):
        os.utime(p, (MTIME, MTIME))
    return root


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    return make_tree(tmp_path_factory.mktemp("fat") / "src")


@pytest.fixture(scope="module")
def usrc(tmp_path_factory) -> Path:
    return make_tree(tmp_path_factory.mktemp("fatu") / "src", unicode=True)


# -- the matrix ------------------------------------------------------------------

MATRIX = [
    dict(),                                                            # mirage defaults
    dict(sector_size=512, align=512),                                  # mirage, smallest
    dict(target="generic", fat_type=12, sector_size=512, align=512),
    dict(target="generic", fat_type=12, sector_size=4096),
    dict(target="generic", fat_type=12, sector_size=512, align=65536),
    dict(target="generic", fat_type=16, sector_size=512),
    dict(target="generic", fat_type=16, sector_size=4096, align=1 << 20),
    dict(target="generic", fat_type=16, sector_size=512, align=4 << 20),
    dict(target="generic", fat_type=16, sector_size=2048, fats=1),
    dict(target="generic", fat_type=32, sector_size=512, align=512),
    dict(target="generic", fat_type=32, sector_size=512, align=4 << 20),
    dict(target="generic", fat_type=32, sector_size=4096),
    dict(target="generic", fat_type=32, sector_size=1024, cluster_size=4096),
    dict(target="generic", label="BLOCKIMG"),
    dict(target="generic", size=48 << 20),
]


def _id(opts):
    return ",".join(f"{k}={v}" for k, v in opts.items()) or "mirage-defaults"


@pytest.mark.parametrize("opts", MATRIX, ids=[_id(o) for o in MATRIX])
def test_read_back(opts, src, tmp_path):
    img = tmp_path / "fat.img"
    p = build_image(walk(src), img, **opts)
    g = p.geometry
    if "fat_type" in opts:
        assert p.fat_type == opts["fat_type"]
    assert g.sector_size == opts.get("sector_size", 4096 if "target" not in opts else 512)
    align = max(opts.get("align", 4096), g.sector_size)
    assert g.fat_offset(0) % align == 0 and g.data_offset % align == 0
    if p.fat_type == 32 or align <= 1 << 20:
        assert g.fat_offset(1) % align == 0 and g.root_offset % align == 0
    if "size" in opts:
        assert img.stat().st_size == opts["size"]
    verify(img, src, tmp_path, mirage=opts.get("target", "mirage") == "mirage")


@pytest.mark.parametrize("opts", [dict(target="generic"), dict(target="generic", fat_type=32),
                                  dict(target="generic", fat_type=12, sector_size=4096)],
                         ids=_id)
def test_unicode_names(opts, usrc, tmp_path):
    img = tmp_path / "fat.img"
    build_image(walk(usrc), img, **opts)
    verify(img, usrc, tmp_path)


def test_astral_names_pyfatfs(tmp_path):
    """Surrogate pairs: pyfatfs reads them back; mtools 4.0.32 cannot (it drops them)."""
    root = tmp_path / "src"
    root.mkdir()
    (root / "emoji-\U0001F600.txt").write_bytes(b"smile")
    (root / "\U0001D11E clef").write_bytes(b"music")
    img = tmp_path / "fat.img"
    build_image(walk(root), img, target="generic")
    verify(img, root, tmp_path, mtools=False)


def test_mtools_shows_utc_times(src, tmp_path):
    img = tmp_path / "fat.img"
    build_image(walk(src), img)
    out = run(require_tool("mdir"), "-i", img, "::/README", env=mtools_env()).stdout.decode()
    assert "2023-11-14  22:13" in out, out


def test_deterministic(src, tmp_path):
    a, b = tmp_path / "a.img", tmp_path / "b.img"
    build_image(walk(src), a)
    build_image(walk(src), b)
    assert a.read_bytes() == b.read_bytes()


def test_large_sparse_fat32(tmp_path):
    """A FAT32 volume with 1 GiB free: written sparsely, structure still clean."""
    root = tmp_path / "src"
    root.mkdir()
    (root / "x").write_bytes(b"x")
    img = tmp_path / "fat.img"
    p = build_image(walk(root), img, target="generic", free=1 << 30)
    assert p.fat_type == 32 and p.image_size > 1 << 30
    assert img.stat().st_blocks * 512 < 64 << 20
    verify(img, root, tmp_path)


def test_blockimg_checksums_match(src, tmp_path):
    from blockimg.trust.checksum import crc32c
    p = plan(walk(src), Options())
    dev = MemoryDevice(p.image_size, sector_size=p.sector_size)
    crcs = write(p, dev, checksum=True)
    f = crc32c()
    files = {e.path: e for e in walk(src).entries if e.kind.value == "file"}
    assert set(crcs) == set(files)
    for path, e in files.items():
        assert crcs[path] == f(Path(e.source).read_bytes())


def test_progress_reports_every_file_byte(src):
    p = plan(walk(src), Options())
    seen = []
    write(p, MemoryDevice(p.image_size, sector_size=p.sector_size),
          progress=lambda done, total: seen.append((done, total)))
    total = sum(e.size for e in walk(src).entries if e.kind.value == "file")
    assert seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_source_changed_after_planning(tmp_path):
    from blockimg.errors import SourceChanged
    root = tmp_path / "src"
    root.mkdir()
    (root / "a.txt").write_bytes(b"12345")
    p = plan(walk(root), Options())
    (root / "a.txt").write_bytes(b"123456789")
    with pytest.raises(SourceChanged, match="a.txt"):
        write(p, MemoryDevice(p.image_size, sector_size=p.sector_size))


def test_32gib_fat32_bounded_memory(src, tmp_path):
    """A 32 GiB FAT32 volume (two 8 MiB FATs) is written with a few MiB of Python memory."""
    import tracemalloc
    p = plan(walk(src), Options(target="generic", size=32 << 30))
    assert p.fat_type == 32 and p.geometry.fat_bytes > 4 << 20
    img = tmp_path / "big.img"
    dev = FileDevice.create(str(img), p.image_size, sector_size=p.sector_size)
    tracemalloc.start()
    try:
        write(p, dev)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        dev.close()
    assert peak < 16 << 20, f"peak {peak} bytes"
    assert img.stat().st_blocks * 512 < 64 << 20            # sparse: free clusters are holes
    fsck_clean(img)
