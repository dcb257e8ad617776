"""Durability by default: the image is fsynced before it is put in place; --no-fsync skips it."""
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
def test_create_fsyncs_the_image_by_default(src, tmp_path, monkeypatch, fmt):
    seen = _regular_fsyncs(monkeypatch)
    blockimg.create(src, tmp_path / "x.img", format=fmt)
    assert seen
    assert cli.main(["create", str(src), "-o", str(tmp_path / "y.img"), "--format", fmt,
                     "-q"]) == 0
    assert len(seen) >= 2


@pytest.mark.parametrize("fmt", ["tar", "fat"])
def test_no_fsync_skips_it_and_builds_the_same_image(src, tmp_path, monkeypatch, fmt):
    blockimg.create(src, tmp_path / "synced.img", format=fmt)
    seen = _regular_fsyncs(monkeypatch)
    assert cli.main(["create", str(src), "-o", str(tmp_path / "x.img"), "--format", fmt,
                     "-q", "--no-fsync"]) == 0
    blockimg.create(src, tmp_path / "y.img", format=fmt, fsync=False)
    assert seen == []
    same = (tmp_path / "synced.img").read_bytes()
    assert (tmp_path / "x.img").read_bytes() == same == (tmp_path / "y.img").read_bytes()
