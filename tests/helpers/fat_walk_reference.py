"""The numpy form of the FAT walk's cross-link check (``blockimg.fat.walk.Runs.cross_links``).

The library keeps the pure-Python sort only (see the ``blockimg.fat.walk`` docstring
for the measurements); this is the numpy formulation it replaced, kept so that tests
hold the two equal.
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np


def cross_links(runs, limit: int) -> List[Tuple[str, str, int]]:
    """``(earlier owner, owner, cluster)`` of the first ``limit`` clusters in two chains
    of ``runs`` (a ``blockimg.fat.walk.Runs``), in cluster order: a stable sort of the
    runs by start, a running maximum of their ends."""
    if not runs.start:
        return []
    start = np.array(runs.start, dtype=np.int64)
    length = np.array(runs.length, dtype=np.int64)
    owner = np.arange(len(runs.owner))                  # run i is owned by runs.owner[i]
    order = np.argsort(start, kind="stable")
    s, e, o = start[order], (start + length)[order], owner[order]
    reach = np.maximum.accumulate(e)
    out = []
    for i in np.flatnonzero(s[1:] < reach[:-1])[:limit].tolist():
        j = i + 1
        prev = int(np.flatnonzero(e[:j] > s[j])[0])
        out.append((runs.owner[int(o[prev])], runs.owner[int(o[j])], int(s[j])))
    return out
