"""blockimg reads what mkfs.fat + mtools make: FAT12/16/32, 512- and 4096-byte sectors.

Each volume holds Unicode names, 13- and 26-character names, nested and
empty directories, empty files and a fragmented file; blockimg's list, read
and extract must equal the source tree and what ``mcopy -s`` extracts.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import assert_same_tree, require_tool, run

from blockimg import api
from blockimg.cli import main as cli_main
from blockimg.fat import check

# (FAT type, bytes per sector, sectors per cluster, size in KiB)
VOLUMES = [
    (12, 512, 4, 8000),
    (16, 512, 1, 8000),
    (32, 512, 1, 34000),
    (12, 4096, 1, 8000),
    (16, 4096, 1, 40000),
    (32, 4096, 1, 263000),
]


def mtools_env() -> dict:
    return dict(os.environ, LC_ALL="C.UTF-8", LANG="C.UTF-8", MTOOLS_SKIP_CHECK="1")


def make_source(root: Path) -> Path:
    """The test tree; returns the directory."""
    src = root / "src"
    (src / "sub" / "deeper" / "deepest").mkdir(parents=True)
    (src / "empty dir").mkdir()
    (src / "README").write_bytes(b"upper-case 8.3 name\n")
    (src / "index.txt").write_bytes(b"<html>lower-case 8.3 name</html>\n")
    (src / "Mixed.Txt").write_bytes(b"mixed case\n")
    (src / "abcdefghijklm").write_bytes(b"13 characters\n")
    (src / "abcdefghijklmnopqrstuvwxyz").write_bytes(b"26 characters\n")
    (src / "a name with spaces.html").write_bytes(b"spaces\n")
    (src / "héllo wörld ☃.txt").write_bytes("unicode ☃\n".encode())
    (src / "ключ.md").write_bytes(b"cyrillic\n")
    (src / "empty.bin").write_bytes(b"")
    (src / "sub" / "empty.txt").write_bytes(b"")
    (src / "sub" / "big.bin").write_bytes(os.urandom(70_000))
    (src / "sub" / "deeper" / "manifest.json").write_bytes(b'{"a": 1}\n')
    (src / "sub" / "deeper" / "deepest" / "x.css").write_bytes(b"body{}\n")
    (src / "frag").mkdir()
    (src / "frag" / "a.bin").write_bytes(b"A" * 9000)
    (src / "frag" / "c.bin").write_bytes(b"C" * 9000)
    (src / "frag" / "big.bin").write_bytes(os.urandom(50_000))
    return src


def build_volume(tmp: Path, src: Path, fat: int, sector: int, spc: int, kib: int) -> Path:
    """mkfs.fat, then mcopy -s the tree; frag/big.bin lands in a hole left by a deleted file."""
    mkfs = require_tool("mkfs.fat")
    mcopy = require_tool("mcopy")
    mdel = require_tool("mdel")
    img = tmp / f"fat{fat}-{sector}.img"
    run(mkfs, "-C", "-F", fat, "-S", sector, "-s", spc, "-i", "12345678", img, kib)
    env = mtools_env()
    for top in sorted(src.iterdir()):
        if top.name != "frag":
            run(mcopy, "-s", "-Q", "-i", img, top, "::/", env=env)
    run(require_tool("mmd"), "-i", img, "::/frag", env=env)
    hole = tmp / "b.bin"
    hole.write_bytes(b"B" * 20_000)
    for name in ("a.bin", "b.bin", "c.bin"):
        run(mcopy, "-Q", "-i", img, hole if name == "b.bin" else src / "frag" / name,
            f"::/frag/{name}", env=env)
    run(mdel, "-i", img, "::/frag/b.bin", env=env)
    if fat == 32:  # mtools allocates from the FSInfo hint: point it back at the start
        with open(img, "r+b") as f:
            f.seek(sector + 492)
            f.write((2).to_bytes(4, "little"))
    run(mcopy, "-Q", "-i", img, src / "frag" / "big.bin", "::/frag/big.bin", env=env)
    return img


@pytest.fixture(scope="module", params=VOLUMES, ids=lambda v: f"fat{v[0]}-{v[1]}")
def volume(request, tmp_path_factory):
    fat, sector, spc, kib = request.param
    tmp = tmp_path_factory.mktemp(f"fat{fat}-{sector}")
    src = make_source(tmp)
    return fat, sector, src, build_volume(tmp, src, fat, sector, spc, kib)


def test_geometry_and_type(volume):
    fat, sector, _src, img = volume
    with api.open(img) as im:
        info = im.info()
    assert info["format"] == "fat"
    assert info["fat_type"] == f"FAT{fat}"
    assert info["bytes_per_sector"] == sector
    assert info["volume_id"] == "12345678"
    assert info["label_entry"] is None


def test_list_and_read_equal_source(volume):
    _fat, _sector, src, img = volume
    with api.open(img) as im:
        listed = {e.path: e for e in im.list()}
        want = {}
        for dirpath, dirnames, filenames in os.walk(src):
            rel = os.path.relpath(dirpath, src)
            for d in dirnames:
                want[os.path.normpath(os.path.join(rel, d))] = None
            for f in filenames:
                want[os.path.normpath(os.path.join(rel, f))] = Path(dirpath, f).read_bytes()
        assert sorted(listed) == sorted(want)
        for path, data in want.items():
            if data is None:
                assert listed[path].kind == "dir"
            else:
                assert listed[path].size == len(data)
                assert im.read(path) == data, path
                assert b"".join(bytes(c) for c in im.iter_chunks(path, 4096)) == data


def test_fragmented_file_has_several_extents(volume):
    _fat, _sector, src, img = volume
    with api.open(img) as im:
        e = im.stat("frag/big.bin")
        assert len(e.extents) >= 2
        assert sum(n for _, n in e.extents) == e.size
        assert im.read("frag/big.bin", 17_000, 5000) == \
            (src / "frag" / "big.bin").read_bytes()[17_000:22_000]
        assert len(im.stat("sub/big.bin").extents) == 1


def test_extract_equals_source_and_mcopy(volume, tmp_path):
    _fat, _sector, src, img = volume
    out = tmp_path / "blockimg"
    with api.open(f"mmap:{img}") as im:
        report = im.extract(out)
    assert report.ok, report.refused
    assert_same_tree(src, out)
    mout = tmp_path / "mtools"
    run(require_tool("mcopy"), "-s", "-Q", "-i", img, "::/", mout, env=mtools_env())
    assert_same_tree(mout, out)


def test_check_generic_clean(volume):
    _fat, _sector, _src, img = volume
    with api.open(img) as im:
        assert check(im) == []
        assert im.warnings == []
    fsck = require_tool("fsck.fat")
    res = subprocess.run([fsck, "-n", str(img)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout


def test_check_mirage_names_the_files(volume):
    fat, sector, _src, img = volume
    with api.open(img) as im:
        problems = check(im, target="mirage")
        warnings = list(im.warnings)
    text = "\n".join(problems)
    cannot = {p.split(": ", 2)[1][len("cannot find "):] for p in problems
              if p.startswith("mirage: cannot find ")}
    # lower-case 8.3 names without a long name
    for path in ("index.txt", "sub", "sub/big.bin", "sub/empty.txt", "empty.bin", "frag",
                 "frag/a.bin", "sub/deeper/deepest/x.css"):
        assert path in cannot, (path, text)
    # 13/26-character names without a terminator slot, non-ASCII names
    for path in ("abcdefghijklm", "abcdefghijklmnopqrstuvwxyz", "sub/deeper/manifest.json",
                 "héllo wörld ☃.txt", "ключ.md"):
        assert path in cannot, (path, text)
    # found by Mirage: upper-case 8.3, and long names it can match
    for path in ("README", "Mixed.Txt", "a name with spaces.html"):
        assert path not in cannot, (path, text)
    assert "mirage: listing / fails" in text
    if fat == 16:
        assert "clusters): ocaml-fat" not in text
    else:
        assert f"FAT{fat} (" in text
    assert any("-byte sectors" in w for w in warnings) == (sector < 4096)


def test_cli_check_mirage_exits_1_listing_files(volume, capsys):
    _fat, _sector, _src, img = volume
    assert cli_main(["check", str(img)]) == 0
    assert "fat image OK" in capsys.readouterr().out
    assert cli_main(["check", "--target", "mirage", str(img)]) == 1
    out = capsys.readouterr().out
    assert f"{img}: mirage: cannot find index.txt" in out
    assert "cannot find README" not in out


def test_cli_ls_cat_info_extract(volume, tmp_path, capsys):
    fat, sector, src, img = volume
    assert cli_main(["ls", str(img)]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert "sub/deeper/deepest/x.css" in listed and "empty dir/" in listed
    assert cli_main(["cat", str(img), "héllo wörld ☃.txt"]) == 0
    assert "unicode ☃" in capsys.readouterr().out
    assert cli_main(["info", "--json", str(img)]) == 0
    info = json.loads(capsys.readouterr().out)
    for key in ("fat_type", "bytes_per_sector", "sectors_per_cluster", "cluster_size",
                "reserved_sectors", "fats", "sectors_per_fat", "root_entries", "total_sectors",
                "clusters", "data_offset", "volume_id", "label", "label_entry",
                "free_clusters", "oem_name"):
        assert key in info, key
    assert info["fat_type"] == f"FAT{fat}" and info["oem_name"] == "mkfs.fat"
    if fat == 32:
        assert info["fsinfo_free_count"] == info["free_clusters"]
    assert cli_main(["extract", str(img), str(tmp_path / "x")]) == 0
    assert_same_tree(src, tmp_path / "x")


def test_lazy_lookups_equal_the_index_and_the_source(volume):
    """api.open(lazy=True): each path looked up on its own (mkfs.fat+mcopy volumes) is the
    entry the whole index has, and reads back as the source file."""
    _fat, _sector, src, img = volume
    with api.open(img) as im:
        full = {e.path: e for e in im.list()}
    for path, entry in full.items():
        with api.open(img, lazy=True) as lazy:
            assert lazy.stat(path) == entry
            if entry.kind == "file":
                assert lazy.read(path) == (src / path).read_bytes(), path
            assert lazy._lazy                      # still not indexed whole
