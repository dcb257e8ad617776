"""A file's content as a byte range of another file (``SourceEntry.offset``): copied from
there by both copy paths (gathered small files, copy_file_range for big ones), with and
without checksums, and an archive that shrinks under the build is reported."""
from __future__ import annotations

import os

import pytest

from blockimg.block.file import FileDevice
from blockimg.block.memory import MemoryDevice
from blockimg.trust.checksum import crc32c
from blockimg.write.copier import SMALL_FILE, Copier
from blockimg.errors import SourceChanged
from blockimg.sources.directory import Kind, SourceEntry


def _archive(tmp_path, sizes):
    """A file holding a marker byte, then each payload, then trailing bytes."""
    path = tmp_path / "archive"
    payloads, offsets, data = [], [], bytearray(b"H" * 512)
    for i, n in enumerate(sizes):
        offsets.append(len(data))
        p = bytes((i * 7 + j) % 251 for j in range(n))
        payloads.append(p)
        data += p + b"T" * 700          # what follows a member is not its content
    path.write_bytes(bytes(data))
    return str(path), payloads, offsets


@pytest.mark.parametrize("checksum", [False, True])
@pytest.mark.parametrize("device", ["file", "memory"])
def test_ranges_copy_exactly_their_bytes(tmp_path, checksum, device):
    sizes = [0, 1, 5000, SMALL_FILE - 1, SMALL_FILE + 1, 3 * SMALL_FILE + 17]
    src, payloads, offsets = _archive(tmp_path, sizes)
    total = (sum(sizes) + 4096 * len(sizes)) // 512 * 512 + 512
    if device == "file":
        img = tmp_path / "img"
        img.write_bytes(bytes(total))
        dev = FileDevice(str(img), writable=True)
    else:
        dev = MemoryDevice(total)
    at, placed = 0, []
    with Copier(dev, checksum=checksum) as cp:
        for i, (n, off) in enumerate(zip(sizes, offsets)):
            e = SourceEntry(f"f{i}", Kind.FILE, n, 0, 0o644, src, offset=off)
            crc = cp.put_file(e, at)
            if checksum:
                assert crc == crc32c()(payloads[i])
            placed.append(at)
            at += n + 4096
        cp.flush()
    for p, where in zip(payloads, placed):
        assert bytes(dev.pread(where, len(p))) == p
    dev.close()


def test_an_archive_that_shrank_is_reported(tmp_path):
    src, payloads, offsets = _archive(tmp_path, [10, SMALL_FILE * 2])
    os.truncate(src, offsets[1] + 100)
    dev = MemoryDevice(1 << 20)
    with Copier(dev) as cp:
        cp.put_file(SourceEntry("a", Kind.FILE, 10, 0, 0o644, src, offset=offsets[0]), 0)
        with pytest.raises(SourceChanged, match="archive shrank"):
            cp.put_file(SourceEntry("b", Kind.FILE, SMALL_FILE * 2, 0, 0o644, src,
                                    offset=offsets[1]), 4096)
    os.truncate(src, offsets[0] + 4)
    with Copier(dev) as cp:
        with pytest.raises(SourceChanged):
            cp.put_file(SourceEntry("a", Kind.FILE, 10, 0, 0o644, src, offset=offsets[0]), 0)
