"""``blockimg update`` of a tar image on a block device (as root: a loop device). The
other update tests are in tests/unit/test_update_tar.py."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import require_root, require_tool, run
from helpers.tar_update import assert_exact, cli, make_site, settle_dirs, write


@pytest.fixture
def site(tmp_path) -> Path:
    return make_site(tmp_path / "src")


def test_update_on_a_device_node(tmp_path, site):
    """A loop device: appended in place, refused (nothing written) when it would not fit."""
    require_root("losetup")
    image = tmp_path / "site.tar"
    cli("create", site, "-o", image, "-q", "--size", "64K")
    loop = run(require_tool("losetup"), "-f", "--show", image, text=True).stdout.strip()
    try:
        write(site, "blog/one.html", b"new")
        settle_dirs(site)
        assert "append" in cli("update", loop, site).stdout
        write(site, "big", b"x" * 100_000)
        settle_dirs(site)
        before = Path(image).read_bytes()
        r = subprocess.run([sys.executable, "-m", "blockimg", "update", loop, site],
                           capture_output=True, text=True)
        assert r.returncode == 1 and "does not fit" in r.stderr and "short by" in r.stderr
        assert Path(image).read_bytes() == before
    finally:
        run("losetup", "-d", loop)
    (site / "big").unlink()
    settle_dirs(site)
    assert_exact(image, site, tmp_path)
