"""Property (issue 11): over alias-shaped names, no short name equals another entry's name.

Names like ``abcdef~N.ext`` (any case, files and directories) beside many
siblings sharing a long prefix, so generated tails reach two digits. In every
directory of the plan, no short name equals another entry's short name or the
upper-case form of another entry's name, and a name that is 8.3 in any case
keeps its own upper-case form. Written images are read by name with mtools
(``mtype`` each file, ``mdir`` each directory) and the rule is checked again
on what ``mdir`` lists.
"""
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from blockimg.fat import Options, plan
from blockimg.fat.names import fold, is_short_name
from blockimg.sources.directory import Kind, SourceEntry, SourceTree, sort_key, walk

from conftest import require_tool
from helpers.fat_alias import (MTIME, alias_names, alias_rule_violations, alias_trees,
                               files_and_dirs, materialise, mdir_entries, mtools_read_by_name)
from helpers.fat_readback import build_image, verify

#: ~15 by default; the "thorough" hypothesis profile (tests/conftest.py) runs more.
EXAMPLES = 15 if settings.default.max_examples <= 25 else settings.default.max_examples


def _source(tree) -> SourceTree:
    files, dirs = files_and_dirs(tree)
    entries = [SourceEntry(d, Kind.DIR, 0, MTIME, 0o755) for d in dirs]
    entries += [SourceEntry(p, Kind.FILE, len(b), MTIME, 0o644, data=b) for p, b in files.items()]
    return SourceTree(tuple(sorted(entries, key=lambda e: sort_key(e.path))))


def _shown(short: bytes) -> str:
    base, ext = short[:8].decode("ascii").rstrip(), short[8:].decode("ascii").rstrip()
    return f"{base}.{ext}" if ext else base


def _rule_broken(children) -> list:
    """Entries whose short name equals another's short name or upper-cased name."""
    bad = []
    for c in children:
        own = _shown(c.short)
        upper = c.name.upper()
        if upper.isascii() and is_short_name(upper):
            if own != upper:
                bad.append(f"{c.name!r} is 8.3 but got {own}")
        for o in children:
            if o is not c and own in (_shown(o.short), fold(o.name)):
                bad.append(f"{own} of {c.name!r} equals {o.name!r} ({_shown(o.short)})")
    return bad


@settings(max_examples=max(EXAMPLES, 60))
@given(st.lists(alias_names(), min_size=1, max_size=3), st.sampled_from(["mirage", "generic"]))
def test_planned_short_names_never_equal_another_name(dirs, target):
    tree = {}
    for i, names in enumerate(dirs):
        prefix = f"d{i}/" if i else ""
        for n in names:
            tree[prefix + n] = b"x"
    p = plan(_source(tree), Options(target=target))
    for d in (p.root,) + tuple(p.dirs):
        assert _rule_broken(d.children) == [], d.path


@settings(max_examples=EXAMPLES)
@given(alias_trees(), st.sampled_from([dict(), dict(sector_size=512, align=512),
                                       dict(target="generic", sector_size=512),
                                       dict(target="generic", sector_size=4096)]))
def test_mtools_reads_alias_shaped_trees_by_name(tree, opts):
    mtype, mdir = require_tool("mtype"), require_tool("mdir")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = materialise(tree, tmp / "src")
        img = tmp / "fat.img"
        build_image(walk(src), img, **opts)
        verify(img, src, tmp, mirage=opts.get("target", "mirage") == "mirage")
        assert mtools_read_by_name(mtype, mdir, img, tree) == []
        assert alias_rule_violations(mdir_entries(mdir, img)) == []
