"""Platform profiles: every profile's rules accepted and refused, for both formats, through
the command line; the attach instructions; ``info --platform`` on existing images."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from blockimg.deploy import platforms
from blockimg.errors import InvalidInput

MTIME = 1_700_000_000
MIB = 1 << 20


def blockimg(*args, check=True) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "blockimg", *map(str, args)],
                         capture_output=True, text=True)
    if check and res.returncode != 0:
        pytest.fail(f"blockimg {args} exited {res.returncode}: {res.stderr}")
    return res


@pytest.fixture
def site(tmp_path) -> Path:
    root = tmp_path / "site"
    (root / "css").mkdir(parents=True)
    (root / "index.html").write_bytes(b"<html>home</html>\n")
    (root / "css" / "a.css").write_bytes(b"body{}\n" * 300)
    return root


FIT = {  # platform -> the length every image for it must be a multiple of
    "unix": 512, "hvt": 512, "spt": 512, "virtio": 512, "xen": 4096, "albatross": MIB}


@pytest.mark.parametrize("fmt", ["tar", "fat"])
@pytest.mark.parametrize("target", ["mirage", "generic"])
@pytest.mark.parametrize("name", sorted(FIT))
def test_every_profile_accepts_a_site_and_fits_its_rules(site, tmp_path, name, fmt, target):
    out = tmp_path / "site.img"
    res = blockimg("create", site, "-o", out, "--format", fmt, "--target", target,
                   "--platform", name, "--mtime", MTIME)
    size = out.stat().st_size
    assert size % FIT[name] == 0 and size >= FIT[name]
    info = blockimg("info", out, "--platform", name)
    assert f"platform {name}: fit" in info.stdout
    if fmt == "fat" and name == "xen":
        assert "bytes_per_sector: 4096" in info.stdout
    # the attach instructions name the image and the device
    assert str(out.resolve()) in res.stdout
    assert {"unix": "block_of_file", "hvt": "solo5-hvt --block:site=",
            "spt": "solo5-spt --block:site=", "virtio": "solo5-virtio-run -d",
            "xen": "vdev=xvdb", "albatross": "albatross-client create-block site"}[name] \
        in res.stdout


def test_without_platform_nothing_changes(site, tmp_path):
    """The default stays platform-neutral: same bytes as before, no instructions."""
    a, b = tmp_path / "a.img", tmp_path / "b.img"
    res = blockimg("create", site, "-o", a, "--format", "tar", "--target", "generic",
                   "--mtime", MTIME)
    assert "attach" not in res.stdout and a.stat().st_size % 4096 != 0   # 512-byte padding
    blockimg("create", site, "-o", b, "--format", "tar", "--target", "generic",
             "--platform", "xen", "--mtime", MTIME)
    assert b.stat().st_size % 4096 == 0
    assert a.read_bytes() == b.read_bytes()[:a.stat().st_size]   # only padding added


@pytest.mark.parametrize("fmt", ["tar", "fat"])
def test_muen_refuses_every_image(site, tmp_path, fmt):
    out = tmp_path / "m.img"
    res = blockimg("create", site, "-o", out, "--format", fmt, "--platform", "muen",
                   check=False)
    assert res.returncode == 1 and not out.exists()
    assert "has no block devices" in res.stderr and "muen-block.c" in res.stderr
    assert "fix:" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize("fmt", ["tar", "fat"])
def test_xen_refuses_small_sectors(site, tmp_path, fmt):
    out = tmp_path / "x.img"
    res = blockimg("create", site, "-o", out, "--format", fmt, "--target", "generic",
                   "--sector-size", "512", "--platform", "xen", check=False)
    assert res.returncode == 1 and not out.exists()
    assert "blkfront.ml" in res.stderr and "fix: --sector-size 4096" in res.stderr


@pytest.mark.parametrize("platform,extra,ok", [
    ("albatross", 0, True), ("albatross", 4096, False),
    ("xen", 4096, True), ("xen", 512, False), ("hvt", 4096, True)])
@pytest.mark.parametrize("fmt", ["tar", "fat"])
def test_explicit_size_checked(site, tmp_path, platform, extra, ok, fmt):
    size = 32 * MIB + extra           # FAT16 with 4096-byte sectors needs ~16 MiB at least
    out = tmp_path / "s.img"
    res = blockimg("create", site, "-o", out, "--format", fmt, "--size", size,
                   "--platform", platform, check=False)
    assert (res.returncode == 0) == ok, res.stderr
    if ok:
        assert out.stat().st_size == size
    else:
        assert "fix:" in res.stderr and f"--platform {platform}" in res.stderr
        assert not out.exists()


def test_albatross_rounds_up_to_whole_mib_and_reads_back(site, tmp_path):
    out = tmp_path / "site.img"
    res = blockimg("create", site, "-o", out, "--platform", "albatross", "--mtime", MTIME)
    assert out.stat().st_size == MIB
    assert "albatross-client create-block site 1 --data=" in res.stdout
    assert "--block=site:site" in res.stdout
    assert blockimg("cat", out, "index.html").stdout == "<html>home</html>\n"
    run = subprocess.run(["tar", "-tf", str(out)], capture_output=True, text=True)
    assert "index.html" in run.stdout


def test_solo5_device_names(site, tmp_path):
    out = tmp_path / "my-site.img"
    res = blockimg("create", site, "-o", out, "--platform", "hvt")
    assert "--block:mysite=" in res.stdout                   # default: letters and digits
    bad = blockimg("create", site, "-o", tmp_path / "b.img", "--platform", "spt",
                   "--device-name", "my_site", check=False)
    assert bad.returncode == 1 and "letters and digits" in bad.stderr
    assert not (tmp_path / "b.img").exists()
    ok = blockimg("create", site, "-o", tmp_path / "c.img", "--platform", "xen",
                  "--device-name", "my_site")   # Xen names devices by order, not by name
    assert "vdev=xvdb" in ok.stdout


def test_block_sector_size_for_4096_byte_fat(site, tmp_path):
    res = blockimg("create", site, "-o", tmp_path / "f.img", "--format", "fat",
                   "--platform", "hvt")
    assert "--block-sector-size:f=4096" in res.stdout
    res = blockimg("create", site, "-o", tmp_path / "t.img", "--platform", "hvt")
    assert "--block-sector-size" not in res.stdout           # a tar at 512 reads as is


def test_attach_file(site, tmp_path):
    out, note = tmp_path / "s.img", tmp_path / "attach.txt"
    res = blockimg("create", site, "-o", out, "--platform", "hvt", "--attach", note)
    assert "solo5-hvt" not in res.stdout
    assert f"--block:s={out.resolve()}" in note.read_text()
    bad = blockimg("create", site, "-o", out, "--attach", note, check=False)
    assert bad.returncode == 1 and "--attach needs --platform" in bad.stderr


def test_info_platform_says_unfit(site, tmp_path):
    small = tmp_path / "small.img"
    blockimg("create", site, "-o", small, "--format", "fat", "--target", "generic")
    res = blockimg("info", small, "--platform", "xen", check=False)
    assert res.returncode == 1 and "not fit for xen" in res.stdout
    assert "FAT sector size 512" in res.stdout
    res = blockimg("info", small, "--platform", "albatross", check=False)
    assert res.returncode == 1 and "whole MiB" in res.stdout
    assert "platform hvt: fit" in blockimg("info", small, "--platform", "hvt").stdout
    res = blockimg("info", small, "--platform", "muen", check=False)
    assert res.returncode == 1


def test_disk_on_xen_refused_with_the_reason(site, tmp_path):
    disk = tmp_path / "d.img"
    res = blockimg("disk", "-o", disk, str(site), "--platform", "xen", check=False)
    assert res.returncode == 1 and not disk.exists()
    assert "mirage_block_partition_mbr.ml" in res.stderr and "512" in res.stderr
    assert "own Xen disk" in res.stderr
    res = blockimg("disk", "-o", disk, str(site), "--platform", "hvt")
    assert "Mirage_block_partition_mbr" in res.stdout and "~start:2048L" in res.stdout
    assert "--block-sector-size" not in res.stdout     # the MBR reader needs 512
    assert "not fit for xen" in blockimg("info", disk, "--platform", "xen",
                                         check=False).stdout


def test_profiles_are_values():
    p = platforms.get("xen")
    assert p.device_sector == 4096 and p.size_multiple == 4096 and p.partition_tables == ()
    with pytest.raises(InvalidInput):
        platforms.get("qubes")
    for profile in platforms.PLATFORMS.values():
        for key in profile.rules:
            assert key in platforms.SOURCES
    assert platforms.format_options(p, "tar", {}) == {"sector_size": 4096}
    assert platforms.format_options(platforms.get("hvt"), "fat", {"size": 4096}) == \
        {"size": 4096}


# --- The printed commands parse as the upstream tools parse them -----------------------
# (our own readings of the documented syntaxes; the sources are cited in docs/deploy.md)

def xl_disk_targets(line: str) -> list:
    """The disks of an xl ``disk = [ '...' ]`` line: xl's configuration strings (single
    quotes, backslash escapes \\\\ \\' \\xHH), each DISKSPEC a comma-separated list of
    key=value parameters with white space ignored before each, ``target=`` last, taking
    the rest of the spec less one trailing comma."""
    import re
    body = re.fullmatch(r"\s*disk\s*=\s*\[(.*)\]\s*", line).group(1)
    specs, i = [], 0
    while i < len(body):
        if body[i] in " ,":
            i += 1
            continue
        assert body[i] == "'", body[i:]
        i += 1
        out = []
        while body[i] != "'":
            if body[i] == "\\":
                nc = body[i + 1]
                if nc == "x":
                    out.append(chr(int(body[i + 2:i + 4], 16)))
                    i += 4
                    continue
                assert nc in "\\'\"", nc
                out.append(nc)
                i += 2
                continue
            assert body[i] != "\n"
            out.append(body[i])
            i += 1
        i += 1
        specs.append("".join(out))
    disks = []
    for spec in specs:
        params = {}
        rest = spec
        while rest:
            rest = rest.lstrip(" \t\n")
            if rest.startswith("target="):
                value = rest[len("target="):]
                params["target"] = value[:-1] if value.endswith(",") else value
                break
            item, _, rest = rest.partition(",")
            key, eq, value = item.partition("=")
            assert eq and key in ("format", "vdev", "access"), item
            assert key not in params
            params[key] = value
        disks.append(params)
    return disks


def solo5_block_args(argv: list) -> dict:
    """What solo5-hvt/spt take from ``--block:NAME=PATH`` and ``--block-sector-size:NAME=N``
    (sscanf ``%67[A-Za-z0-9]=%4096s`` and ``%67[A-Za-z0-9]=%hu``)."""
    import re
    got = {}
    for arg in argv:
        m = re.match(r"--block:([A-Za-z0-9]{1,67})=(\S{1,4096})", arg)
        if m:
            got["block"] = (m.group(1), m.group(2))
        m = re.match(r"--block-sector-size:([A-Za-z0-9]{1,67})=(\d+)", arg)
        if m:
            n = int(m.group(2))
            assert 512 <= n < 65536 and n & (n - 1) == 0
            got["sector"] = (m.group(1), n)
    return got


def _line(text: str, prefix: str) -> str:
    return next(line[len(prefix):] for line in text.splitlines() if line.startswith(prefix))


@pytest.mark.parametrize("dirname", ["plain", "with space, comma", "it's \\ odd,"])
def test_xl_disk_line_parses_to_the_image(site, tmp_path, dirname):
    out = tmp_path / dirname / "site.img"
    out.parent.mkdir()
    res = blockimg("create", site, "-o", out, "--platform", "xen", "--mtime", MTIME)
    disks = xl_disk_targets(_line(res.stdout, "xl config:  "))
    assert disks == [{"format": "raw", "vdev": "xvdb", "access": "rw",
                      "target": str(out.resolve())}]


def test_xl_quote_round_trips_control_characters():
    path = "/srv/a\tb\\c'd\x7fe,"
    assert xl_disk_targets(f"disk = [ 'target={platforms.xl_quote(path)}' ]") == \
        [{"target": path}]


@pytest.mark.parametrize("fmt, sector", [("tar", 512), ("fat", 4096)])
def test_solo5_run_line_parses(site, tmp_path, fmt, sector):
    import shlex
    out = tmp_path / "site.img"
    res = blockimg("create", site, "-o", out, "--platform", "hvt", "--format", fmt,
                   "--sector-size", sector, "--mtime", MTIME)
    argv = shlex.split(_line(res.stdout, "run:        "))
    assert argv[0] == "solo5-hvt" and argv[-2:] == ["--", "unikernel.hvt"]
    got = solo5_block_args(argv)
    assert got["block"] == ("site", str(out.resolve()))
    assert got.get("sector") == (("site", 4096) if sector == 4096 else None)


def test_solo5_path_with_white_space_gets_a_note(site, tmp_path):
    import shlex
    out = tmp_path / "a b" / "site.img"
    out.parent.mkdir()
    res = blockimg("create", site, "-o", out, "--platform", "hvt", "--mtime", MTIME)
    argv = shlex.split(_line(res.stdout, "run:        "))
    # the tender would read only up to the space: the instructions say so
    assert solo5_block_args(argv)["block"][1] != str(out.resolve())
    assert "up to its first white space" in res.stdout


def test_albatross_commands_parse(site, tmp_path):
    import re
    import shlex
    out = tmp_path / "my site.img"
    res = blockimg("create", site, "-o", out, "--platform", "albatross", "--device-name",
                   "site", "--mtime", MTIME)
    up = shlex.split(_line(res.stdout, "upload:     "))
    assert up[:3] == ["albatross-client", "create-block", "site"]
    assert int(up[3]) * MIB == out.stat().st_size          # SIZE in MiB, the whole image
    assert up[4] == f"--data={out.resolve()}"
    label = re.compile(r"^(?!-)[A-Za-z0-9.-]{1,63}$")       # albatross's block name rule
    assert label.match(up[2])
    run = shlex.split(_line(res.stdout, "run:        "))
    block = next(a for a in run if a.startswith("--block="))[len("--block="):]
    parts = block.split("@")
    assert len(parts) <= 2 and len(parts[0].split(":")) == 2
    assert parts[0].split(":") == ["site", "site"]
    assert shlex.split(_line(res.stdout, "update:     ")) == \
        ["albatross-client", "set-block", "site", str(out.resolve())]
    long_name = blockimg("create", site, "-o", tmp_path / "b.img", "--platform", "albatross",
                         "--device-name", "a" * 64, check=False)
    assert long_name.returncode == 1 and "at most 63 characters" in long_name.stderr
