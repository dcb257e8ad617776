"""Random sets of volumes (source trees in both formats, image files, empty space) on an
MBR or GPT disk: the table read back places every volume where the plan said, every
partition reads back exactly, and a second build gives the same bytes."""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

import blockimg
from blockimg.block.file import FileDevice
from blockimg.block.window import WindowDevice
from blockimg.disk.reader import read_table
from blockimg.disk.volumes import parse_volumes
from blockimg.disk.writer import build_disk

MTIME = 1_700_000_000
names = st.text("abcdefghij", min_size=1, max_size=8)
trees = st.dictionaries(names, st.binary(max_size=3000), min_size=1, max_size=4)
volume = st.one_of(
    st.tuples(st.just("source"), trees, st.sampled_from(["tar", "fat"])),
    st.tuples(st.just("image"), trees, st.just("tar")),
    st.tuples(st.just("empty"), st.integers(1, 64).map(lambda n: n * 512), st.none()))


def write_tree(root: Path, files: dict) -> Path:
    root.mkdir(parents=True)
    for name, data in files.items():
        (root / name).write_bytes(data)
        os.utime(root / name, (MTIME, MTIME))
    return root


@settings(max_examples=12)
@given(vols=st.lists(volume, min_size=1, max_size=4), table=st.sampled_from(["mbr", "gpt"]),
       align=st.sampled_from([4096, 65536, 1 << 20]))
def test_random_volume_sets_round_trip(vols, table, align):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        args, expect = [], []
        for i, (kind, content, fmt) in enumerate(vols):
            if kind == "empty":
                args.append(f"empty:{content},name=v{i}")
                expect.append(("empty", content))
            elif kind == "source":
                src = write_tree(tmp / f"src{i}", content)
                args.append(f"{src},name=v{i},format={fmt}")
                expect.append(("tree", content))
            else:
                src = write_tree(tmp / f"img{i}", content)
                img = tmp / f"img{i}.img"
                blockimg.create(src, img, mtime=MTIME)
                args.append(f"{img},name=v{i}")
                expect.append(("image", img.read_bytes()))
        disk = tmp / "disk.img"
        summary = build_disk(parse_volumes(args), disk, table=table, align=align, mtime=MTIME)
        first = hashlib.sha256(disk.read_bytes()).hexdigest()
        dev = FileDevice(str(disk))
        try:
            t = read_table(dev)
            assert t.kind == table and len(t.partitions) == len(vols)
            for part, slot, (what, content) in zip(t.partitions, summary.plan.slots, expect):
                assert (part.start, part.size) == (slot.start, slot.size)
                assert part.start % align == 0
                if table == "gpt":
                    assert part.name == slot.name
                window = WindowDevice(dev, part.start, part.size)
                if what == "empty":
                    assert bytes(window.pread(0, part.size)).count(0) == content
                elif what == "image":
                    assert bytes(window.pread(0, part.size)) == content
                else:
                    with blockimg.open(window) as img:
                        assert {e.path: img.read(e.path) for e in img.list()
                                if e.kind == "file"} == content
        finally:
            dev.close()
        build_disk(parse_volumes(args), disk, table=table, align=align, mtime=MTIME)
        assert hashlib.sha256(disk.read_bytes()).hexdigest() == first
