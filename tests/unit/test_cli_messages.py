"""Issue 11, bug 9: every error about an image names it once, says what the bytes are
and the rule (CLI level: exactly one line on stderr, exit status 1).

Images come from the real tools: GNU tar, mkfs.fat, sfdisk and sgdisk.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT, require_tool, run

COMMANDS = [["ls"], ["info"], ["check"], ["cat", "a.txt"], ["extract", "{tmp}/out"]]


def blockimg(tmp_path, image, *args):
    """Run the CLI in ``image``'s directory on its base name; ``(status, stderr lines)``."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-m", "blockimg", *args[:1], image.name,
                          *[a.format(tmp=tmp_path) for a in args[1:]]],
                         cwd=image.parent, env=env, capture_output=True)
    return res.returncode, res.stderr.decode().splitlines()


def expect_everywhere(tmp_path, image, line):
    """Every command that reads ``image`` prints exactly ``line`` and exits 1; ``verify``
    reports it as its one difference (or the same error, when the file cannot be read
    as a device at all)."""
    for cmd in COMMANDS:
        status, err = blockimg(tmp_path, image, *cmd)
        assert (status, err) == (1, [line]), cmd
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-m", "blockimg", "verify", image.name],
                         cwd=image.parent, env=env, capture_output=True, text=True)
    note = f"blockimg: {image.name}: no --manifest or SRC given; checking structure and " \
           "reading every file"
    assert res.returncode == 1
    if "sector size" in line:
        assert (res.stdout, res.stderr.splitlines()) == ("", [note, line])
    else:
        what = line.split(f"blockimg: error: {image.name}: ", 1)[1]
        assert res.stdout == f"{image.name}: structure: cannot open the image: {what}\n"
        assert res.stderr.splitlines() == [note, f"{image.name}: 1 difference"]


@pytest.fixture
def tar_image(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"hello\n" * 100)
    img = tmp_path / "t.tar"
    run(require_tool("tar"), "--format=gnu", "-cf", img, "-C", src, "a.txt")
    return img


@pytest.fixture
def fat_image(tmp_path):
    img = tmp_path / "f.img"
    run(require_tool("mkfs.fat"), "-C", img, "1024")
    return img


def test_a_cut_tar_is_named_once_and_called_truncated(tmp_path, tar_image):
    cut = tmp_path / "X.tar"
    cut.write_bytes(tar_image.read_bytes()[:1539])
    expect_everywhere(tmp_path, cut, "blockimg: error: X.tar: size 1539 is not a multiple of "
                      "the 512-byte sector size (image length must be whole sectors); "
                      "truncated? a tar archive is whole 512-byte blocks")


def test_a_cut_fat_volume_says_how_long_it_should_be(tmp_path, fat_image):
    cut = tmp_path / "cut.img"
    cut.write_bytes(fat_image.read_bytes()[:100000])
    expect_everywhere(tmp_path, cut, "blockimg: error: cut.img: size 100000 is not a multiple "
                      "of the 512-byte sector size (image length must be whole sectors); "
                      "truncated? its FAT boot sector says 1048576 bytes")


def test_bytes_after_a_fat_volume_are_not_called_truncation(tmp_path, fat_image):
    img = tmp_path / "long.img"
    img.write_bytes(fat_image.read_bytes() + b"abc")
    expect_everywhere(tmp_path, img, "blockimg: error: long.img: size 1048579 is not a "
                      "multiple of the 512-byte sector size (image length must be whole "
                      "sectors); 3 bytes after the 1048576-byte FAT volume")


def test_bytes_of_neither_format_get_no_guess(tmp_path):
    img = tmp_path / "x.bin"
    img.write_bytes(b"x" * 1539)
    expect_everywhere(tmp_path, img, "blockimg: error: x.bin: size 1539 is not a multiple of "
                      "the 512-byte sector size (image length must be whole sectors)")


def test_an_empty_file_is_named(tmp_path):
    img = tmp_path / "empty.img"
    img.write_bytes(b"")
    expect_everywhere(tmp_path, img, "blockimg: error: empty.img: corrupt image: the file is "
                      "empty (0 bytes): neither a FAT volume nor a tar archive")


def test_neither_format_is_named(tmp_path):
    img = tmp_path / "noise.img"
    img.write_bytes(bytes(range(256)) * 8)
    expect_everywhere(tmp_path, img, "blockimg: error: noise.img: corrupt image at byte 0 "
                      "(0x0): neither a FAT volume (no boot sector at byte 0) nor a tar "
                      "archive (no valid header at byte 0)")


BAD_FIELDS = [
    (11, 2, 0, "byte 11 (0xb), field BPB_BytsPerSec=0",
     "bytes per sector must be 512, 1024, 2048 or 4096"),
    (11, 2, 3, "byte 11 (0xb), field BPB_BytsPerSec=3",
     "bytes per sector must be 512, 1024, 2048 or 4096"),
    (11, 2, 65535, "byte 11 (0xb), field BPB_BytsPerSec=65535",
     "bytes per sector must be 512, 1024, 2048 or 4096"),
    (13, 1, 0, "byte 13 (0xd), field BPB_SecPerClus=0",
     "sectors per cluster must be a power of two from 1 to 128"),
    (13, 1, 3, "byte 13 (0xd), field BPB_SecPerClus=3",
     "sectors per cluster must be a power of two from 1 to 128"),
    (13, 1, 255, "byte 13 (0xd), field BPB_SecPerClus=255",
     "sectors per cluster must be a power of two from 1 to 128"),
    (16, 1, 0, "byte 16 (0x10), field BPB_NumFATs=0", "number of FATs must be 1..16"),
    (14, 2, 0, "byte 14 (0xe), field BPB_RsvdSecCnt=0",
     "at least one reserved sector (the boot sector)"),
    (21, 1, 0x12, "byte 21 (0x15), field BPB_Media='0x12'",
     "media descriptor must be 0xF0 or 0xF8..0xFF"),
]


@pytest.mark.parametrize("offset, width, value, where, rule", BAD_FIELDS)
def test_a_fat_boot_sector_with_one_bad_field_names_it(tmp_path, fat_image, offset, width,
                                                        value, where, rule):
    data = bytearray(fat_image.read_bytes())
    data[offset:offset + width] = value.to_bytes(width, "little")
    img = tmp_path / "bad.img"
    img.write_bytes(bytes(data))
    expect_everywhere(tmp_path, img, f"blockimg: error: bad.img: corrupt image at {where}: "
                      f"a FAT boot sector, but {rule}")


def _two_partitions(tmp_path, label):
    disk = tmp_path / f"{label}.img"
    with open(disk, "wb") as f:
        f.truncate(20 << 20)
    if label == "dos":
        run(require_tool("sfdisk"), "-q", disk,
            input=b"label: dos\n2048,8192,c\n10240,8192,83\n")
    else:
        run(require_tool("sgdisk"), "-o", "-n", "1:2048:+4M", "-t", "1:0700",
            "-n", "2:10240:+4M", disk)
    part = tmp_path / "part.img"
    run(require_tool("mkfs.fat"), "-C", part, "4096")
    with open(disk, "r+b") as f:                 # a real FAT volume in partition 1
        f.seek(2048 * 512)
        f.write(part.read_bytes())
    return disk


@pytest.mark.parametrize("label, scheme", [("dos", "MBR"), ("gpt", "GPT")])
def test_a_partitioned_disk_is_named_as_such(tmp_path, label, scheme):
    disk = _two_partitions(tmp_path, label)
    line = (f"blockimg: error: {label}.img: a partitioned disk "
            f"({scheme}, 2 partitions: 1 at byte 1048576, 4194304 bytes; 2 at byte "
            "5242880, 4194304 bytes), not a FAT volume or tar archive: read a partition "
            "with --partition N (the library: partition:N:DISK), or copy one out "
            "(partition 1: dd bs=512 skip=2048 count=8192 of=part1.img)")
    for cmd in COMMANDS:
        status, err = blockimg(tmp_path, disk, *cmd)
        if cmd[0] in ("info", "check"):       # these take the whole disk (docs/deploy.md)
            assert status == 0 and err == [], (cmd, err)
        else:
            assert (status, err) == (1, [line]), cmd
    # What the message says to do works.
    status, err = blockimg(tmp_path, disk, "info", "--partition", "1")
    assert (status, err) == (0, [])
    # What the message says to do works.
    run("dd", f"if={disk}", "bs=512", "skip=2048", "count=8192", f"of={tmp_path}/part1.img",
        "status=none")
    status, err = blockimg(tmp_path, tmp_path / "part1.img", "info")
    assert (status, err) == (0, [])


def test_errors_about_paths_in_the_image_name_the_image_once(tmp_path, tar_image):
    status, err = blockimg(tmp_path, tar_image, "cat", "nope.txt")
    assert (status, err) == (1, ["blockimg: error: t.tar: nope.txt: no such file or directory "
                                 "in tar image (path exists)"])
    status, err = blockimg(tmp_path, tar_image, "cat", "")
    assert (status, err) == (1, ["blockimg: error: t.tar: : is a dir, not a regular file"])


def test_a_corrupt_member_names_the_image_once(tmp_path, tar_image):
    data = bytearray(tar_image.read_bytes())
    data[124:136] = b"77777777777\0"         # a size far past the end; checksum fixed below
    data[148:156] = b" " * 8
    data[148:156] = b"%06o\0 " % sum(data[:512])
    img = tmp_path / "big.tar"
    img.write_bytes(bytes(data))
    status, err = blockimg(tmp_path, img, "ls")
    assert status == 1 and len(err) == 1
    assert err[0].startswith("blockimg: error: big.tar: corrupt image at byte 0 (0x0)")
    assert err[0].count("big.tar") == 1
