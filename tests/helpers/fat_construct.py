"""The FAT structures as construct declarations, made from ``blockimg.fat.structs.LAYOUTS``.

The library packs and unpacks with :mod:`struct` (formats from the same
table); the tests hold those bytes equal to what these declarations build
and parse, an independent codec of the same field table.
"""
from construct import Bytes, Int8ul, Int16ul, Int32ul, Struct

from blockimg.fat.structs import LAYOUTS, SIZES

__all__ = ["DECLARATIONS", "BPB", "EBPB", "BPB32", "BootSector16", "BootSector32", "FSInfo",
           "DirEntry", "LfnEntry"]

_INTS = {"B": Int8ul, "H": Int16ul, "I": Int32ul}


def _declare() -> dict:
    out = {}
    for name, fields in LAYOUTS.items():        # nested layouts come before their users
        out[name] = Struct(*[
            field / (out[code] if code in LAYOUTS else _INTS.get(code) or Bytes(int(code[:-1])))
            for field, code in fields])
    for name, st in out.items():
        assert st.sizeof() == SIZES[name], (name, st.sizeof())
    return out


#: Every layout's declaration, by name.
DECLARATIONS = _declare()
BPB = DECLARATIONS["BPB"]
EBPB = DECLARATIONS["EBPB"]
BPB32 = DECLARATIONS["BPB32"]
BootSector16 = DECLARATIONS["BootSector16"]
BootSector32 = DECLARATIONS["BootSector32"]
FSInfo = DECLARATIONS["FSInfo"]
DirEntry = DECLARATIONS["DirEntry"]
LfnEntry = DECLARATIONS["LfnEntry"]
assert set(DECLARATIONS) == set(__all__) - {"DECLARATIONS"}
