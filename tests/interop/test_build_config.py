"""``blockimg build [blockimg.toml]``: every output the same bytes as the single ``create``
and ``disk`` commands, read back by independent tools (mtools at the partition's offset,
GNU tar, fsck.fat, sfdisk); all or nothing; secret volumes 0600 and unnamed; every
problem of a bad config named with its line; the same config gives the same bytes."""
from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import assert_read_back, assert_same_tree, require_tool, run
from helpers import disk_volumes

FILES = {
    "index.html": b"<html>home</html>\n",
    "css/style.css": b"body{}\n" * 50,
    "images/big.bin": bytes(range(256)) * 1500,
}
MTIME = disk_volumes.MTIME
MTOOLS_ENV = dict(os.environ, MTOOLS_SKIP_CHECK="1")


def blockimg(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "blockimg", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


def ok(*args, cwd=None) -> subprocess.CompletedProcess:
    res = blockimg(*args, cwd=cwd)
    if res.returncode != 0:
        pytest.fail(f"blockimg {args} exited {res.returncode}: {res.stderr}")
    return res


def make_tree(root: Path, files=FILES) -> Path:
    return disk_volumes.make_tree(root, files)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def config(tmp: Path, table: str = "mbr", extra: str = "") -> Path:
    make_tree(tmp / "site")
    make_tree(tmp / "docs", {"README.txt": b"read me\n" * 20})
    cfg = tmp / "blockimg.toml"
    cfg.write_text(f"""\
[volumes.site]
source = "site"
format = "fat"
mtime = {MTIME}

[volumes.docs]
source = "docs"
mtime = {MTIME}

[volumes.data]
size = "1M"
{extra}
[disk]
table = "{table}"
output = "out/disk.img"
volumes = ["site", "docs", "data"]
""")
    (tmp / "out").mkdir()
    return cfg


@pytest.mark.parametrize("table", ["mbr", "gpt"])
def test_build_equals_single_commands_and_reads_back(tmp_path, table):
    cfg = config(tmp_path, table)
    # Run from elsewhere: paths in the config are relative to its directory.
    ok("build", cfg, cwd="/")
    ref = tmp_path / "ref"
    ref.mkdir()
    ok("create", tmp_path / "site", "-o", ref / "site.img", "--format", "fat",
       "--mtime", MTIME)
    ok("create", tmp_path / "docs", "-o", ref / "docs.img", "--mtime", MTIME)
    ok("disk", "-o", ref / "disk.img", "--table", table, f"{ref / 'site.img'},name=site",
       f"{ref / 'docs.img'},name=docs", "empty:1M,name=data")
    for got, want in ((tmp_path / "site.img", ref / "site.img"),
                      (tmp_path / "docs.img", ref / "docs.img"),
                      (tmp_path / "out" / "disk.img", ref / "disk.img")):
        assert sha(got) == sha(want), got
    assert_read_back("fat", tmp_path / "site.img", tmp_path / "site", tmp_path / "rb-site")
    assert_read_back("tar", tmp_path / "docs.img", tmp_path / "docs", tmp_path / "rb-docs")

    disk = tmp_path / "out" / "disk.img"
    parts = json.loads(run(require_tool("sfdisk"), "--json", disk).stdout)["partitiontable"]
    assert parts["label"] == ("dos" if table == "mbr" else "gpt")
    spans = [(p["start"] * 512, p["size"] * 512) for p in parts["partitions"]]
    assert len(spans) == 3
    data = disk.read_bytes()
    (fat_at, fat_len), (tar_at, tar_len), (empty_at, empty_len) = spans
    # FAT partition: mtools reads it in place at its offset, fsck.fat the extracted copy.
    got = run(require_tool("mtype"), "-i", f"{disk}@@{fat_at}", "::/index.html",
              env=MTOOLS_ENV).stdout
    assert got == FILES["index.html"]
    part = tmp_path / "p1.img"
    part.write_bytes(data[fat_at:fat_at + fat_len])
    assert_read_back("fat", part, tmp_path / "site", tmp_path / "rb-p1")
    # tar partition: GNU tar on the extracted partition.
    part = tmp_path / "p2.img"
    part.write_bytes(data[tar_at:tar_at + tar_len])
    assert_read_back("tar", part, tmp_path / "docs", tmp_path / "rb-p2")
    assert empty_len == 1 << 20
    assert data[empty_at:empty_at + empty_len].count(0) == empty_len


def test_same_config_twice_same_bytes(tmp_path):
    cfg = config(tmp_path, "gpt")
    ok("build", cfg)
    outputs = [tmp_path / "site.img", tmp_path / "docs.img", tmp_path / "out" / "disk.img"]
    first = [sha(p) for p in outputs]
    for p in outputs:
        p.unlink()
    ok("build", cfg)
    assert [sha(p) for p in outputs] == first


def _listing(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


def test_second_volume_fails_nothing_replaced(tmp_path):
    cfg = config(tmp_path, extra='\n[volumes.big]\nsource = "site"\nformat = "fat"\n'
                                 'size = "64K"\n')
    cfg.write_text(cfg.read_text().replace('"docs", "data"]', '"docs", "data", "big"]'))
    old = b"an older site image\n" * 100
    (tmp_path / "site.img").write_bytes(old)
    before = _listing(tmp_path)
    res = blockimg("build", cfg)
    assert res.returncode == 1
    assert "big" in res.stderr and "64" in res.stderr, res.stderr
    assert (tmp_path / "site.img").read_bytes() == old
    # Nothing new: no docs.img, no disk, no temporary file left anywhere.
    assert _listing(tmp_path) == before


def test_disk_fails_after_volumes_nothing_placed(tmp_path):
    # Xen has no GPT reader: the disk is refused after both volumes were built.
    cfg = config(tmp_path, "gpt")
    cfg.write_text(cfg.read_text() + 'platform = "xen"\n')
    before = _listing(tmp_path)
    res = blockimg("build", cfg)
    assert res.returncode == 1
    assert "xen" in res.stderr.lower(), res.stderr
    assert _listing(tmp_path) == before


SECRET_NAME = "prod-signing-key-7f3a.pem"


def test_secret_volume_0600_and_unnamed(tmp_path):
    make_tree(tmp_path / "keys", {SECRET_NAME: b"-----KEY-----\n"})
    os.mkfifo(tmp_path / "keys" / "agent-socket-name")
    cfg = config(tmp_path, extra='\n[volumes.keys]\nsource = "keys"\nsecret = true\n'
                                 'skip-special = true\nmanifest = "keys.json"\n'
                                 f'mtime = {MTIME}\n')
    cfg.write_text(cfg.read_text().replace('"docs", "data"]', '"docs", "data", "keys"]'))
    old = os.umask(0)          # a world-readable default would show
    try:
        res = ok("build", cfg)
    finally:
        os.umask(old)
    for out in (tmp_path / "keys.img", tmp_path / "keys.json", tmp_path / "out" / "disk.img"):
        assert stat.S_IMODE(os.stat(out).st_mode) == 0o600, out
    assert stat.S_IMODE(os.stat(tmp_path / "site.img").st_mode) == 0o666
    for text in (res.stdout, res.stderr):
        assert SECRET_NAME not in text and "agent-socket-name" not in text
    assert "skipped 1 special files" in res.stderr
    out = tmp_path / "rb-keys"
    out.mkdir()
    run(require_tool("tar"), "-xf", tmp_path / "keys.img", "-C", out)
    assert (out / SECRET_NAME).read_bytes() == b"-----KEY-----\n"
    # Asked for, the names are shown.
    res = ok("build", cfg, "--show-secret")
    assert "agent-socket-name" in res.stderr


def test_secret_never_world_readable_while_staged(tmp_path, monkeypatch):
    """Every staging file of a secret volume is 0600 when it is put in place (and
    create's own temporary file is 0600 from its creation)."""
    from blockimg.deploy import config as build_config, build
    make_tree(tmp_path / "keys", {SECRET_NAME: b"k\n"})
    text = '[volumes.keys]\nsource = "keys"\nsecret = true\n'
    plan = build_config.parse(text, base=str(tmp_path))
    seen = []
    real = os.replace

    def replace(src, dst, **kw):
        seen.append((os.path.basename(dst), stat.S_IMODE(os.stat(src).st_mode)))
        return real(src, dst, **kw)
    monkeypatch.setattr(os, "replace", replace)
    old = os.umask(0)
    try:
        build.build(plan)
    finally:
        os.umask(old)
    assert ("keys.img", 0o600) in seen
    assert all(mode == 0o600 for _, mode in seen), seen


def test_bad_config_every_problem_with_its_line(tmp_path):
    make_tree(tmp_path / "site")
    cfg = tmp_path / "bad.toml"
    cfg.write_text("""\
[volumes.site]
source = "site"
format = "fatt"
sise = "1M"

[volumes.b]
source = "site"
free = "1M"
secret = "yes"

[disk]
volumes = ["site", "nope"]
table = "apm"
""")
    before = _listing(tmp_path)
    res = blockimg("build", cfg)
    assert res.returncode == 1
    lines = res.stderr.splitlines()
    expected = [f"{cfg}:3: [volumes.site] format:", f"{cfg}:4: [volumes.site] sise: unknown key",
                f"{cfg}:8: [volumes.b] free: applies to format = \"fat\" only",
                f"{cfg}:9: [volumes.b] secret: must be a boolean",
                f"{cfg}:12: [disk] volumes: no [volumes.nope] table",
                f"{cfg}:13: [disk] table: 'apm'"]
    for want in expected:
        assert any(want in line for line in lines), (want, res.stderr)
    assert lines[-1] == "blockimg: 6 problems found; nothing was written"
    assert _listing(tmp_path) == before


def test_toml_syntax_error_names_the_line(tmp_path):
    cfg = tmp_path / "blockimg.toml"
    cfg.write_text('[volumes.a]\nsource = "a"\nformat = \n')
    res = blockimg("build", cfg)
    assert res.returncode == 1
    assert res.stderr.startswith(f"blockimg: error: {cfg}:3: not valid TOML:"), res.stderr
    assert "line 3" in res.stderr


def test_default_config_name_and_output_beside_it(tmp_path):
    make_tree(tmp_path / "site")
    (tmp_path / "blockimg.toml").write_text('[volumes.www]\nsource = "site"\n'
                                            'platform = "hvt"\n')
    res = ok("build", cwd=tmp_path)
    ok("create", tmp_path / "site", "-o", tmp_path / "ref.img", "--platform", "hvt")
    assert sha(tmp_path / "www.img") == sha(tmp_path / "ref.img")
    assert f"solo5-hvt --block:www={tmp_path / 'www.img'}" in res.stdout
    out = tmp_path / "rb"
    assert_read_back("tar", tmp_path / "www.img", tmp_path / "site", out)
    assert_same_tree(tmp_path / "site", out)


def test_deploy_md_example_builds(tmp_path):
    """The blockimg.toml of docs/deploy.md, as written there, builds; its disk holds the
    keys volume byte for byte and is 0600 (it holds a secret volume)."""
    from conftest import ROOT
    text = (ROOT / "docs" / "deploy.md").read_text()
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "blockimg.toml").write_text(example)
    make_tree(tmp_path / "site")
    make_tree(tmp_path / "keys", {SECRET_NAME: b"-----KEY-----\n"})
    res = ok("build", cwd=tmp_path)
    assert "solo5-hvt --block:site=" in res.stdout and "solo5-hvt --block:disk=" in res.stdout
    assert SECRET_NAME not in res.stdout + res.stderr
    disk = tmp_path / "disk.img"
    assert stat.S_IMODE(os.stat(disk).st_mode) == 0o600
    parts = json.loads(run(require_tool("sfdisk"), "--json", disk).stdout)["partitiontable"]
    spans = [(p["start"] * 512, p["size"] * 512) for p in parts["partitions"]]
    keys = (tmp_path / "keys.img").read_bytes()
    assert disk.read_bytes()[spans[1][0]:spans[1][0] + spans[1][1]] == keys
    assert spans[2][1] == 64 << 20
    got = run(require_tool("mtype"), "-i", f"{disk}@@{spans[0][0]}", "::/index.html",
              env=MTOOLS_ENV).stdout
    assert got == FILES["index.html"]
    run(require_tool("fsck.fat"), "-n", tmp_path / "site.img")


def test_failed_rename_puts_the_old_outputs_back(tmp_path, monkeypatch):
    """The second output cannot be put in place: the first, already replaced, gets its
    old bytes back, the new output is removed, and no temporary file remains."""
    from blockimg.deploy import build, config as build_config
    from blockimg.errors import DeviceError
    make_tree(tmp_path / "site")
    text = ('[volumes.a]\nsource = "site"\n\n[volumes.b]\nsource = "site"\n\n'
            '[volumes.c]\nsource = "site"\n')
    plan = build_config.parse(text, base=str(tmp_path))
    (tmp_path / "a.img").write_bytes(b"old a\n")
    before = _listing(tmp_path)
    real = os.replace

    def replace(src, dst, **kw):
        if os.path.basename(dst) == "b.img":
            raise OSError(28, "No space left on device")
        return real(src, dst, **kw)
    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError):
        build.build(plan)
    monkeypatch.setattr(os, "replace", real)
    assert _listing(tmp_path) == before
    build.build(plan)               # and then it builds
    assert (tmp_path / "a.img").read_bytes() != b"old a\n"
    assert sha(tmp_path / "a.img") == sha(tmp_path / "b.img") == sha(tmp_path / "c.img")


def test_output_inside_a_source_directory_refused(tmp_path):
    make_tree(tmp_path / "site")
    cfg = tmp_path / "blockimg.toml"
    cfg.write_text('[volumes.all]\nsource = "."\n\n[volumes.site]\nsource = "site"\n'
                   'output = "site/site.img"\n')
    before = _listing(tmp_path)
    res = blockimg("build", cfg)
    assert res.returncode == 1
    assert f"{cfg}:2: [volumes.all] source: {tmp_path / 'all.img'} would be written inside" \
        in res.stderr, res.stderr
    assert f"{cfg}:5: [volumes.site] source: {tmp_path / 'site' / 'site.img'}" in res.stderr
    assert _listing(tmp_path) == before


def test_git_and_tar_sources_same_bytes_as_create(tmp_path):
    git = require_tool("git")
    repo = make_tree(tmp_path / "repo")
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@e", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@e", GIT_AUTHOR_DATE="@1700000000 +0000",
               GIT_COMMITTER_DATE="@1700000000 +0000")
    run(git, "-C", repo, "init", "-q", env=env)
    run(git, "-C", repo, "add", "-A", env=env)
    run(git, "-C", repo, "commit", "-q", "-m", "x", env=env)
    run(require_tool("tar"), "-cf", tmp_path / "site.tar", "-C", repo, "index.html", "css")
    (tmp_path / "blockimg.toml").write_text(
        '[volumes.g]\nsource = "repo"\ngit-ref = "HEAD"\ngit-path = "css"\nformat = "fat"\n\n'
        '[volumes.t]\nsource = "site.tar"\nexclude = ["css"]\n')
    ok("build", tmp_path / "blockimg.toml")
    ok("create", repo, "--git-ref", "HEAD", "--git-path", "css", "--format", "fat",
       "-o", tmp_path / "g-ref.img")
    ok("create", tmp_path / "site.tar", "--exclude", "css", "-o", tmp_path / "t-ref.img")
    assert sha(tmp_path / "g.img") == sha(tmp_path / "g-ref.img")
    assert sha(tmp_path / "t.img") == sha(tmp_path / "t-ref.img")
    out = tmp_path / "rb-t"
    out.mkdir()
    run(require_tool("tar"), "-xf", tmp_path / "t.img", "-C", out)
    assert sorted(p.name for p in out.iterdir()) == ["index.html"]
    run(require_tool("fsck.fat"), "-n", tmp_path / "g.img")
    got = run(require_tool("mtype"), "-i", tmp_path / "g.img", "::/style.css",
              env=MTOOLS_ENV).stdout
    assert got == FILES["css/style.css"]


def test_secret_staging_file_wiped_when_a_later_volume_fails(tmp_path, monkeypatch):
    from blockimg.deploy import build, config as build_config
    from blockimg.errors import InvalidInput
    make_tree(tmp_path / "keys", {SECRET_NAME: b"-----KEY-----\n"})
    make_tree(tmp_path / "site")
    plan = build_config.parse('[volumes.keys]\nsource = "keys"\nsecret = true\n\n'
                              '[volumes.big]\nsource = "site"\nformat = "fat"\nsize = "64K"\n',
                              base=str(tmp_path))
    removed = {}
    real = os.unlink

    def unlink(path, **kw):
        if os.path.basename(str(path)).startswith(".keys.img."):
            removed[path] = Path(path).read_bytes()
        return real(path, **kw)
    monkeypatch.setattr(os, "unlink", unlink)
    with pytest.raises(InvalidInput, match=r"\[volumes.big\] size"):
        build.build(plan)
    assert len(removed) == 1
    data = next(iter(removed.values()))
    assert len(data) == 4096 and data.count(0) == len(data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys", "site"]
