"""Atomic output: the target appears complete or not at all; no temporary is left."""
from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from blockimg.write.atomic import (TMP_SUFFIX, atomic_file, atomic_path, stale_temporaries,
                             temporaries_in)
from blockimg.errors import DeviceError


class Boom(Exception):
    pass


@pytest.mark.parametrize("anonymous", [None, False], ids=["o_tmpfile", "named"])
def test_success_puts_file_in_place_with_umask_mode(tmp_path, anonymous):
    target = tmp_path / "out.img"
    old = os.umask(0o027)
    try:
        with atomic_file(str(target), anonymous=anonymous) as out:
            os.write(out.fd, b"hello")
    finally:
        os.umask(old)
    assert target.read_bytes() == b"hello"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert temporaries_in(str(tmp_path)) == []


@pytest.mark.parametrize("anonymous", [None, False], ids=["o_tmpfile", "named"])
def test_replaces_existing_target(tmp_path, anonymous):
    target = tmp_path / "out.img"
    target.write_bytes(b"old")
    with atomic_file(str(target), anonymous=anonymous) as out:
        os.write(out.fd, b"new")
    assert target.read_bytes() == b"new"
    assert temporaries_in(str(tmp_path)) == []


@pytest.mark.parametrize("anonymous", [None, False], ids=["o_tmpfile", "named"])
@pytest.mark.parametrize("exc", [Boom, KeyboardInterrupt])
def test_failure_leaves_target_untouched_and_no_temporary(tmp_path, anonymous, exc):
    target = tmp_path / "out.img"
    target.write_bytes(b"old")
    with pytest.raises(exc):
        with atomic_file(str(target), anonymous=anonymous) as out:
            os.write(out.fd, b"partial")
            raise exc()
    assert target.read_bytes() == b"old"
    assert temporaries_in(str(tmp_path)) == []


def test_o_tmpfile_is_used_here(tmp_path):
    """On Linux with O_TMPFILE the file being built has no name at all."""
    with atomic_file(str(tmp_path / "x.img")) as out:
        names = os.listdir(tmp_path)
        anonymous = out.anonymous
    if hasattr(os, "O_TMPFILE") and sys.platform.startswith("linux"):
        assert anonymous
        assert names == []


def test_secret_file_is_0600_from_the_start(tmp_path):
    target = tmp_path / "key.img"
    with atomic_file(str(target), secret=True, anonymous=False) as out:
        assert stat.S_IMODE(os.fstat(out.fd).st_mode) == 0o600
        os.write(out.fd, b"k")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_secret_named_temporary_is_wiped_before_unlink(tmp_path, monkeypatch):
    """With --secret a failed build's temporary is overwritten with zeros first."""
    seen = {}
    real_unlink = os.unlink

    def spy(path, *a, **kw):
        if str(path).endswith(TMP_SUFFIX):
            with open(path, "rb") as f:
                seen["content"] = f.read()
        return real_unlink(path, *a, **kw)

    monkeypatch.setattr(os, "unlink", spy)
    with pytest.raises(Boom):
        with atomic_file(str(tmp_path / "key.img"), secret=True, anonymous=False) as out:
            os.write(out.fd, b"SECRET-KEY-MATERIAL")
            raise Boom()
    assert seen["content"] == bytes(len(b"SECRET-KEY-MATERIAL"))


def test_secret_anonymous_temporary_is_wiped(tmp_path, monkeypatch):
    import blockimg.write.atomic as atomic
    wiped = []
    real = atomic._wipe_fd
    monkeypatch.setattr(atomic, "_wipe_fd", lambda fd: (wiped.append(fd), real(fd)))
    with pytest.raises(Boom):
        with atomic_file(str(tmp_path / "key.img"), secret=True) as out:
            os.write(out.fd, b"SECRET")
            raise Boom()
    assert wiped == [out.fd]
    assert temporaries_in(str(tmp_path)) == []


def test_stale_named_temporary_of_dead_process_is_removed(tmp_path):
    """A SIGKILLed named build leaves .NAME.PID.RAND.blockimg-tmp; the next run removes it."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead = int(proc.stdout)
    stale = tmp_path / f".out.img.{dead}.abcd1234{TMP_SUFFIX}"
    stale.write_bytes(b"junk")
    live = tmp_path / f".out.img.{os.getpid()}.abcd1234{TMP_SUFFIX}"
    live.write_bytes(b"in progress")
    assert stale_temporaries(str(tmp_path / "out.img")) == [str(stale)]
    with atomic_file(str(tmp_path / "out.img")) as out:
        os.write(out.fd, b"x")
    assert not stale.exists()
    assert live.exists()  # a running process's temporary is not ours to remove


def test_only_the_target_s_own_temporaries_count_as_stale(tmp_path):
    """.NAME.PID.HEX.blockimg-tmp of the target itself, PID in decimal digits, HEX lower-case
    hex; anything else that looks close is someone else's file and stays."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    ours = [f".out.img.{dead}.abcd1234{TMP_SUFFIX}", f".out.img.{dead}.0{TMP_SUFFIX}"]
    others = [f".out.img.{dead}.ABCD1234{TMP_SUFFIX}", f".out.img.{dead}.ab.cd{TMP_SUFFIX}",
              f".out.img.{dead}.{TMP_SUFFIX}", f".out.img..abcd{TMP_SUFFIX}",
              f".out.img.x{dead}.abcd{TMP_SUFFIX}", f".out.img.\u00b2.abcd{TMP_SUFFIX}",
              f".out.img{TMP_SUFFIX}", f".out.img.{TMP_SUFFIX}", f"out.img.{dead}.ab{TMP_SUFFIX}",
              f".xout.img.{dead}.abcd{TMP_SUFFIX}", f".out.img.{dead}.abcd{TMP_SUFFIX}.x",
              f".out.img.{dead}.abcd{TMP_SUFFIX}\n", f".out.imgx.{dead}.abcd{TMP_SUFFIX}"]
    for name in ours + others:
        (tmp_path / name).write_bytes(b"x")
    assert stale_temporaries(str(tmp_path / "out.img")) == sorted(
        str(tmp_path / n) for n in ours)


def test_atomic_path_failure_removes_temporary(tmp_path):
    target = tmp_path / "m.json"
    with pytest.raises(Boom):
        with atomic_path(str(target)) as tmp:
            open(tmp, "w").write("{}")
            raise Boom()
    assert not target.exists()
    assert temporaries_in(str(tmp_path)) == []


def test_unwritable_directory_is_a_device_error(tmp_path):
    with pytest.raises(DeviceError, match="cannot create a temporary file"):
        with atomic_file(str(tmp_path / "missing-dir" / "x.img")):
            pass
