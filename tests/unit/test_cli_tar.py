"""The command line on tar images: create, ls, cat, extract, info, errors, atomicity."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from blockimg.cli import main
from conftest import ROOT, assert_same_tree, require_tool

MTIME = "2024-01-02T03:04:05Z"


def blockimg_cmd(*args, env=None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, PYTHONPATH=str(ROOT))
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "blockimg", *map(str, args)],
                          capture_output=True, cwd=str(ROOT), env=full_env)


@pytest.fixture
def src(tmp_path) -> Path:
    s = tmp_path / "src"
    (s / "css").mkdir(parents=True)
    (s / "index.html").write_bytes(b"<html>hello</html>\n")
    (s / "css" / "site.css").write_bytes(b"body{}\n" * 100)
    (s / "empty").write_bytes(b"")
    (s / "ünï.txt").write_bytes(b"u")
    return s


def create(src, out, *extra) -> subprocess.CompletedProcess:
    return blockimg_cmd("create", "--format", "tar", src, "-o", out, "--mtime", MTIME, *extra)


def test_create_ls_cat_extract_info(src, tmp_path):
    image = tmp_path / "site.img"
    res = create(src, image, "--align", "4096")
    assert res.returncode == 0, res.stderr
    assert b"tar image, 4 files in 1 directory, 720 bytes of data, image 16 KiB" in res.stdout
    assert image.stat().st_size % 4096 == 0

    res = blockimg_cmd("ls", image)
    assert res.stdout.decode().splitlines() == ["css/", "css/site.css", "empty", "index.html",
                                                "ünï.txt"]
    res = blockimg_cmd("ls", "-l", image, "css", env={"TZ": "UTC"})
    line = res.stdout.decode().strip()
    assert line.startswith("-rw-") and " 700 2024-01-02 03:04 +0000 css/site.css" in line
    listing = json.loads(blockimg_cmd("ls", "--json", image).stdout)
    by_path = {e["path"]: e for e in listing}
    assert by_path["index.html"]["size"] == 19 and by_path["css"]["type"] == "dir"
    assert by_path["index.html"]["extents"][0][0] % 4096 == 0

    res = blockimg_cmd("cat", image, "css/site.css")
    assert res.returncode == 0 and res.stdout == b"body{}\n" * 100

    dest = tmp_path / "out"
    res = blockimg_cmd("extract", image, dest)
    assert res.returncode == 0 and b"extracted 5 entries" in res.stdout
    assert_same_tree(src, dest)

    info = json.loads(blockimg_cmd("info", "--json", image).stdout)
    assert info["format"] == "tar" and info["files"] == 4 and info["directories"] == 1
    assert info["data_alignment"] >= 4096 and info["flavours"] == ["ustar"]
    res = blockimg_cmd("info", image)
    assert b"format: tar" in res.stdout
    res = blockimg_cmd("check", "--target", "mirage", image)
    assert res.returncode == 0 and b"OK for the Mirage driver" in res.stdout
    for tool in (require_tool("tar"), require_tool("bsdtar")):
        out = tmp_path / os.path.basename(tool)
        out.mkdir()
        assert subprocess.run([tool, "-xf", str(image), "-C", str(out)]).returncode == 0
        assert_same_tree(src, out)


def test_in_process_main(src, tmp_path, capsys):
    image = tmp_path / "i.img"
    assert main(["create", str(src), "-o", str(image), "-q", "--target", "generic",
                 "--sector-size", "4096"]) == 0
    assert image.stat().st_size % 4096 == 0
    assert main(["cat", str(image), "index.html"]) == 0
    assert capsys.readouterr().out == "<html>hello</html>\n"


@pytest.mark.parametrize("argv,message", [
    (["cat", "{image}", "nope.txt"], "no such file"),
    (["cat", "{image}", "css"], "not a regular file"),
    (["ls", "{missing}"], "cannot open"),
    (["create", "{missing}", "-o", "{tmp}/x.img"], "cannot read source"),
    (["create", "{src}", "-o", "{tmp}/x.img", "--label", "X"],
     "--label: applies to --format fat only"),
    (["create", "{src}", "-o", "{tmp}/x.img", "--size", "2K"], "short by"),
    (["create", "{src}", "-o", "{tmp}/x.img", "--align", "1000"], "power of two"),
    (["info", "{corrupt}"], "checksum"),
])
def test_errors_exit_1_with_a_message_and_no_traceback(src, tmp_path, argv, message):
    image = tmp_path / "site.img"
    assert create(src, image).returncode == 0
    corrupt = tmp_path / "corrupt.img"
    data = bytearray(image.read_bytes())
    data[600] ^= 0xFF                    # inside the second header
    corrupt.write_bytes(bytes(data))
    argv = [a.format(image=image, missing=tmp_path / "missing", tmp=tmp_path, src=src,
                     corrupt=corrupt) for a in argv]
    res = blockimg_cmd(*argv)
    assert res.returncode == 1, res
    err = res.stderr.decode()
    assert err.startswith("blockimg: error:") and message in err, err
    assert "Traceback" not in err


def test_mirage_refusals_name_the_file(tmp_path):
    src = tmp_path / "src"
    deep = src / ("a" * 250) / ("b" * 250)
    deep.mkdir(parents=True)
    (deep / "toolong.txt").write_bytes(b"x")
    res = blockimg_cmd("create", src, "-o", tmp_path / "x.img")
    assert res.returncode == 1
    err = res.stderr.decode()
    assert "toolong.txt" in err and "512" in err and "Traceback" not in err
    res = blockimg_cmd("create", src, "-o", tmp_path / "x.img", "--target", "generic")
    assert res.returncode == 0


def listing(directory: Path) -> list:
    return sorted(os.listdir(directory))


def test_failed_create_leaves_existing_target_untouched(src, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    image = out_dir / "site.img"
    image.write_bytes(b"precious")
    before = listing(out_dir)
    # fails while planning: the image does not fit
    res = create(src, image, "--size", "4K")
    assert res.returncode == 1
    # fails while writing: a source that grows after it was planned (/proc reports size 0)
    os.symlink("/proc/self/status", src / "proc-status")
    res = create(src, image)
    assert res.returncode == 1 and b"grew" in res.stderr, res.stderr
    assert image.read_bytes() == b"precious"
    assert listing(out_dir) == before


def test_skip_special_says_what_it_skipped(src, tmp_path):
    os.mkfifo(src / "fifo")
    res = create(src, tmp_path / "x.img")
    assert res.returncode == 1 and b"fifo" in res.stderr and b"FIFO" in res.stderr
    res = create(src, tmp_path / "x.img", "--skip-special")
    assert res.returncode == 0 and b"skipped" in res.stderr and b"fifo" in res.stderr


def test_keep_links_stores_links(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "target.txt").write_bytes(b"t")
    os.symlink("target.txt", src / "link")
    image = tmp_path / "l.img"
    assert create(src, image, "--keep-links", "--target", "generic").returncode == 0
    res = blockimg_cmd("ls", "-l", image)
    assert "link -> target.txt" in res.stdout.decode()
    res = blockimg_cmd("check", "--target", "mirage", image)
    assert res.returncode == 1 and b"reads it as an empty file" in res.stdout


# -- determinism -------------------------------------------------------------------
def build_tree(root: Path, order) -> None:
    files = {"b/z.txt": b"z" * 700, "a.txt": b"a", "b/c/d.bin": bytes(range(256)) * 20,
             "e/empty": b"", "ü.txt": b"u"}
    for rel in order:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(files[rel])
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            os.utime(os.path.join(dirpath, n), (1600000000, 1600000000))
            os.chmod(os.path.join(dirpath, n), 0o755 if n in dirnames else 0o644)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_tree_same_bytes_any_order_any_timezone(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    build_tree(one, ["b/z.txt", "a.txt", "b/c/d.bin", "e/empty", "ü.txt"])
    build_tree(two, ["ü.txt", "e/empty", "b/c/d.bin", "a.txt", "b/z.txt"])
    digests = set()
    for src, tz, align in ((one, "UTC", []), (two, "Asia/Kathmandu", []),
                           (one, "America/St_Johns", []), (two, "UTC", [])):
        out = tmp_path / f"{src.name}-{tz.replace('/', '_')}.img"
        res = blockimg_cmd("create", src, "-o", out, "-q", *align, env={"TZ": tz})
        assert res.returncode == 0, res.stderr
        digests.add(sha(out))
    assert len(digests) == 1
    # --mtime and SOURCE_DATE_EPOCH give the same bytes as each other
    a, b = tmp_path / "m1.img", tmp_path / "m2.img"
    assert blockimg_cmd("create", one, "-o", a, "--mtime", "1700000000",
                        env={"TZ": "Pacific/Chatham"}).returncode == 0
    assert blockimg_cmd("create", two, "-o", b,
                        env={"SOURCE_DATE_EPOCH": "1700000000", "TZ": "UTC"}).returncode == 0
    assert sha(a) == sha(b) and sha(a) not in digests
    # aligned images are deterministic too
    c, d = tmp_path / "a1.img", tmp_path / "a2.img"
    for src, out in ((one, c), (two, d)):
        assert blockimg_cmd("create", src, "-o", out, "--align", "4096").returncode == 0
    assert sha(c) == sha(d)
