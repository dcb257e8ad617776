"""Faults while creating: the target is complete or untouched, and no temporary is left.

Cases: disk full (a backend that fails after N bytes; a real 256 KiB tmpfs
in tests/root/test_faults_root.py), the source changing after planning (grow,
shrink, vanish; small files read through Python and big ones copied in the
kernel), unreadable files (named in the error), and interruption (SIGTERM and SIGKILL of
``python -m blockimg create`` in the middle of writing). Every process a test
starts runs with default signal dispositions (whatever the test run was started
with: ``nohup``, ``&``) and is killed when the test ends (the ``spawn`` fixture).
"""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import blockimg
from blockimg import api
from blockimg.write.atomic import temporaries_in
from blockimg.block.file import FileDevice
from blockimg.errors import DeviceError, SourceChanged
from conftest import assert_read_back, ROOT, require_tool
from helpers.fake_format import use_fake_format
from helpers.faults import assert_untouched, make_tree
from helpers.processes import children_of

FORMATS = ["fake", "tar", "fat"]


@pytest.fixture(params=FORMATS)
def fmt(request, monkeypatch):
    if request.param == "fake":
        use_fake_format(monkeypatch)
    return request.param


class FailAfter:
    """Patch FileDevice so that writes fail with ENOSPC once ``limit`` bytes went through."""

    def __init__(self, monkeypatch, limit: int) -> None:
        self.limit = limit
        self.written = 0
        real_write = FileDevice._write_at
        real_copy = FileDevice.copy_from

        def write_at(dev, offset, data):
            self._account(dev, offset, len(data))
            return real_write(dev, offset, data)

        def copy_from(dev, offset, fd, length, src_offset=0):
            self._account(dev, offset, length)
            return real_copy(dev, offset, fd, length, src_offset)

        monkeypatch.setattr(FileDevice, "_write_at", write_at)
        monkeypatch.setattr(FileDevice, "copy_from", copy_from)

    def _account(self, dev, offset, n):
        if self.written + n > self.limit:
            raise DeviceError(f"{dev.path}: write at byte {offset} failed: "
                              f"{os.strerror(errno.ENOSPC)}", errno=errno.ENOSPC)
        self.written += n


@pytest.mark.parametrize("limit", [0, 4096, 400_000, 2_300_000])
@pytest.mark.parametrize("with_manifest", [False, True], ids=["plain", "manifest"])
def test_disk_full_after_n_bytes(tmp_path, fmt, monkeypatch, limit, with_manifest):
    src = make_tree(tmp_path / "src")
    target = tmp_path / "out" / "site.img"
    target.parent.mkdir()
    target.write_bytes(b"previous image")
    manifest = tmp_path / "out" / "site.json"
    manifest.write_text("previous manifest")
    FailAfter(monkeypatch, limit)
    with pytest.raises(DeviceError) as ei:
        api.create(src, target, format=fmt,
                   manifest=str(manifest) if with_manifest else None)
    assert ei.value.errno == errno.ENOSPC
    assert_untouched(target, b"previous image")
    assert manifest.read_text() == "previous manifest"


def _change_after_first_file(victim: Path, how: str):
    """A progress callback that changes ``victim`` once the first file is copied."""
    state = {"done": False}

    def progress(done, total):
        if state["done"] or done == 0:
            return
        state["done"] = True
        if how == "grow":
            with open(victim, "ab") as f:
                f.write(b"more")
        elif how == "shrink":
            os.truncate(victim, victim.stat().st_size // 2)
        elif how == "vanish":
            victim.unlink()
    return progress


@pytest.mark.parametrize("how", ["grow", "shrink", "vanish"])
@pytest.mark.parametrize("victim", ["f2.bin", "sub/z.txt"], ids=["big", "small"])
@pytest.mark.parametrize("with_manifest", [False, True], ids=["kernel-copy", "checksum"])
def test_source_changes_during_build(tmp_path, fmt, how, victim, with_manifest):
    src = make_tree(tmp_path / "src")
    target = tmp_path / "site.img"
    target.write_bytes(b"previous")
    with pytest.raises(SourceChanged) as ei:
        api.create(src, target, format=fmt, progress=_change_after_first_file(src / victim, how),
                   manifest=str(tmp_path / "m.json") if with_manifest else None)
    assert victim.split("/")[-1] in str(ei.value)
    assert_untouched(target, b"previous")
    assert not (tmp_path / "m.json").exists()


DROP_DAC = "-dac_override,-dac_read_search"


def test_unreadable_file_is_named(tmp_path, fmt):
    """An unreadable source file fails the build with its path in the message.

    Root reads everything, so as root the build runs without the DAC
    capabilities (``setpriv``).
    """
    src = make_tree(tmp_path / "src")
    locked = src / "sub" / "locked.key"
    locked.write_bytes(b"x" * 100)
    locked.chmod(0o000)
    target = tmp_path / "site.img"
    target.write_bytes(b"previous")
    if os.geteuid() == 0:
        setpriv = require_tool("setpriv")
        code = _driver(fmt, ["create", str(src), "-o", str(target),
                             "--format", "tar" if fmt == "fake" else fmt])
        res = subprocess.run([setpriv, f"--bounding-set={DROP_DAC}", f"--inh-caps={DROP_DAC}",
                              "--", sys.executable, "-c", code],
                             capture_output=True, text=True, cwd=str(ROOT))
        assert res.returncode == 1, res.stderr
        assert str(locked) in res.stderr
        assert "Permission denied" in res.stderr
    else:
        with pytest.raises(DeviceError, match="locked.key"):
            api.create(src, target, format=fmt)
    assert_untouched(target, b"previous")


def _driver(fmt: str, argv, **hook) -> str:
    """Python code running blockimg's CLI with :func:`_hook` installed."""
    return _hook(fmt, **hook) + textwrap.dedent(f"""
        from blockimg.cli import main
        sys.exit(main({list(argv)!r}))
    """)


def _hook(fmt: str, *, pause_after_files: int = -1, named: bool = False,
          marker: str = "") -> str:
    """Python code (a sitecustomize) that adjusts blockimg for a test.

    ``fake``: the tar format is the fake one. ``named``: no O_TMPFILE.
    ``pause_after_files=N``: after N files are copied, create ``marker`` and
    wait until a file ``marker + ".go"`` appears, so a test can signal a process
    that is certainly mid-write (and then let it go on).
    """
    return textwrap.dedent(f"""
        import os, sys, time
        sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'tests')!r}]
        import blockimg.formats as formats
        if {fmt!r} == "fake":
            formats.FORMATS["tar"] = "helpers.fake_format"
        if {named!r}:
            import blockimg.write.atomic as atomic
            atomic._open_anonymous = lambda directory: None
        from blockimg.write.copier import Copier
        real = Copier.put_file
        count = [0]
        def put_file(self, entry, offset):
            if count[0] == {pause_after_files}:
                self.flush()
                open({marker!r}, "w").close()
                for _ in range(6000):
                    if os.path.exists({marker + ".go"!r}):
                        break
                    time.sleep(0.1)
            count[0] += 1
            return real(self, entry, offset)
        Copier.put_file = put_file
    """)


def _start_paused(spawn, tmp_path, fmt, *, named=False, jobs=1, ignore=()):
    src = make_tree(tmp_path / "src", sizes=(1000, 3_000_000, 3_000_000, 3_000_000, 10))
    target = tmp_path / "out" / "site.img"
    target.parent.mkdir()
    target.write_bytes(b"previous image")
    argv = ["create", str(src), "--format", "tar" if fmt == "fake" else fmt,
            "--manifest", str(tmp_path / "out" / "site.json"), "-o", str(target), "-q",
            "-j", str(jobs)]
    marker = tmp_path / "paused"
    # `python -m blockimg create ...`, with a sitecustomize that pauses it mid-write.
    hook = tmp_path / "hook"
    hook.mkdir()
    # With several processes each pauses at its first big file: certainly all mid-write.
    (hook / "sitecustomize.py").write_text(
        _hook(fmt, pause_after_files=2 if jobs == 1 else 0, named=named, marker=str(marker)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(hook), str(ROOT)]))
    proc = spawn([sys.executable, "-m", "blockimg", *argv], cwd=str(ROOT), env=env,
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, ignore=ignore)
    for _ in range(600):
        if marker.exists() or proc.poll() is not None:
            break
        time.sleep(0.1)
    if not marker.exists():
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the build did not reach the middle of writing: {err.decode()}")
    return proc, target


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP],
                         ids=["SIGTERM", "SIGINT", "SIGHUP"])
def test_signal_mid_write_leaves_nothing(spawn, tmp_path, fmt, sig):
    proc, target = _start_paused(spawn, tmp_path, fmt)
    _interrupt(proc, sig, target)


def _interrupt(proc, sig, target) -> None:
    """Send ``sig``: the build says it was interrupted (130) and leaves nothing."""
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert b"interrupted" in err
    assert_untouched(target, b"previous image")
    assert not (target.parent / "site.json").exists()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("fmt_j", ["tar", "fat"])
def test_signal_mid_write_with_worker_processes_leaves_nothing(spawn, tmp_path, fmt_j, sig):
    """-j 2: the parent stops its worker and reaps it; nothing is left, no process lingers."""
    proc, target = _start_paused(spawn, tmp_path, fmt_j, jobs=2)
    workers = children_of(proc.pid)
    assert workers, "no worker process was started"
    _interrupt(proc, sig, target)
    assert not [pid for pid in workers if os.path.exists(f"/proc/{pid}")]


def test_sigkill_mid_write_leaves_nothing(spawn, tmp_path, fmt):
    """With O_TMPFILE the image being built has no name, so SIGKILL leaves nothing."""
    proc, target = _start_paused(spawn, tmp_path, fmt)
    proc.kill()
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert target.read_bytes() == b"previous image"
    assert temporaries_in(str(target.parent)) == []
    assert not (target.parent / "site.json").exists()


def test_sigkill_named_fallback_is_cleaned_by_next_run(spawn, tmp_path, fmt, monkeypatch):
    """Without O_TMPFILE a SIGKILL leaves .site.img.PID.*.blockimg-tmp; the next run removes it."""
    proc, target = _start_paused(spawn, tmp_path, fmt, named=True)
    proc.kill()
    proc.communicate(timeout=120)
    left = temporaries_in(str(target.parent))
    assert any(n.startswith(f".site.img.{proc.pid}.") for n in left), left
    if fmt == "fake":
        use_fake_format(monkeypatch)
    api.create(tmp_path / "src", target, format=fmt, manifest=str(target.parent / "site.json"))
    assert temporaries_in(str(target.parent)) == []
    with blockimg.open(target, format=fmt) as img:
        assert img.read("f0.bin") == bytes([1]) * 1000


def test_manifest_placement_failing_after_the_image_leaves_no_stale_manifest(
        tmp_path, fmt, monkeypatch):
    """Image and manifest are two files: if only the image could be put in place, the
    old manifest (describing the old image) is removed rather than left beside it."""
    import blockimg.write.atomic as atomic
    src = make_tree(tmp_path / "src", sizes=(10, 20))
    target = tmp_path / "site.img"
    man = tmp_path / "site.json"
    target.write_bytes(b"old image")
    man.write_text("old manifest")
    real = atomic._link_fd

    def link(fd, dest):
        if dest.endswith(".json") or ".site.json." in dest:
            raise OSError(errno.EIO, os.strerror(errno.EIO), dest)
        return real(fd, dest)
    monkeypatch.setattr(atomic, "_link_fd", link)
    monkeypatch.setattr(atomic, "_open_anonymous",
                        lambda d: os.open(d, os.O_TMPFILE | os.O_RDWR, 0o600))
    with pytest.raises(DeviceError, match="cannot put the image in place"):
        api.create(src, target, format=fmt, manifest=str(man))
    assert target.read_bytes() != b"old image"  # the new image is complete and in place
    assert not man.exists()
    assert temporaries_in(str(tmp_path)) == []


def test_signals_ignored_at_start_stay_ignored(spawn, tmp_path):
    """Started as ``nohup blockimg create ... &`` starts it (SIGHUP and SIGINT ignored),
    a hangup or a Ctrl-C at the terminal does not stop the build, as the shell means:
    it goes on and puts a complete image in place."""
    proc, target = _start_paused(spawn, tmp_path, "tar", ignore=(signal.SIGINT, signal.SIGHUP))
    proc.send_signal(signal.SIGHUP)
    proc.send_signal(signal.SIGINT)
    (tmp_path / "paused.go").touch()
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert_read_back("tar", target, tmp_path / "src", tmp_path / "read-back")
    assert temporaries_in(str(target.parent)) == []


def test_fault_tests_pass_under_nohup_in_the_background(spawn, tmp_path):
    """``nohup tools/test &``: the test run starts with SIGINT and SIGHUP ignored. The
    signal tests still pass (their children get default dispositions back) and leave
    no process behind."""
    inner = tmp_path / "inner"
    proc = spawn([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                  f"--basetemp={inner}", "-k", "SIGINT or SIGHUP",
                  str(Path(__file__))], cwd=str(ROOT), ignore=(signal.SIGINT, signal.SIGHUP),
                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out.decode()[-3000:]
    assert b" passed" in out and b"deselected" in out
    assert _processes_naming(str(inner)) == []


def _processes_naming(text: str) -> list:
    """Processes whose command line mentions ``text``."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found
