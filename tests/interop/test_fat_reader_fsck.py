"""``blockimg check`` and ``fsck.fat -n`` agree: clean volumes pass both, broken ones fail both."""
from __future__ import annotations

import subprocess

import pytest

from blockimg.fat import check
from conftest import require_tool
from helpers.fat_volume import Volume


def lost(v):
    v.set_fat(v.geo.cluster_count - 3, 0xFFFF)


def fats_differ(v):
    v.set_fat(v.clusters("b.txt")[0], 0xFFFF, copies=[1])


def cross_linked(v):
    v.set_start("c.txt", v.clusters("b.txt")[0])


def size_smaller_than_chain(v):
    v.set_size("a.txt", 10)


def bad_lfn_checksum(v):
    off = v.entry("Long File Name.txt")
    v.data[off - 32 + 13] ^= 0xFF
    v.data[off - 64 + 13] ^= 0xFF


def wrong_dotdot(v):
    (sub,) = v.clusters("sub")
    v.set_u16(v.geo.cluster_offset(sub) + 32 + 26, 7)


def fsinfo_free_count(v):
    v.set_u32(v.geo.fsinfo_sector * v.geo.bytes_per_sector + 488, 12)


CASES = [("fat16", lost), ("fat16", fats_differ), ("fat16", cross_linked),
         ("fat16", size_smaller_than_chain), ("fat16", bad_lfn_checksum),
         ("fat16", wrong_dotdot), ("fat32", fsinfo_free_count), ("fat12", lost),
         ("fat32", cross_linked)]


def fsck_messages(v, tmp_path) -> list:
    path = tmp_path / "v.img"
    path.write_bytes(v.data)
    res = subprocess.run([require_tool("fsck.fat"), "-n", str(path)], capture_output=True,
                         text=True)
    lines = [ln for ln in res.stdout.splitlines()[1:] if ln.strip()]
    return [ln for ln in lines if not ln.startswith(str(path))]


@pytest.mark.parametrize("kind", ["fat12", "fat16", "fat32"])
def test_clean_volumes_pass_both(kind, tmp_path):
    v = Volume(kind)
    assert fsck_messages(v, tmp_path) == []
    assert check(v.open()) == []


@pytest.mark.parametrize("kind,breakit", CASES, ids=lambda c: getattr(c, "__name__", c))
def test_broken_volumes_fail_both(kind, breakit, tmp_path):
    v = Volume(kind)
    breakit(v)
    assert fsck_messages(v, tmp_path) != []
    assert check(v.open(strict=False)) != []
