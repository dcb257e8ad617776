"""A bounded fuzz run of both readers (fixed seed), and checks that the harness catches
what it is there to catch: stray exceptions, hangs, runaway memory."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from blockimg import formats
from blockimg.errors import CorruptImage
from conftest import ROOT, mirage_fixtures
from helpers import fuzzer as fuzz

ITERATIONS = 6000
SEED = 20261125


def test_seeds_cover_fixtures_mirage_and_both_formats():
    mirage_fixtures()
    names = [n for n, _ in fuzz.load_seeds()]
    hostile = sorted((ROOT / "fixtures" / "hostile").glob("*.tar*"))
    assert all(f"fixtures/hostile/{p.name}" in names for p in hostile)
    assert "mirage:fat16-volume" in names
    assert {"mirage:long.tar", "mirage:long-pax.tar", "mirage:pax-shenanigans.tar",
            "mirage:long-implicit-dir.tar"} <= set(names)
    assert any(n.startswith("built:tar:") for n in names)
    assert any(n.startswith("built:fat:") for n in names)
    assert set(fuzz.readers()) == {"tar", "fat"}


def test_fuzz_smoke_run():
    """The fuzzer as tools/fuzz runs it: the seeds, then ITERATIONS mutations, 512 MiB cap."""
    path = [str(ROOT / "tests")] + [p for p in [os.environ.get("PYTHONPATH")] if p]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    res = subprocess.run([sys.executable, "-m", "helpers.fuzzer", "--iterations", str(ITERATIONS),
                          "--seed", str(SEED), "--timeout", "60", "--memory-mb", "512",
                          "--json"], capture_output=True, text=True, cwd=str(ROOT), env=env)
    assert res.stdout, res.stderr
    stats = json.loads(res.stdout)
    failures = "\n\n".join(f"{f['from']} ({f['how']}): {f['error']}" for f in stats["failures"])
    assert not stats["failures"], failures
    assert res.returncode == 0
    assert stats["executions"] == ITERATIONS + stats["seeds"]
    # Both readers accepted some mutated inputs (the mutations are not all fatal).
    by_format = {"tar": 0, "fat": 0}
    for key, n in stats["outcomes"].items():
        _detect, tar, fat = key.split("/")
        by_format["tar"] += n if tar == "ok" else 0
        by_format["fat"] += n if fat == "ok" else 0
    assert by_format["tar"] > ITERATIONS // 20 and by_format["fat"] > ITERATIONS // 20, by_format


class _Broken:
    """A stand-in format whose reader misbehaves in a chosen way."""

    how = "raise"

    @staticmethod
    def open_image(device, owns_device=False):
        if _Broken.how == "raise":
            return {}["no such key"]
        if _Broken.how == "hang":
            while True:
                time.sleep(0.01)
        if _Broken.how == "memory":
            return bytearray(8 << 30)
        raise CorruptImage("fine", offset=0)


@pytest.fixture
def broken(monkeypatch):
    monkeypatch.setitem(sys.modules, "fuzz_broken_format", _Broken)
    monkeypatch.setitem(formats.FORMATS, "broken", "fuzz_broken_format")
    return _Broken


def test_harness_flags_a_stray_exception(broken):
    broken.how = "raise"
    with pytest.raises(fuzz.InvariantBroken, match="KeyError"):
        fuzz.exercise(b"x" * 512, formats=("broken",))


def test_harness_accepts_blockimg_errors(broken):
    broken.how = "corrupt"
    assert fuzz.exercise(b"x" * 512, formats=("broken",)) == ["CorruptImage"]


def test_harness_flags_a_hang(broken, monkeypatch):
    broken.how = "hang"
    monkeypatch.setattr(fuzz, "exercise",
                        lambda data, formats=None: fuzz.__dict__["_one"](None, "broken"))
    stats = fuzz.run(1, seeds=[("x", b"")], timeout=0.5)
    # the seed and one mutation: both stopped by the alarm
    assert [f["error"] for f in stats["failures"]] == ["no answer after 0.5 s"] * 2


def test_harness_flags_runaway_memory():
    """Under the memory cap a forged 8 GiB allocation is a failure, not an exhausted host."""
    code = (
        "import sys; sys.modules['fuzz_broken_format'] = type('M', (), {'open_image': "
        "staticmethod(lambda d, owns_device=False: bytearray(8 << 30))})\n"
        f"sys.path.insert(0, {str(ROOT / 'tests')!r})\n"
        "from blockimg import formats\n"
        "from helpers import fuzzer as fuzz\n"
        "formats.FORMATS['broken'] = 'fuzz_broken_format'\n"
        "fuzz.limit_memory(256)\n"
        "try:\n"
        "    fuzz.exercise(b'x' * 512, formats=('broken',))\n"
        "except fuzz.InvariantBroken as e:\n"
        "    print('caught', e)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=str(ROOT))
    assert "caught broken: memory limit hit" in res.stdout, res.stderr


def test_mutator_is_deterministic():
    seeds = [("a", bytes(range(256)) * 8), ("b", bytes(4096))]
    m1, m2, m3 = fuzz.Mutator(seeds, 7), fuzz.Mutator(seeds, 7), fuzz.Mutator(seeds, 8)
    first = [m1.next() for _ in range(50)]
    assert first == [m2.next() for _ in range(50)]
    assert first != [m3.next() for _ in range(50)]


def test_extract_check_flags_writes_beside_the_destination(tmp_path, monkeypatch, site_dir):
    import blockimg
    from blockimg.read.image import Image
    blockimg.create(site_dir, tmp_path / "s.img", format="tar", mtime=0)
    data = (tmp_path / "s.img").read_bytes()
    assert fuzz.exercise_extract(data, str(tmp_path / "w1")) == "ok"

    def leaky(self, dest, **kw):
        open(os.path.join(os.path.dirname(dest), "escaped"), "w").close()
    monkeypatch.setattr(Image, "extract", leaky)
    with pytest.raises(fuzz.InvariantBroken, match="beside its destination"):
        fuzz.exercise_extract(data, str(tmp_path / "w2"))
