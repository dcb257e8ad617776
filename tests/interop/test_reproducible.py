"""The same tree gives byte-identical images and manifests, whatever the environment:
built in two separate processes with different TZ, umask, locale, source location and
file creation order, for both formats and both targets."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

FILES = {
    "index.html": b"<html>home</html>\n",
    "manifest.json": b"{}\n",                       # 13 characters: the LFN edge case
    "README": b"readme\n",
    "Mixed.Case.Name.txt": b"mixed\n",
    "empty": b"",
    "css/style.css": b"body{}\n" * 50,
    "docs/api/Mirage_kv.html": b"kv\n" * 1000,
    "docs/a-rather-long-file-name-for-a-fat-directory.html": b"long\n",
    "images/big.bin": bytes(range(256)) * 1500,     # 384000 bytes: the kernel-copy path
    "images/i.png": b"\x89PNG\r\n\x1a\n",
}
DIRS = ["css", "docs", "docs/api", "images", "emptydir"]
MTIME = 1_700_000_000

ENVS = [
    {"TZ": "UTC", "LC_ALL": "C", "umask": 0o022},
    {"TZ": "Pacific/Chatham", "LC_ALL": "C.UTF-8", "umask": 0o077},
]


def make_tree(root: Path, *, reverse: bool, own_mtimes: bool) -> Path:
    order = sorted(FILES, reverse=reverse)
    dirs = sorted(DIRS, reverse=reverse)
    root.mkdir(parents=True)
    for d in dirs:
        (root / d).mkdir(parents=True, exist_ok=True)
    for name in order:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(FILES[name])
    everything = sorted(root.rglob("*"), key=lambda p: -len(p.parts))
    for p in everything:
        p.chmod(0o755 if p.is_dir() else 0o644)
        if own_mtimes:
            os.utime(p, (MTIME, MTIME))
    root.chmod(0o755)
    return root


def build(src: Path, out: Path, fmt: str, target: str, env: dict, sde: bool) -> tuple:
    e = {k: v for k, v in os.environ.items() if k not in ("SOURCE_DATE_EPOCH", "TZ", "LC_ALL")}
    e.update(TZ=env["TZ"], LC_ALL=env["LC_ALL"], LANG=env["LC_ALL"])
    if sde:
        e["SOURCE_DATE_EPOCH"] = str(MTIME)
    umask = env["umask"]
    res = subprocess.run([sys.executable, "-m", "blockimg", "create", str(src), "-o",
                          str(out / "site.img"), "--format", fmt, "--target", target,
                          "--manifest", str(out / "site.json"), "-q"],
                         capture_output=True, text=True, cwd=str(ROOT), env=e,
                         preexec_fn=lambda: os.umask(umask))
    assert res.returncode == 0, res.stderr
    img = hashlib.sha256((out / "site.img").read_bytes()).hexdigest()
    man = hashlib.sha256((out / "site.json").read_bytes()).hexdigest()
    return img, man


@pytest.mark.parametrize("fmt", ["tar", "fat"])
@pytest.mark.parametrize("target", ["mirage", "generic"])
@pytest.mark.parametrize("times", ["own-mtimes", "SOURCE_DATE_EPOCH"])
def test_two_processes_same_bytes(tmp_path, fmt, target, times):
    own = times == "own-mtimes"
    one = make_tree(tmp_path / "a" / "src-one", reverse=False, own_mtimes=own)
    two = make_tree(tmp_path / "b" / "second-source", reverse=True, own_mtimes=own)
    if not own:  # the files' own times differ; SOURCE_DATE_EPOCH must win
        for p in two.rglob("*"):
            os.utime(p, (MTIME + 12345, MTIME + 12345))
    outs = []
    for i, env in enumerate(ENVS):
        out = tmp_path / f"out{i}"
        out.mkdir()
        outs.append(build(one if i == 0 else two, out, fmt, target, env, sde=not own))
    assert outs[0][0] == outs[1][0], "images differ"
    assert outs[0][1] == outs[1][1], "manifests differ"
    # and the build did not just produce nothing
    size = (tmp_path / "out0" / "site.img").stat().st_size
    assert size >= sum(len(v) for v in FILES.values())
