"""Work split over forked processes: the same images and trees as one process, errors
typed and in order, nothing lost when a child dies."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import blockimg
from blockimg.write import parallel
from blockimg.cli import _jobs
from blockimg.errors import BlockImgError, DoesNotFit, SourceChanged
from conftest import assert_read_back, assert_same_tree, tree_snapshot
from helpers.hostile_tars import hostile_member as _member, make_tar, snapshot

MTIME = 1_700_000_000


# -- split and auto_jobs ---------------------------------------------------------

@given(st.lists(st.integers(0, 10_000), max_size=60), st.integers(1, 8))
def test_split_is_contiguous_whole_and_balanced(weights, parts):
    ranges = parallel.split(weights, parts)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(weights)
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    assert len(ranges) == max(1, min(parts, len(weights)))
    if weights:
        assert all(stop > start for start, stop in ranges)
        # No part is heavier than an equal share plus its heaviest item.
        share = sum(weights) / len(ranges)
        for start, stop in ranges:
            assert sum(weights[start:stop]) <= share + max(weights[start:stop]) + 1e-9


@pytest.fixture
def idle_machine(monkeypatch):
    """auto_jobs on a machine with an idle CPU and no cgroup limit, whatever runs here."""
    monkeypatch.setattr(parallel, "idle_cpus", lambda: 1)
    monkeypatch.setattr(parallel, "cpu_quota", lambda: None)


def test_auto_jobs(monkeypatch, idle_machine):
    monkeypatch.setattr(parallel, "usable_cpus", lambda: 2)
    assert parallel.auto_jobs(300) == 1
    assert parallel.auto_jobs(1999) == 1
    assert parallel.auto_jobs(20_000) == 2
    monkeypatch.setattr(parallel, "usable_cpus", lambda: 64)
    assert parallel.auto_jobs(20_000) == parallel.MAX_AUTO_JOBS
    monkeypatch.setattr(parallel, "usable_cpus", lambda: 1)
    assert parallel.auto_jobs(1_000_000) == 1


def test_auto_jobs_is_one_process_without_an_idle_cpu_or_two_cpus_of_quota(monkeypatch):
    """A second process sharing a CPU with other work makes the build slower than one
    (docs/PERFORMANCE.rst): without an idle CPU, or under a cgroup limit below two
    CPUs, auto picks one; with neither fact known, it goes by the CPUs it may use."""
    monkeypatch.setattr(parallel, "usable_cpus", lambda: 2)
    for idle, quota, want in [(1, None, 2), (0, None, 1), (None, None, 2), (1, 1.5, 1),
                              (1, 2.0, 2), (1, 0.5, 1), (3, 8.0, 2)]:
        monkeypatch.setattr(parallel, "idle_cpus", lambda: idle)
        monkeypatch.setattr(parallel, "cpu_quota", lambda: quota)
        assert parallel.auto_jobs(20_000) == want, (idle, quota)
    monkeypatch.setattr(parallel, "usable_cpus", lambda: 1)
    monkeypatch.setattr(parallel, "idle_cpus", lambda: 1 / 0)      # not even asked
    assert parallel.auto_jobs(20_000) == 1


def test_idle_cpus_reads_the_kernel_s_count_of_runnable_tasks(monkeypatch, tmp_path):
    real_open = open

    def fake(text):
        def opener(path, *args, **kwargs):
            if path == "/proc/loadavg":
                return real_open(tmp_path / "loadavg", *args, **kwargs)
            return real_open(path, *args, **kwargs)
        (tmp_path / "loadavg").write_text(text)
        monkeypatch.setattr("builtins.open", opener)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    fake("0.50 0.40 0.30 1/130 4242\n")          # only this process runs
    assert parallel.idle_cpus() == 1
    fake("1.50 1.40 1.30 2/130 4242\n")          # and one more: no idle CPU
    assert parallel.idle_cpus() == 0
    fake("9.50 9.40 9.30 7/130 4242\n")
    assert parallel.idle_cpus() == 0
    fake("garbage\n")
    assert parallel.idle_cpus() is None
    monkeypatch.undo()
    assert parallel.idle_cpus() is None or 0 <= parallel.idle_cpus() < (os.cpu_count() or 1)


def test_cli_jobs_argument():
    assert _jobs("auto") is None and _jobs("3") == 3
    for bad in ("0", "-1", "x", ""):
        with pytest.raises(Exception, match="number of processes"):
            _jobs(bad)


# -- fork_map --------------------------------------------------------------------

def test_parts_run_in_order_part_zero_here_the_rest_in_children():
    me = os.getpid()
    got = parallel.fork_map(lambda i, tick: (i, os.getpid(), "x" * (100_000 * i)), 4)
    assert [g[0] for g in got] == [0, 1, 2, 3]
    assert got[0][1] == me and len({g[1] for g in got}) == 4
    assert [len(g[2]) for g in got] == [0, 100_000, 200_000, 300_000]   # > a pipe's buffer


def test_the_first_error_in_part_order_comes_back_typed():
    def work(i, tick):
        if i == 2:
            raise DoesNotFit("part two", needed=10, available=3)
        if i == 3:
            raise SourceChanged("part three", path="p3")
        return i
    with pytest.raises(DoesNotFit) as e:
        parallel.fork_map(work, 4)
    assert (e.value.needed, e.value.available) == (10, 3)
    assert "part two" in str(e.value)


def test_the_parents_own_error_wins_over_later_parts():
    def work(i, tick):
        raise SourceChanged(f"part {i}", path=f"p{i}")
    with pytest.raises(SourceChanged, match="p0: part 0"):
        parallel.fork_map(work, 3)


def test_a_child_that_dies_is_an_error_not_a_hang():
    def work(i, tick):
        if i == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return i
    with pytest.raises(BlockImgError, match="worker process 1 was killed by signal 9"):
        parallel.fork_map(work, 2)


def test_children_are_stopped_even_when_sigterm_is_ignored(tmp_path):
    """A process started with SIGTERM ignored forks children that ignore it too: when
    the parent is interrupted it stops them with SIGKILL instead of waiting for them."""
    finished = tmp_path / "finished"

    def work(i, tick):
        if i == 0:
            raise KeyboardInterrupt
        import time
        for _ in range(300):             # 30 s unless stopped
            time.sleep(0.1)
        finished.touch()
    old = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        with pytest.raises(KeyboardInterrupt):
            parallel.fork_map(work, 2)
    finally:
        signal.signal(signal.SIGTERM, old)
    assert not finished.exists()


def test_a_bug_in_a_child_stays_a_bug_with_its_traceback():
    """A programming error in a child is raised again as itself (not a BlockImgError),
    its traceback in the child as its cause."""
    def work(i, tick):
        return {}[i] if i else 0
    with pytest.raises(KeyError) as caught:
        parallel.fork_map(work, 2)
    assert not isinstance(caught.value, BlockImgError)
    cause = caught.value.__cause__
    assert isinstance(cause, parallel.WorkerTraceback)
    assert "in worker process 1" in str(cause) and "return {}[i]" in str(cause)


def test_an_os_error_in_a_child_crosses_as_itself():
    def work(i, tick):
        if i:
            raise FileNotFoundError(2, "No such file or directory", "gone")
        return 0
    with pytest.raises(FileNotFoundError, match="gone"):
        parallel.fork_map(work, 2)


@pytest.mark.parametrize("fmt", ["tar", "fat"])
@pytest.mark.parametrize("command", ["create", "extract"])
def test_a_bug_in_a_worker_is_a_traceback_not_a_user_error(tmp_path, fmt, command):
    """The blockimg program: a ZeroDivisionError in a worker process ends it with a
    traceback and a non-zero exit, not a one-line "blockimg: error"."""
    src = _source(tmp_path, n=80)
    img = tmp_path / "a.img"
    blockimg.create(src, img, format=fmt, mtime=MTIME, jobs=1)
    args = (["create", str(src), "-o", str(tmp_path / "b.img"), "--format", fmt]
            if command == "create" else ["extract", str(img), str(tmp_path / "out")])
    hook = "blockimg.write.copier.Copier.put_records" if command == "create" \
        else "blockimg.read.extract.TreeWriter.write_files"
    owner, name = hook.rsplit(".", 1)
    code = (
        "import os, sys, importlib, blockimg.cli, blockimg.read.extract\n"
        f"mod, cls = {owner!r}.rsplit('.', 1)\n"
        "owner = getattr(importlib.import_module(mod), cls)\n"
        f"real = getattr(owner, {name!r})\n"
        "me = os.getpid()\n"
        "def hooked(*a, **k):\n"
        "    if os.getpid() != me:\n"
        "        1 / 0\n"
        "    return real(*a, **k)\n"
        f"setattr(owner, {name!r}, hooked)\n"
        f"sys.exit(blockimg.cli.main({args + ['--jobs', '2']!r}))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode != 0
    assert "Traceback (most recent call last)" in done.stderr, done.stderr
    assert "ZeroDivisionError" in done.stderr
    assert "in worker process 1" in done.stderr
    assert "blockimg: error" not in done.stderr


def test_progress_adds_up_every_part():
    seen = []

    def work(i, tick):
        for k in range(1, 6):
            tick(k * (i + 1))
        return i
    assert parallel.fork_map(work, 3, progress=seen.append) == [0, 1, 2]
    assert seen and seen == sorted(seen)
    assert max(seen) <= 5 + 10 + 15


def test_one_part_runs_here_with_the_callers_progress():
    seen = []
    assert parallel.fork_map(lambda i, tick: tick(7) or os.getpid(), 1,
                             progress=seen.append) == [os.getpid()]
    assert seen == [7]


# -- builds -------------------------------------------------------------------------

def _source(tmp_path: Path, n: int = 400) -> Path:
    src = tmp_path / "src"
    for i in range(n):
        d = src / f"dir{i % 9}" / f"sub{i % 3}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"file {i:04d} with a long name.bin").write_bytes(
            bytes([i % 256]) * ((i * 7919) % 30000))
    (src / "big.bin").write_bytes(os.urandom(700_000))      # kernel copy path
    (src / "empty").mkdir()
    return src


@pytest.mark.parametrize("fmt", ["tar", "fat"])
def test_a_build_split_over_processes_is_the_same_image(tmp_path, fmt):
    src = _source(tmp_path)
    one, three = tmp_path / "one.img", tmp_path / "three.img"
    s1 = blockimg.create(src, one, format=fmt, mtime=MTIME, manifest=True, jobs=1)
    s3 = blockimg.create(src, three, format=fmt, mtime=MTIME, manifest=True, jobs=3)
    assert three.read_bytes() == one.read_bytes()
    assert s3.manifest.dumps() == s1.manifest.dumps()       # the CRCs came back too
    assert_read_back(fmt, three, src, tmp_path / "out")


@pytest.mark.parametrize("fmt", ["tar", "fat"])
def test_a_source_change_seen_by_a_child_is_reported_and_nothing_is_left(tmp_path, fmt,
                                                                         monkeypatch):
    src = _source(tmp_path, n=60)
    victim = sorted(src.rglob("*.bin"))[-2]      # late in image order: a child's part
    from blockimg import api
    real_plan = api.format_module(fmt).plan

    def plan_then_shrink(tree, opts):
        p = real_plan(tree, opts)
        victim.write_bytes(b"")
        return p
    monkeypatch.setattr(api, "format_module", lambda f: _with_plan(f, plan_then_shrink))
    out = tmp_path / "x.img"
    with pytest.raises(SourceChanged, match=str(victim.name)):
        blockimg.create(src, out, format=fmt, jobs=3)
    assert not out.exists()
    assert sorted(os.listdir(tmp_path)) == ["src"]


def _with_plan(fmt, plan):
    from blockimg.formats import format_module

    class Mod:
        pass
    real = format_module(fmt)
    mod = Mod()
    mod.__dict__.update({k: getattr(real, k) for k in ("Options", "write")})
    mod.plan = plan
    return mod


# -- extraction -------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["tar", "fat"])
def test_an_extraction_split_over_processes_is_the_same_tree(tmp_path, fmt):
    src = _source(tmp_path)
    img = tmp_path / "i.img"
    blockimg.create(src, img, format=fmt, mtime=MTIME)
    reports = {}
    for jobs in (1, 3):
        dest = tmp_path / f"out{jobs}"
        with blockimg.open(img) as image:
            reports[jobs] = image.extract(dest, jobs=jobs)
        assert_same_tree(src, dest)
    assert reports[3] == reports[1]
    assert len(reports[3].written) == len(list(src.rglob("*")))
    stats = [{p.relative_to(tmp_path / f"out{j}"): (p.stat().st_mtime, p.stat().st_mode)
              for p in (tmp_path / f"out{j}").rglob("*")} for j in (1, 3)]
    assert stats[0] == stats[1]


@given(st.lists(_member, min_size=1, max_size=12))
def test_hostile_archives_split_over_processes_do_as_one_process(tmp_path_factory, members):
    """The same refusals, the same tree, nothing outside, whatever the split."""
    tmp = tmp_path_factory.mktemp("p")
    spec = [(n, k, t.encode() if k == "file" else t) for n, k, t in members if n.strip("/")]
    if not spec:
        return
    t = make_tar(tmp / "r.tar", spec)
    got = []
    for jobs in (1, 2):
        dest = tmp / f"dest{jobs}"
        dest.mkdir()
        before = snapshot(tmp, dest)
        with blockimg.open(t) as img:
            report = img.extract(dest, jobs=jobs)
        assert snapshot(tmp, dest) == before
        got.append((report, tree_snapshot(dest)))
    assert got[0] == got[1]


def test_cli_extract_jobs(tmp_path):
    src = _source(tmp_path, n=50)
    img = tmp_path / "i.tar"
    blockimg.create(src, img, format="tar")
    from blockimg.cli import main
    assert main(["extract", str(img), str(tmp_path / "o"), "-j", "2"]) == 0
    assert_same_tree(src, tmp_path / "o")
    assert main(["create", str(src), "-o", str(tmp_path / "j.tar"), "--jobs", "2", "-q"]) == 0
    assert (tmp_path / "j.tar").read_bytes() == img.read_bytes()


def test_a_part_that_cannot_be_forked_runs_here(monkeypatch):
    """fork failing (ENOMEM/EAGAIN on a small board) is not an error: the part runs in
    this process, after the first, and its progress still counts."""
    real_fork = os.fork
    forks = []

    def fork():
        forks.append(1)
        if len(forks) == 2:
            raise OSError(12, "Cannot allocate memory")
        return real_fork()
    monkeypatch.setattr(os, "fork", fork)
    seen = []

    def work(i, tick):
        tick(10 * (i + 1))
        return i, os.getpid()
    got = parallel.fork_map(work, 4, progress=seen.append)
    assert [g[0] for g in got] == [0, 1, 2, 3]
    assert got[0][1] == got[2][1] == os.getpid() != got[1][1]
    assert got[3][1] not in (os.getpid(), got[1][1])
    assert max(seen) == 10 + 20 + 30 + 40


def test_a_killed_childs_part_is_redone_here_when_asked():
    me = os.getpid()

    def work(i, tick):
        if i == 1 and os.getpid() != me:
            os.kill(os.getpid(), signal.SIGKILL)     # the out-of-memory killer, say
        return i, os.getpid()
    got = parallel.fork_map(work, 3, redo_killed=True)
    assert [g[0] for g in got] == [0, 1, 2]
    assert got[1][1] == me and got[2][1] != me
    with pytest.raises(BlockImgError, match="killed by signal 9"):
        parallel.fork_map(work, 3)


@pytest.mark.parametrize("fmt", ["tar", "fat"])
def test_a_build_survives_a_worker_killed_mid_write(tmp_path, fmt, monkeypatch):
    """The parent writes a killed worker's part again: the same image."""
    from blockimg.write import copier as copymod
    src = _source(tmp_path, n=80)
    one = tmp_path / "one.img"
    blockimg.create(src, one, format=fmt, mtime=MTIME, jobs=1)
    me = os.getpid()
    real = copymod.Copier.put_records

    def put_records(self, records, pad=1):
        if os.getpid() != me:
            for n, rec in enumerate(records):
                if n == 5:
                    self.flush()                    # half the part is on disk
                    os.kill(os.getpid(), signal.SIGKILL)
                real(self, [rec], pad)
            return
        real(self, records, pad)
    monkeypatch.setattr(copymod.Copier, "put_records", put_records)
    two = tmp_path / "two.img"
    blockimg.create(src, two, format=fmt, mtime=MTIME, jobs=2)
    assert two.read_bytes() == one.read_bytes()


@pytest.mark.parametrize("fmt", ["tar", "fat"])
def test_progress_of_a_split_build_reaches_the_total(tmp_path, fmt):
    src = _source(tmp_path, n=120)
    seen = []
    s = blockimg.create(src, tmp_path / "p.img", format=fmt, jobs=2,
                        progress=lambda done, total: seen.append((done, total)))
    assert seen and all(total == s.file_bytes for _, total in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert seen[-1][0] == s.file_bytes


class _TwoArgumentError(Exception):
    """Pickles, but does not unpickle (pickle calls it again with ``args``, one value)."""

    def __init__(self, what, why):
        super().__init__(what)
        self.why = why


def test_an_answer_that_does_not_unpickle_is_a_bug_not_a_dead_worker():
    """A child's error that cannot be read back in the parent is a programming error,
    raised as one (with the unpickling traceback), not "worker process 1 exited ... without
    finishing its part" (a BlockImgError)."""
    def work(i, tick):
        if i:
            raise _TwoArgumentError("a", "b")
        return 0
    with pytest.raises(RuntimeError, match="answer of worker process 1 cannot be read") \
            as caught:
        parallel.fork_map(work, 2)
    assert not isinstance(caught.value, BlockImgError)
    assert "_TwoArgumentError" in str(caught.value.__cause__)
