"""The command line when something is off (issue 11): outputs that are not regular files,
names with control characters, system errors, PATHs that select nothing, a full disk.

Each case runs ``python -m blockimg`` as a user would and checks its exit status,
what it prints, and what it leaves on disk; GNU tar is the reference for how names
are shown and which members a pattern selects.
"""
from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import textwrap
from pathlib import Path

import pytest

import blockimg
from conftest import assert_read_back, assert_same_tree, require_tool, run
from helpers.cli_robust import (assert_create_leaves_node, cli, make_image, make_source,
                                one_error_line)

MTIME = "2024-01-02T03:04:05Z"


@pytest.fixture
def src(tmp_path) -> Path:
    return make_source(tmp_path / "src")


@pytest.fixture
def image(src, tmp_path) -> Path:
    return make_image(src, tmp_path / "site.tar")


# -- 3: create -o replaces only a regular file ---------------------------------------------
def _special(kind: str, path: Path) -> None:
    if kind == "FIFO":
        os.mkfifo(path)
    elif kind == "socket":
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(path))
        s.close()
    else:
        path.mkdir()


# (a character device, made with mknod as root: tests/root/test_cli_robust_root.py)
@pytest.mark.parametrize("kind", ["FIFO", "socket", "directory"])
@pytest.mark.parametrize("via_link", [False, True], ids=["named", "through-a-symlink"])
def test_create_never_replaces_what_is_not_a_regular_file(src, tmp_path, kind, via_link):
    assert_create_leaves_node(src, tmp_path, kind, via_link, lambda node: _special(kind, node))


def test_manifest_never_replaces_a_fifo(src, tmp_path):
    os.mkfifo(tmp_path / "m.json")
    res = cli("create", src, "-o", tmp_path / "site.img", "--manifest", tmp_path / "m.json")
    assert res.returncode == 1
    assert "is a FIFO, not a regular file" in one_error_line(res)
    assert stat.S_ISFIFO(os.lstat(tmp_path / "m.json").st_mode)
    assert not (tmp_path / "site.img").exists()


def test_an_output_symlink_is_written_through(src, tmp_path):
    """As GNU tar and cp: the file the link leads to gets the image (replaced atomically:
    a new inode), the links stay as they were."""
    (tmp_path / "store").mkdir()
    real = tmp_path / "store" / "site.img"
    real.write_bytes(b"old image")
    old_inode = real.stat().st_ino
    (tmp_path / "hop").symlink_to(real)
    link = tmp_path / "site.img"
    link.symlink_to("hop")                       # a chain of two links, one relative
    res = cli("create", src, "-o", link, "-q")
    assert res.returncode == 0, res.stderr
    assert os.readlink(link) == "hop" and os.readlink(tmp_path / "hop") == str(real)
    assert real.stat().st_ino != old_inode
    assert_read_back("tar", real, src, tmp_path / "read-back")
    assert sorted(os.listdir(tmp_path / "store")) == ["site.img"]


def test_an_output_symlink_to_nothing_is_refused(src, tmp_path):
    link = tmp_path / "site.img"
    link.symlink_to(tmp_path / "missing" / "site.img")
    res = cli("create", src, "-o", link)
    assert res.returncode == 1
    assert "is a symlink to" in one_error_line(res) and "which does not exist" in res.stderr.decode()
    assert os.path.islink(link) and not (tmp_path / "missing").exists()


# -- 4: names are escaped in what people read ------------------------------------------
# Every control character, DEL, backslash, C1 controls, bytes that are not UTF-8, and
# printable non-ASCII (left as it is).
NAMES = [b"c%02d\x01-%s" % (i, bytes([i])) for i in range(1, 32)] + [
    b"del\x7f", b"back\\slash", b"nel\xc2\x85", b"csi\xc2\x9b", b"bad\xff\x80utf",
    b"caf\xc3\xa9", b"esc\x1b[2J\x1b]0;title\x07", b"new\nline"]


def _hostile_tree(root: Path) -> Path:
    root.mkdir()
    raw = os.fsencode(root)
    for name in NAMES:
        with open(raw + b"/" + name, "wb") as f:
            f.write(name)
    os.mkdir(raw + b"/dir\x1bx")
    with open(raw + b"/dir\x1bx/in\nside", "wb") as f:
        f.write(b"x")
    os.symlink(b"tar\x1bget\nx", raw + b"/link\x07")
    return root


def _assert_terminal_safe(data: bytes) -> None:
    """Nothing a terminal acts on: no control byte but the newline, no DEL, no C1."""
    bad = [b for b in set(data) if (b < 0x20 and b != 0x0A) or b == 0x7F]
    assert not bad, data
    assert "\x85" not in data.decode("utf-8", "surrogateescape")
    assert "\x9b" not in data.decode("utf-8", "surrogateescape")


def test_ls_shows_names_as_gnu_tar_does(tmp_path):
    """The listing of an image made by GNU tar is GNU tar's, line for line."""
    tar = require_tool("tar")
    src = _hostile_tree(tmp_path / "src")
    img = tmp_path / "gnu.tar"
    members = sorted(os.listdir(os.fsencode(src)))
    run(tar, "--format=gnu", "-cf", img, "-C", src, *[os.fsdecode(m) for m in members])
    env = dict(os.environ, LC_ALL="C.UTF-8")
    want = run(tar, "-tf", img, env=env).stdout
    got = cli("ls", img)
    assert got.returncode == 0, got.stderr
    assert got.stdout.decode().splitlines() == want.decode().splitlines()
    _assert_terminal_safe(got.stdout)
    # ls -l: the same names, and link targets the way GNU tar -tv shows them
    long = cli("ls", "-l", img).stdout.decode().splitlines()
    want_v = run(tar, "-tvf", img, env=env).stdout.decode().splitlines()
    tail = [" ".join(line.split()[5:]) for line in want_v]        # "NAME[ -> TARGET]"
    assert [" ".join(line.split()[5:]) for line in long] == tail   # (after the UTC offset)
    # --json: exact
    listing = json.loads(cli("ls", "--json", img).stdout)
    assert sorted(os.fsencode(e["path"]) for e in listing) == sorted(
        [*NAMES, b"dir\x1bx", b"dir\x1bx/in\nside", b"link\x07"])


def test_escape_matches_gnu_tar_on_a_blockimg_image(tmp_path):
    """The same rule on an image blockimg made (generic target: raw bytes kept)."""
    tar = require_tool("tar")
    src = _hostile_tree(tmp_path / "src")
    img = tmp_path / "b.tar"
    res = cli("create", src, "-o", img, "--target", "generic", "--keep-links", "-q")
    assert res.returncode == 0, res.stderr
    want = run(tar, "-tf", img, env=dict(os.environ, LC_ALL="C.UTF-8")).stdout
    assert sorted(cli("ls", img).stdout.decode().splitlines()) == \
        sorted(want.decode().splitlines())


def test_escape_rules():
    from blockimg.quoting import escape
    assert escape("plain é ü") == "plain é ü"
    assert escape("a\x1b[2J\x07\n\t\\") == "a\\033[2J\\a\\n\\t\\\\"
    assert escape("\x7f\x85") == "\\177\\302\\205"
    assert escape(b"x\xff".decode("utf-8", "surrogateescape")) == "x\\377"
    assert escape("\ud800") == "\\355\\240\\200"        # a lone UTF-16 surrogate (FAT)
    assert escape("\u202e") == "\\342\\200\\256"        # right-to-left override
    assert escape("a\\b\x1b", backslash=False) == "a\\b\\033"


def test_every_command_escapes_names(tmp_path):
    """ls, ls -l, check, extract (its refusals) and errors print no control character."""
    src = _hostile_tree(tmp_path / "src")
    img = tmp_path / "b.tar"
    assert cli("create", src, "-o", img, "--target", "generic", "--keep-links",
               "-q").returncode == 0
    hostile = tmp_path / "hostile.tar"        # a member with ".." and an escaping link
    raw = os.fsencode(tmp_path / "h")
    os.makedirs(raw + b"/a")
    os.symlink(b"/etc/\x1b[2J", raw + b"/a/evil\x1b]0;x\x07")
    run(require_tool("tar"), "-cf", hostile, "-C", tmp_path / "h", "a",
        "--transform", "s,^a/e,../\x1b[2Je,")
    runs = [cli("ls", img), cli("ls", "-l", img), cli("check", img),
            cli("extract", img, tmp_path / "out"), cli("info", img),
            cli("cat", img, "nope\x1b[2J\nx"), cli("cat", img, "dir\x1bx"),
            cli("ls", hostile), cli("check", hostile),
            cli("extract", hostile, tmp_path / "out2")]
    for res in runs:
        _assert_terminal_safe(res.stdout)
        _assert_terminal_safe(res.stderr)
    assert runs[5].returncode == 1
    assert one_error_line(runs[5]).startswith(f"blockimg: error: {img}: nope\\033[2J\\nx: ")
    assert "dir\\033x" in one_error_line(runs[6])
    assert b"refused" in runs[9].stderr and runs[9].returncode == 1


def test_create_errors_escape_the_source_name(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "bad\x1b[2J*").write_bytes(b"x")          # '*' cannot be in a FAT name
    res = cli("create", src, "-o", tmp_path / "x.img", "--format", "fat")
    assert res.returncode == 1
    _assert_terminal_safe(res.stderr)
    assert one_error_line(res).startswith(f"blockimg: error: {src}/bad\\033[2J*: ")


# -- 6: system errors are one line; bugs keep their traceback ------------------------------
def test_extract_into_a_file_or_below_one(image, tmp_path):
    (tmp_path / "afile").write_bytes(b"keep")
    for dest, why in ((tmp_path / "afile", "exists and is not a directory"),
                      (tmp_path / "afile" / "sub", "Not a directory")):
        res = cli("extract", image, dest)
        assert res.returncode == 1
        line = one_error_line(res)
        assert line.startswith(f"blockimg: error: {dest}: ") and why in line, line
    assert (tmp_path / "afile").read_bytes() == b"keep"


def test_cat_into_a_full_device(image):
    with open("/dev/full", "wb") as full:
        res = cli("cat", image, "docs/a.html", stdout=full)
    assert res.returncode == 1
    line = one_error_line(res)
    assert line == ("blockimg: error: standard output: cannot copy docs/a.html to it: "
                    "No space left on device")


def test_ls_into_a_full_device(image):
    with open("/dev/full", "wb") as full:
        res = cli("ls", image, stdout=full)
    assert res.returncode == 1
    assert "No space left on device" in one_error_line(res)


def test_debug_keeps_the_traceback(image, tmp_path):
    (tmp_path / "afile").write_bytes(b"")
    res = cli("--debug", "extract", image, tmp_path / "afile")
    assert res.returncode == 1
    assert b"Traceback" in res.stderr and b"DeviceError" in res.stderr


@pytest.mark.parametrize("raised, shown", [
    ("OSError(5, 'Input/output error', '/dev/sdz')",
     "blockimg: error: /dev/sdz: Input/output error"),
    ("OSError(28, 'No space left on device')", "blockimg: error: No space left on device"),
    ("PermissionError(13, 'Permission denied', 'a', None, 'b')",
     "blockimg: error: a: b: Permission denied"),
])
def test_any_os_error_is_one_line(image, raised, shown):
    hook = textwrap.dedent(f"""
        import blockimg.api
        def fail(*a, **k):
            raise {raised}
        blockimg.api.open = fail
    """)
    res = cli("ls", image, hook=hook)
    assert res.returncode == 1
    assert one_error_line(res) == shown


def test_a_bug_keeps_its_traceback(image):
    hook = textwrap.dedent("""
        import blockimg.api
        def fail(*a, **k):
            raise KeyError("a bug")
        blockimg.api.open = fail
    """)
    res = cli("ls", image, hook=hook)
    assert res.returncode == 1
    assert b"Traceback" in res.stderr and b"KeyError: 'a bug'" in res.stderr


# -- 7: PATHs that select nothing; patterns as GNU tar --wildcards ----------------------
def test_extract_paths_that_match_nothing(image, tmp_path):
    dest = tmp_path / "dest"
    res = cli("extract", image, dest, "nothing", "docs/a.html", "no*thing", "new\x1bx")
    assert res.returncode == 2
    assert res.stderr.decode().splitlines() == [
        "blockimg: nothing: not found in image", "blockimg: no*thing: not found in image",
        "blockimg: new\\033x: not found in image"]
    assert res.stdout == b""
    assert not dest.exists()


@pytest.mark.parametrize("pattern", [
    "docs/*.html", "*.html", "do*", "docs/st\\*r", "d[o]cs", "?op.html", "docs/s?",
    "[!d]*", "docs/", "docs/c.txt", "*/sub", "no*thing", "docs/*.pdf"])
def test_patterns_select_what_gnu_tar_selects(image, tmp_path, pattern):
    tar = require_tool("tar")
    want = tmp_path / "tar"
    want.mkdir()
    ref = subprocess.run([tar, "-xf", str(image), "-C", str(want), "--wildcards", pattern],
                         capture_output=True)
    got = tmp_path / "blockimg"
    res = cli("extract", image, got, pattern)
    assert res.returncode == ref.returncode, (res.stderr, ref.stderr)
    if ref.returncode == 0:
        assert_same_tree(want, got)
    else:
        assert not got.exists()
        assert b"Not found in archive" in ref.stderr and b"not found in image" in res.stderr


def test_patterns_on_a_fat_image(src, tmp_path):
    (src / "docs" / "st*r").unlink()                  # not a FAT name
    img = tmp_path / "site.fat"
    blockimg.create(src, img, format="fat", target="generic", mtime=0)
    res = cli("extract", img, tmp_path / "out", "docs/*.html")
    assert res.returncode == 0, res.stderr
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*")
                  if p.is_file()) == ["docs/a.html", "docs/sub/b.html"]
