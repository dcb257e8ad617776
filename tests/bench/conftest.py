"""Fixtures for the benchmark suite: corpora and images, tiny unless benchmarks are enabled.

In CI (``--benchmark-disable``, the default in setup.cfg) every benchmark runs
once on tiny corpora made in a temporary directory, so the suite cannot rot.
With ``pytest tests/bench --benchmark-enable`` it uses the real corpora from
``$BLOCKIMG_BENCH_CORPORA`` (default ``corpora/``; made by tools/make-corpora
when missing, preset ``$BLOCKIMG_BENCH_PRESET``: full, quick or tiny).
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _corpora_module():
    spec = importlib.util.spec_from_file_location("blockimg_corpora", ROOT / "tools" / "corpora.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def benchmarks_enabled(config) -> bool:
    try:
        return not (config.getoption("benchmark_disable")
                    and not config.getoption("benchmark_enable"))
    except ValueError:  # pytest-benchmark not installed
        return False


@pytest.fixture(scope="session")
def corpora(request, tmp_path_factory):
    """{name: info dict with "path"} for site, small and big."""
    mod = _corpora_module()
    if benchmarks_enabled(request.config):
        out = os.environ.get("BLOCKIMG_BENCH_CORPORA", str(ROOT / "corpora"))
        preset = os.environ.get("BLOCKIMG_BENCH_PRESET", "full")
    else:
        out = str(tmp_path_factory.mktemp("corpora"))
        preset = "tiny"
    return {name: mod.make(out, name, preset) for name in ("site", "small", "big")}


@pytest.fixture(scope="session")
def images(corpora, tmp_path_factory):
    """{(format, corpus): image path}, built once by blockimg."""
    import blockimg
    d = tmp_path_factory.mktemp("images")
    made = {}
    for fmt in ("tar", "fat"):
        for name in ("site", "big"):
            path = d / f"{name}.{fmt}.img"
            blockimg.create(corpora[name]["path"], str(path), format=fmt)
            made[(fmt, name)] = str(path)
    return made
