"""Manifests: where each file's bytes are, their CRC-32C, the image's sha256; written
atomically and deterministically; the library's "where is this file?" answer."""
from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys

import crcmod.predefined
import pytest

import blockimg
from blockimg.trust import manifest as mf
from blockimg.block.memory import MemoryDevice
from blockimg.errors import InvalidInput, NotFound
from conftest import ROOT
from helpers.fake_format import use_fake_format

CRC = crcmod.predefined.mkPredefinedCrcFun("crc-32c")
FORMATS = ["tar", "fat", "fake"]


@pytest.fixture(params=FORMATS)
def fmt(request, monkeypatch):
    if request.param == "fake":
        use_fake_format(monkeypatch)
    return request.param


def files_of(root):
    out = {}
    for dirpath, _dirs, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            out[os.path.relpath(p, root).replace(os.sep, "/")] = open(p, "rb").read()
    return out


def test_manifest_locates_every_file_by_offset(tmp_path, site_dir, fmt):
    img = tmp_path / "site.img"
    man = tmp_path / "site.json"
    summary = blockimg.create(site_dir, img, format=fmt, mtime=0, manifest=str(man))
    m = mf.load(man)
    assert m == summary.manifest
    data = img.read_bytes()
    assert m.format == fmt
    assert m.image_size == len(data)
    assert m.image_sha256 == hashlib.sha256(data).hexdigest()
    assert m.sector_size == summary.sector_size
    assert m.alignment >= 512
    expected = files_of(site_dir)
    assert sorted(m.files) == sorted(expected)
    for path, content in expected.items():
        rec = m.locate(path)
        assert rec.size == len(content)
        assert rec.crc32c == CRC(content)
        # Serve the file by offset alone, without any file-system code.
        assert b"".join(data[o:o + n] for o, n in rec.extents) == content
        assert all(o % m.alignment == 0 for o, _ in rec.extents)
    dirs = {os.path.relpath(d, site_dir).replace(os.sep, "/")
            for d, _s, _f in os.walk(site_dir)} - {"."}
    assert set(m.directories) == dirs


def test_manifest_json_is_deterministic_and_sorted(tmp_path, site_dir, fmt):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    blockimg.create(site_dir, a / "site.img", format=fmt, mtime=0, manifest=str(a / "m.json"))
    blockimg.create(site_dir, b / "site.img", format=fmt, mtime=0, manifest=str(b / "m.json"))
    text = (a / "m.json").read_text()
    assert text == (b / "m.json").read_text()
    d = json.loads(text)
    assert list(d) == sorted(d)
    assert list(d["files"]) == sorted(d["files"])
    assert d["manifest_version"] == 1 and d["generator"] == "blockimg"
    assert str(tmp_path) not in text and str(site_dir) not in text  # no build paths
    assert text.endswith("\n")


@pytest.mark.parametrize("fmt", ["tar", "fat"])
def test_alignment_is_what_was_asked(tmp_path, site_dir, fmt):
    s = blockimg.create(site_dir, tmp_path / "x.img", format=fmt, mtime=0, align=4096,
                        manifest=True)
    assert s.manifest.alignment == 4096
    assert all(o % 4096 == 0 for r in s.manifest for o, _ in r.extents)


def test_manifest_object_without_a_file(site_dir, tmp_path):
    s = blockimg.create(site_dir, tmp_path / "x.img", format="tar", mtime=0, manifest=True)
    assert s.manifest is not None
    assert s.manifest.locate("/index.html").path == "index.html"
    assert sorted(os.listdir(tmp_path)) == ["x.img"]
    with pytest.raises(NotFound):
        s.manifest.locate("nope.html")


def test_manifest_for_an_open_block_device(site_dir):
    tree = blockimg.walk(site_dir, mtime=0)
    plan = blockimg.tar.plan(tree, blockimg.tar.Options())
    dev = MemoryDevice(plan.image_size)
    s = blockimg.create(tree, dev, format="tar", manifest=True)
    assert s.manifest.image_sha256 == hashlib.sha256(dev.getvalue()).hexdigest()


def test_no_manifest_without_asking(tmp_path, site_dir):
    s = blockimg.create(site_dir, tmp_path / "x.img", format="tar", mtime=0)
    assert s.manifest is None


def test_cli_manifest(tmp_path, site_dir):
    res = subprocess.run([sys.executable, "-m", "blockimg", "create", str(site_dir), "-o",
                          str(tmp_path / "site.img"), "--format", "fat", "--manifest",
                          str(tmp_path / "site.json"), "--mtime", "0"],
                         capture_output=True, text=True, cwd=str(ROOT))
    assert res.returncode == 0, res.stderr
    m = mf.load(tmp_path / "site.json")
    assert m.format == "fat" and "index.html" in m.files


def test_secret_manifest_is_0600(tmp_path, site_dir):
    blockimg.create(site_dir, tmp_path / "k.img", format="tar", mtime=0, secret=True,
                    manifest=str(tmp_path / "k.json"))
    assert stat.S_IMODE(os.stat(tmp_path / "k.json").st_mode) == 0o600


@pytest.mark.parametrize("text,why", [
    ("not json", "not valid JSON"),
    ("[]", "not a blockimg manifest"),
    ('{"generator": "blockimg", "manifest_version": 99}', "version"),
    ('{"generator": "blockimg", "manifest_version": 1, "format": "tar"}', "malformed"),
])
def test_bad_manifests_are_refused_clearly(tmp_path, text, why):
    p = tmp_path / "m.json"
    p.write_text(text)
    with pytest.raises(InvalidInput, match=why):
        mf.load(p)


def test_negative_offsets_are_refused(tmp_path, site_dir):
    s = blockimg.create(site_dir, tmp_path / "x.img", format="tar", mtime=0, manifest=True)
    d = s.manifest.as_json()
    d["files"]["index.html"]["extents"] = [[-1, 5]]
    with pytest.raises(InvalidInput, match="non-negative"):
        mf.loads(json.dumps(d))


def test_round_trip_through_json(tmp_path, site_dir):
    s = blockimg.create(site_dir, tmp_path / "x.img", format="fat", mtime=0, manifest=True)
    assert mf.loads(s.manifest.dumps()) == s.manifest


def test_manifest_cannot_be_the_image(tmp_path, site_dir):
    with pytest.raises(InvalidInput, match="overwrite the image"):
        blockimg.create(site_dir, tmp_path / "x.img", format="tar",
                        manifest=str(tmp_path / "x.img"))
    assert not (tmp_path / "x.img").exists()
