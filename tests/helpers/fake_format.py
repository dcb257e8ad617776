"""A minimal image format for testing what is format-independent (atomic output,
faults, manifests, verify) without depending on the tar or FAT writers.

Layout: ``FAKEIMG1``, a 4-byte little-endian length, a JSON index; file data
at ``align``-byte boundaries after ``HEADER`` bytes. Register it with
``use_fake_format(monkeypatch)``.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass

from blockimg import formats
from blockimg.write.copier import Copier
from blockimg.errors import CorruptImage
from blockimg.read.image import EntryInfo, Image

MAGIC = b"FAKEIMG1"
HEADER = 64 * 1024


@dataclass(frozen=True)
class Options:
    sector_size: int = 512
    align: int = 512
    target: str = "generic"


@dataclass(frozen=True)
class Plan:
    image_size: int
    sector_size: int
    align: int
    header: bytes
    files: tuple  # (SourceEntry, offset)

    def extents(self):
        for e, off in self.files:
            yield e.path, ([(off, e.size)] if e.size else [])


def plan(tree, options):
    pos = HEADER
    files = []
    index = []
    for e in tree.entries:
        kind = e.kind.value
        rec = {"path": e.path, "kind": kind, "size": e.size, "mode": e.mode, "mtime": e.mtime,
               "link": e.link_target}
        if kind == "file":
            rec["offset"] = pos
            files.append((e, pos))
            pos += -(-e.size // options.align) * options.align
        index.append(rec)
    body = json.dumps(index, sort_keys=True).encode()
    header = MAGIC + struct.pack("<I", len(body)) + body
    assert len(header) <= HEADER
    size = -(-max(pos, HEADER) // options.sector_size) * options.sector_size
    return Plan(size, options.sector_size, options.align, header, tuple(files))


def write(plan, device, *, progress=None, checksum=False):
    c = Copier(device, checksum=checksum, progress=progress,
               total=sum(e.size for e, _ in plan.files))
    c.put(0, plan.header)
    for e, off in plan.files:
        c.put_file(e, off)
    c.flush()
    return c.crcs


def detect(device):
    return device.size >= 12 and bytes(device.pread(0, 8)) == MAGIC


class FakeImage(Image):
    format = "fake"

    def __init__(self, device, *, owns_device=False):
        super().__init__(device, owns_device=owns_device)
        if not detect(device):
            raise CorruptImage("no FAKEIMG1 magic", offset=0)
        (n,) = struct.unpack("<I", bytes(device.pread(8, 4)))
        if n > HEADER - 12:
            raise CorruptImage("index too long", offset=8, field="length", value=n)
        for r in json.loads(bytes(device.pread(12, n))):
            ext = ((r["offset"], r["size"]),) if r["kind"] == "file" and r["size"] else ()
            self._index[r["path"]] = EntryInfo(r["path"], r["kind"], r["size"], r["mtime"],
                                               r["mode"], ext, r["link"])


def open_image(device, *, owns_device=False):
    return FakeImage(device, owns_device=owns_device)


def check(image, *, target="generic"):
    return []


def use_fake_format(monkeypatch):
    """Make ``format="fake"`` available and detected."""
    monkeypatch.setitem(formats.FORMATS, "fake", __name__)
    monkeypatch.setattr(formats, "DETECT_ORDER", ("fake",))
