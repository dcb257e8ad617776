"""Tar images whose one file has a name of many components (issue 11, bug 2): shared by
tests/unit/test_reader_bound.py and the benchmark rows in tests/bench/test_bench_deep_paths.py."""
from __future__ import annotations

__all__ = ["deep_tar", "member"]


def _octal(n: int, width: int) -> bytes:
    return (b"%0*o" % (width - 1, n)) + b"\0"


def _header(name: bytes, size: int = 0, typeflag: bytes = b"0") -> bytes:
    h = bytearray(512)
    h[0:100] = name[:100].ljust(100, b"\0")
    h[100:108] = _octal(0o644, 8)
    h[108:116] = h[116:124] = _octal(0, 8)
    h[124:136] = _octal(size, 12)
    h[136:148] = _octal(1_700_000_000, 12)
    h[156:157] = typeflag
    h[257:265] = b"ustar\x0000"
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def member(name: bytes, data: bytes = b"", typeflag: bytes = b"0") -> bytes:
    return _header(name, len(data), typeflag) + data + bytes(-len(data) % 512)


def _pax_record(key: bytes, value: bytes) -> bytes:
    body = b" " + key + b"=" + value + b"\n"
    n = len(body) + 1
    while len(str(n)) + len(body) != n:
        n += 1
    return str(n).encode() + body


def deep_tar(components: int, how: str = "pax") -> bytes:
    """One file whose name is ``"d/" * components + "f"`` (pax ``path`` or GNU ``L``)."""
    name = b"d/" * components + b"f"
    if how == "pax":
        head = member(b"PaxHeaders/f", _pax_record(b"path", name), b"x")
    else:
        head = member(b"././@LongLink", name + b"\0", b"L")
    return head + member(b"f", b"data") + bytes(1024)
