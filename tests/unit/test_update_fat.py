"""``blockimg update`` of FAT images in place (issue 14): only what changed is written,
crashes at every write leave an image fsck.fat passes or ``check`` names as interrupted,
and a second update completes it. Every image is read back by fsck.fat, mtools and
pyfatfs and checked against the Mirage rules."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from blockimg import api
from blockimg.block.file import FileDevice
from blockimg.errors import CorruptImage, DoesNotFit
from blockimg.fat.update import plan as plan_update
from blockimg.sources.directory import walk
from blockimg.update import diff_image, update
from blockimg.update import fat as fat_update
from blockimg.update.diff import diff
from conftest import assert_read_back, require_tool, run, tree_snapshot

from helpers.fat_readback import pyfatfs_tree
from helpers.tar_update import PAUSE_AT_FLUSH, T0, apply_round, cli, settle_dirs, write

MTOOLS = dict(os.environ, MTOOLS_SKIP_CHECK="1")


def mtools_tree(image: Path, out: Path) -> dict:
    out.mkdir()
    run(require_tool("mcopy"), "-s", "-n", "-i", image, "::/*", out, env=MTOOLS)
    return tree_snapshot(out)


def assert_exact(image: Path, src: Path, tmp: Path, *, mirage: bool = True) -> None:
    """fsck.fat -n clean, mtools and pyfatfs read ``src`` exactly, check passes (Mirage
    rules for a Mirage image), and a second diff finds nothing."""
    n = len(list(tmp.glob("out*")))
    assert_read_back("fat", image, src, tmp / f"out{n}")
    assert pyfatfs_tree(image) == tree_snapshot(src)
    target = "mirage" if mirage else "generic"
    said = cli("check", "--target", target, image, check=False)
    assert said.returncode == 0, said.stdout + said.stderr
    with api.open(image) as img:
        assert diff_image(img, walk(src)).empty


@pytest.fixture
def site(tmp_path) -> Path:
    src = tmp_path / "src"
    write(src, "index.html", b"<h1>hi</h1>\n")
    write(src, "blog/one.html", b"one" * 1000)
    write(src, "blog/two.html", b"two" * 10)
    write(src, "blog/A long name, kept.html", b"kept" * 300)
    write(src, "img/logo.png", bytes(range(256)) * 40)
    write(src, "img/old/x.txt", b"x" * 9000)
    settle_dirs(src)
    return src


def _add_many(src: Path) -> None:
    for i in range(40):     # 4 slots each: more than a 4 KiB cluster holds
        write(src, f"blog/post number {i:03d} of the year.html", b"p%d" % i)


def _rename(src: Path) -> None:
    (src / "blog/A long name, kept.html").rename(src / "blog/renamed entry.html")


def _kind(src: Path) -> None:
    (src / "blog/two.html").unlink()
    write(src, "blog/two.html/inside.txt", b"now a directory")


SCENARIOS = {
    "change": lambda s: write(s, "blog/one.html", b"changed " * 2000, T0 + 10),
    "add": lambda s: (write(s, "news.html", b"news"), write(s, "new/deep/a.txt", b"a" * 5000)),
    "remove": lambda s: (os.unlink(s / "index.html"), shutil.rmtree(s / "img/old")),
    "rename": _rename,
    "grow": _add_many,
    "kind": _kind,
}


class CutDevice(FileDevice):
    """A file whose writes fail after ``budget`` of them (a pulled plug)."""

    def __init__(self, path, budget: int) -> None:
        super().__init__(str(path), writable=True)
        self.budget = budget
        self.writes = 0
        self.bytes = 0

    def _write_at(self, offset, data):
        if self.writes >= self.budget:
            raise OSError(5, "cut")
        self.writes += 1
        self.bytes += len(data)
        super()._write_at(offset, data)


def test_update_writes_only_the_change_and_reads_back(tmp_path, site):
    image = tmp_path / "site.img"
    cli("create", site, "-o", image, "--format", "fat", "-q")
    before = image.read_bytes()
    write(site, "blog/two.html", b"TWO" * 10, T0 + 2)
    settle_dirs(site)
    said = cli("diff", image, site).stdout.splitlines()
    assert said[0] == "M blog/two.html"
    assert "0 added, 1 changed, 0 removed" in said[1] and "in place: would write" in said[1]
    dev = CutDevice(image, 10 ** 9)
    got = update(image, site, device=dev)
    dev.close()
    after = image.read_bytes()
    changed = [i for i in range(0, len(after), 4096) if after[i:i + 4096] != before[i:i + 4096]]
    # One data cluster, one sector of each FAT copy (chain + clean bit: the same sector),
    # the directory sector: nothing else of the image differs.
    assert len(changed) == 4, changed
    assert got.bytes_written == dev.bytes
    assert got.strategy == "in place"
    assert_exact(image, site, tmp_path)


def short_names(image: Path) -> dict:
    """{path: (short name, directory slot offset)} of every entry."""
    dev = FileDevice(str(image))
    try:
        vol = fat_update.read_volume(dev)
    finally:
        dev.close()
    return {p: (vol.short(e), e.offset) for p, e in vol.entries.items()}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_each_change_reads_back(tmp_path, site, name):
    image = tmp_path / "site.img"
    cli("create", site, "-o", image, "--format", "fat", "-q")
    before = short_names(image)
    SCENARIOS[name](site)
    settle_dirs(site)
    cli("update", image, site, "-q")
    assert_exact(image, site, tmp_path)
    after = short_names(image)
    kept = [p for p in before if p in after]
    assert kept
    # Entries still in the tree keep their short name and their slot.
    assert {p: after[p] for p in kept} == {p: before[p] for p in kept}


def test_alias_clash_renames_the_kept_alias(tmp_path, site):
    write(site, "abcdefghijk.htm", b"kept long")
    settle_dirs(site)
    image = tmp_path / "site.img"
    cli("create", site, "-o", image, "--format", "fat", "-q")
    listing = run(require_tool("mdir"), "-i", image, "::/", env=MTOOLS, text=True).stdout
    assert "ABCDEF~1 HTM" in listing
    write(site, "abcdef~1.htm", b"the 8.3 name")
    settle_dirs(site)
    cli("update", image, site, "-q")
    assert_exact(image, site, tmp_path)
    got = run(require_tool("mtype"), "-i", image, "::/ABCDEF~1.HTM", env=MTOOLS).stdout
    assert got == b"the 8.3 name"


def test_does_not_fit_says_how_much_before_writing(tmp_path, site):
    image = tmp_path / "site.img"
    cli("create", site, "-o", image, "--format", "fat", "-q")
    before = image.read_bytes()
    write(site, "big.bin", os.urandom(20 << 20))
    r = cli("update", image, site, check=False)
    assert r.returncode != 0 and "short by" in r.stderr and "free clusters" in r.stderr
    assert image.read_bytes() == before
    dev = FileDevice(str(image))
    vol = fat_update.read_volume(dev)
    tree = walk(site)
    d = diff(fat_update.index(vol), tree, same_content=lambda i, e: True)
    opts = api.plan(tree, format="fat").plan.options
    with pytest.raises(DoesNotFit) as err:
        plan_update(vol, tree, d, opts)
    dev.close()
    free = vol.geometry.cluster_size * sum(1 for c in range(2, vol.geometry.cluster_count + 2)
                                           if fat_update_get(vol, c) == 0)
    assert err.value.available == free
    assert err.value.needed > free


def test_full_root_directory_is_refused_before_writing(tmp_path, site):
    image = tmp_path / "site.img"
    cli("create", site, "-o", image, "--format", "fat", "-q")
    before = image.read_bytes()
    for i in range(200):            # 3 slots each: more than the 512-entry root holds
        write(site, f"a long file name {i:03d}.txt", b"x")
    r = cli("update", image, site, check=False)
    assert r.returncode != 0 and "root directory cannot hold" in r.stderr, r.stderr
    assert image.read_bytes() == before


def fat_update_get(vol, c):
    from blockimg.fat.update import fat_get
    return fat_get(vol.fat, vol.geometry.fat_type, c)


# -- crashes -------------------------------------------------------------------------

def _fsck_clean(image: Path) -> bool:
    return subprocess.run([require_tool("fsck.fat"), "-n", str(image)],
                          capture_output=True).returncode == 0


@pytest.mark.parametrize("name,target", [(n, "mirage") for n in sorted(SCENARIOS)]
                         + [("add", "generic")])     # generic: FAT12, the boot-sector marker
def test_cut_at_every_write(tmp_path, site, name, target):
    image = tmp_path / "site.img"
    room = ["--free", "256K"] if target == "generic" else []   # generic images are minimal
    cli("create", site, "-o", image, "--format", "fat", "-q", "--target", target, *room)
    base = image.read_bytes()
    old_tree = tree_snapshot(site)
    SCENARIOS[name](site)
    settle_dirs(site)
    new_tree = tree_snapshot(site)
    probe = tmp_path / "probe.img"
    probe.write_bytes(base)
    dev = CutDevice(probe, 10 ** 9)
    update(probe, site, device=dev, target=target)
    total = dev.writes
    dev.close()
    assert total >= 5
    seen = set()
    for n in range(total + 1):
        image.write_bytes(base)
        dev = CutDevice(image, n)
        try:
            update(image, site, device=dev, target=target)
        except OSError:
            pass
        finally:
            dev.close()
        said = cli("check", image, check=False)
        marked = "interrupted 'blockimg update'" in said.stdout + said.stderr
        clean = _fsck_clean(image)
        assert clean or marked, (n, said.stdout)
        if not marked:
            assert clean and said.returncode == 0, (n, said.stdout)
            got = mtools_tree(image, tmp_path / f"cut{n}")
            assert got in (old_tree, new_tree), n
            seen.add("old" if got == old_tree else "new")
        else:
            seen.add("interrupted")
        cli("update", image, site, "-q", "--target", target)
        (tmp_path / f"re{n}").mkdir()
        assert_exact(image, site, tmp_path / f"re{n}", mirage=target == "mirage")
    assert seen == {"old", "new", "interrupted"}




class CountingDevice(FileDevice):
    """A writable image file that counts its flushes."""

    def __init__(self, path) -> None:
        super().__init__(str(path), writable=True)
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


def test_marker_and_data_share_one_flush(tmp_path, site):
    """Five barriers, not six: the data goes into free clusters together with the
    marker (blockimg.fat.update.STEPS); the other phases each need theirs."""
    image = tmp_path / "site.img"
    cli("create", site, "-o", image, "--format", "fat", "-q")
    write(site, "blog/one.html", b"changed " * 3000, T0 + 4)
    write(site, "new/a.html", b"a" * 5000)
    os.unlink(site / "index.html")
    settle_dirs(site)
    dev = CountingDevice(image)
    update(image, site, device=dev)
    dev.close()
    assert dev.flushes == 5
    assert_exact(image, site, tmp_path)


@pytest.mark.parametrize("stop", [1, 2, 3, 4])
def test_sigkill_mid_update(tmp_path, site, spawn, stop):
    """Killed after each flushed step (marker and data, chains, directories, frees)."""
    image = tmp_path / "site.img"
    cli("create", site, "-o", image, "--format", "fat", "-q")
    old_tree = tree_snapshot(site)
    write(site, "blog/one.html", b"changed " * 3000, T0 + 4)
    write(site, "new/a.html", b"a" * 5000)
    os.unlink(site / "index.html")
    settle_dirs(site)
    proc = spawn([sys.executable, "-c", PAUSE_AT_FLUSH, image, site, stop], stdout=subprocess.PIPE,
                 text=True)
    assert proc.stdout.readline().strip() == "paused"
    proc.kill()
    proc.wait()
    said = cli("check", image, check=False)
    assert said.returncode != 0 and "interrupted 'blockimg update'" in said.stdout
    if stop <= 2:           # before the directory sectors: the old tree, as it was
        assert mtools_tree(image, tmp_path / "killed") == old_tree
    cli("update", image, site, "-q")
    assert_exact(image, site, tmp_path)


# -- random rounds -------------------------------------------------------------------

NAMES = st.sampled_from(["a", "b", "c.txt", "Long name.html", "d/e", "d/f", "g/h/i",
                         "g/Other long name", "k"])
CONTENT = st.binary(max_size=6000)
OPS = st.lists(st.tuples(st.sampled_from(["add", "change", "remove", "rename"]), NAMES,
                         NAMES, CONTENT), min_size=1, max_size=5)




@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rounds=st.lists(OPS, min_size=1, max_size=4), generic=st.booleans())
def test_random_rounds_read_back_as_the_last_tree(tmp_path_factory, rounds, generic):
    tmp = tmp_path_factory.mktemp("rounds")
    src = tmp / "src"
    write(src, "a", b"first")
    settle_dirs(src)
    image = tmp / "site.img"
    target = ["--target", "generic"] if generic else []
    room = ["--free", "256K"] if generic else []     # generic images are minimal
    cli("create", src, "-o", image, "--format", "fat", "-q", *target, *room)
    for i, ops in enumerate(rounds):
        apply_round(src, ops, T0 + 2 * (i + 1), keep_one=True)
        # (by hand set mtimes, renames keeping theirs: see the tar rounds)
        cli("update", image, src, "-q", "--compare", "always", *target)
        (tmp / f"r{i}").mkdir()
        assert_exact(image, src, tmp / f"r{i}", mirage=not generic)


def test_fat32_update_keeps_fsinfo(tmp_path, site):
    image = tmp_path / "site.img"
    cli("create", site, "-o", image, "--format", "fat", "--target", "generic",
        "--fat-type", "32", "-q")
    SCENARIOS["add"](site)
    os.unlink(site / "index.html")
    settle_dirs(site)
    cli("update", image, site, "-q", "--target", "generic")
    assert_exact(image, site, tmp_path, mirage=False)
    with api.open(image) as img:
        assert img.info()["fsinfo_free_count"] == img.free_clusters()


def test_manifest_is_rewritten(tmp_path, site):
    image = tmp_path / "site.img"
    man = tmp_path / "site.manifest.json"
    cli("create", site, "-o", image, "--format", "fat", "-q", "--manifest", man)
    write(site, "blog/two.html", b"TWO" * 10, T0 + 2)
    settle_dirs(site)
    cli("update", image, site, "-q", "--manifest", man)
    said = cli("verify", image, "--manifest", man, check=False)
    assert said.returncode == 0, said.stdout + said.stderr


def test_dry_run_writes_nothing(tmp_path, site):
    image = tmp_path / "site.img"
    cli("create", site, "-o", image, "--format", "fat", "-q")
    before = image.read_bytes()
    SCENARIOS["add"](site)
    settle_dirs(site)
    out = cli("update", "--dry-run", image, site).stdout
    assert "A new/deep/a.txt" in out and "would write" in out
    assert image.read_bytes() == before


def test_update_a_partition_of_a_disk(tmp_path, site):
    disk = tmp_path / "disk.img"
    cli("disk", "-o", disk, f"{site},format=fat", "empty:8M")
    other = disk.read_bytes()
    write(site, "blog/two.html", b"TWO" * 10, T0 + 2)
    write(site, "news.html", b"news")
    settle_dirs(site)
    assert "A news.html" in cli("diff", "--partition", "1", disk, site).stdout
    cli("update", "--partition", "1", disk, site, "-q")
    from blockimg.disk.reader import read_table
    dev = FileDevice(str(disk))
    part = read_table(dev).find("1")
    dev.close()
    after = disk.read_bytes()
    start, end = part.start, part.start + part.size
    assert after[:start] == other[:start] and after[end:] == other[end:]   # only partition 1
    vol = tmp_path / "vol.img"
    vol.write_bytes(after[start:end])
    assert_exact(vol, site, tmp_path)
    said = cli("check", "--target", "mirage", "--partition", "1", disk, check=False)
    assert said.returncode == 0, said.stdout


def test_update_on_a_device_node(tmp_path, site):
    """A loop device: changed in place (opened exclusively)."""
    from conftest import require_root
    require_root("losetup")
    image = tmp_path / "site.img"
    cli("create", site, "-o", image, "--format", "fat", "-q")
    loop = run(require_tool("losetup"), "-f", "--show", image, text=True).stdout.strip()
    try:
        SCENARIOS["add"](site)
        SCENARIOS["change"](site)
        settle_dirs(site)
        assert "in place: wrote" in cli("update", loop, site).stdout
    finally:
        run("losetup", "-d", loop)
    assert_exact(image, site, tmp_path)


def test_partition_table_is_read_once_for_a_writable_window(tmp_path, site, monkeypatch):
    """``update --partition`` opens the disk once and reads its table once."""
    from blockimg.disk import reader
    from blockimg.update import cli as update_cli
    disk = tmp_path / "disk.img"
    cli("disk", "-o", disk, f"{site},format=fat", "empty:8M")
    calls = []
    real = reader.read_table
    monkeypatch.setattr(reader, "read_table", lambda dev: calls.append(1) or real(dev))
    for writable in (True, False):
        calls.clear()
        dev = update_cli._partition(str(disk), "1", writable)
        try:
            assert len(calls) == 1 and dev.writable is writable
            assert dev.name == f"{disk}#1"
            assert bytes(dev.pread(0, 512))[510:] == b"\x55\xaa"
        finally:
            parent = dev.parent
            dev.close()
            parent.close()


def test_new_name_is_checked_against_kept_siblings_before_writing(tmp_path, site):
    """A new name that only differs in case from a kept one is refused, as create
    refuses it, before anything is written; a change elsewhere in the same update does
    not hide it."""
    image = tmp_path / "site.img"
    cli("create", site, "-o", image, "--format", "fat", "-q")
    before = image.read_bytes()
    write(site, "blog/ONE.html", b"clash")
    write(site, "img/logo.png", b"changed", T0 + 2)
    settle_dirs(site)
    r = cli("update", image, site, check=False)
    assert r.returncode != 0 and "differ only in case" in r.stderr, r.stderr
    assert image.read_bytes() == before
    (site / "blog/ONE.html").unlink()
    settle_dirs(site)
    cli("update", image, site, "-q")
    assert_exact(image, site, tmp_path)


@settings(max_examples=60, deadline=None)
@given(bits=st.sampled_from([12, 16, 32]), values=st.lists(st.integers(0, 5), min_size=3,
                                                           max_size=300),
       refs=st.lists(st.booleans(), min_size=300, max_size=300))
def test_lost_runs_are_allocated_unreferenced_clusters(bits, values, refs):
    """lost_runs (a byte column at a time) against the rule, entry by entry: allocated
    (not free, not bad) and not referenced."""
    from blockimg.fat import table
    from blockimg.fat.update import fat_set, lost_runs
    n = len(values)
    bad = table.BAD[bits]
    buf = bytearray(4 * n + 4)
    for c, v in enumerate(values):
        fat_set(buf, bits, c, {0: 0, 1: 3, 2: bad, 3: table.EOC[bits], 4: 7, 5: 0}[v])
    referenced = bytearray(refs[:n])
    want, c = [], 2
    while c < n:
        if values[c] not in (0, 2, 5) and not referenced[c]:
            s = c
            while c < n and values[c] not in (0, 2, 5) and not referenced[c]:
                c += 1
            want.append((s, c - s))
        else:
            c += 1
    assert lost_runs(bytes(buf), bits, n - 2, referenced) == want


def test_stray_long_name_slot_is_junk_to_the_update(tmp_path):
    """A long-name slot no entry owns (a directory parse_directory reports issues for) is
    junk the update may reuse; a directory without issues has none (every live slot is
    an entry's)."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        write(src, f"a long file name {i}.txt", b"x" * (i + 1))
    image = tmp_path / "site.img"
    api.create(str(src), str(image), format="fat", mtime=T0)
    with FileDevice(str(image)) as dev:
        vol = fat_update.read_volume(dev)
        root = vol.dirs[""]
        assert root.junk == ()
        last = max(e.offset for e in root.children)
    free = last + 32                        # the end marker after the last entry
    slot = bytearray(32)
    slot[0], slot[11], slot[13] = 0x41, 0x0F, 0x99   # slot 1 of a name, no short entry
    with FileDevice(str(image), writable=True) as dev:
        at = vol.geometry.root_offset if vol.geometry.fat_type != 32 else \
            vol.geometry.cluster_offset(root.clusters[0])
        dev.pwrite(at + free, bytes(slot) + b"\xe5" + bytes(31))
        vol = fat_update.read_volume(dev)
    assert vol.dirs[""].junk == ((free, free + 32),)


# -- the inline chain test of read_volume ----------------------------------------------

def _volume_or_error(path):
    dev = FileDevice(str(path))
    try:
        return fat_update.read_volume(dev)
    except CorruptImage as e:
        return str(e)
    finally:
        dev.close()


@pytest.mark.parametrize("fat_type", [12, 16, 32])
def test_inline_chain_test_equals_the_chain_walk(tmp_path, monkeypatch, fat_type):
    """``read_volume`` takes a file whose chain is one whole run by testing the decoded
    FAT inline; with that test never passing (every file through ``FatTable.chain``)
    it reads the same volume, or stops at the same error, on FATs with random entries
    changed (broken, shortened, looped, cross-linked chains)."""
    import random
    from array import array
    from blockimg.fat.geometry import parse
    from blockimg.fat.table import fat_get, fat_set
    from blockimg.sources.directory import from_pairs
    rng = random.Random(fat_type)
    pairs = [(f"d{i % 3}/f{i}.bin", bytes([i]) * rng.choice([1, 512, 1500, 2048, 5000, 9000]))
             for i in range(40)]
    base = tmp_path / "base.img"
    api.create(from_pairs(pairs, mtime=T0), base, format="fat", fat_type=fat_type, target="generic",
               cluster_size=1024, **({"size": 70 << 20} if fat_type == 32 else {}))
    with open(base, "rb") as f:
        head = f.read(512)
        geo = parse(head, os.path.getsize(base))
        f.seek(geo.fat_offset)
        table = f.read(geo.fat_bytes)
    eoc = {12: 0xFFF, 16: 0xFFFF, 32: 0x0FFFFFFF}[fat_type]
    used = [c for c in range(2, geo.cluster_count + 2) if fat_get(table, fat_type, c)]
    assert len(used) > 60
    clean = _volume_or_error(base)
    starts = [e.runs[0][0] for e in clean.entries.values() if e.kind == "file"]
    fast = slow = 0
    for trial in range(150):
        fat = bytearray(table)
        for _ in range(rng.randint(0, 2)):
            c = rng.choice(used)
            v = rng.choice([0, eoc, eoc - 8, c + 1, c, rng.choice(used), 1,
                            geo.cluster_count + 5, rng.choice(starts), rng.choice(starts)])
            fat_set(fat, fat_type, c, v)
        with open(base, "r+b") as f:            # the first FAT changed, in place
            f.seek(geo.fat_offset)
            f.write(fat)
        with monkeypatch.context() as m:
            got = _volume_or_error(base)
            m.setattr(fat_update, "decode_window", lambda raw, bits, n: array("I", bytes(4 * n)))
            want = _volume_or_error(base)
        assert got == want, trial
        if isinstance(got, str):
            slow += 1
        else:
            fast += 1
    assert fast > 2 and slow > 5
