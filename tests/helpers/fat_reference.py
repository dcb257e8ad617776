"""Reference forms of the FAT name and directory codecs: the spec's loops, written plainly.

The library keeps one (faster) implementation of each; these exist only so that
property tests can hold the library equal to the obvious code
(``tests/property/test_fat_reference_props.py``).
"""
from __future__ import annotations

import struct
from typing import Iterable, List, NamedTuple, Optional, Tuple

from blockimg.fat.names import LFN_UNITS, MAX_SLOTS, SHORT_CHARS
from blockimg.fat.structs import ATTR_LONG_NAME, LAST_LONG_ENTRY, STRUCT_FORMATS

_LFN = struct.Struct(STRUCT_FORMATS["LfnEntry"])


def lfn_checksum(short: bytes) -> int:
    """The spec's loop: rotate the sum right by one bit, add the next byte, mod 256."""
    s = 0
    for c in bytes(short):
        s = (((s & 1) << 7) + (s >> 1) + c) & 0xFF
    return s


def is_short_name(name: str) -> bool:
    """An all-upper-case legal 8.3 name, by splitting at the dot."""
    base, dot, ext = name.partition(".")
    if dot and (not ext or "." in ext):
        return False
    if not 1 <= len(base) <= 8 or len(ext) > 3:
        return False
    return all(c in SHORT_CHARS for c in base + ext)


def utf16_units(name: str) -> List[int]:
    """The UTF-16 code units of ``name`` (surrogate pairs for characters past U+FFFF)."""
    data = name.encode("utf-16-le", "surrogatepass")
    return list(struct.unpack(f"<{len(data) // 2}H", data))


def lfn_units(name: str, *, always_terminate: bool) -> List[int]:
    """The name's units as stored: a 0x0000 terminator and 0xFFFF padding to whole slots."""
    units = utf16_units(name)
    if len(units) % LFN_UNITS or always_terminate:
        units.append(0)
    units += [0xFFFF] * (-len(units) % LFN_UNITS)
    return units


def build_lfn(name: str, short: bytes, *, always_terminate: bool) -> List[bytes]:
    """The LFN slots for ``name`` in on-disk order (last slot first), each 32 bytes."""
    units = lfn_units(name, always_terminate=always_terminate)
    count = len(units) // LFN_UNITS
    if count > MAX_SLOTS:
        raise ValueError(f"{name!r} needs {count} LFN slots (at most {MAX_SLOTS})")
    chk = lfn_checksum(short)
    slots = []
    for i in range(count, 0, -1):
        raw = struct.pack(f"<{LFN_UNITS}H", *units[(i - 1) * LFN_UNITS:i * LFN_UNITS])
        slots.append(_LFN.pack(i | (LAST_LONG_ENTRY if i == count else 0), raw[:10],
                               ATTR_LONG_NAME, 0, chk, raw[10:22], 0, raw[22:26]))
    return slots


class LfnSlot(NamedTuple):
    """One decoded LFN slot: sequence number (1..20), last-slot flag, checksum, 13 units."""

    order: int
    last: bool
    checksum: int
    units: Tuple[int, ...]


def slot_units(data, off: int = 0) -> Tuple[int, ...]:
    """The 13 UTF-16 units of the long-name slot at ``off``."""
    return (struct.unpack_from("<5H", data, off + 1) + struct.unpack_from("<6H", data, off + 14)
            + struct.unpack_from("<2H", data, off + 28))


def parse_lfn_slot(raw: bytes) -> LfnSlot:
    """Decode a 32-byte LFN slot (the caller has checked ``DIR_Attr`` is 0x0F)."""
    order = raw[0]
    return LfnSlot(order & 0x3F, bool(order & LAST_LONG_ENTRY), raw[13], slot_units(raw))


def lfn_name(units: Iterable[int], errors: str = "replace") -> str:
    """The name held by the units of a slot sequence (in name order): up to the first 0x0000."""
    out = []
    for u in units:
        if u == 0:
            break
        out.append(u)
    return b"".join(u.to_bytes(2, "little") for u in out).decode("utf-16-le", errors)


def long_name(units: Tuple[int, ...]) -> Optional[str]:
    """The name held by ``units`` (up to 0x0000), or None when empty or not valid UTF-16."""
    try:
        end = units.index(0)
    except ValueError:
        end = len(units)
    if end == 0:
        return None
    try:
        return struct.pack(f"<{end}H", *units[:end]).decode("utf-16-le")
    except UnicodeDecodeError:
        return None
