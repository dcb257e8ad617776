"""Partitioned disks: several volumes on one disk image, MBR or GPT.

``plan_disk`` places volumes (pure), ``build_disk`` writes a disk,
``read_table`` reads a disk's table, ``open_partition`` opens one
partition as a block device. Submodules are imported when first used.
"""
from __future__ import annotations

from ..lazy import lazy_names as _lazy_names

__all__ = ["build_disk", "plan_disk", "read_table", "open_partition", "parse_volumes",
           "Table", "Partition", "DiskPlan"]

_WHERE = {"build_disk": "writer", "plan_disk": "layout", "DiskPlan": "layout",
          "read_table": "reader", "open_partition": "reader", "parse_volumes": "volumes",
          "Table": "table", "Partition": "table"}

__getattr__, __dir__ = _lazy_names(globals(), _WHERE)
