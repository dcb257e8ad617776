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


# -- allocation tables (numpy, whole arrays at once) ------------------------------------

def table_encode(entries, fat_type: int) -> bytes:
    """Pack table entries into on-disk bytes (FAT12: two 12-bit entries in 3 bytes)."""
    import numpy as np
    a = np.asarray(entries, dtype=np.uint32)
    if fat_type == 16:
        return a.astype("<u2").tobytes()
    if fat_type == 32:
        return a.astype("<u4").tobytes()
    if fat_type != 12:
        raise ValueError(f"FAT type must be 12, 16 or 32, not {fat_type!r}")
    n = len(a)
    if n % 2:
        a = np.append(a, np.uint32(0))
    lo, hi = a[0::2] & 0xFFF, a[1::2] & 0xFFF
    out = np.empty((len(lo), 3), dtype=np.uint8)
    out[:, 0] = lo & 0xFF
    out[:, 1] = (lo >> 8) | ((hi & 0xF) << 4)
    out[:, 2] = hi >> 4
    return out.tobytes()[:(n * 12 + 7) // 8]


def table_decode(data, fat_type: int, count: Optional[int] = None, *, mask: bool = True):
    """Unpack table bytes into a numpy ``uint32`` array of ``count`` entries (default: all
    that fit); FAT32 entries masked to 28 bits unless ``mask=False``."""
    import numpy as np
    buf = np.frombuffer(data, dtype=np.uint8)
    if fat_type == 16:
        n = len(buf) // 2 if count is None else count
        out = buf[:n * 2].view("<u2").astype(np.uint32)
    elif fat_type == 32:
        n = len(buf) // 4 if count is None else count
        out = buf[:n * 4].view("<u4").astype(np.uint32)
        if mask:
            out &= 0x0FFFFFFF
    elif fat_type == 12:
        n = len(buf) * 2 // 3 if count is None else count
        b = buf[:(n * 12 + 7) // 8]
        if len(b) % 3:
            b = np.concatenate([b, np.zeros(3 - len(b) % 3, dtype=np.uint8)])
        b = b.reshape(-1, 3).astype(np.uint32)
        out = np.empty(len(b) * 2, dtype=np.uint32)
        out[0::2] = b[:, 0] | ((b[:, 1] & 0xF) << 8)
        out[1::2] = (b[:, 1] >> 4) | (b[:, 2] << 4)
        out = out[:n]
    else:
        raise ValueError(f"FAT type must be 12, 16 or 32, not {fat_type!r}")
    if len(out) < n:
        raise ValueError(f"{len(data)} bytes hold fewer than {n} FAT{fat_type} entries")
    return out


def run_entries(rt, start: int, stop: int):
    """The entries of a ``table.RunTable`` for clusters ``[start, stop)``, from its
    definition: each used cluster points at the next, run ends and cluster 1 hold the
    end-of-chain mark, cluster 0 the media entry, unused clusters 0."""
    import numpy as np
    from blockimg.fat.table import EOC, media_entry
    idx = np.arange(start, stop, dtype=np.int64)
    vals = idx + 1
    ends = np.asarray([e for e in rt.run_ends if start <= e < stop], dtype=np.int64)
    vals[ends - start] = EOC[rt.fat_type]
    vals[idx >= rt.used_end] = 0
    if start <= 0 < stop:
        vals[0 - start] = media_entry(rt.fat_type, rt.media)
    if start <= 1 < stop:
        vals[1 - start] = EOC[rt.fat_type]
    return vals.astype(np.uint32)


def run_table_bytes(rt) -> bytes:
    """The whole table of a ``table.RunTable``: its entries packed, zero padded to its size."""
    data = table_encode(run_entries(rt, 0, rt.cluster_count + 2), rt.fat_type)
    return data + bytes(rt.size - len(data))


# -- boot sector and FSInfo through the construct declarations -------------------------

def boot_sector_construct(plan) -> bytes:
    """``writer.boot_sector`` built by the construct declaration (imports construct)."""
    from blockimg.fat.writer import boot_values
    from helpers import fat_construct
    decl = fat_construct.BootSector32 if plan.geometry.fat_type == 32 else \
        fat_construct.BootSector16
    raw = decl.build(boot_values(plan))
    return raw + bytes(plan.geometry.sector_size - len(raw))


def fsinfo_sector_construct(plan) -> bytes:
    """``writer.fsinfo_sector`` built by the construct declaration (imports construct)."""
    from blockimg.fat.writer import fsinfo_values
    from helpers import fat_construct
    raw = fat_construct.FSInfo.build(fsinfo_values(plan))
    return raw + bytes(plan.sector_size - len(raw))


# -- named entries the plain way (the planner makes them without __init__) --------------

def make_named(name: str, short: bytes, *, attr: int, mtime: int, size: int,
               always_terminate: bool, source=None, lfn: Optional[bool] = None):
    """A ``directory.NamedEntry`` through its constructor; ``lfn``: whether the name gets
    LFN slots (every name that is not an all-upper-case legal 8.3 name, when None)."""
    from blockimg.fat.directory import NamedEntry
    from blockimg.fat.names import is_short_name, lfn_bytes
    if lfn is None:
        lfn = not is_short_name(name)
    slots = [lfn_bytes(name, short, always_terminate)] if lfn else []
    return NamedEntry(name, short, slots, attr, mtime, size, source)
