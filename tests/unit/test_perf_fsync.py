"""fsync policy: by default the image is fsynced before it is put in place when it replaces
an existing file (so a crash cannot cost the old image), not when it is a new file (like cp
and tar); --fsync always, --no-fsync never. The bytes are the same every way."""
from __future__ import annotations

import os
import stat

import pytest

import blockimg
from blockimg import cli


def _regular_fsyncs(monkeypatch):
    seen = []
    real = os.fsync

    def spy(fd):
        if stat.S_ISREG(os.fstat(fd).st_mode):
            seen.append(fd)
        return real(fd)
    monkeypatch.setattr(os, "fsync", spy)
    return seen


@pytest.fixture
def src(tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    (d / "a.txt").write_bytes(b"a" * 3000)
    return d


@pytest.mark.parametrize("fmt", ["tar", "fat"])
def test_default_fsyncs_only_when_replacing_an_existing_file(src, tmp_path, monkeypatch, fmt):
    seen = _regular_fsyncs(monkeypatch)
    blockimg.create(src, tmp_path / "x.img", format=fmt)
    assert cli.main(["create", str(src), "-o", str(tmp_path / "y.img"), "--format", fmt,
                     "-q"]) == 0
    assert seen == []                       # new files: write-out left to the kernel
    first = (tmp_path / "x.img").read_bytes()
    blockimg.create(src, tmp_path / "x.img", format=fmt)
    assert len(seen) == 1                   # replacing: made durable before the rename
    assert cli.main(["create", str(src), "-o", str(tmp_path / "y.img"), "--format", fmt,
                     "-q"]) == 0
    assert len(seen) == 2
    assert (tmp_path / "x.img").read_bytes() == first == (tmp_path / "y.img").read_bytes()


@pytest.mark.parametrize("fmt", ["tar", "fat"])
def test_fsync_option_always_fsyncs_image_and_manifest(src, tmp_path, monkeypatch, fmt):
    seen = _regular_fsyncs(monkeypatch)
    assert cli.main(["create", str(src), "-o", str(tmp_path / "x.img"), "--format", fmt,
                     "-q", "--fsync", "--manifest", str(tmp_path / "x.json")]) == 0
    assert len(seen) == 2
    blockimg.create(src, tmp_path / "y.img", format=fmt, fsync=True)
    assert len(seen) == 3


def test_fsync_and_no_fsync_exclude_each_other(src, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["create", str(src), "-o", str(tmp_path / "x.img"), "--fsync", "--no-fsync"])
    assert e.value.code == 2
    assert "not allowed with" in capsys.readouterr().err
    assert not (tmp_path / "x.img").exists()


@pytest.mark.parametrize("fmt", ["tar", "fat"])
def test_no_fsync_skips_it_and_builds_the_same_image(src, tmp_path, monkeypatch, fmt):
    blockimg.create(src, tmp_path / "synced.img", format=fmt)
    (tmp_path / "x.img").write_bytes(b"old")     # replacing, yet not fsynced
    seen = _regular_fsyncs(monkeypatch)
    assert cli.main(["create", str(src), "-o", str(tmp_path / "x.img"), "--format", fmt,
                     "-q", "--no-fsync", "--manifest", str(tmp_path / "x.json")]) == 0
    blockimg.create(src, tmp_path / "y.img", format=fmt, fsync=False)
    assert seen == []
    same = (tmp_path / "synced.img").read_bytes()
    assert (tmp_path / "x.img").read_bytes() == same == (tmp_path / "y.img").read_bytes()
