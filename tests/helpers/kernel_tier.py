"""The kernel tier's shared pieces (tests/kernel): the kernel to boot, and what the guest
must find in an image of a source tree."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from conftest import IN_CI, require_root, require_tool
from helpers import vm


def source_of(root: Path):
    """({file path: sha256}, {dir path}) of a source tree, paths relative, '/'-separated."""
    files, dirs = {}, set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        for d in dirnames:
            dirs.add((rel / d).as_posix())
        for f in filenames:
            files[(rel / f).as_posix()] = hashlib.sha256((Path(dirpath) / f).read_bytes()).hexdigest()
    return files, dirs


def require_vm_tools():
    """(qemu, static busybox, (vmlinuz, modules dir)) for a kernel-tier test; in CI a
    missing one fails instead of skipping."""
    qemu = require_tool("qemu-system-x86_64")
    busybox = Path(require_tool("busybox"))
    if not vm.is_static(busybox):
        msg = f"{busybox} is not statically linked (tools/test installs busybox-static)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return qemu, busybox, require_kernel()


def require_kernel():
    """(vmlinuz, modules dir); in CI a missing kernel fails instead of skipping."""
    found = vm.find_kernel()
    if found is None:
        msg = "no /boot/vmlinuz-*-cloud-amd64 with modules (tools/test installs linux-image-cloud-amd64)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    if not os.access(found[0], os.R_OK):
        require_root(f"reads {found[0]}")
    return found
