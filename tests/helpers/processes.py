"""Processes a test started: what they started in turn (Linux /proc)."""
from __future__ import annotations


def children_of(pid: int) -> list:
    """Process ids of ``pid``'s children (none once it is gone)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []
