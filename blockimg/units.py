"""Alignment and size arithmetic shared by every format."""
from __future__ import annotations

import re

from .errors import InvalidInput

__all__ = ["align_up", "align_down", "ceil_div", "is_power_of_two",
           "parse_size", "check_power_of_two"]


def ceil_div(a: int, b: int) -> int:
    """Smallest n with n * b >= a."""
    return -(-a // b)


def align_up(value: int, alignment: int) -> int:
    """Round ``value`` up to a multiple of ``alignment``."""
    return ceil_div(value, alignment) * alignment


def align_down(value: int, alignment: int) -> int:
    """Round ``value`` down to a multiple of ``alignment``."""
    return (value // alignment) * alignment


def is_power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


def check_power_of_two(name: str, value: int, low: int, high: int = 1 << 40) -> int:
    """Return ``value`` or raise InvalidInput naming the option."""
    if not isinstance(value, int) or not is_power_of_two(value) or not low <= value <= high:
        raise InvalidInput(f"{name} must be a power of two from {low} to {high}, got {value!r}",
                           path=name, rule="power of two")
    return value


_SIZE = re.compile(r"^\s*(\d+)\s*([kmgtKMGT]?)(i?[bB])?\s*$")
_MULT = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """Parse ``4096``, ``64K``, ``64M``, ``2GiB`` (binary units) into bytes."""
    m = _SIZE.match(str(text))
    if not m:
        raise InvalidInput(f"not a size: {text!r} (use e.g. 4096, 64K, 32M, 2G)",
                           rule="size syntax")
    return int(m.group(1)) * _MULT[m.group(2).lower()]
