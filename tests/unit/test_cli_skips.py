"""Issue 11, bug 5: an entry a reader leaves out is named on stderr by every command, with
the reason, and the command exits 1 (as GNU tar fails after errors on some members); the
same for FAT and tar. Warnings (oddities that lose nothing) are printed once, exit 0.

The FAT image is made by mkfs.fat and mcopy, then given the short name mtools 4.0.32
wrote for some long Unicode names (``BBJQD$0~ `` and two NULs; the long name's checksum
then does not match); mdir still shows the file.
"""
from __future__ import annotations

import os
import struct
import subprocess
import sys

import pytest

from conftest import ROOT, require_tool, run

HOSTILE = ROOT / "fixtures" / "hostile"
NAME = "\u00dcn\u00efc\u00f6d\u00e9-l\u00e5ng-n\u00e4m\u00e9-f\u00efl\u00e9.txt"
BROKEN = "'BBJQD$0~. \\000\\000'"


def blockimg(cwd, *args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-m", "blockimg", *map(str, args)], cwd=cwd,
                         env=env, capture_output=True)
    return res.returncode, res.stdout.decode(), res.stderr.decode().splitlines()


@pytest.fixture
def mtools_image(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / NAME).write_bytes(b"unicode\n")
    (src / "plain.txt").write_bytes(b"plain\n")
    img = tmp_path / "m.img"
    run(require_tool("mkfs.fat"), "-C", img, "1024")
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1", LC_ALL="C.UTF-8")
    for f in (NAME, "plain.txt"):
        run(require_tool("mcopy"), "-i", img, src / f, "::/", env=env)
    data = bytearray(img.read_bytes())
    reserved, fats, fat_size = struct.unpack_from("<H", data, 14)[0], data[16], \
        struct.unpack_from("<H", data, 22)[0]
    root = (reserved + fats * fat_size) * 512
    for off in range(root, root + 512 * 32, 32):     # the Unicode file's short entry
        if data[off] not in (0, 0xE5) and data[off + 11] != 0x0F and \
                data[off - 32 + 11] == 0x0F:
            data[off:off + 11] = b"BBJQD$0~ \0\0"
            break
    else:
        pytest.fail("no short entry after long-name slots")
    first = off
    while data[first - 32 + 11] == 0x0F:
        first -= 32
    img.write_bytes(bytes(data))
    out = run(require_tool("mdir"), "-i", img, "::/", env=env).stdout
    assert b"BBJQD$0~" in out and b"plain" in out.lower()        # mtools still lists it
    return img, first, off, data[first + 13]


def _fat_lines(first, short, checksum):
    return [
        f"blockimg: m.img: warning: at byte {first} (0x{first:x}): long-name checksum "
        f"{checksum} does not match the short name b'BBJQD$0~ \\x00\\x00' (153); the short "
        "name is used (in /)",
        f"blockimg: m.img: {BROKEN} left out: the name holds '/' or NUL (entry at byte "
        f"{short} (0x{short:x}))"]


def test_every_command_names_the_entry_it_left_out(tmp_path, mtools_image):
    _img, first, short, checksum = mtools_image
    warning, skipped = _fat_lines(first, short, checksum)
    status, out, err = blockimg(tmp_path, "ls", "m.img")
    assert (status, out, err) == (1, "plain.txt\n", [warning, skipped])
    status, out, err = blockimg(tmp_path, "ls", "--json", "m.img")
    assert (status, err) == (1, [warning, skipped])
    status, out, err = blockimg(tmp_path, "info", "m.img")
    assert (status, err) == (1, [warning, skipped]) and "files: 1\n" in out
    status, out, err = blockimg(tmp_path, "cat", "m.img", "plain.txt")
    assert (status, out, err) == (1, "plain\n", [warning, skipped])
    status, out, err = blockimg(tmp_path, "extract", "m.img", tmp_path / "out")
    assert status == 1 and err[0] == warning and len(err) == 2
    assert err[1].startswith("blockimg: BBJQD$0~.") and "refused: the name holds" in err[1]
    assert sorted(os.listdir(tmp_path / "out")) == ["plain.txt"]
    status, out, err = blockimg(tmp_path, "check", "m.img")
    # The checksum oddity is a warning (stderr), the entry left out a problem (stdout).
    assert status == 1 and err == [warning, "m.img: 2 problems"]
    assert f"m.img: {BROKEN}: not extracted: the name holds '/' or NUL (entry at byte " \
           f"{short} (0x{short:x}))\n" in out
    status, out, err = blockimg(tmp_path, "verify", "m.img")
    assert status == 1 and f"{BROKEN}: not extracted" in out


def test_a_tar_member_left_out_is_named_the_same_way(tmp_path):
    img = tmp_path / "t.tar"
    img.write_bytes((HOSTILE / "tar-dotdot-name.tar").read_bytes())
    line = "blockimg: t.tar: '../../evil.txt' left out: has a '..' component"
    for cmd in (["ls"], ["info"], ["cat", "hello.txt"]):
        status, out, err = blockimg(tmp_path, cmd[0], "t.tar", *cmd[1:])
        assert (status, err) == (1, [line]), cmd
    status, out, err = blockimg(tmp_path, "extract", "t.tar", tmp_path / "out")
    assert (status, err) == (1, ["blockimg: ../../evil.txt: refused: has a '..' component"])
    status, out, err = blockimg(tmp_path, "check", "t.tar")
    assert (status, err) == (1, ["t.tar: 1 problem"])
    assert "t.tar: '../../evil.txt': not extracted: has a '..' component\n" in out


def test_a_warning_that_loses_nothing_is_printed_once_and_exits_0(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a\n")
    img = tmp_path / "w.tar"
    run(require_tool("tar"), "--format=gnu", "-cf", img, "-C", src, "a.txt")
    data = img.read_bytes()
    img.write_bytes(data[:1024] + bytes(512))       # one zero block at the end, not two
    line = ("blockimg: w.tar: warning: byte 1536: the archive has only one zero block at its "
            "end (Mirage needs two)")
    for cmd in (["ls"], ["info"], ["cat", "a.txt"]):
        status, out, err = blockimg(tmp_path, cmd[0], "w.tar", *cmd[1:])
        assert (status, err) == (0, [line]), cmd
    status, out, err = blockimg(tmp_path, "extract", "w.tar", tmp_path / "out")
    assert (status, err) == (0, [line])


def test_a_clean_image_prints_nothing_on_stderr(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a\n")
    for fmt in ("tar", "fat"):
        img = tmp_path / f"c.{fmt}"
        assert blockimg(tmp_path, "create", src, "-o", img, "--format", fmt, "-q")[0] == 0
        for cmd in (["ls"], ["info"], ["cat", "a.txt"], ["check"]):
            status, out, err = blockimg(tmp_path, cmd[0], img.name, *cmd[1:])
            assert (status, err) == (0, []), (fmt, cmd)
