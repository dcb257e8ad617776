"""The seed volumes of tests/helpers/fat_volume.py are clean, and its helpers find what
they patch."""
from __future__ import annotations

from helpers.fat_volume import FILES, KINDS, Volume


def test_seeds_are_clean():
    for kind in KINDS:
        v = Volume(kind)
        assert v.clean.problems == [] and v.clean.warnings == []
        assert v.geo.fat_type == int(kind[3:])
        for rel, data in FILES.items():
            assert v.clean.read(rel) == data


def test_helpers_find_chains():
    v = Volume("fat16")
    a = v.clusters("a.txt")
    assert len(a) == 3 and a == list(range(a[0], a[0] + 3))
    assert v.data[v.entry("a.txt"):v.entry("a.txt") + 11] == b"A       TXT"
