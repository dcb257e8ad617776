"""Property: the library's FAT name and directory codecs equal the plain reference forms
kept in tests/helpers/fat_reference.py (one implementation in the library, one here)."""
from hypothesis import given, settings
from hypothesis import strategies as st

from blockimg.fat import names
from blockimg.fat.dirents import parse_directory
from blockimg.fat.directory import pack_entry
from helpers import fat_reference as ref

ALPHABET = st.sampled_from(list("abcXYZ019 .-_~+,;=[]()!#{}'$%@") + ["é", "Ω", "日",
                                                                     "\U0001F600"])
NAMES = st.text(ALPHABET, min_size=1, max_size=270)
SHORT = st.binary(min_size=11, max_size=11)


def _outcome(f, *args, **kw):
    try:
        return ("ok", f(*args, **kw))
    except ValueError as e:
        return ("ValueError", str(e))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(NAMES, SHORT), min_size=1, max_size=40), st.booleans())
def test_lfn_encoders_equal_reference(pairs, term):
    want = [_outcome(lambda n=n, s=s: b"".join(ref.build_lfn(n, s, always_terminate=term)))
            for n, s in pairs]
    assert [_outcome(names.lfn_bytes, n, s, term) for n, s in pairs] == want
    if all(w[0] == "ok" for w in want):
        got = names.lfn_bytes_many([n for n, _ in pairs], [s for _, s in pairs], term)
        assert got == [w[1] for w in want]
        shorts = b"".join(s for _, s in pairs)
        assert list(names.lfn_checksums(shorts)) == [ref.lfn_checksum(s) for _, s in pairs]


@settings(max_examples=300, deadline=None)
@given(SHORT, st.text(ALPHABET, max_size=13))
def test_short_name_rules_equal_reference(short, name):
    assert names.lfn_checksum(short) == ref.lfn_checksum(short)
    assert names.is_short_name(name) == ref.is_short_name(name)
    assert names.is_short_name(name.upper()) == ref.is_short_name(name.upper())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(NAMES.filter(lambda n: len(n) <= 200), st.booleans()), max_size=20))
def test_directory_decoder_equals_reference(entries):
    """parse_directory reads back each long name as the reference decoder does."""
    data = b""
    for i, (name, term) in enumerate(entries):
        short = b"N%-10d" % i
        data += names.lfn_bytes(name, short, term) + pack_entry(short, 0x20, 0, 0, 0)
    recs, issues = parse_directory(data, fat32=False)
    assert issues == []
    for rec, (name, _) in zip(recs, entries):
        assert rec.name == name == ref.long_name(rec.lfn_units)
