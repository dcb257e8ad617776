"""Property: short names never collide in a directory; long names round-trip."""
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from blockimg.errors import InvalidInput
from blockimg.fat.names import (SHORT_CHARS, ShortNames, check_name, fold, is_short_name,
                                lfn_checksum, short_name_bytes)
from helpers.fat_reference import build_lfn, lfn_name, parse_lfn_slot

ALPHABET = st.sampled_from(list("abcXYZ019 .-_~+,;=[]()!#{}'") + ["é", "Ω", "日", "\U0001F600"])
NAME = st.text(ALPHABET, min_size=1, max_size=40)

#: ~15 by default; the "thorough" hypothesis profile (tests/conftest.py) runs more.
EXAMPLES = 15 if settings.default.max_examples <= 25 else settings.default.max_examples


def valid(name: str) -> bool:
    try:
        check_name(name, path=name, mirage=False)
    except InvalidInput:
        return False
    return True


def assign(names, **kw):
    gen = ShortNames(**kw)
    for n in names:
        if is_short_name(n):
            gen.reserve(short_name_bytes(n))
    return [short_name_bytes(n) if is_short_name(n) else gen.generate(n) for n in names]


@settings(max_examples=EXAMPLES)
@given(st.lists(NAME, min_size=1, max_size=60), st.sampled_from([999999, 3]))
def test_short_names_unique_and_legal(names, max_numeric):
    names = [n for n in names if valid(n)]
    folded = {}
    for n in names:
        folded.setdefault(fold(n), n)
    names = list(folded.values())
    assume(names)
    shorts = assign(names, max_numeric=max_numeric)
    assert len(set(shorts)) == len(shorts)
    for s in shorts:
        assert len(s) == 11 and s[0:1] != b" "
        base, ext = s[:8].decode("ascii"), s[8:].decode("ascii")
        assert base.rstrip(" ") == base.rstrip(" ").replace(" ", "")
        assert ext.rstrip(" ") == ext.rstrip(" ").replace(" ", "")
        assert all(c in SHORT_CHARS for c in (base + ext).replace(" ", ""))
    assert assign(names, max_numeric=max_numeric) == shorts          # deterministic


@settings(max_examples=EXAMPLES)
@given(NAME, st.booleans())
def test_lfn_round_trip(name, always):
    assume(valid(name))
    short = b"SHORT~1 TXT"
    slots = build_lfn(name, short, always_terminate=always)
    parsed = [parse_lfn_slot(s) for s in slots]
    assert [p.order for p in parsed] == list(range(len(slots), 0, -1))
    assert parsed[0].last and all(p.checksum == lfn_checksum(short) for p in parsed)
    units = [u for p in reversed(parsed) for u in p.units]
    assert lfn_name(units, errors="strict") == name
    n = len(name.encode("utf-16-le")) // 2
    if always or n % 13:
        assert units[n] == 0 and set(units[n + 1:]) <= {0xFFFF}
