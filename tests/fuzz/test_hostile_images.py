"""Every image in fixtures/hostile: refused with CorruptImage, or a documented safe outcome.

The images and ``cases.json`` (what each exercises, what is expected) are
made by ``tools/make-hostile-fixtures``; this also checks that they are
exactly what that script makes.
"""
from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest

from blockimg.block.memory import MemoryDevice
from blockimg.errors import CorruptImage
from blockimg.formats import format_module
from conftest import ROOT
from helpers.fuzzer import exercise

HOSTILE = ROOT / "fixtures" / "hostile"
CASES = json.loads((HOSTILE / "cases.json").read_text())

# What a reader shows for the images expected to open ("safe"): the listing,
# and the names it left out as unsafe.
CLEAN_FAT = ["hello.txt", "sub", "sub/A.TXT", "long name.txt"]
SAFE = {
    "fat12-clean.img.gz": (CLEAN_FAT, []),
    "fat32-clean.img.gz": (["f.txt", "dir", "dir/inner file.txt"], []),
    "fat-lfn-bad-checksum.img.gz": (["HELLO.TXT", "sub", "sub/A.TXT", "long name.txt"], []),
    "fat-lfn-broken-sequence.img.gz": (CLEAN_FAT[:3] + ["LONGNA~1.TXT"], []),
    "fat-lfn-missing-last-flag.img.gz": (CLEAN_FAT[:3] + ["LONGNA~1.TXT"], []),
    "fat-lfn-orphan.img.gz": (CLEAN_FAT[:3], []),
    "fat-lfn-dotdot-name.img.gz": (CLEAN_FAT, [".."]),
    "fat-lfn-slash-dotdot-name.img.gz": (CLEAN_FAT, ["../../evil.txt"]),
    "fat-lfn-nul-in-name.img.gz": (CLEAN_FAT + ["a"], []),
    "fat-short-name-with-nuls.img.gz": (CLEAN_FAT, ["BBJQD$0~. \0\0"]),
    "tar-absolute-name.tar": (["hello.txt", "etc", "etc/evil.txt"], []),
    "tar-dotdot-name.tar": (["hello.txt"], ["../../evil.txt"]),
    "tar-hardlink-out.tar": (["hello.txt", "h"], []),
    "tar-symlink-out-then-file.tar": (["d", "d/evil.txt"], []),
    "tar-ustar-name-with-nul.tar": (["a.txt"], []),
}

# The cases the issue names, each by at least one image.
REQUIRED = {
    "FAT chain loop": ["fat-chain-loop.img.gz", "fat-chain-self-loop.img.gz"],
    "FAT cross-link": ["fat-cross-linked-chains.img.gz"],
    "cluster beyond the volume": ["fat-chain-beyond-volume.img.gz",
                                  "fat-start-cluster-beyond-volume.img.gz"],
    "directory cycle": ["fat-dir-cycle-self.img.gz", "fat-dir-cycle-ancestor.img.gz"],
    "BPB zero fields": ["fat-bpb-zero-bytes-per-sector.img.gz",
                        "fat-bpb-zero-sectors-per-cluster.img.gz", "fat-bpb-zero-fats.img.gz",
                        "fat-bpb-zero-total-sectors.img.gz", "fat-bpb-zero-fat-size.img.gz"],
    "BPB absurd fields": ["fat-bpb-bytes-per-sector-1000.img.gz",
                          "fat-bpb-total-sectors-32-absurd.img.gz",
                          "fat-bpb-huge-root-entries.img.gz", "fat-bpb-huge-fat-size.img.gz"],
    "FAT32 root cluster out of range": ["fat32-root-cluster-beyond-volume.img.gz",
                                        "fat32-root-cluster-zero.img.gz"],
    "LFN broken or bad checksum": ["fat-lfn-bad-checksum.img.gz",
                                   "fat-lfn-broken-sequence.img.gz", "fat-lfn-orphan.img.gz"],
    "tar bad checksum": ["tar-bad-checksum.tar"],
    "tar negative or huge size": ["tar-negative-size.tar", "tar-huge-size-octal.tar",
                                  "tar-huge-size-base256.tar"],
    "tar size past the end": ["tar-size-past-end.tar", "tar-pax-size-record-lies.tar"],
    "pax record lying lengths": ["tar-pax-length-too-long.tar", "tar-pax-length-too-short.tar"],
    "endless extended headers": ["tar-endless-pax-headers.tar.gz",
                                 "tar-endless-gnu-longname.tar.gz"],
    "path bomb (issue 11)": ["tar-pax-path-50000-components.tar.gz",
                             "tar-gnu-longname-50000-components.tar.gz",
                             "fat-deep-directory-chain.img.gz"],
    "short name with NULs, as mtools wrote (issue 11)": ["fat-short-name-with-nuls.img.gz"],
    "names with NUL": ["tar-pax-path-with-nul.tar", "tar-gnu-longname-with-nul.tar",
                       "tar-ustar-name-with-nul.tar", "fat-lfn-nul-in-name.img.gz"],
}


def load(name: str) -> bytes:
    data = (HOSTILE / name).read_bytes()
    return gzip.decompress(data) if name.endswith(".gz") else data


def fmt_of(name: str) -> str:
    return "tar" if name.startswith("tar") else "fat"


def open_and_read_all(name: str):
    """Open the image as its format, list it and read every file in full."""
    data = load(name)
    dev = MemoryDevice(data=data + bytes(-len(data) % 512), writable=False)
    img = format_module(fmt_of(name)).open_image(dev)
    entries = img.list()
    for e in entries:
        if e.kind == "file":
            assert len(img.read(e.path)) == e.size
    return img, entries


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c["expect"] == "corrupt"))
def test_corrupt_image_is_refused(name):
    with pytest.raises(CorruptImage) as ei:
        open_and_read_all(name)
    assert ei.value.rule
    assert ei.value.offset is None or ei.value.offset >= 0


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c["expect"] == "safe"))
def test_safe_image_opens_with_clean_names(name):
    img, entries = open_and_read_all(name)
    listing, unsafe = SAFE[name]
    assert [e.path for e in entries] == listing
    assert [n for n, _why in getattr(img, "unsafe_names", [])] == unsafe
    for e in entries:
        parts = e.path.split("/")
        assert not e.path.startswith("/") and "\0" not in e.path
        assert all(p not in ("", ".", "..") for p in parts), e.path


def test_every_safe_case_has_an_expected_listing():
    assert sorted(SAFE) == sorted(n for n, c in CASES.items() if c["expect"] == "safe")


@pytest.mark.parametrize("name", sorted(CASES))
def test_invariant_holds_for_every_reader(name):
    """Opened as either format (and detected), each image keeps the invariant."""
    exercise(load(name))


def test_named_cases_are_all_covered():
    for what, names in REQUIRED.items():
        for n in names:
            assert n in CASES, f"{what}: {n} missing from fixtures/hostile"


def test_fixtures_are_what_the_script_makes(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "tools" / "make-hostile-fixtures"), str(tmp_path)],
                   check=True, capture_output=True)
    made = sorted(p.name for p in tmp_path.iterdir())
    committed = sorted(p.name for p in HOSTILE.iterdir())
    assert made == committed
    for n in made:
        assert (tmp_path / n).read_bytes() == (HOSTILE / n).read_bytes(), n
