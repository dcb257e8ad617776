"""Benchmarks of building and reading images through the public API, per backend."""
from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

import blockimg

FORMATS = ("tar", "fat")
BACKENDS = ("file", "mmap", "memory")


def open_image(path: str, backend: str):
    """Open ``path`` with the file or mmap backend, or from memory."""
    if backend == "memory":
        return blockimg.open(blockimg.MemoryDevice(data=Path(path).read_bytes()))
    return blockimg.open(path, backend=backend)


def _image_size(src: str, fmt: str, tmp_path) -> int:
    probe = tmp_path / f"probe.{fmt}"
    return blockimg.create(src, str(probe), format=fmt).image_size


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("corpus", ["site", "small"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_create(benchmark, corpora, tmp_path, fmt, corpus, backend):
    src = corpora[corpus]["path"]
    out = tmp_path / f"out.{fmt}"
    size = _image_size(src, fmt, tmp_path) if backend != "file" else 0

    def build():
        if backend == "file":
            return blockimg.create(src, str(out), format=fmt)
        if backend == "memory":
            return blockimg.create(src, blockimg.MemoryDevice(size), format=fmt)
        with open(out, "wb") as f:
            f.truncate(size)
        dev = blockimg.MmapDevice(str(out), writable=True)
        try:
            return blockimg.create(src, dev, format=fmt)
        finally:
            dev.close()

    summary = benchmark(build)
    assert summary.files == corpora[corpus]["files"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_read_every_file(benchmark, corpora, images, fmt, backend):
    with open_image(images[(fmt, "site")], backend) as img:
        files = [e.path for e in img if e.kind == "file"]

        def read_all():
            return sum(len(img.view(p)) for p in files)

        total = benchmark(read_all)
    assert total == corpora["site"]["bytes"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_read_large_file(benchmark, corpora, images, fmt, backend):
    big = corpora["big"]
    with open_image(images[(fmt, "big")], backend) as img:
        total = benchmark(lambda: sum(len(c) for c in img.iter_chunks(big["largest"])))
    assert total == big["largest_bytes"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_random_4k_reads(benchmark, corpora, images, fmt, backend):
    """A web server answering range requests: 1,000 random 4 KiB reads in a large file."""
    big = corpora["big"]
    rng = random.Random(5)
    offsets = [rng.randrange(0, max(big["largest_bytes"] - 4096, 1)) for _ in range(1000)]
    with open_image(images[(fmt, "big")], backend) as img:
        f = img.open(big["largest"])
        total = benchmark(lambda: sum(len(f.view(o, 4096)) for o in offsets))
        if backend in ("mmap", "memory"):
            assert isinstance(f.view(offsets[0], 4096), memoryview), "reads should not copy"
    assert total == 4096 * len(offsets)


@pytest.mark.parametrize("fmt", FORMATS)
def test_open_index(benchmark, images, fmt):
    """Opening an image: detecting the format and building the index."""
    path = images[(fmt, "site")]

    def opened():
        with blockimg.open(path) as img:
            return len(img)

    assert benchmark(opened) > 0


def test_extract_all(benchmark, corpora, images, tmp_path):
    dest = tmp_path / "x"
    counter = iter(range(1 << 30))

    def extract():
        target = dest / str(next(counter))
        with blockimg.open(images[("tar", "site")]) as img:
            return img.extract(str(target))

    report = benchmark(extract)
    assert report.ok
    assert os.path.isdir(dest)
