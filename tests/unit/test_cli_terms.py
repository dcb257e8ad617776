"""The command line in the user's terms (issue 12): every problem of a tree at once,
checks before building, option names and human sizes in messages, GNU tar's
--exclude / --exclude-vcs / --mtime @N, one-level ls, help texts, progress."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from blockimg import api
from blockimg.block.memory import MemoryDevice
from blockimg.cli import build_parser
from blockimg.write.copier import Copier
from blockimg.errors import InvalidInput, Problems
from blockimg.cli.progress import ProgressBar, line
from blockimg.sources.directory import VCS_NAMES, Kind, SourceEntry
from conftest import ROOT, require_tool, run

MTIME = "2024-01-02T03:04:05Z"


def blockimg(*args, env=None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, PYTHONPATH=str(ROOT))
    full_env.pop("SOURCE_DATE_EPOCH", None)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "blockimg", *map(str, args)],
                          capture_output=True, cwd=str(ROOT), env=full_env)


def make(root: Path, files: dict) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


@pytest.fixture
def src(tmp_path) -> Path:
    return make(tmp_path / "src", {"index.html": b"<html>hi</html>\n",
                                   "css/site.css": b"body{}\n" * 100, "empty": b""})


# -- every problem at once ------------------------------------------------------------

def test_fat_create_lists_every_problem_in_one_run_and_writes_nothing(tmp_path):
    bad = make(tmp_path / "bad", {"a:b": b"", "c?d": b"", "x.txt": b"", "X.TXT": b"",
                                  "trail.": b"", "d/e*f": b"", "d/ok": b"", "ok.txt": b""})
    os.mkfifo(bad / "fifo")
    os.symlink("nowhere", bad / "dangling")
    out = tmp_path / "out"
    out.mkdir()
    res = blockimg("create", bad, "-o", out / "x.img", "--format", "fat")
    err = res.stderr.decode()
    assert res.returncode == 1
    lines = [ln for ln in err.splitlines() if ln.startswith("blockimg: error: ")]
    # One line per problem, naming the source file, the rule and what to do.
    want = {"a:b": "which FAT names cannot hold", "c?d": "which FAT names cannot hold",
            "d/e*f": "which FAT names cannot hold", "trail.": "ends with a dot",
            "x.txt": "differ only in case", "fifo": "--skip-special",
            "dangling": "symlink cannot be followed"}
    for name, rule in want.items():
        assert any(ln.startswith(f"blockimg: error: {bad}/{name}: ") and rule in ln
                   for ln in lines), (name, err)
    assert len(lines) == len(want)
    assert "blockimg: 7 problems found; nothing was written" in err
    assert os.listdir(out) == []                  # no image, no temporary file


def test_many_problems_are_counted(tmp_path):
    bad = make(tmp_path / "bad", {f"n:{i:02d}": b"" for i in range(60)})
    res = blockimg("create", bad, "-o", tmp_path / "x.img", "--format", "fat")
    err = res.stderr.decode().splitlines()
    assert res.returncode == 1
    assert len([ln for ln in err if ln.startswith("blockimg: error: ")]) == Problems.SHOWN
    assert "blockimg: ... and 10 more" in err
    assert err[-1] == "blockimg: 60 problems found; nothing was written"
    assert not (tmp_path / "x.img").exists()


def test_tar_mirage_refuses_every_link_at_once(tmp_path):
    s = make(tmp_path / "s", {"t.txt": b"t"})
    os.symlink("t.txt", s / "l1")
    os.symlink("t.txt", s / "l2")
    with pytest.raises(Problems) as exc:
        api.create(s, tmp_path / "x.img", keep_links=True)
    assert sorted(p.path for p in exc.value.problems) == [str(s / "l1"), str(s / "l2")]
    assert not (tmp_path / "x.img").exists()


@pytest.mark.parametrize("fmt", ["tar", "fat"])
def test_create_check_says_what_the_image_would_be_and_writes_nothing(src, tmp_path, fmt):
    res = blockimg("create", "--check", src, "--format", fmt, "--mtime", MTIME)
    assert res.returncode == 0, res.stderr
    out = dict(ln.split(": ", 1) for ln in res.stdout.decode().splitlines()[1:])
    assert os.listdir(tmp_path) == ["src"]
    # What it says is what create then makes.
    image = tmp_path / "x.img"
    assert blockimg("create", src, "-o", image, "--format", fmt, "--mtime", MTIME,
                    "-q").returncode == 0
    size = image.stat().st_size
    assert out["format"] == fmt
    assert out["image size"].endswith(f"({size} bytes)")
    info = json.loads(blockimg("info", "--json", image).stdout)
    assert out["sector size"] == f"{info.get('bytes_per_sector', 512)} bytes"
    assert out["contents"] == "2 files in 1 directory, 716 bytes of data" or \
        out["contents"].startswith("3 files in 1 directory")
    if fmt == "fat":
        assert out["FAT type"] == info["fat_type"]
        assert out["cluster size"] == f"{info['cluster_size'] // 1024} KiB"


def test_create_check_lists_problems_too(tmp_path):
    bad = make(tmp_path / "bad", {"a:b": b"", "c|d": b""})
    res = blockimg("create", "--check", bad, "--format", "fat")
    assert res.returncode == 1 and b"2 problems found" in res.stderr


def test_output_directory_refused_before_the_tree_is_read(tmp_path):
    s = make(tmp_path / "s", {"f": b"x"})
    os.mkfifo(s / "fifo")            # the walk would refuse this: it is never reached
    res = blockimg("create", s, "-o", tmp_path)
    err = res.stderr.decode()
    assert res.returncode == 1 and "is a directory" in err and "FIFO" not in err


@pytest.mark.parametrize("fmt", ["tar", "fat"])
def test_image_inside_the_source_is_never_packed_into_itself(tmp_path, fmt):
    s = make(tmp_path / "s", {"a.txt": b"a"})
    image = s / "out.img"
    manifest = s / "out.json"
    for _ in range(2):            # the second run finds the first image in the tree
        res = blockimg("create", s, "-o", image, "--format", fmt, "--manifest", manifest,
                       "--target", "generic")
        assert res.returncode == 0, res.stderr
    err = res.stderr.decode()
    assert f"skipped {image}: the image being written" in err
    assert f"skipped {manifest}: the image being written" in err
    listing = blockimg("ls", image).stdout.decode().split()
    assert listing == ["a.txt"]
    if fmt == "tar":
        got = run(require_tool("tar"), "-tf", image).stdout.decode().split()
    else:
        got = [ln.rsplit("/", 1)[-1] for ln in
               run(require_tool("mdir"), "-b", "-i", image, "::/").stdout.decode().split()]
    assert got == ["a.txt"]


def test_mirage_fat_too_big_names_the_limit_and_the_alternatives(tmp_path):
    s = tmp_path / "big"
    s.mkdir()
    for i in range(3):               # 3 GiB of sparse files: nothing is read or written
        with open(s / f"part{i}", "wb") as f:
            f.truncate(1 << 30)
    res = blockimg("create", "--check", s, "--format", "fat")
    err = res.stderr.decode()
    assert res.returncode == 1
    assert "FAT16" in err and "about 2 GiB" in err
    assert "--format tar" in err and "--target generic" in err
    assert blockimg("create", "--check", s, "--format", "tar").returncode == 0


# -- in the user's terms ---------------------------------------------------------------

@pytest.mark.parametrize("args, said", [
    (["--free", "10M"], "--free: applies to --format fat only"),
    (["--format", "fat", "--sector-size", "3000"],
     "--sector-size: must be 512, 1024, 2048 or 4096 (bytes), not 3000"),
    (["--format", "fat", "--align", "3"], "--align: must be a power of two from 1 byte to 1 TiB"),
    (["--align", "3"], "--align: must be a power of two from 512 bytes to 1 GiB"),
    (["--format", "fat", "--size", "100000000"],
     "--size: 100000000 bytes is not a whole number of 4096-byte sectors; the nearest sizes "
     "that are: 99999744 (95.4 MiB) or 100003840 (95.4 MiB)"),
    (["--size", "100000000"], "99999744 (95.4 MiB) or 100000256 (95.4 MiB)"),
    (["--format", "fat", "--fat-type", "32"], "--fat-type: the Mirage FAT driver reads only"),
    (["--mtime", "yesterday"], "not a timestamp: yesterday"),
])
def test_option_errors_name_the_option_never_python(src, tmp_path, args, said):
    res = blockimg("create", src, "-o", tmp_path / "x.img", *args)
    err = res.stderr.decode()
    assert res.returncode != 0 and said in err, err
    for python in ("__init__", "keyword argument", "sector_size", "fat_type", "'",
                   "1099511627776", "Options"):
        assert python not in err, err


def test_info_prints_words_not_python_values(src, tmp_path):
    tar_img, fat_img = tmp_path / "t.img", tmp_path / "f.img"
    blockimg("create", src, "-o", tar_img, "-q")
    blockimg("create", src, "-o", fat_img, "--format", "fat", "-q")
    tar_info = blockimg("info", tar_img).stdout.decode()
    fat_info = blockimg("info", fat_img).stdout.decode()
    assert "flavours: ustar\n" in tar_info
    assert "label entry: none\n" in fat_info
    for text in (tar_info, fat_info):
        assert not re.search(r"\[|None|True|False|^\w+_\w+:", text, re.M), text


@pytest.mark.parametrize("fmt", ["tar", "fat"])
def test_cat_names_the_entry_that_differs_in_case(tmp_path, fmt):
    s = make(tmp_path / "s", {"docs/index.html": b"x"})
    image = tmp_path / "x.img"
    blockimg("create", s, "-o", image, "--format", fmt, "-q")
    res = blockimg("cat", image, "DOCS/INDEX.HTML")
    err = res.stderr.decode()
    assert res.returncode == 1
    assert "DOCS/INDEX.HTML: not in the image, but docs/index.html is" in err
    assert "path exists" not in err
    assert b"no such file" in blockimg("cat", image, "nothere").stderr


def test_summaries_in_human_units_with_plurals(tmp_path):
    s = make(tmp_path / "s", {"only": b"1"})
    image = tmp_path / "x.img"
    res = blockimg("create", s, "-o", image, "--mtime", MTIME)
    assert b"tar image, 1 file in 0 directories, 1 byte of data, image 4 KiB," in res.stdout
    res = blockimg("extract", image, tmp_path / "out")
    assert res.stdout.startswith(b"extracted 1 entry to ")
    big = make(tmp_path / "b", {"d/f": b"x" * (3 << 20)})
    res = blockimg("create", big, "-o", tmp_path / "b.img", "--format", "fat")
    assert b"fat image, 1 file in 1 directory, 3 MiB of data, image " in res.stdout


@pytest.mark.parametrize("tz", ["UTC", "Asia/Tokyo", "America/St_Johns"])
def test_ls_long_shows_local_time_like_gnu_tar_with_the_offset(src, tmp_path, tz):
    image = tmp_path / "x.img"
    blockimg("create", src, "-o", image, "--mtime", MTIME, "-q")
    ours = blockimg("ls", "-l", image, "index.html", env={"TZ": tz}).stdout.decode()
    gnu = run(require_tool("tar"), "-tvf", image, "index.html",
              env=dict(os.environ, TZ=tz)).stdout.decode()
    when = re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", gnu).group(0)
    offset = {"UTC": "+0000", "Asia/Tokyo": "+0900", "America/St_Johns": "-0330"}[tz]
    assert f" {when} {offset} index.html" in ours, (ours, gnu)


@pytest.mark.parametrize("fmt", ["tar", "fat"])
def test_ls_one_level_like_mdir(tmp_path, fmt):
    s = make(tmp_path / "s", {"a/b/c.txt": b"c", "a/d.txt": b"d", "top.txt": b"t"})
    image = tmp_path / "x.img"
    blockimg("create", s, "-o", image, "--format", fmt, "--target", "generic", "-q")
    assert blockimg("ls", "--one-level", image).stdout.decode().split() == ["a/", "top.txt"]
    one = blockimg("ls", "--one-level", image, "a").stdout.decode().split()
    assert one == ["a/b/", "a/d.txt"]
    assert blockimg("ls", image, "a").stdout.decode().split() == \
        ["a/b/", "a/b/c.txt", "a/d.txt"]                  # recursive stays the default
    if fmt == "fat":
        mdir = run(require_tool("mdir"), "-b", "-i", image, "::/a").stdout.decode().split()
        assert [m.replace("::/", "") for m in mdir] == one


def _gnu_listing(tar: str, src: Path, *opts) -> list:
    """What GNU tar stores of ``src`` (as ``tar -C src -c .``), without the ./ prefix."""
    res = subprocess.run([tar, "-C", str(src), "-cf", "-", *opts, "."], capture_output=True,
                         check=True)
    names = subprocess.run([tar, "-tf", "-"], input=res.stdout, capture_output=True,
                           check=True).stdout.decode().split("\n")
    return sorted(n[2:].rstrip("/") for n in names if n not in ("", "./"))


def _our_listing(image: Path) -> list:
    with tarfile.open(image) as t:
        return sorted(m.name for m in t.getmembers())


@pytest.mark.parametrize("patterns", [["*.o"], ["b"], ["a/b"], ["a/*"], ["*/b"], ["b/z"],
                                      ["x.o"], ["a/b/"], ["./a"], ["?op.o", "c"], ["[ab]"]])
def test_exclude_matches_gnu_tar(tmp_path, patterns):
    tar = require_tool("tar")
    s = make(tmp_path / "ex", {"a/b/x.o": b"", "a/y.o": b"", "a/b/keep.c": b"",
                               "c/b": b"", "top.o": b"", "b/z": b""})
    opts = [f"--exclude={p}" for p in patterns]
    image = tmp_path / "x.img"
    res = blockimg("create", s, "-o", image, *opts)
    assert res.returncode == 0, res.stderr
    assert _our_listing(image) == _gnu_listing(tar, s, *opts)


def test_exclude_vcs_matches_gnu_tar(tmp_path):
    tar = require_tool("tar")
    files = {f"{d}/f": b"" for d in ("CVS", "RCS", "SCCS", ".git", ".svn", ".arch-ids",
                                     "{arch}", ".bzr", ".hg", "_darcs", "keep", ".gitx",
                                     "sub/.git")}
    files.update({n: b"" for n in (".gitignore", ".gitmodules", ".gitattributes",
                                   ".cvsignore", "=RELEASE-ID", "=meta-update", "=update",
                                   ".bzrignore", ".bzrtags", ".hgignore", ".hgtags",
                                   ".hgsigs", ".darcsignore", ".gitkeep", "regular",
                                   "sub/.gitignore", "sub/kept")})
    s = make(tmp_path / "vcs", files)
    image = tmp_path / "x.img"
    assert blockimg("create", s, "-o", image, "--exclude-vcs").returncode == 0
    ours = _our_listing(image)
    assert ours == _gnu_listing(tar, s, "--exclude-vcs")
    assert not any(n.split("/")[-1] in VCS_NAMES for n in ours) and "regular" in ours


def test_mtime_at_epoch_as_gnu_tar(src, tmp_path):
    a, b = tmp_path / "a.img", tmp_path / "b.img"
    assert blockimg("create", src, "-o", a, "--mtime", "@1700000000").returncode == 0
    assert blockimg("create", src, "-o", b, "--mtime", "1700000000").returncode == 0
    assert a.read_bytes() == b.read_bytes()
    with tarfile.open(a) as t:
        assert {m.mtime for m in t.getmembers()} == {1700000000}


@pytest.mark.parametrize("fmt, extra", [("tar", []),
                                        ("fat", ["--sector-size", "512", "--fat-type", "16"])])
def test_check_exit_status_same_for_both_formats(src, tmp_path, fmt, extra):
    # Generic images that Mirage reads with a limit (512-byte devices only): a warning.
    image = tmp_path / "x.img"
    blockimg("create", src, "-o", image, "--format", fmt, "--target", "generic", *extra, "-q")
    res = blockimg("check", "--target", "mirage", image)
    assert res.returncode == 0, (res.stdout, res.stderr)
    assert b"warning:" in res.stderr and b"512" in res.stderr
    assert b"(warning)" not in res.stderr
    # Errors still fail it.
    data = bytearray(image.read_bytes())
    data[:512] = b"\x01" * 512
    image.write_bytes(bytes(data))
    assert blockimg("check", image).returncode == 1


# -- help, --debug ----------------------------------------------------------------------

def test_every_option_has_help_and_value_options_say_their_default():
    parser = build_parser()
    subs = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, sub in subs.choices.items():
        for action in sub._actions:
            if action.dest == "help":
                continue
            assert action.help, (name, action.dest)
            takes_value = action.nargs != 0 and action.option_strings
            if takes_value and name == "create" and action.dest not in ("output",):
                assert "default" in action.help, (name, action.dest)
    create_jobs = next(a for a in subs.choices["create"]._actions if a.dest == "jobs")
    assert "into the image" in create_jobs.help and "extraction" not in create_jobs.help


def test_debug_after_the_command(tmp_path):
    res = blockimg("cat", tmp_path / "missing.img", "x", "--debug")
    assert res.returncode != 0 and b"Traceback" in res.stderr
    res = blockimg("cat", tmp_path / "missing.img", "x")
    assert res.returncode == 1 and b"Traceback" not in res.stderr


# -- progress ---------------------------------------------------------------------------

def test_progress_advances_while_a_big_file_is_copied(tmp_path):
    big = tmp_path / "big"
    big.write_bytes(os.urandom(1 << 20) * 40)     # 40 MiB: several kernel-copy pieces
    entry = SourceEntry("big", Kind.FILE, big.stat().st_size, 0, 0o644, str(big))
    seen = []
    dev = MemoryDevice(entry.size)
    with Copier(dev, total=entry.size, progress=lambda d, t: seen.append((d, t))) as cp:
        cp.put_file(entry, 0)
        cp.flush()
    assert bytes(dev.pread(0, entry.size)) == big.read_bytes()
    assert any(0 < d < entry.size for d, _ in seen), seen
    assert seen[-1] == (entry.size, entry.size)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_progress_line_has_rate_and_time_left():
    text = line("writing x.img", 1 << 30, 3 << 30, 4.0)
    assert "33.3%" in text and "1 GiB of 3 GiB" in text and "256 MiB/s" in text
    assert text.endswith("0:08 left")


def test_bar_only_on_a_terminal():
    master, slave = os.openpty()
    try:
        with os.fdopen(slave, "w", closefd=True) as tty:
            bar = ProgressBar("writing", stream=tty, delay=0)
            assert bar.enabled
            bar(5 << 20, 10 << 20)
            bar.finish()
            tty.flush()
            drawn = os.read(master, 4096).decode()
        assert "writing [" in drawn and "50.0%" in drawn and "left" in drawn
        r, w = os.pipe()
        with os.fdopen(r) as rf, os.fdopen(w, "w") as wf:
            assert not ProgressBar("x", stream=wf).enabled
    finally:
        os.close(master)


@pytest.mark.parametrize("fmt", ["tar", "fat"])
def test_extract_reports_progress(src, tmp_path, fmt):
    image = tmp_path / "x.img"
    blockimg("create", src, "-o", image, "--format", fmt, "-q")
    seen = []
    with api.open(image) as img:
        img.extract(tmp_path / "out", progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1] == (700 + 16, 700 + 16)
    for cmd in (["extract", image, tmp_path / "o2"], ["verify", image, src]):
        assert blockimg(*cmd, "--quiet").returncode == 0


def test_problems_error_carries_each_problem():
    ps = [InvalidInput("bad name", path=f"f{i}", rule="rule") for i in range(3)]
    e = Problems(ps)
    assert e.problems == ps and str(e).startswith("3 problems in the source tree:")
    assert InvalidInput("x").problems[0].message == "x"
    with pytest.raises(InvalidInput) as one:
        InvalidInput.raise_all(ps[:1])
    assert one.value is ps[0]
    InvalidInput.raise_all([])


@pytest.mark.parametrize("fmt", ["tar", "fat"])
def test_progress_changes_no_byte_of_the_image(tmp_path, fmt):
    s = make(tmp_path / "s", {"big.bin": os.urandom(1 << 20) * 20, "a/small": b"s"})
    calls = []
    api.create(s, tmp_path / "p.img", format=fmt, mtime=0,
               progress=lambda d, t: calls.append((d, t)))
    api.create(s, tmp_path / "q.img", format=fmt, mtime=0)
    assert (tmp_path / "p.img").read_bytes() == (tmp_path / "q.img").read_bytes()
    total = (20 << 20) + 1
    assert calls[-1] == (total, total) and any(0 < d < 20 << 20 for d, _ in calls)


def test_library_names_an_option_the_format_does_not_take(src, tmp_path):
    with pytest.raises(InvalidInput) as exc:
        api.create(src, tmp_path / "x.img", format="tar", free=1 << 20)
    text = str(exc.value)
    assert text.startswith("free: the tar format has no option free (its options: target, "
                           "sector_size, align, size)")
    assert "__init__" not in text and not (tmp_path / "x.img").exists()


def test_temporary_of_a_killed_build_inside_the_source_is_not_stored(tmp_path):
    s = make(tmp_path / "s", {"a.txt": b"a"})
    # What a build killed before its rename leaves where O_TMPFILE is not available.
    stale = s / ".out.img.999999.0badcafe.blockimg-tmp"
    stale.write_bytes(b"half an image")
    res = blockimg("create", s, "-o", s / "out.img")
    assert res.returncode == 0, res.stderr
    assert f"skipped {stale}: the image being written" in res.stderr.decode()
    assert blockimg("ls", s / "out.img").stdout.decode().split() == ["a.txt"]
