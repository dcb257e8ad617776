"""Issue 11, bug 1: a generated ~N alias never equals another entry's name.

Linux vfat and mtools compare a looked-up name with every entry's short name
as well as its long name, and open the first entry that matches. When the
alias of ``longfile name 11.txt`` was ``LONGFI~3.TXT``, ``mtype ::longfi~3.txt``
gave that file's bytes (with the real file's after them), and a directory
named ``longfi~3`` could be shadowed the same way. Each image here is read by
name with mtools (``mtype`` every file, ``mdir`` every directory), checked
with ``fsck.fat -n``, extracted by mcopy, pyfatfs and blockimg (whose
``check`` applies the Mirage lookup model on Mirage images) and compared
byte for byte with the source; ``mdir -/ -a`` shows the short names, and no
short name equals another entry's short name or long name.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from blockimg.sources.directory import walk

from conftest import require_tool
from helpers.fat_alias import (alias_rule_violations, directory_example, files_and_dirs,
                               issue_example, materialise, mdir_entries, mtools_read_by_name,
                               swap_short_names)
from helpers.fat_readback import build_image, fsck_clean, verify

OPTIONS = [
    dict(),                                                 # mirage, 4096-byte sectors
    dict(sector_size=512, align=512),                       # mirage, 512-byte sectors
    dict(target="generic", sector_size=512),
    dict(target="generic", sector_size=4096),
    dict(target="generic", fat_type=32, sector_size=512),
]


def _id(opts):
    return ",".join(f"{k}={v}" for k, v in opts.items()) or "mirage-defaults"


def _read_back(tree, opts, tmp_path):
    src = materialise(tree, tmp_path / "src")
    img = tmp_path / "fat.img"
    build_image(walk(src), img, **opts)
    mirage = opts.get("target", "mirage") == "mirage"
    verify(img, src, tmp_path, mirage=mirage)
    assert mtools_read_by_name(require_tool("mtype"), require_tool("mdir"), img, tree) == []
    entries = mdir_entries(require_tool("mdir"), img)
    files, dirs = files_and_dirs(tree)
    for d in [""] + dirs:       # every entry was parsed from the listing
        children = [p for p in set(files) | set(dirs) if p.rpartition("/")[0] == d]
        assert sorted(long or short for short, long in entries[d]) == \
            sorted(p.rsplit("/", 1)[-1] for p in children)
    assert alias_rule_violations(entries) == []
    return entries


@pytest.mark.parametrize("opts", OPTIONS, ids=_id)
def test_issue_example_reads_by_name(opts, tmp_path):
    entries = _read_back(issue_example(), opts, tmp_path)
    shorts = dict((long, short) for short, long in entries[""])
    # The real name keeps its own 8.3 form; the aliases count around it.
    assert shorts["longfi~3.txt"] == "LONGFI~3.TXT"
    assert "LONGFI~3.TXT" not in [s for s, long in entries[""] if long != "longfi~3.txt"]
    assert len(set(shorts.values())) == len(shorts) == 13


@pytest.mark.parametrize("opts", OPTIONS, ids=_id)
def test_directory_named_like_an_alias_reads_by_name(opts, tmp_path):
    entries = _read_back(directory_example(), opts, tmp_path)
    assert ("LONGFI~3", "longfi~3") in entries[""]
    assert ("LONGFI~3", "longfi~3") in entries["files"]


def test_mixed_case_and_upper_case_real_names(tmp_path):
    """``longfi~3.Txt`` keeps LONGFI~3.TXT (with its long name); an upper-case real
    ``LONGFI~4.TXT`` is a short entry only (Mirage finds it through the 8.3 lookup)."""
    tree = issue_example("a/")
    del tree["a/longfi~3.txt"]
    tree["a/longfi~3.Txt"] = b"mixed"
    tree["a/LONGFI~4.TXT"] = b"upper"
    for opts in (dict(), dict(target="generic", sector_size=512)):
        sub = tmp_path / _id(opts)
        sub.mkdir()
        entries = _read_back(tree, opts, sub)
        assert ("LONGFI~3.TXT", "longfi~3.Txt") in entries["a"]
        assert ("LONGFI~4.TXT", "") in entries["a"]


@pytest.mark.parametrize("example, real, holder", [
    (issue_example, b"LONGFI~3TXT", b"LONGFI~4TXT"),
    (directory_example, b"LONGFI~3   ", b"LONGFI~4   "),
])
def test_check_reports_an_alias_equal_to_another_name(example, real, holder, tmp_path):
    """An image whose alias is another entry's name (made here by swapping two short
    names): fsck.fat -n passes it, mtools opens the wrong entry, and ``blockimg check``
    names both entries."""
    tree = example()
    src = materialise(tree, tmp_path / "src")
    img = tmp_path / "fat.img"
    build_image(walk(src), img, target="generic", sector_size=512)
    data = bytearray(img.read_bytes())
    swap_short_names(data, real, holder)
    img.write_bytes(data)
    fsck_clean(img)
    wrong = mtools_read_by_name(require_tool("mtype"), require_tool("mdir"), img, tree)
    assert any("longfi~3" in w for w in wrong), wrong
    res = subprocess.run([sys.executable, "-m", "blockimg", "check", str(img)],
                         capture_output=True, text=True)
    assert res.returncode == 1, res.stdout + res.stderr
    lines = [ln for ln in res.stdout.splitlines() + res.stderr.splitlines()
             if "short name" in ln]
    assert len(lines) == 1, res.stdout + res.stderr
    assert "LONGFI~3" in lines[0] and "longfi~3" in lines[0] and "longfile name" in lines[0]
