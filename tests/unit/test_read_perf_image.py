"""Reading fast without changing a byte: kernel-path extraction and cat, zero-copy views.

``Image.extract`` and ``blockimg cat`` move file data with
``ImageFile.copy_to`` (``copy_file_range``/``sendfile`` where the backend is
a file, bounded chunks otherwise); ``ImageFile.view`` finds the first
extent by bisection and returns a slice of the mapping, not a copy, for a
range inside one extent with the mmap backend.
"""
from __future__ import annotations

import mmap
import os
import random
import subprocess
import sys

import pytest

from helpers.fat_volume import FILES, Volume

import blockimg
from blockimg.block.memory import MemoryDevice
from blockimg.cli import main
from blockimg.read.image import EntryInfo, ImageFile
from conftest import ROOT

BIG = 3 * (1 << 20) + 12345                   # more than one 1 MiB chunk


def _payload(n, seed):
    rnd = random.Random(seed)
    return bytes(rnd.getrandbits(8) for _ in range(4096)) * (n // 4096) + b"x" * (n % 4096)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    base = tmp_path_factory.mktemp("readperf")
    src = base / "src"
    (src / "d" / "e").mkdir(parents=True)
    files = {"big.bin": _payload(BIG, 1), "d/small.txt": b"hello\n", "d/e/empty": b"",
             "d/e/mid.bin": _payload(70000, 2)}
    for rel, data in files.items():
        (src / rel).write_bytes(data)
    out = {}
    for fmt in ("tar", "fat"):
        img = base / f"site.{fmt}"
        blockimg.create(str(src), str(img), format=fmt, mtime=1700000000)
        out[fmt] = str(img)
    return files, out


def _fragmented_fat():
    """A FAT16 volume whose a.txt is split in two runs far apart."""
    v = Volume("fat16")
    a = v.clusters("a.txt")
    far = v.geo.cluster_count - 10
    cs = v.geo.cluster_size
    data = bytes(range(256)) * (4 * cs // 256)
    v.set_fat(a[1], far)
    v.set_fat(far, far + 1)
    v.set_fat(far + 1, 0xFFFF)
    v.set_fat(a[2], 0)
    v.set_size("a.txt", 4 * cs)
    for i, c in enumerate([a[0], a[1], far, far + 1]):
        off = v.geo.cluster_offset(c)
        v.data[off:off + cs] = data[i * cs:(i + 1) * cs]
    return v, data


def _tree(root):
    out = {}
    for dirpath, _dirs, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            with open(p, "rb") as f:
                out[os.path.relpath(p, root)] = (f.read(), os.stat(p).st_mode & 0o777,
                                                 int(os.stat(p).st_mtime))
    return out


def _no_kernel(monkeypatch):
    def refuse(*a, **k):
        raise OSError(22, "not here")
    monkeypatch.setattr(os, "copy_file_range", refuse, raising=False)
    monkeypatch.setattr(os, "sendfile", refuse, raising=False)


@pytest.mark.parametrize("fmt", ["tar", "fat"])
@pytest.mark.parametrize("backend", [None, "mmap"])
def test_extraction_through_the_kernel_gives_identical_bytes(images, fmt, backend, tmp_path,
                                                             monkeypatch):
    files, imgs = images
    with blockimg.open(imgs[fmt], backend=backend) as img:
        report = img.extract(str(tmp_path / "k"))
    assert report.ok
    kernel = _tree(tmp_path / "k")
    assert {k: v[0] for k, v in kernel.items()} == files
    _no_kernel(monkeypatch)
    with blockimg.open(imgs[fmt], backend=backend) as img:
        img.extract(str(tmp_path / "c"))
    assert _tree(tmp_path / "c") == kernel


def test_fragmented_file_extracts_and_reads_identically(tmp_path, monkeypatch):
    v, data = _fragmented_fat()
    img_path = tmp_path / "frag.img"
    img_path.write_bytes(bytes(v.data))
    for backend in (None, "mmap"):
        with blockimg.open(str(img_path), backend=backend) as img:
            assert len(img.stat("a.txt").extents) == 2
            assert img.read("a.txt") == data
            img.extract(str(tmp_path / f"out-{backend}"))
        assert (tmp_path / f"out-{backend}" / "a.txt").read_bytes() == data
        for rel, content in FILES.items():
            if rel != "a.txt":
                assert (tmp_path / f"out-{backend}" / rel).read_bytes() == content
    _no_kernel(monkeypatch)
    with blockimg.open(str(img_path)) as img:
        img.extract(str(tmp_path / "slow"))
    assert (tmp_path / "slow" / "a.txt").read_bytes() == data


def test_views_match_the_bytes_at_any_offset():
    """``view``/``read``/``copy_to`` over many extents agree with the plain bytes."""
    rnd = random.Random(3)
    dev = MemoryDevice(1 << 16)
    content = bytes(rnd.getrandbits(8) for _ in range(1 << 16))
    dev.pwrite(0, content)
    extents, expect = [], b""
    for _ in range(40):
        off = rnd.randrange(0, (1 << 16) - 512)
        n = rnd.choice([1, 7, 512, 513, 1000])
        extents.append((off, n))
        expect += content[off:off + n]
    info = EntryInfo("f", "file", len(expect), extents=tuple(extents))
    f = ImageFile(dev, info)
    for _ in range(500):
        off = rnd.randrange(-5, len(expect) + 5)
        n = rnd.randrange(0, 3000)
        lo = min(max(off, 0), len(expect))
        assert bytes(f.view(off, n)) == expect[lo:lo + max(0, n)]
    f.seek(100)
    assert f.read(50) == expect[100:150]
    buf = bytearray(64)
    f.seek(len(expect) - 10)
    assert f.readinto(buf) == 10 and bytes(buf[:10]) == expect[-10:]


def test_copy_to_a_file_from_an_offset(images, tmp_path):
    files, imgs = images
    for fmt in ("tar", "fat"):
        with blockimg.open(imgs[fmt]) as img:
            f = img.open("big.bin")
            out = tmp_path / f"part-{fmt}"
            fd = os.open(str(out), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                assert f.copy_to(fd, 1000, 2 << 20) == 2 << 20
                assert f.copy_to(fd, BIG - 5) == 5
                assert f.copy_to(fd, BIG + 10) == 0
            finally:
                os.close(fd)
            assert out.read_bytes() == files["big.bin"][1000:1000 + (2 << 20)] + \
                files["big.bin"][-5:]


@pytest.mark.parametrize("fmt", ["tar", "fat"])
def test_one_extent_reads_are_zero_copy_with_mmap(images, fmt):
    files, imgs = images
    with blockimg.open(imgs[fmt], backend="mmap") as img:
        ext = img.stat("big.bin").extents
        assert len(ext) == 1
        rnd = random.Random(5)
        for _ in range(200):
            off = rnd.randrange(0, BIG - 4096)
            v = img.view("big.bin", off, 4096)
            assert isinstance(v, memoryview) and isinstance(v.obj, mmap.mmap)
            assert v == files["big.bin"][off:off + 4096]
            v.release()
        f = img.open("big.bin")
        v = f.view(BIG - 100, 4096)                     # clipped at the end
        assert isinstance(v.obj, mmap.mmap) and bytes(v) == files["big.bin"][-100:]
        v.release()


def _cat(*args, **kw):
    return subprocess.run([sys.executable, "-m", "blockimg", "cat", *map(str, args)],
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), **kw)


@pytest.mark.parametrize("fmt", ["tar", "fat"])
@pytest.mark.parametrize("prefix", ["", "mmap:"])
def test_cat_to_a_pipe_a_file_and_an_append_file(images, fmt, prefix, tmp_path):
    files, imgs = images
    img = prefix + imgs[fmt]
    res = _cat(img, "big.bin", capture_output=True)          # a pipe
    assert res.returncode == 0 and res.stdout == files["big.bin"]
    out = tmp_path / "o.bin"
    with open(out, "wb") as f:
        assert _cat(img, "d/e/mid.bin", stdout=f).returncode == 0
    assert out.read_bytes() == files["d/e/mid.bin"]
    with open(out, "ab") as f:
        assert _cat(img, "big.bin", stdout=f).returncode == 0
    assert out.read_bytes() == files["d/e/mid.bin"] + files["big.bin"]


def test_cat_into_a_replaced_stdout(images, capsysbinary):
    files, imgs = images
    assert main(["cat", imgs["fat"], "d/small.txt"]) == 0
    assert capsysbinary.readouterr().out == b"hello\n"


def test_cat_into_a_closed_pipe_exits_141(images, spawn):
    files, imgs = images
    p = spawn([sys.executable, "-m", "blockimg", "cat", imgs["tar"], "big.bin"],
              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
              env=dict(os.environ, PYTHONPATH=str(ROOT)))
    p.stdout.read(10)
    p.stdout.close()
    p.wait(timeout=60)
    assert p.returncode == 141
    assert b"Traceback" not in p.stderr.read()
    p.stderr.close()
