"""Extraction of a lazily opened FAT image with ``jobs`` > 1: the tree is indexed in
parts, each by the process that writes it (``blockimg.read.extract_split``). It must do
exactly what a one-process extraction does, and on a corrupt image fail the same way
with nothing written."""
from __future__ import annotations

import os
import random
import shutil
import stat
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import blockimg
from blockimg.read import extract as read_extract
from blockimg.read import extract_split as split_mod
from blockimg.write import parallel
from blockimg.cli import main
from blockimg.errors import CorruptImage
from blockimg.fat import split_walk
from blockimg.fat.walk import device_offset
from conftest import assert_read_back, assert_same_tree, require_tool, run
from helpers.processes import children_of as _children_of

MTIME = 1_700_000_000


def make_tree(root: Path, tops: int = 6, subs: int = 3, files: int = 8, *,
              one_top: bool = False) -> Path:
    base = root / "www" if one_top else root
    for d in range(tops):
        for s in range(subs):
            for f in range(files):
                p = base / f"dir {d:02d}" / f"sub{s}" / f"a file with a long name {f}.txt"
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(f"{d}.{s}.{f} ".encode() * (1 + 211 * f))
                os.utime(p, (MTIME + f, MTIME + f))
        (base / f"dir {d:02d}" / "index.html").write_bytes(b"<p>%d</p>" % d)
    (root / "top.txt").write_bytes(b"top")
    return root


def build(src: Path, img: Path, how: str) -> Path:
    if how == "blockimg":
        blockimg.create(src, img, format="fat", mtime=MTIME)
    elif how == "fat32":
        blockimg.create(src, img, format="fat", mtime=MTIME, target="generic", fat_type=32)
    else:
        # mkfs.fat + mcopy, the top directories copied in a shuffled order: the walk order
        # of the image is then not its sorted order.
        run(require_tool("mkfs.fat"), "-C", img, "8192")
        names = sorted(os.listdir(src))
        random.Random(7).shuffle(names)
        run(require_tool("mcopy"), "-s", "-Q", "-i", img, *[src / n for n in names], "::/",
            env=dict(os.environ, MTOOLS_SKIP_CHECK="1"))
    return img


def extract(img: Path, dest: Path, jobs: int):
    with blockimg.open(img, lazy=True) as im:
        report = im.extract(dest, jobs=jobs)
        return report, list(im.warnings), sorted(e.path for e in im.list())


def stamps(root: Path) -> dict:
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            st_ = os.lstat(p)
            out[os.path.relpath(p, root)] = (stat.S_IMODE(st_.st_mode), int(st_.st_mtime))
    return out


@pytest.fixture
def used(monkeypatch):
    """Counts extractions that went through the split (True) or fell back (False)."""
    seen = []
    real = split_mod.extract_split

    def spy(*a, **k):
        got = real(*a, **k)
        seen.append(got)
        return got
    monkeypatch.setattr(split_mod, "extract_split", spy)
    return seen


@pytest.mark.parametrize("how", ["blockimg", "fat32", "mcopy"])
@pytest.mark.parametrize("jobs", [2, 3])
@pytest.mark.parametrize("one_top", [False, True])
def test_split_extraction_is_the_one_process_extraction(tmp_path, used, how, jobs, one_top):
    src = make_tree(tmp_path / "src", one_top=one_top)
    img = build(src, tmp_path / "t.img", how)
    one, warn1, list1 = extract(img, tmp_path / "one", 1)
    assert used == []
    many, warn2, list2 = extract(img, tmp_path / "many", jobs)
    assert used == [True]
    assert many.written == one.written and len(one.written) == len(list1)
    assert many.refused == one.refused == [] and many.existing == one.existing == []
    assert warn2 == warn1 and list2 == list1
    assert_same_tree(src, tmp_path / "many")
    assert stamps(tmp_path / "many") == stamps(tmp_path / "one")
    if how != "mcopy":
        assert_read_back("fat", img, src, tmp_path / "mcopy")


def test_the_parts_are_balanced_and_below_the_root_when_it_has_one_directory(tmp_path):
    src = make_tree(tmp_path / "src", one_top=True)
    img = build(src, tmp_path / "t.img", "blockimg")
    with blockimg.open(img, lazy=True) as im:
        plan = im.split_plan(2)
        counts = []
        for i in range(2):
            part = blockimg.open(img, lazy=True)
            split_walk.SplitWalk(part, plan.owner, plan.needed).walk(i)
            counts.append(len(part.walk.index))
            part.close()
    assert sum(counts) == len(list(src.rglob("*")))
    assert min(counts) > 0.3 * sum(counts)      # not all of "www" in one part


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3), st.integers(0, 9),
                          st.integers(0, 3000)), min_size=1, max_size=40),
       st.integers(2, 3))
def test_random_trees_split_or_not_give_the_same_extraction(tmp_path_factory, files, jobs):
    tmp = tmp_path_factory.mktemp("rnd")
    src = tmp / "src"
    for a, b, c, size in files:
        p = src / f"d{a}" / f"e{b}" / f"Name {c}.bin" if b else src / f"d{a}" / f"f{c}"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(bytes([a, b, c]) * size)
    img = build(src, tmp / "t.img", "blockimg")
    one, warn1, _ = extract(img, tmp / "one", 1)
    many, warn2, _ = extract(img, tmp / "many", jobs)
    assert many == one and warn2 == warn1
    assert_same_tree(src, tmp / "many")


# -- corrupt images: the same error as one process, and nothing written -------------------
def entry_offset(img: Path, path: str) -> int:
    """Device offset of ``path``'s short directory entry."""
    dirpath, _, name = path.rpartition("/")
    with blockimg.open(img) as im:
        extents = im.walk.dirs[dirpath]
        off = next(r.offset for r in im.walk.records(dirpath, extents) if r.name == name)
        return device_offset(extents, off)


def patch(img: Path, at: int, data: bytes) -> None:
    with open(img, "r+b") as f:
        f.seek(at)
        f.write(data)


def one_process_error(img: Path, dest: Path) -> str:
    with pytest.raises(CorruptImage) as e:
        extract(img, dest, 1)
    return str(e.value)


@pytest.mark.parametrize("jobs", [2, 3])
def test_a_chain_crossing_between_parts_fails_as_in_one_process(tmp_path, used, jobs):
    src = make_tree(tmp_path / "src")
    img = build(src, tmp_path / "t.img", "blockimg")
    a = "dir 00/sub0/a file with a long name 3.txt"      # part 0
    b = "dir 05/sub2/a file with a long name 3.txt"      # the last part; same size
    at_a, at_b = entry_offset(img, a), entry_offset(img, b)
    with open(img, "rb") as f:
        f.seek(at_a + 26)
        cluster = f.read(2)
    patch(img, at_b + 26, cluster)
    want = one_process_error(img, tmp_path / "one")
    assert "two chains" in want
    with pytest.raises(CorruptImage) as e:
        extract(img, tmp_path / "many", jobs)
    assert str(e.value) == want
    assert used == [False]                               # the split saw it, wrote nothing
    assert os.listdir(tmp_path / "many") == []


def test_a_broken_entry_in_a_later_part_fails_as_in_one_process(tmp_path, used):
    src = make_tree(tmp_path / "src")
    img = build(src, tmp_path / "t.img", "blockimg")
    at = entry_offset(img, "dir 04/sub1/a file with a long name 5.txt")
    patch(img, at + 26, b"\xf0\xff")                     # start cluster out of range
    want = one_process_error(img, tmp_path / "one")
    with pytest.raises(CorruptImage) as e:
        extract(img, tmp_path / "many", 2)
    assert str(e.value) == want and used == [False]
    assert os.listdir(tmp_path / "many") == []
    r = subprocess.run([sys.executable, "-m", "blockimg", "extract", str(img), str(tmp_path / "cli"), "-j2"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and want in r.stderr
    assert os.listdir(tmp_path / "cli") == []


def test_a_directory_cycle_makes_no_plan_and_fails_as_in_one_process(tmp_path, used):
    src = make_tree(tmp_path / "src")
    img = build(src, tmp_path / "t.img", "blockimg")
    with open(img, "rb") as f:
        f.seek(entry_offset(img, "dir 01") + 26)
        top = f.read(2)
    patch(img, entry_offset(img, "dir 01/sub2") + 26, top)   # sub2 is dir 01 again
    want = one_process_error(img, tmp_path / "one")
    with blockimg.open(img, lazy=True) as im:
        assert im.split_plan(2) is None
    with pytest.raises(CorruptImage) as e:
        extract(img, tmp_path / "many", 2)
    assert str(e.value) == want and used == []


def test_names_refused_and_warnings_in_any_part_are_reported(tmp_path, used):
    src = make_tree(tmp_path / "src")
    img = build(src, tmp_path / "t.img", "blockimg")
    data = bytearray(img.read_bytes())
    # A long name in the last part made to hold "/" (the checksum covers the short name
    # only), and a ".." that points elsewhere in another directory of that part.
    at = entry_offset(img, "dir 05/sub1/a file with a long name 2.txt")
    slot = at - 32                                         # the name's first slot (order 1)
    assert data[slot + 1:slot + 3] == "a".encode("utf-16-le")
    data[slot + 1:slot + 3] = "/".encode("utf-16-le")
    img.write_bytes(bytes(data))
    with blockimg.open(img) as im:
        sub = im.walk.dir_clusters["dir 04/sub0"]
        ext = im.walk.dirs["dir 04/sub0"]
    patch(img, device_offset(ext, 32) + 26, (sub + 1).to_bytes(2, "little"))
    one, warn1, _ = extract(img, tmp_path / "one", 1)
    many, warn2, _ = extract(img, tmp_path / "many", 2)
    assert used == [True]
    assert many == one and not one.ok
    assert [p for p, _ in one.refused] == ["dir 05/sub1// file with a long name 2.txt"]
    assert any("'..' of dir 04/sub0" in w for w in warn1) and sorted(warn2) == sorted(warn1)
    assert stamps(tmp_path / "many") == stamps(tmp_path / "one")


# -- workers that are not there -----------------------------------------------------------
def test_no_fork_falls_back_to_one_process(tmp_path, used, monkeypatch):
    src = make_tree(tmp_path / "src")
    img = build(src, tmp_path / "t.img", "blockimg")

    def no_fork():
        raise OSError(11, "Resource temporarily unavailable")
    monkeypatch.setattr(os, "fork", no_fork)
    report, _, _ = extract(img, tmp_path / "many", 2)
    assert used == [False] and report.ok
    assert_same_tree(src, tmp_path / "many")


def test_a_worker_dying_in_its_walk_falls_back_to_one_process(tmp_path, used, monkeypatch):
    src = make_tree(tmp_path / "src")
    img = build(src, tmp_path / "t.img", "blockimg")
    real = split_walk.SplitWalk.walk

    def dies(self, part):
        if part != 0:
            os._exit(9)                                    # as if killed, in the child
        return real(self, part)
    monkeypatch.setattr(split_walk.SplitWalk, "walk", dies)
    report, _, _ = extract(img, tmp_path / "many", 2)
    assert used == [False] and report.ok
    assert_same_tree(src, tmp_path / "many")


def test_the_image_is_whole_again_after_a_split_extraction(tmp_path, used):
    src = make_tree(tmp_path / "src")
    img = build(src, tmp_path / "t.img", "blockimg")
    with blockimg.open(img) as im:
        whole = im.list()
    with blockimg.open(img, lazy=True) as im:
        im.extract(tmp_path / "x", jobs=2)
        assert used == [True]
        assert im.list() == whole
        path = "dir 03/sub1/a file with a long name 6.txt"
        assert im.read(path) == (src / path).read_bytes()


def _min_files_per_job(monkeypatch, n: int) -> None:
    """parallel.MIN_FILES_PER_JOB set to ``n``, and read.extract's copy of its rule with it."""
    monkeypatch.setattr(parallel, "MIN_FILES_PER_JOB", n)
    monkeypatch.setattr(read_extract, "ONE_PROCESS_BELOW", 2 * n)


@pytest.mark.parametrize("cpus", [2, 4, 64])
def test_one_process_below_is_auto_jobs_rule(monkeypatch, cpus):
    """extract (and the split plan) pick one process below ONE_PROCESS_BELOW entries without
    asking auto_jobs: it must pick one there too, and two from there on (on an idle machine)."""
    monkeypatch.setattr(parallel, "usable_cpus", lambda: cpus)
    monkeypatch.setattr(parallel, "idle_cpus", lambda: cpus)
    monkeypatch.setattr(parallel, "cpu_quota", lambda: None)
    assert read_extract.ONE_PROCESS_BELOW == 2 * parallel.MIN_FILES_PER_JOB
    assert parallel.auto_jobs(read_extract.ONE_PROCESS_BELOW - 1) == 1
    assert parallel.auto_jobs(read_extract.ONE_PROCESS_BELOW) == 2


def test_a_small_tree_is_extracted_without_the_parallel_machinery(tmp_path):
    """-j auto on a tree of fewer than ONE_PROCESS_BELOW entries decides on one process
    before importing extract_split, write.parallel or any backend it does not use."""
    src = make_tree(tmp_path / "src", tops=2, subs=1, files=2)
    img = build(src, tmp_path / "t.img", "blockimg")
    code = ("import sys\n"
            "from blockimg.cli import main\n"
            f"main(['extract', {str(img)!r}, {str(tmp_path / 'x')!r}])\n"
            "print(sorted(m for m in sys.modules if m in {'blockimg.read.extract_split', "
            "'blockimg.write.parallel', 'blockimg.block.mmap', 'blockimg.block.memory', 'mmap'}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.splitlines()[-1] == "[]"
    assert_same_tree(src, tmp_path / "x")


def test_auto_jobs_splits_by_the_scanned_size(tmp_path, used, monkeypatch):
    src = make_tree(tmp_path / "src")
    img = build(src, tmp_path / "t.img", "blockimg")
    monkeypatch.setattr(parallel, "usable_cpus", lambda: 2)
    monkeypatch.setattr(parallel, "idle_cpus", lambda: 1)      # (whatever runs here)
    monkeypatch.setattr(parallel, "cpu_quota", lambda: None)
    _min_files_per_job(monkeypatch, 10_000)
    extract(img, tmp_path / "a", None)
    assert used == []                                    # too few entries: no plan
    _min_files_per_job(monkeypatch, 50)
    report, _, _ = extract(img, tmp_path / "b", None)
    assert used == [True] and report.ok
    assert_same_tree(src, tmp_path / "b")


def test_cli_extract_j2_on_fat(tmp_path, used, capsys):
    src = make_tree(tmp_path / "src")
    img = build(src, tmp_path / "t.img", "mcopy")
    assert main(["extract", str(img), str(tmp_path / "out"), "-j", "2"]) == 0
    assert used == [True]
    n = len(list(src.rglob("*")))
    assert capsys.readouterr().out.strip() == f"extracted {n} entries to {tmp_path / 'out'}"
    assert_same_tree(src, tmp_path / "out")
    shutil.rmtree(tmp_path / "out")


# -- interrupted ------------------------------------------------------------------------
HOOK = """
import os, sys, time
sys.path[:0] = [{root!r}]
from blockimg.read import extract_split
from blockimg.fat import split_walk
def pause():
    if os.getpid() != {parent}:
        open({marker!r}, "w").close()
        time.sleep(600)
if {phase!r} == "walk":
    real_walk = split_walk.SplitWalk.walk
    def walk(self, part):
        if part:
            pause()
        return real_walk(self, part)
    split_walk.SplitWalk.walk = walk
else:
    real_write = extract_split.write_some
    def write_some(*a):
        pause()
        return real_write(*a)
    extract_split.write_some = write_some
"""


@pytest.mark.parametrize("phase", ["walk", "write"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_an_interrupted_split_extraction_stops_its_worker(spawn, tmp_path, phase, sig):
    """SIGTERM/SIGINT while the worker walks or writes: the program says it was
    interrupted (130), stops and reaps its worker; mid-walk, nothing is written."""
    from conftest import ROOT
    src = make_tree(tmp_path / "src")
    img = build(src, tmp_path / "t.img", "blockimg")
    marker = tmp_path / "paused"
    hook = tmp_path / "hook"
    hook.mkdir()
    launcher = tmp_path / "launch.py"
    # The hook knows the parent's pid: the launcher writes it before importing blockimg.
    launcher.write_text(
        "import os, sys, runpy\n"
        f"src = open({str(hook / 'tmpl.py')!r}).read().format(parent=os.getpid())\n"
        "exec(compile(src, 'hook', 'exec'))\n"
        "sys.argv = ['blockimg'] + sys.argv[1:]\n"
        "runpy.run_module('blockimg', run_name='__main__')\n")
    (hook / "tmpl.py").write_text(HOOK.replace("{root!r}", repr(str(ROOT)))
                                  .replace("{marker!r}", repr(str(marker)))
                                  .replace("{phase!r}", repr(phase)))
    dest = tmp_path / "dest"
    proc = spawn([sys.executable, str(launcher), "extract", str(img), str(dest), "-j", "2"],
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for _ in range(600):
        if marker.exists() or proc.poll() is not None:
            break
        time.sleep(0.05)
    assert marker.exists(), proc.communicate()
    time.sleep(0.2)                      # the parent is now waiting for its worker
    workers = _children_of(proc.pid)
    assert workers
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"interrupted" in err
    time.sleep(0.1)
    assert not [pid for pid in workers if os.path.exists(f"/proc/{pid}")]
    if phase == "walk":
        assert os.listdir(dest) == []

