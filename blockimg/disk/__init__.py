"""Partitioned disks: several volumes on one disk image, MBR or GPT.

``plan_disk`` places volumes (pure), ``build_disk`` writes a disk,
``read_table`` reads a disk's table, ``open_partition`` opens one
partition as a block device. Submodules are imported when first used.
"""
from __future__ import annotations

import importlib

__all__ = ["build_disk", "plan_disk", "read_table", "open_partition", "parse_volumes",
           "Table", "Partition", "DiskPlan"]

_WHERE = {"build_disk": "writer", "plan_disk": "layout", "DiskPlan": "layout",
          "read_table": "reader", "open_partition": "reader", "parse_volumes": "volumes",
          "Table": "table", "Partition": "table"}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(name)
