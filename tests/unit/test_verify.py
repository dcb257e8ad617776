"""blockimg verify: every difference between image, manifest and source, in bounded memory."""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tracemalloc

import pytest

import blockimg
from blockimg.trust import verify as vf
from blockimg.trust.manifest import load
from conftest import ROOT

FORMATS = ["tar", "fat"]


@pytest.fixture(params=FORMATS)
def built(request, tmp_path, site_dir):
    src = tmp_path / "src"
    shutil.copytree(site_dir, src)
    img = tmp_path / "site.img"
    man = tmp_path / "site.json"
    blockimg.create(src, img, format=request.param, mtime=0, manifest=str(man))
    return src, img, man


def kinds(report):
    return sorted((d.kind, d.path) for d in report.differences)


def test_clean_image_agrees_with_manifest_and_source(built):
    src, img, man = built
    report = vf.verify(img, manifest=man, source=src)
    assert report.ok, report.differences
    assert report.files_checked == len(load(man).files)


def test_changed_missing_and_extra_source_files(built):
    src, img, man = built
    (src / "index.html").write_bytes(b"X" + (src / "index.html").read_bytes()[1:])  # same size
    (src / "robots.txt").write_bytes(b"longer than before\n" * 3)
    (src / "css" / "print.css").unlink()
    (src / "new.txt").write_bytes(b"new")
    report = vf.verify(img, source=src)
    assert kinds(report) == [("changed", "index.html"), ("extra", "css/print.css"),
                             ("missing", "new.txt"), ("size", "robots.txt")]


def test_corrupted_file_data_in_image(built):
    src, img, man = built
    rec = load(man).locate("about/index.html")
    off = rec.extents[0][0] + 3
    with open(img, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0xFF]))
    report = vf.verify(img, manifest=man, source=src)
    assert kinds(report) == [("changed", "about/index.html"), ("changed", "about/index.html"),
                             ("sha256", None)]


def test_wrong_offsets_and_manifest_only_files(built, tmp_path):
    src, img, man = built
    d = json.loads(man.read_text())
    ext = d["files"]["index.html"]["extents"]
    ext[0][0] += 512
    d["files"]["ghost.txt"] = {"size": 1, "extents": [[0, 1]], "crc32c": "00000000"}
    del d["files"]["robots.txt"]
    bad = tmp_path / "edited.json"
    bad.write_text(json.dumps(d))
    report = vf.verify(img, manifest=bad)
    assert kinds(report) == [("extra", "robots.txt"), ("missing", "ghost.txt"),
                             ("offset", "index.html")]


def test_truncated_image(built, tmp_path):
    src, img, man = built
    size = img.stat().st_size
    os.truncate(img, size // 2 - (size // 2) % 4096)
    report = vf.verify(img, manifest=man, source=src)
    assert ("image-size", None) in kinds(report)
    assert not report.ok


def test_structural_error_is_reported(built):
    src, img, man = built
    m = load(man)
    with open(img, "r+b") as f:
        if m.format == "tar":
            f.seek(148)          # first header's checksum
            f.write(b"0000000\0")
        else:
            f.seek(11)           # bytes per sector
            f.write(b"\x00\x00")
    report = vf.verify(img, manifest=man, source=src)
    assert ("structure", None) in kinds(report)
    assert ("sha256", None) in kinds(report)


def test_progress_reaches_the_total(built):
    src, img, man = built
    calls = []
    vf.verify(img, manifest=man, source=src, progress=lambda d, t: calls.append((d, t)))
    assert calls
    assert all(a[0] <= b[0] for a, b in zip(calls, calls[1:]))
    assert calls[-1][0] == calls[-1][1]


def test_bounded_memory_on_a_big_image(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    block = os.urandom(1 << 20)
    with open(src / "big.bin", "wb") as f:
        for _ in range(96):
            f.write(block)
    img = tmp_path / "big.img"
    blockimg.create(src, img, format="tar", mtime=0, manifest=str(tmp_path / "big.json"))
    tracemalloc.start()
    try:
        report = vf.verify(img, manifest=tmp_path / "big.json", source=src)
        _cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.ok
    assert report.bytes_read >= 2 * 96 << 20
    assert peak < 16 << 20, f"verify of a 96 MiB image peaked at {peak} bytes"


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "blockimg", "verify", *map(str, args)],
                          capture_output=True, text=True, cwd=str(ROOT))


def test_cli_exit_codes_and_report(built):
    src, img, man = built
    res = run_cli(img, "--manifest", man, src)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "OK" in res.stdout
    (src / "robots.txt").unlink()
    res = run_cli(img, "--manifest", man, src)
    assert res.returncode == 1
    assert "extra: robots.txt" in res.stdout
    res = run_cli(img)
    assert res.returncode == 0, res.stdout + res.stderr


def test_cli_missing_manifest_is_an_error(built, tmp_path):
    src, img, man = built
    res = run_cli(img, "--manifest", tmp_path / "nope.json")
    assert res.returncode == 1
    assert "cannot read manifest" in res.stderr


def test_cli_draws_progress_on_a_terminal(built, monkeypatch):
    from blockimg import cli
    from blockimg.cli import progress
    src, img, man = built
    stream = io.StringIO()

    class Bar(progress.ProgressBar):
        def __init__(self, label, **kw):
            super().__init__(label, stream=stream, delay=0, enabled=True)

    monkeypatch.setattr(progress, "ProgressBar", Bar)   # (the commands import it from there)
    assert cli.main(["verify", str(img), "--manifest", str(man), str(src)]) == 0
    assert "verifying [" in stream.getvalue()


@pytest.mark.parametrize("fmt", ["tar", "fat"])
def test_format_check_can_be_called_twice(tmp_path, site_dir, fmt):
    from blockimg.formats import format_module
    blockimg.create(site_dir, tmp_path / "x.img", format=fmt, mtime=0)
    mod = format_module(fmt)
    with blockimg.open(tmp_path / "x.img") as img:
        assert mod.check(img) == mod.check(img)


def test_verify_twice_in_one_process(built):
    src, img, man = built
    assert vf.verify(img, manifest=man).ok
    assert vf.verify(img, manifest=man, source=src).ok


def test_source_with_links_against_an_image_that_keeps_them(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    os.symlink("a.txt", src / "link")
    img = tmp_path / "l.img"
    blockimg.create(src, img, format="tar", target="generic", keep_links=True, mtime=0)
    assert vf.verify(img, source=src).ok
    os.unlink(src / "link")
    os.symlink("elsewhere", src / "link")
    assert kinds(vf.verify(img, source=src)) == [("link", "link")]


def test_source_with_links_against_an_image_of_copies(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    os.symlink("a.txt", src / "link")
    os.link(src / "a.txt", src / "hard")
    img = tmp_path / "c.img"
    blockimg.create(src, img, format="fat", mtime=0, manifest=str(tmp_path / "c.json"))
    assert vf.verify(img, source=src).ok
    assert vf.verify(img, source=src, manifest=tmp_path / "c.json").ok
