"""Disk full on a real file system (as root: it mounts a 256 KiB tmpfs): the target is
untouched and no temporary is left. The other faults are in tests/unit/test_faults.py."""
from __future__ import annotations

import errno
import os
import subprocess

import pytest

from blockimg import api
from blockimg.errors import DeviceError
from conftest import require_root, require_tool
from helpers.fake_format import use_fake_format
from helpers.faults import assert_untouched, make_tree


@pytest.fixture(params=["fake", "tar", "fat"])
def fmt(request, monkeypatch):
    if request.param == "fake":
        use_fake_format(monkeypatch)
    return request.param


def test_disk_full_on_a_real_tmpfs(tmp_path, fmt):
    """A 256 KiB tmpfs: the sparse image is created, then writing its data fails."""
    require_root("mounts a tmpfs")
    require_tool("mount")
    mnt = tmp_path / "small"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs here (run the tests as root): {res.stderr}")
    try:
        src = make_tree(tmp_path / "src")
        target = mnt / "site.img"
        target.write_bytes(b"previous image")
        with pytest.raises(DeviceError) as ei:
            api.create(src, target, format=fmt, manifest=str(mnt / "site.json"))
        assert ei.value.errno in (errno.ENOSPC, errno.EFBIG)
        assert_untouched(target, b"previous image")
        assert not (mnt / "site.json").exists()
        # the space is given back: nothing but the old image remains
        st = os.statvfs(mnt)
        assert (st.f_blocks - st.f_bfree) * st.f_frsize < 64 * 1024
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
