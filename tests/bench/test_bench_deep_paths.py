"""Opening a tar whose one name has N components (issue 11, bug 2): the time to refuse it
grows no faster than the image (rows at 5k..50k components, pax ``path`` and GNU ``L``).

Before the bound, 10k/20k/50k components took 0.8/3.1/27 s and 135 MB/504 MB/3.1 GB.
Compare the rows; nothing here asserts a time.
"""
from __future__ import annotations

import pytest

from blockimg.block.memory import MemoryDevice
from blockimg.errors import CorruptImage
from blockimg.tar.reader import TarImage
from helpers.deep_paths import deep_tar


@pytest.mark.parametrize("how", ["pax", "gnu"])
@pytest.mark.parametrize("components", [5000, 10000, 20000, 50000])
def test_open_deep_path(benchmark, how, components):
    dev = MemoryDevice(data=deep_tar(components, how), writable=False)
    benchmark.extra_info["image_bytes"] = dev.size

    def open_it():
        try:
            TarImage(dev)
        except CorruptImage as e:
            return e
        return None

    assert benchmark(open_it) is not None
