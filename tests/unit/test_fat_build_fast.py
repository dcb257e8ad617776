"""FAT build fast paths checked against the general code they replace.

* ``layout._name_children`` (names checked a directory at a time, short names
  and LFN slots in bulk) against ``_name_children_general`` (below);
* ``names.lfn_bytes`` / ``lfn_bytes_many`` / ``lfn_checksums`` against
  ``build_lfn`` / ``lfn_checksum`` (and the unrolled checksum against the loop);
* ``directory.children_bytes`` against ``NamedEntry.to_bytes``;
* whole plans (directory bytes, placement) with the general naming patched in;
* the writer's file records (``Copier.put_records``) against put_file + zero,
  and source changes during the build still detected and named.
"""
import os
import random

import pytest

from helpers import fat_reference as ref

from blockimg.block.file import FileDevice
from blockimg.write.copier import Copier
from blockimg.errors import InvalidInput, SourceChanged
from blockimg.fat import Options, layout, names, plan, write
from blockimg.fat.directory import NamedEntry, children_bytes, file_attr
from blockimg.sources.directory import Kind, SourceEntry, walk

ALPHABET = "abcXYZ0129 .-_~$%'@!(){}^#&`é中\U0001F600*?:\x01"


def _own_short(name):
    """The short name a name that is 8.3 in any case keeps: its upper-case form (or None)."""
    upper = name.upper()
    if name.isascii() and names.is_short_name(upper):
        return names.short_name_bytes(upper)
    return None


def _name_children_general(dir_path, entries, opts, keys=None):
    """``layout._name_children`` through the general functions only (the reference;
    ``keys``, the checked names the planner passes, are checked again here).

    Every name that is 8.3 in any case keeps its upper-case form, reserved before
    any other name gets an alias."""
    given = [e.name for e in entries]
    mirage = opts.mirage
    layout._checked_keys(entries, given, mirage)
    short_ok = [names.is_short_name(n) for n in given]
    own = [_own_short(n) for n in given]
    gen = names.ShortNames(s for s in own if s is not None)
    out = []
    DIR = Kind.DIR
    for e, name, ok, mine in zip(entries, given, short_ok, own):
        short = mine if mine is not None else gen.generate(name)
        is_dir = e.kind is DIR
        out.append(ref.make_named(name, short, attr=file_attr(e.mode, is_dir),
                                  mtime=e.mtime, size=0 if is_dir else e.size,
                                  always_terminate=mirage, source=e, lfn=not ok))
    return out


def _outcome(fn, *args, **kw):
    try:
        return ("ok", fn(*args, **kw))
    except (InvalidInput, ValueError) as e:
        return (type(e).__name__, str(e), getattr(e, "path", None))


def _named_tuple(n):
    return (n.name, n.short, n.lfn_bytes, n.attr, n.mtime, n.size, n.cluster, n.source)


def _entries(dir_path, leaf_names, rnd):
    out = []
    for name in leaf_names:
        path = f"{dir_path}/{name}" if dir_path else name
        kind = Kind.DIR if rnd.random() < 0.2 else Kind.FILE
        mode = rnd.choice([0o644, 0o444, 0o755, 0o555])
        out.append(SourceEntry(path, kind, 0 if kind is Kind.DIR else rnd.randrange(5000),
                               rnd.choice([315_532_800, 1_600_000_000]), mode,
                               source=None if kind is Kind.DIR else "/nonexistent"))
    return out


def _random_names(rnd, count, alphabet):
    pool = ["README", "FAT.ML", "Makefile", "index.html", "INDEX.HTML", "a.b.c", "x" * 255,
            "LONG FILENAME.TXT", "file-number-00001.bin", "f00001.dat", "F00001.DAT",
            ".hidden", "trailing.", "trailing ", "ABCDEFGH.TXT", "abcdefgh.txt",
            "ABCDEFGHI.TXT", "A.B", "a+b.txt", "\u00e9t\u00e9.txt", "\U0001F600.txt"]
    out = []
    for _ in range(count):
        if rnd.random() < 0.25:
            out.append(rnd.choice(pool))
        elif rnd.random() < 0.5:
            out.append(f"f{rnd.randrange(100000):05d}.{rnd.choice(['dat', 'DAT', 'Dat', 'txt'])}")
        else:
            n = rnd.choice([1, 3, 8, 12, 13, 14, 25, 26, 27, 40])
            out.append("".join(rnd.choice(alphabet) for _ in range(n)))
    return out


@pytest.mark.parametrize("seed", range(60))
@pytest.mark.parametrize("mirage", [False, True])
def test_name_children_matches_general(seed, mirage):
    rnd = random.Random(seed)
    alphabet = ALPHABET if seed % 3 == 0 else ALPHABET[:-4] if seed % 3 == 1 else "abcxyz01.-"
    count = rnd.choice([1, 5, 30, 200])
    leaf = _random_names(rnd, count, alphabet)
    if seed % 4 != 0:   # mostly valid, collision-free directories
        seen, clean = set(), []
        for n in leaf:
            if names.fold(n) in seen or _outcome(names.check_name, n, path=n,
                                                 mirage=mirage)[0] != "ok":
                continue
            seen.add(names.fold(n))
            clean.append(n)
        leaf = clean or ["a"]
    dir_path = rnd.choice(["", "d", "d/sub dir"])
    entries = _entries(dir_path, leaf, rnd)
    opts = Options(target="mirage" if mirage else "generic")
    fast = _outcome(layout._name_children, dir_path, entries, opts)
    general = _outcome(_name_children_general, dir_path, entries, opts)
    if fast[0] == "ok":
        assert general[0] == "ok", general
        assert [_named_tuple(n) for n in fast[1]] == [_named_tuple(n) for n in general[1]]
    else:
        assert fast == general


def test_name_children_many_tails():
    # Thousands of names with the same basis: numeric tails, then the hash form.
    leaf = [f"same prefix name {i}.txt" for i in range(1200)] + ["SAMEPR~1.TXT", "samepr~2.txt"]
    entries = _entries("d", leaf, random.Random(1))
    for target in ("mirage", "generic"):
        opts = Options(target=target)
        fast = layout._name_children("d", entries, opts)
        general = _name_children_general("d", entries, opts)
        assert [_named_tuple(n) for n in fast] == [_named_tuple(n) for n in general]


@pytest.mark.parametrize("leaf, message", [
    (["a.txt", "A.TXT"], "differ only in case"),
    (["x", "b<c"], "FAT names cannot hold"),
    (["ok.txt", "bad."], "ends with a dot"),
    (["x" * 256], "UTF-16 units"),
    (["ctl\x01"], "control character"),
])
def test_name_children_errors_unchanged(leaf, message):
    entries = _entries("d", leaf, random.Random(2))
    for target in ("mirage", "generic"):
        fast = _outcome(layout._name_children, "d", entries, Options(target=target))
        assert fast == _outcome(_name_children_general, "d", entries,
                                Options(target=target))
        assert fast[0] == "InvalidInput" and message in fast[1]


def test_mirage_upper_case_rule_unchanged():
    entries = _entries("", ["A B.TXT", "ok.txt"], random.Random(3))
    fast = _outcome(layout._name_children, "", entries, Options())
    assert fast == _outcome(_name_children_general, "", entries, Options())
    assert fast[0] == "InvalidInput" and "Mirage" in fast[1]


def test_lfn_checksum_unrolled_and_bulk():
    rnd = random.Random(4)
    for n in (0, 1, 15, 16, 17, 200):
        raw = bytes(rnd.randrange(256) for _ in range(11 * n))
        each = [raw[i:i + 11] for i in range(0, len(raw), 11)]
        expect = [ref.lfn_checksum(s) for s in each]
        assert [names.lfn_checksum(s) for s in each] == expect
        assert list(names.lfn_checksums(raw)) == expect
    assert names.lfn_checksum(b"ABC") == ref.lfn_checksum(b"ABC")
    with pytest.raises(ValueError):
        names.lfn_checksums(b"x" * 12)


@pytest.mark.parametrize("seed", range(30))
def test_lfn_bytes_many_matches_build_lfn(seed):
    rnd = random.Random(seed)
    alphabet = "abcXYZ0129 .-_~é中" + ("\U0001F600" if seed % 3 == 0 else "")
    m = rnd.choice([1, 5, 8, 30, 100])
    top = rnd.choice([3, 12, 13, 14, 25, 26, 27, 40, 100, 255])
    leaf = ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, top))) for _ in range(m)]
    shorts = [bytes(rnd.randrange(256) for _ in range(11)) for _ in range(m)]
    for term in (False, True):
        expect = _outcome(lambda: [b"".join(ref.build_lfn(n, s, always_terminate=term))
                                   for n, s in zip(leaf, shorts)])
        assert _outcome(names.lfn_bytes_many, leaf, shorts, term) == expect
        if expect[0] == "ok":
            assert [names.lfn_bytes(n, s, term) for n, s in zip(leaf, shorts)] == expect[1]


def test_children_bytes():
    rnd = random.Random(5)
    children = []
    for i in range(300):
        src = SourceEntry(f"d/n{i}", Kind.FILE, rnd.randrange(1 << 32), rnd.choice(
            [0, 315_532_800, 1_600_000_001, 4_000_000_000]), 0o644, source="/x")
        lfn = ref.build_lfn(src.name, b"N%-10d" % i, always_terminate=False)
        a = NamedEntry(src.name, b"N%-10d" % i, lfn, 0x20, src.mtime, src.size, src)
        a.cluster = rnd.choice([0, 2, 65535, 65536, 0x0FFFFFF5])
        children.append(a)
    odd = NamedEntry("odd", b"ODD", [], 0x20, 0, 0)      # padded by the struct
    children.append(odd)
    assert b"".join(children_bytes(children)) == b"".join(c.to_bytes() for c in children)


def _plan_with_general_names(monkeypatch, tree, opts):
    with monkeypatch.context() as m:
        m.setattr(layout, "_name_children", _name_children_general)
        return plan(tree, opts)


@pytest.mark.parametrize("opts", [Options(), Options(target="generic"),
                                  Options(target="generic", fat_type=32),
                                  Options(target="generic", label="LBL")])
def test_plan_matches_general_naming(monkeypatch, tmp_path, opts):
    rnd = random.Random(6)
    for d in range(5):
        sub = tmp_path / f"dir {d}" / ("nested" if d % 2 else "n")
        sub.mkdir(parents=True)
        for i in range(rnd.randrange(40)):
            choices = [f"f{i:05d}.dat", f"a long file name {i}.html", f"UP{i}.TXT"]
            if not opts.mirage:      # Mirage names are ASCII
                choices.append(f"\u00e9l\u00e8ve {i}.txt")
            name = rnd.choice(choices)
            (sub / name).write_bytes(os.urandom(rnd.randrange(9000)))
    tree = walk(str(tmp_path))
    fast = plan(tree, opts)
    general = _plan_with_general_names(monkeypatch, tree, opts)
    assert fast.geometry == general.geometry
    assert [(d.path, d.first_cluster, d.clusters, d.data) for d in fast.dirs] == \
        [(d.path, d.first_cluster, d.clusters, d.data) for d in general.dirs]
    assert fast.root.data == general.root.data
    assert fast.files == general.files
    assert (fast.used_end, fast.run_ends) == (general.used_end, general.run_ends)


def _write_reference(p, dev):
    """The writer's file loop before Copier.put_records: put_file, then zero the slack."""
    g = p.geometry
    cp = Copier(dev)
    for f in p.files:
        if not f.clusters:
            cp.put_file(f.entry, 0)
            continue
        off = g.cluster_offset(f.first_cluster)
        cp.put_file(f.entry, off)
        cp.zero(off + f.entry.size, f.clusters * g.cluster_size - f.entry.size)
    cp.flush()


def _image(tmp_path, name, size):
    path = tmp_path / name
    with open(path, "wb") as fh:
        fh.truncate(size)
    return FileDevice(str(path), writable=True)


def test_file_records_match_put_file(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    rnd = random.Random(7)
    for i in range(60):
        (src / f"f{i}").write_bytes(os.urandom(rnd.choice([0, 1, 511, 4096, 4097, 70000,
                                                           300_000])))
    p = plan(walk(str(src)), Options(target="generic"))
    dev = _image(tmp_path, "a.img", p.image_size)
    write(p, dev)
    dev.close()
    ref = _image(tmp_path, "b.img", p.image_size)
    _write_reference(p, ref)
    ref.close()
    a, b = (tmp_path / "a.img").read_bytes(), (tmp_path / "b.img").read_bytes()
    for f in p.files:
        if f.clusters:
            off = p.geometry.cluster_offset(f.first_cluster)
            n = f.clusters * p.cluster_size
            assert a[off:off + n] == b[off:off + n], f.entry.path


@pytest.mark.parametrize("change", ["grow", "shrink", "vanish"])
def test_source_change_named(tmp_path, change):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(20):
        (src / f"f{i:02d}.txt").write_bytes(b"x" * 3000)
    p = plan(walk(str(src)), Options())
    victim = src / "f10.txt"
    if change == "grow":
        victim.write_bytes(b"x" * 3001)
    elif change == "shrink":
        victim.write_bytes(b"x" * 10)
    else:
        victim.unlink()
    dev = _image(tmp_path, "c.img", p.image_size)
    with pytest.raises(SourceChanged) as info:
        write(p, dev)
    dev.close()
    assert "f10.txt" in str(info.value.path)
