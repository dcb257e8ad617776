"""The volumes the partitioned-disk tests put on a disk, and reading a disk's table back
with sfdisk (tests/interop/test_disk_interop.py, tests/root/test_disk_interop_root.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import require_tool, run

FILES = {
    "index.html": b"<html>home</html>\n",
    "manifest.json": b"{}\n",
    "css/style.css": b"body{}\n" * 50,
    "images/big.bin": bytes(range(256)) * 1500,
    "docs/a-rather-long-file-name-for-a-fat-directory.html": b"long\n",
}
MTIME = 1_700_000_000


def blockimg(*args, check=True) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "blockimg", *map(str, args)],
                         capture_output=True, text=True)
    if check and res.returncode != 0:
        pytest.fail(f"blockimg {args} exited {res.returncode}: {res.stderr}")
    return res


def make_tree(root: Path, files=FILES) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    for p in [root, *root.rglob("*")]:
        os.utime(p, (MTIME, MTIME))
    return root


def make_volumes(tmp_path: Path) -> tuple:
    """(site tree, keys tree, keys tar image) under ``tmp_path``: the disks' partitions."""
    site = make_tree(tmp_path / "site")
    keys = make_tree(tmp_path / "keys", {"server.key": b"-----KEY-----\n" * 3})
    keys_img = tmp_path / "keys.img"
    blockimg("create", keys, "-o", keys_img, "--mtime", MTIME)
    return site, keys, keys_img


def sfdisk_partitions(disk: Path) -> list:
    """[(start byte, size)] from ``sfdisk --json``."""
    import json
    out = run(require_tool("sfdisk"), "--json", disk).stdout
    table = json.loads(out)["partitiontable"]
    assert table["sectorsize" if "sectorsize" in table else "unit"] in (512, "sectors")
    return [(p["start"] * 512, p["size"] * 512) for p in table["partitions"]]
