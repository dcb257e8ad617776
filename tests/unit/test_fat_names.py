"""FAT names: checksums, 8.3 parsing, LFN slots, short-name generation, refusals."""
import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import fat_reference as ref

from blockimg.errors import InvalidInput
from blockimg.fat import names as n
from blockimg.fat.mirage import short_lookup
from blockimg.fat.structs import ATTR_LONG_NAME, NT_LOWER_BASE, NT_LOWER_EXT


@pytest.mark.parametrize("short,value", [(b"MAKEFILE   ", 193), (b"FAT     ML ", 223),
                                         (b"LOWER   TXT", 252)])
def test_lfn_checksum(short, value):
    assert n.lfn_checksum(short) == value


def test_short_name_bytes():
    assert n.short_name_bytes("MAKEFILE") == b"MAKEFILE   "
    assert n.short_name_bytes("FAT.ML") == b"FAT     ML "
    with pytest.raises(ValueError):
        n.short_name_bytes("TOOLONGNAME")


@pytest.mark.parametrize("name,ok", [("README", True), ("FAT.ML", True), ("A.B", True),
                                     ("MAKEFILE.TXT", True), ("LONGNAME1", False),
                                     ("readme", False), ("ReadMe.TXT", False),
                                     ("A.TOOL", False), ("A.B.C", False), (".HIDDEN", False),
                                     ("A B", False), ("A+B", False), ("É.TXT", False),
                                     ("~$!.{}", True), ("", False), ("A.", False)])
def test_is_short_name(name, ok):
    assert n.is_short_name(name) is ok


def test_parse_short():
    assert n.parse_short(b"README  TXT") == "README.TXT"
    assert n.parse_short(b"MAKEFILE   ") == "MAKEFILE"
    assert n.parse_short(b"\x05BC     TXT") == "\u03c3BC.TXT"   # 0x05 stands for 0xE5 (cp437 sigma)
    assert n.parse_short(b"INDEX   TXT", NT_LOWER_BASE | NT_LOWER_EXT) == "index.txt"
    assert n.parse_short(b"INDEX   TXT", NT_LOWER_EXT) == "INDEX.txt"


def units_of(slots):
    """Units in name order from on-disk slots."""
    parsed = [ref.parse_lfn_slot(s) for s in slots]
    assert [p.order for p in parsed] == list(range(len(slots), 0, -1))
    assert parsed[0].last and not any(p.last for p in parsed[1:])
    out = []
    for p in reversed(parsed):
        out.extend(p.units)
    return out, parsed


@pytest.mark.parametrize("length,mirage_slots,std_slots", [
    (1, 1, 1), (12, 1, 1), (13, 2, 1), (14, 2, 2), (25, 2, 2), (26, 3, 2), (27, 3, 3),
    (39, 4, 3), (255, 20, 20)])
def test_slot_counts_and_terminator(length, mirage_slots, std_slots):
    name = ("abcdefghijklmnopqrstuvwxyz" * 10)[:length]
    short = b"ABCDEF~1   "
    m = ref.build_lfn(name, short, always_terminate=True)
    s = ref.build_lfn(name, short, always_terminate=False)
    assert (len(m), len(s)) == (mirage_slots, std_slots)
    for slots, term in ((m, True), (s, length % 13 != 0)):
        units, parsed = units_of(slots)
        assert units[:length] == [ord(c) for c in name]
        if term:
            assert units[length] == 0
            assert all(u == 0xFFFF for u in units[length + 1:])   # 0xFFFF padding
        else:
            assert len(units) == length
        assert ref.lfn_name(units) == name
        assert all(p.checksum == n.lfn_checksum(short) for p in parsed)
        for raw in slots:
            assert raw[11] == ATTR_LONG_NAME and raw[12] == 0 and raw[26:28] == b"\0\0"


def test_lfn_surrogate_pairs():
    name = "emoji-\U0001F600.txt"
    units = ref.utf16_units(name)
    assert len(units) == len(name) + 1 and 0xD800 <= units[6] <= 0xDBFF
    slots = ref.build_lfn(name, b"EMOJI-~1TXT", always_terminate=False)
    got, _ = units_of(slots)
    assert ref.lfn_name(got) == name


def test_lfn_exact_bytes_mirage_13():
    slots = ref.build_lfn("manifest.json", b"MANIFE~1JSO", always_terminate=True)
    assert len(slots) == 2
    assert slots[0][0] == 0x42 and slots[1][0] == 0x01
    # Second slot: the terminator then 12 units of 0xFFFF.
    tail = slots[0]
    assert tail[1:3] == b"\0\0" and tail[3:11] == b"\xff" * 8
    assert tail[14:26] == b"\xff" * 12 and tail[28:32] == b"\xff" * 4


def gen_all(names, **kw):
    g = n.ShortNames(**kw)
    for name in names:
        if n.is_short_name(name):
            g.reserve(n.short_name_bytes(name))
    return {name: g.generate(name) for name in names if not n.is_short_name(name)}


def test_generation_windows_examples():
    got = gen_all(["longname.html", "longname2.html", "readme.txt", "Mixed.Case",
                   ".bashrc", "a+b=c.txt", "archive.tar.gz", "My Document.docx"])
    assert got["longname.html"] == b"LONGNA~1HTM"
    assert got["longname2.html"] == b"LONGNA~2HTM"
    assert got["readme.txt"] == b"README  TXT"        # fits 8.3 once upper-cased: no tail
    assert got["Mixed.Case"] == b"MIXED~1 CAS"
    assert got[".bashrc"] == b"BASHRC~1   "
    assert got["a+b=c.txt"] == b"A_B_C~1 TXT"
    assert got["archive.tar.gz"] == b"ARCHIV~1GZ "
    assert got["My Document.docx"] == b"MYDOCU~1DOC"


def test_generation_avoids_reserved_short_names():
    got = gen_all(["LONGNA~1.HTM", "longname1.htm"])
    assert got["longname1.htm"] == b"LONGNA~2HTM"


def test_generation_many_tails_unique():
    names = [f"verylongname{i}.txt" for i in range(1200)]
    got = gen_all(names)
    assert len(set(got.values())) == len(names)
    assert got["verylongname0.txt"] == b"VERYLO~1TXT"
    assert b"VERY~100TXT" in got.values() and b"VER~1000TXT" in got.values()


def test_generation_hash_form_beyond_numeric_limit():
    names = [f"verylongname{i}.txt" for i in range(30)]
    got = gen_all(names, max_numeric=9)
    assert len(set(got.values())) == 30
    hashed = [v for v in got.values() if b"~" in v and v[:6] != b"VERYLO"]
    assert len(hashed) == 21 and all(v[:2] == b"VE" and v[6:7] == b"~" for v in hashed)
    assert all(all(chr(c) in "0123456789ABCDEF" for c in v[2:6]) for v in hashed)


def test_generation_deterministic():
    names = [f"same prefix {i}" for i in range(50)]
    assert gen_all(names) == gen_all(names)


def test_fold():
    assert n.fold("ReadMe") == n.fold("README") and n.fold("straße") == "STRAßE"


@pytest.mark.parametrize("name,rule", [
    ("a*b", "no * ? < > |"), ("a?b", "no * ? < > |"), ("a<b", "no * ? < > |"),
    ("a|b", "no * ? < > |"), ('a"b', "no * ? < > |"), ("a:b", "no * ? < > |"),
    ("a\\b", "no * ? < > |"), ("a\x01b", "control characters"), ("a\x7fb", "control"),
    ("name.", "trailing dots or spaces"), ("name ", "trailing dots or spaces"),
    ("x" * 256, "255 UTF-16 units"), ("\U0001F600" * 128, "255 UTF-16 units"),
    ("bad\udcff", "Unicode")])
def test_check_name_refusals(name, rule):
    with pytest.raises(InvalidInput) as ei:
        n.check_name(name, path=f"dir/{name}", mirage=False)
    assert rule in str(ei.value) and "dir/" in str(ei.value)


def test_check_name_accepts():
    for name in ["x" * 255, "\U0001F600" * 127 + "a", "héllo wörld.txt", ".hidden", "a b"]:
        n.check_name(name, path=name, mirage=False)


@pytest.mark.parametrize("name", ["héllo.txt", "日本"])
def test_check_name_mirage_ascii_only(name):
    n.check_name(name, path=name, mirage=False)
    with pytest.raises(InvalidInput, match="ASCII"):
        n.check_name(name, path=name, mirage=True)


@pytest.mark.parametrize("name", ["A B", ".HIDDEN", "MY FILE.TXT", "A B.TXT"])
def test_check_name_mirage_ocaml_short_lookup(name):
    assert n.ocaml_fat_reads_as_short(name)
    with pytest.raises(InvalidInput, match="8.3"):
        n.check_name(name, path=name, mirage=True)


def test_ocaml_lookup_agrees_with_short_names():
    for name in ["README", "FAT.ML", "A.B", "~$!.{}"]:
        assert short_lookup(name.encode()) == n.short_name_bytes(name)
    for name in ["readme", "Makefile", "a.b.c", "LONGNAME1", "A.TOOL"]:
        assert short_lookup(name.encode()) is None
        assert not n.ocaml_fat_reads_as_short(name)


_FIRST_CALLS = {
    "is_short_name": "n.is_short_name('README.TXT'), n.is_short_name('a b')",
    "exact_short": "n.exact_short('index.txt'), n.exact_short('a b')",
    "check_name": "n.check_name('ok.txt', path='p', mirage=True)",
    "forbidden_in_joined": "n.forbidden_in_joined('a/b'), n.forbidden_in_joined('a/b?')",
    "ShortNames": "n.ShortNames().generate('my file+.txt'), n.ShortNames().generate('x.y')",
}


@pytest.mark.parametrize("first", sorted(_FIRST_CALLS))
def test_no_entry_point_needs_re(first):
    """The name rules are set and string operations: importing ``re`` would be ~7 ms of
    ``create``'s start-up (issue 16). With ``re`` made unimportable, whichever entry
    point runs first answers as usual."""
    import subprocess
    import sys
    code = ("import sys\nsys.modules['re'] = None\n"     # `import re` now fails
            "from blockimg.fat import names as n\n"
            f"print(repr(({_FIRST_CALLS[first]},)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == repr(eval(f"({_FIRST_CALLS[first]},)"))


_SHORT_CLASS = "[" + re.escape("".join(sorted(n.SHORT_CHARS))) + "]"
_SHORT_CI_CLASS = "[" + re.escape("".join(sorted(n.SHORT_CHARS)) + string.ascii_lowercase) + "]"
#: The rules as regular expressions: the reference the string operations are held to.
_REFERENCE = {
    "is_short_name": re.compile(f"{_SHORT_CLASS}{{1,8}}(?:\\.{_SHORT_CLASS}{{1,3}})?").fullmatch,
    "exact_short": re.compile(f"{_SHORT_CI_CLASS}{{1,8}}(?:\\.{_SHORT_CI_CLASS}{{1,3}})?"
                              ).fullmatch,
    "forbidden_in_joined": re.compile(
        "[\x00-\x1f\x7f" + re.escape(n.FORBIDDEN.replace("/", "")) + "]").search,
}


@given(st.text(st.sampled_from(sorted(set(string.printable) | {"\x00", "\x7f", "\x1f", "é"})),
               max_size=14)
       | st.from_regex(r"[A-Za-z0-9~$_ .-]{1,9}(\.[A-Za-z0-9 .]{0,4})?", fullmatch=True))
def test_name_rules_equal_their_regular_expressions(name):
    """is_short_name, exact_short and forbidden_in_joined (string operations) answer as
    the regular expressions of their rules."""
    assert n.is_short_name(name) == (_REFERENCE["is_short_name"](name) is not None)
    short = n.exact_short(name)
    assert (short is not None) == (_REFERENCE["exact_short"](name) is not None)
    if short is not None:
        base, _, ext = name.upper().partition(".")
        assert short == (base.ljust(8) + ext.ljust(3)).encode("ascii")
    assert n.forbidden_in_joined(name) == \
        (_REFERENCE["forbidden_in_joined"](name) is not None)
    assert n.forbidden_in_joined(f"ok/{name}/x") == n.forbidden_in_joined(name)


@pytest.mark.parametrize("name", ["A B", ".HIDDEN", "MY FILE.TXT", "A..B", "X..Y.Z", ".A.B",
                                  "README", "A.B", "ABCDEFGHI", "A.B.C", "~$!.{}", "A+B"])
def test_mirage_misreads_any_is_check_names_rule(name):
    """The planner's whole-directory test and check_name's per-name rule agree."""
    try:
        n.check_name(name, path=name, mirage=True)
        refused = False
    except InvalidInput as e:
        assert "8.3" in str(e)
        refused = True
    assert n.mirage_misreads_any([name]) == refused
    assert n.mirage_misreads_any(["README", name, "OK.TXT"]) == refused
