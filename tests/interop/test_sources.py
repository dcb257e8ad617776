"""Tar archives, tar streams and git trees as sources: the same image bytes as the same
tree unpacked into a directory (by GNU tar / git archive), read back by GNU tar,
fsck.fat and mtools; hostile archives refused as ``extract`` refuses them."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import assert_read_back, require_tool, run

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = ROOT / "fixtures" / "hostile"
T0 = 1_700_000_000
COMMIT_DATE = "1700000000 +0000"

BUILDS = [("tar", "mirage"), ("tar", "generic"), ("fat", "mirage"), ("fat", "generic")]


def blockimg(*args, input=None, check=True) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "blockimg", *map(str, args)], input=input,
                         capture_output=True, cwd=ROOT)
    if check and res.returncode != 0:
        pytest.fail(f"blockimg {' '.join(map(str, args))} exited {res.returncode}: "
                    f"{res.stderr.decode()}")
    return res


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_tree(root: Path, *, links: bool = True) -> Path:
    """The example site and edge cases: empty file and directory, a file past the
    small-file size (copied by copy_file_range), an executable, a hard link,
    symlinks to a file and to a directory."""
    shutil.copytree(ROOT / "fixtures" / "site", root, symlinks=True)
    (root / "empty").write_bytes(b"")
    (root / "emptydir").mkdir()
    (root / "big.bin").write_bytes(bytes(range(256)) * 4096 + b"tail")   # 1 MiB + 4
    (root / "run.sh").write_bytes(b"#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o755)
    if links:
        os.link(root / "run.sh", root / "run-again.sh")
        (root / "to-big").symlink_to("big.bin")
        (root / "sub").mkdir()
        (root / "sub" / "up-css").symlink_to("../css")
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            os.utime(os.path.join(dirpath, n), (T0, T0), follow_symlinks=False)
    return root


def followed(src: Path, out: Path) -> Path:
    """``src`` with its symlinks replaced by copies of what they point to."""
    shutil.copytree(src, out, symlinks=False)
    return out


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return make_tree(tmp_path_factory.mktemp("src") / "tree")


@pytest.mark.parametrize("tar_format", ["gnu", "pax"])
@pytest.mark.parametrize("fmt,target", BUILDS)
def test_tar_archive_and_stream_give_the_bytes_of_the_unpacked_tree(tree, tmp_path, tar_format,
                                                                    fmt, target):
    tar = require_tool("tar")
    archive = tmp_path / "site.tar"
    run(tar, f"--format={tar_format}", "-cf", archive, "-C", tree, ".")
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    run(tar, "-xpf", archive, "-C", unpacked)
    opts = ["--format", fmt, "--target", target, "-q"]
    blockimg("create", unpacked, "-o", tmp_path / "dir.img", *opts)
    blockimg("create", archive, "-o", tmp_path / "file.img", *opts, "-j", "2")
    blockimg("create", "-", "-o", tmp_path / "stream.img", *opts,
             input=archive.read_bytes())
    want = sha(tmp_path / "dir.img")
    assert sha(tmp_path / "file.img") == want
    assert sha(tmp_path / "stream.img") == want
    assert_read_back(fmt, tmp_path / "stream.img", followed(unpacked, tmp_path / "plain"),
                     tmp_path / "back")


@pytest.mark.parametrize("fmt", ["tar", "fat"])
def test_non_ascii_names_in_an_archive(tmp_path, fmt):
    src = tmp_path / "src"
    (src / "d\u00e9j\u00e0").mkdir(parents=True)
    (src / "d\u00e9j\u00e0" / "caf\u00e9.txt").write_bytes("caf\u00e9\n".encode())
    archive = tmp_path / "a.tar"
    run(require_tool("tar"), "--format=pax", "-cf", archive, "-C", src, ".")
    blockimg("create", src, "-o", tmp_path / "dir.img", "--format", fmt, "--target",
             "generic", "-q")
    blockimg("create", archive, "-o", tmp_path / "a.img", "--format", fmt, "--target",
             "generic", "-q")
    assert sha(tmp_path / "a.img") == sha(tmp_path / "dir.img")
    assert_read_back(fmt, tmp_path / "a.img", src, tmp_path / "back")


@pytest.mark.parametrize("compress", ["gzip", "xz", "bzip2"])
def test_compressed_archives_are_read_through_python(tree, tmp_path, compress):
    tar = require_tool("tar")
    tool = require_tool(compress)
    archive = tmp_path / "site.tar"
    run(tar, "-cf", archive, "-C", tree, ".")
    blockimg("create", archive, "-o", tmp_path / "plain.img", "-q")
    packed = subprocess.run([tool, "-c", archive], capture_output=True, check=True).stdout
    (tmp_path / "site.tar.x").write_bytes(packed)
    blockimg("create", tmp_path / "site.tar.x", "-o", tmp_path / "file.img", "-q")
    blockimg("create", "-", "-o", tmp_path / "stream.img", "-q", input=packed)
    assert sha(tmp_path / "file.img") == sha(tmp_path / "plain.img")
    assert sha(tmp_path / "stream.img") == sha(tmp_path / "plain.img")


def test_keep_links_matches_the_unpacked_tree(tree, tmp_path):
    tar = require_tool("tar")
    archive = tmp_path / "site.tar"
    run(tar, "-cf", archive, "-C", tree, ".")
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    run(tar, "-xpf", archive, "-C", unpacked)
    opts = ["--keep-links", "--target", "generic", "-q"]
    blockimg("create", unpacked, "-o", tmp_path / "dir.img", *opts)
    blockimg("create", archive, "-o", tmp_path / "file.img", *opts)
    assert sha(tmp_path / "file.img") == sha(tmp_path / "dir.img")
    listing = blockimg("ls", "-l", tmp_path / "file.img").stdout.decode()
    assert "to-big -> big.bin" in listing and "sub/up-css -> ../css" in listing
    assert "run.sh -> run-again.sh" in listing       # a hard link to the first name


def _extract_outcome(image: Path, dest: Path):
    res = blockimg("extract", image, dest, check=False)
    refused = [line.split(": refused: ")[0][len("blockimg: "):]
               for line in res.stderr.decode().splitlines() if ": refused: " in line]
    return res, refused


@pytest.mark.parametrize("fixture", sorted(p.name for p in HOSTILE.glob("tar-*.tar")))
def test_hostile_archives_get_the_refusals_of_extract(tmp_path, fixture):
    archive = HOSTILE / fixture
    out = tmp_path / "out.img"
    ex, refused = _extract_outcome(archive, tmp_path / "x")
    res = blockimg("create", archive, "-o", out, check=False)
    err = res.stderr.decode()
    if ex.returncode != 0:
        # Corrupt (extract stops) or refused entries: create refuses the archive, names
        # each refused entry (one line each), and writes nothing.
        assert res.returncode == 1, err
        lines = err.splitlines()
        assert lines[0].startswith("blockimg: error: "), err
        assert all(line.startswith("blockimg: ") for line in lines), err
        assert len(lines) == (1 if len(refused) <= 1 else len(refused) + 1), err
        assert "Traceback" not in err and str(archive) in err
        for name in refused:
            assert f"error: {name}: " in err, (name, err)
        assert set(os.listdir(tmp_path)) <= {"x"}          # no image, no temporary file
    else:
        assert res.returncode == 0, err
        run(require_tool("tar"), "-tf", out)
        listed = json.loads(blockimg("ls", "--json", out).stdout)
        written = sorted(e["path"] for e in listed)
        got = []
        for dirpath, dirnames, filenames in os.walk(tmp_path / "x"):
            rel = os.path.relpath(dirpath, tmp_path / "x")
            got += [os.path.normpath(os.path.join(rel, n)) for n in dirnames + filenames]
        assert written == sorted(got)
        for path in written:
            p = tmp_path / "x" / path
            if p.is_file():
                assert blockimg("cat", out, path).stdout == p.read_bytes()


def _as_file_and_stream(data: bytes, tmp_path) -> tuple:
    """``create`` of ``data`` as a file and as a pipe on stdin: (exit, stderr with the
    file's name as the stream's, image bytes or None) of each."""
    archive = tmp_path / "in.tar"
    archive.write_bytes(data)
    out = []
    for src, given in ((archive, None), ("-", data)):
        img = tmp_path / "out.img"
        res = blockimg("create", src, "-o", img, "--mtime", T0, "-q", input=given,
                       check=False)
        err = res.stderr.decode().replace(str(archive), "standard input")
        out.append((res.returncode, err, img.read_bytes() if img.exists() else None))
        if img.exists():
            img.unlink()
        assert "Traceback" not in err, err
    return out


@pytest.mark.parametrize("fixture", sorted(p.name for p in HOSTILE.glob("tar-*.tar")))
def test_hostile_streams_get_the_refusals_of_the_same_file(tmp_path, fixture):
    """A stream is indexed while it arrives: whatever it holds, the outcome is the
    file's, word for word."""
    as_file, as_stream = _as_file_and_stream((HOSTILE / fixture).read_bytes(), tmp_path)
    assert as_stream == as_file


def test_streams_cut_anywhere_get_the_outcome_of_the_same_file(tree, tmp_path):
    whole = subprocess.run([require_tool("tar"), "--format=gnu", "-cf", "-", "-C", tree,
                            "."], capture_output=True, check=True).stdout
    end = len(whole.rstrip(b"\0"))
    cuts = sorted({0, 1, 511, 512, 1024, 5000, end // 2, end, end + 512, end + 1024,
                   end + 1030, len(whole) - 1, len(whole)})
    outcomes = set()
    for cut in cuts:
        as_file, as_stream = _as_file_and_stream(whole[:cut], tmp_path)
        assert as_stream == as_file, cut
        outcomes.add(as_file[0])
    assert outcomes == {0, 1}
    assert _as_file_and_stream(whole + b"trailing", tmp_path)[1][0] == 1


def test_links_out_of_the_archive_are_refused_all_at_once(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.txt").write_text("ok")
    (src / "abs").symlink_to("/etc/passwd")
    (src / "up").symlink_to("../outside")
    (src / "dangling").symlink_to("nothing-here")
    (src / "loop").symlink_to(".")
    archive = tmp_path / "a.tar"
    run(require_tool("tar"), "-cf", archive, "-C", src, ".")
    res = blockimg("create", archive, "-o", tmp_path / "a.img", check=False)
    err = res.stderr.decode()
    assert res.returncode == 1 and err.count("\n") == 5, err
    for name in ("abs", "up", "dangling", "loop"):
        assert f"blockimg: error: {name}: symlink" in err
    assert "4 problems found; nothing was written" in err
    assert not (tmp_path / "a.img").exists()
    # Kept as links, only those leading out are refused (extract's rule).
    res = blockimg("create", archive, "-o", tmp_path / "a.img", "--keep-links", "--target",
                   "generic", check=False)
    err = res.stderr.decode()
    assert "2 problems found" in err and "error: abs: " in err and "error: up: " in err, err


def test_not_a_tar_archive_is_one_clear_error(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_bytes(b"hello, this is not a tar archive" * 100)
    res = blockimg("create", bad, "-o", tmp_path / "x.img", check=False)
    err = res.stderr.decode()
    assert res.returncode == 1 and err.count("\n") == 1 and str(bad) in err, err
    res = blockimg("create", "-", "-o", tmp_path / "x.img", check=False,
                   input=b"\x28\xb5\x2f\xfd" + bytes(600))
    assert res.returncode == 1 and b"zstd" in res.stderr
    # A stream cut short between two members: refused, not a shorter image.
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a" * 100)
    (src / "b.txt").write_bytes(b"b" * 100)
    whole = subprocess.run([require_tool("tar"), "--format=ustar", "-cf", "-", "-C", src,
                            "a.txt", "b.txt"], capture_output=True, check=True).stdout
    res = blockimg("create", "-", "-o", tmp_path / "x.img", check=False, input=whole[:1024])
    assert res.returncode == 1 and b"cut short" in res.stderr, res.stderr
    blockimg("create", "-", "-o", tmp_path / "x.img", input=whole)
    assert blockimg("cat", tmp_path / "x.img", "b.txt").stdout == b"b" * 100
    os.unlink(tmp_path / "x.img")
    # A failed command before the pipe leaves it empty: refused, not an empty image.
    res = blockimg("create", "-", "-o", tmp_path / "x.img", check=False, input=b"")
    assert res.returncode == 1 and b"standard input: is empty" in res.stderr
    assert not (tmp_path / "x.img").exists()


def test_a_stream_is_spooled_beside_the_output_and_leaves_nothing(tree, tmp_path):
    tar = require_tool("tar")
    data = subprocess.run([tar, "-cf", "-", "-C", tree, "."], capture_output=True,
                          check=True).stdout
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    blockimg("create", "-", "-o", out_dir / "s.img", "-q", input=data)
    assert os.listdir(out_dir) == ["s.img"]


# -- git ------------------------------------------------------------------------------

def git(repo: Path, *args, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, GIT_AUTHOR_DATE=COMMIT_DATE, GIT_COMMITTER_DATE=COMMIT_DATE,
               GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.org", GIT_CONFIG_NOSYSTEM="1",
               HOME=str(repo.parent))
    return run(require_tool("git"), "-C", repo, *args, env=env, **kw)


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("git")
    r = make_tree(base / "repo")
    os.unlink(r / "run-again.sh")          # git has no hard links
    (r / "public").mkdir()
    (r / "public" / "index.html").write_text("<p>public</p>")
    (r / "public" / "same.html").write_text("<p>public</p>")     # one blob, two paths
    git(r, "init", "-q", "-b", "main")
    git(r, "add", "-A")
    git(r, "commit", "-q", "-m", "site")
    return r


def checkout(repo: Path, dest: Path, *spec) -> Path:
    """``git archive REF | tar -x`` (umask 022, as a checkout makes it)."""
    dest.mkdir()
    data = git(repo, "-c", "tar.umask=022", "archive", "main", *spec).stdout
    subprocess.run([require_tool("tar"), "-xpf", "-", "-C", dest], input=data, check=True)
    return dest


@pytest.mark.parametrize("fmt,target", BUILDS)
def test_git_tree_gives_the_bytes_of_git_archive_unpacked(repo, tmp_path, fmt, target):
    unpacked = checkout(repo, tmp_path / "co")
    opts = ["--format", fmt, "--target", target, "-q"]
    blockimg("create", unpacked, "-o", tmp_path / "dir.img", "--mtime", T0, *opts)
    blockimg("create", repo, "--git-ref", "main", "-o", tmp_path / "git.img", *opts)
    assert sha(tmp_path / "git.img") == sha(tmp_path / "dir.img")
    assert_read_back(fmt, tmp_path / "git.img", followed(unpacked, tmp_path / "plain"),
                     tmp_path / "back")


def test_git_path_and_keep_links(repo, tmp_path):
    unpacked = checkout(repo, tmp_path / "co")
    blockimg("create", unpacked / "public", "-o", tmp_path / "dir.img", "--mtime", T0, "-q")
    blockimg("create", repo, "--git-ref", "main", "--git-path", "public", "-o",
             tmp_path / "git.img", "-q")
    assert sha(tmp_path / "git.img") == sha(tmp_path / "dir.img")
    blockimg("create", unpacked, "-o", tmp_path / "dirk.img", "--mtime", T0, "--keep-links",
             "--target", "generic", "-q")
    blockimg("create", repo, "--git-ref", "main", "-o", tmp_path / "gitk.img",
             "--keep-links", "--target", "generic", "-q")
    assert sha(tmp_path / "gitk.img") == sha(tmp_path / "dirk.img")


def test_git_times_are_the_commit_time_and_mtime_overrides(repo, tmp_path):
    blockimg("create", repo, "--git-ref", "main", "-o", tmp_path / "a.img", "-q")
    entries = json.loads(blockimg("ls", "--json", tmp_path / "a.img").stdout)
    assert {e["mtime"] for e in entries} == {T0}
    blockimg("create", repo, "--git-ref", "main", "--mtime", "12345", "-o",
             tmp_path / "b.img", "-q")
    entries = json.loads(blockimg("ls", "--json", tmp_path / "b.img").stdout)
    assert {e["mtime"] for e in entries} == {12345}


def test_git_submodules_are_refused_or_skipped(tmp_path):
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "x").write_text("x")
    git(inner, "init", "-q")
    git(inner, "add", "-A")
    git(inner, "commit", "-q", "-m", "inner")
    outer = tmp_path / "outer"
    outer.mkdir()
    (outer / "a.txt").write_text("a")
    git(outer, "init", "-q")
    git(outer, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(inner), "lib")
    git(outer, "add", "-A")
    git(outer, "commit", "-q", "-m", "with a submodule")
    res = blockimg("create", outer, "--git-ref", "HEAD", "-o", tmp_path / "o.img", check=False)
    err = res.stderr.decode()
    assert res.returncode == 1 and "error: lib: is a submodule" in err and "submodule" in err, err
    assert not (tmp_path / "o.img").exists()
    res = blockimg("create", outer, "--git-ref", "HEAD", "--skip-special", "-o",
                   tmp_path / "o.img")
    assert b"skipped lib: submodule" in res.stderr
    paths = sorted(e["path"] for e in json.loads(blockimg("ls", "--json",
                                                          tmp_path / "o.img").stdout))
    assert paths == [".gitmodules", "a.txt"]


def test_git_errors_are_one_line(repo, tmp_path):
    for args in (["--git-ref", "no-such-branch"], ["--git-ref", "main", "--git-path", "nope"],
                 ["--git-ref", "main", "--git-path", "index.html"],
                 ["--git-ref", "--upload-pack=touch /tmp/x"]):
        res = blockimg("create", repo, *args, "-o", tmp_path / "x.img", check=False)
        err = res.stderr.decode()
        assert res.returncode in (1, 2) and "Traceback" not in err, (args, err)
        assert not (tmp_path / "x.img").exists()
    res = blockimg("create", tmp_path, "--git-ref", "main", "-o", tmp_path / "x.img",
                   check=False)
    assert res.returncode == 1 and b"git" in res.stderr


_PEAK = r"""
import sys
from blockimg.cli import main
rc = main(sys.argv[1:])
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(rc, int(hwm) * 1024)
"""


def _peak_rss(*args, input=None):
    res = subprocess.run([sys.executable, "-c", _PEAK, *map(str, args)], input=input,
                         capture_output=True, cwd=ROOT)
    rc, peak = res.stdout.split()
    assert int(rc) == 0, res.stderr
    return int(peak)


def test_big_files_stream_through_bounded_memory(tmp_path):
    """A 96 MiB file from a git blob, a gzip stream and a plain stream: blockimg's own peak
    RSS stays under 64 MiB (a whole file held in memory would pass it)."""
    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs /proc to read the peak RSS")
    r = tmp_path / "repo"
    r.mkdir()
    big = bytes(range(256)) * (96 * 4096)                   # 96 MiB
    (r / "big.bin").write_bytes(big)
    (r / "small.txt").write_text("small")
    git(r, "init", "-q")
    git(r, "add", "-A")
    git(r, "commit", "-q", "-m", "big")
    git(r, "gc", "-q")
    limit = 64 << 20
    assert _peak_rss("create", r, "--git-ref", "HEAD", "-o", tmp_path / "g.img", "-q") < limit
    archive = tmp_path / "a.tar"
    run(require_tool("tar"), "-cf", archive, "-C", r, "big.bin", "small.txt")
    data = archive.read_bytes()
    assert _peak_rss("create", "-", "-o", tmp_path / "s.img", "-q", input=data) < limit
    packed = subprocess.run([require_tool("gzip"), "-1", "-c", archive], capture_output=True,
                            check=True).stdout
    del data
    assert _peak_rss("create", "-", "-o", tmp_path / "z.img", "-q", input=packed) < limit
    for img in ("g.img", "s.img", "z.img"):
        assert blockimg("cat", tmp_path / img, "big.bin").stdout == big


_CHILD_PEAK = r"""
import resource, sys
from blockimg.cli import main
rc = main(sys.argv[1:])
print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
"""


def test_git_itself_stays_small_on_a_big_pack(tmp_path):
    """The git processes blockimg runs map their pack in small windows: the largest one's
    peak RSS stays under 40 MiB on a 64 MiB pack (git's defaults map all of it, in
    ``ls-tree -l`` and in ``cat-file``), and the image is the checkout's."""
    r = tmp_path / "repo"
    r.mkdir()
    rng = __import__("random").Random(15)
    for i in range(256):                       # 256 x 256 KiB that git cannot compress
        (r / f"f{i:03d}.bin").write_bytes(rng.randbytes(256 * 1024))
    git(r, "init", "-q", "-b", "main")
    git(r, "add", "-A")
    git(r, "commit", "-q", "-m", "big pack")
    git(r, "repack", "-a", "-d", "-q", "--window=0")       # one pack, no delta search
    res = subprocess.run([sys.executable, "-c", _CHILD_PEAK, "create", r, "--git-ref",
                          "main", "-o", tmp_path / "g.img", "-q"], capture_output=True,
                         cwd=ROOT)
    rc, peak = res.stdout.split()
    assert int(rc) == 0, res.stderr
    assert int(peak) < 40 << 20
    unpacked = checkout(r, tmp_path / "co")
    blockimg("create", unpacked, "-o", tmp_path / "d.img", "--mtime", T0, "-q")
    assert sha(tmp_path / "g.img") == sha(tmp_path / "d.img")


def test_git_symlink_targets_are_bounded(tmp_path):
    r = tmp_path / "repo"
    r.mkdir()
    (r / "a.txt").write_text("a")
    git(r, "init", "-q", "-b", "main")
    git(r, "add", "-A")
    # A symlink no file system could hold: its blob put in the index by hand.
    oid = git(r, "hash-object", "-w", "--stdin", input=b"x" * 4097).stdout.decode().strip()
    git(r, "update-index", "--add", "--cacheinfo", f"120000,{oid},long")
    git(r, "commit", "-q", "-m", "long link")
    res = blockimg("create", r, "--git-ref", "main", "-o", tmp_path / "x.img", check=False)
    assert res.returncode == 1
    assert b"long: symlink target of 4097 bytes" in res.stderr, res.stderr
    assert not (tmp_path / "x.img").exists()


def test_exclude_applies_to_archives_and_git_trees(tree, repo, tmp_path):
    archive = tmp_path / "site.tar"
    run(require_tool("tar"), "-cf", archive, "-C", tree, ".")
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    run(require_tool("tar"), "-xpf", archive, "-C", unpacked)
    opts = ["--exclude", "*.css", "--exclude", "sub", "-q"]
    blockimg("create", unpacked, "-o", tmp_path / "dir.img", *opts)
    blockimg("create", archive, "-o", tmp_path / "a.img", *opts)
    assert sha(tmp_path / "a.img") == sha(tmp_path / "dir.img")
    paths = [e["path"] for e in json.loads(blockimg("ls", "--json", tmp_path / "a.img").stdout)]
    assert not [p for p in paths if p.endswith(".css") or p.startswith("sub")]
    co = checkout(repo, tmp_path / "co")
    (co / ".gitignore").write_text("x")
    git(repo, "-c", "core.hooksPath=/dev/null", "status")         # (the tree is unchanged)
    blockimg("create", co, "-o", tmp_path / "cdir.img", "--mtime", T0, "--exclude-vcs",
             "--exclude", "public", "-q")
    blockimg("create", repo, "--git-ref", "main", "-o", tmp_path / "g.img", "--exclude-vcs",
             "--exclude", "public", "-q")
    assert sha(tmp_path / "g.img") == sha(tmp_path / "cdir.img")
