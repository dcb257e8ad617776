"""Alignment and size arithmetic shared by every format (and, from :mod:`.quoting`, sizes
and counts in words)."""
from __future__ import annotations


from .errors import InvalidInput
from .quoting import human_size, plural

__all__ = ["align_up", "ceil_div", "is_power_of_two",
           "parse_size", "size_argument", "check_power_of_two",
           "human_size", "plural", "size_message"]


def ceil_div(a: int, b: int) -> int:
    """Smallest n with n * b >= a."""
    return -(-a // b)


def align_up(value: int, alignment: int) -> int:
    """Round ``value`` up to a multiple of ``alignment``."""
    return ceil_div(value, alignment) * alignment


def is_power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


def check_power_of_two(name: str, value: int, low: int, high: int = 1 << 40) -> int:
    """Return ``value`` or raise InvalidInput naming the option (``path``)."""
    if isinstance(value, bool) or not isinstance(value, int) or not is_power_of_two(value) \
            or not low <= value <= high:
        raise InvalidInput(f"must be a power of two from {human_size(low)} to "
                           f"{human_size(high)}, not {_shown(value)}", path=name,
                           rule="power of two")
    return value


def _shown(value) -> str:
    return human_size(value) if isinstance(value, int) and not isinstance(value, bool) \
        else repr(value)


def size_message(size, sector_size: int) -> str:
    """Why ``size`` is no image size for ``sector_size``, with the nearest sizes that are."""
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        return f"must be a positive number of bytes, not {size}"
    below = size - size % sector_size
    above = below + sector_size
    near = " or ".join(f"{n} ({human_size(n)})" for n in (below, above) if n > 0)
    return (f"{size} bytes is not a whole number of {sector_size}-byte sectors; the nearest "
            f"sizes that are: {near}")


_SIZE = r"^\s*(\d+)\s*([kmgtKMGT]?)(i?[bB])?\s*$"
_MULT = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """Parse ``4096``, ``64K``, ``64M``, ``2GiB`` (binary units) into bytes."""
    import re       # (here: a command that takes no size does not import re, ~8 ms)
    m = re.match(_SIZE, str(text))
    if not m:
        raise InvalidInput(f"not a size: {text} (use e.g. 4096, 64K, 32M, 2G)",
                           rule="size syntax")
    return int(m.group(1)) * _MULT[m.group(2).lower()]


def size_argument(text: str) -> int:
    """:func:`parse_size` as an argparse ``type=``: a bad size is argparse's usage error."""
    try:
        return parse_size(text)
    except InvalidInput as e:
        import argparse
        raise argparse.ArgumentTypeError(str(e)) from None
