"""FAT layout maths: type and cluster range, FAT size, alignment, placement, refusals."""
import calendar

import pytest

from blockimg.errors import DoesNotFit, InvalidInput
from blockimg.fat import Options, plan
from blockimg.fat import table
from blockimg.fat.layout import cluster_size_for
from blockimg.fat.structs import fat_datetime
from helpers.fat_construct import DirEntry
from blockimg.sources.directory import Kind, SourceEntry, SourceTree, from_pairs

MiB, GiB = 1 << 20, 1 << 30


def tree(n_files=3, size=1000, **extra):
    pairs = [(f"dir/file{i}.bin", b"x" * size) for i in range(n_files)]
    pairs += list(extra.items())
    return from_pairs(pairs, mtime=1_600_000_000)


def big_tree(total, files=4):
    """A tree with ``total`` bytes of (unread) file data: planning never reads sources."""
    each = total // files
    return SourceTree(tuple([SourceEntry("d", Kind.DIR, mtime=0)] + [
        SourceEntry(f"d/f{i}", Kind.FILE, size=each, source="/nonexistent") for i in range(files)]))


def in_range(p):
    t = p.fat_type
    return table.MIN_CLUSTERS[t] <= p.cluster_count <= table.MAX_CLUSTERS[t]


def check_geometry(p):
    g = p.geometry
    assert in_range(p)
    assert g.fat_bytes >= table.table_bytes(g.fat_type, g.cluster_count + 2)
    assert g.total_sectors * g.sector_size == p.image_size
    assert (g.total_sectors - g.data_sector) // g.sectors_per_cluster == g.cluster_count
    assert g.root_entries * 32 % g.sector_size == 0
    assert p.used_end <= g.cluster_count + 2


@pytest.mark.parametrize("fat_type", [12, 16, 32])
@pytest.mark.parametrize("ss", [512, 1024, 2048, 4096])
def test_cluster_range_per_type(fat_type, ss):
    p = plan(tree(), Options(target="generic", fat_type=fat_type, sector_size=ss))
    assert p.fat_type == fat_type and p.sector_size == ss
    check_geometry(p)


@pytest.mark.parametrize("size,expected", [(1 * MiB, 12), (100 * MiB, 16), (600 * MiB, 32),
                                           (4 * GiB, 32)])
def test_auto_type_by_size(size, expected):
    p = plan(tree(), Options(target="generic", size=size))
    assert p.fat_type == expected and p.image_size == size
    check_geometry(p)


@pytest.mark.parametrize("total,expected", [(10_000, 12), (50 * MiB, 16), (700 * MiB, 32)])
def test_auto_type_minimal(total, expected):
    p = plan(big_tree(total), Options(target="generic"))
    assert p.fat_type == expected
    check_geometry(p)
    assert p.image_size < total * 1.1 + 2 * MiB


def test_cluster_size_grows_when_content_needs_more_clusters():
    p = plan(big_tree(1500 * MiB), Options(target="generic", fat_type=16))
    assert p.cluster_size == 32768
    check_geometry(p)


def test_too_much_for_fat12_refused():
    with pytest.raises(InvalidInput, match="FAT12"):
        plan(big_tree(200 * MiB), Options(target="generic", fat_type=12))


def test_cluster_size_option():
    p = plan(tree(), Options(target="generic", fat_type=16, cluster_size=2048))
    assert p.cluster_size == 2048
    check_geometry(p)


def test_default_cluster_sizes_follow_spec_tables():
    assert cluster_size_for(16, 100 * MiB, 512) == 2048
    assert cluster_size_for(16, 100 * MiB, 4096) == 4096
    assert cluster_size_for(32, 4 * GiB, 512) == 4096
    assert cluster_size_for(32, 20 * GiB, 512) == 16384


@pytest.mark.parametrize("fat_type", [12, 16, 32])
@pytest.mark.parametrize("align", [512, 4096, 65536, 1 * MiB, 4 * MiB])
def test_alignment(fat_type, align):
    p = plan(tree(), Options(target="generic", fat_type=fat_type, align=align))
    g = p.geometry
    check_geometry(p)
    assert g.fat_offset(0) % align == 0 and g.data_offset % align == 0
    assert g.cluster_offset(7) % min(align, g.cluster_size) == 0
    if fat_type == 32 or align <= 1 * MiB:
        assert g.fat_offset(1) % align == 0 and g.root_offset % align == 0


def test_fixed_size_too_small_names_shortfall():
    with pytest.raises(DoesNotFit) as ei:
        plan(tree(n_files=40, size=200_000), Options(target="generic", fat_type=16,
                                                     size=4 * MiB))
    e = ei.value
    assert e.available == 4 * MiB and e.needed > e.available
    assert "short by" in str(e)


def test_fixed_size_outside_type_range_refused():
    with pytest.raises(InvalidInput, match="cannot be FAT16"):
        plan(tree(), Options(target="generic", fat_type=16, size=1 * MiB))
    with pytest.raises(InvalidInput, match="cannot be FAT12"):
        plan(tree(), Options(target="generic", fat_type=12, size=1 * GiB, cluster_size=512))


def test_size_must_be_whole_sectors():
    with pytest.raises(InvalidInput, match="not a whole number of 512-byte sectors"):
        Options(target="generic", size=10 * MiB + 100)


def test_free_headroom():
    a = plan(tree(), Options(target="generic", fat_type=16))
    b = plan(tree(), Options(target="generic", fat_type=16, free=20 * MiB))
    assert b.free_clusters * b.cluster_size >= 20 * MiB
    assert a.free_clusters < b.free_clusters


def test_placement_contiguous_and_ordered():
    t = from_pairs([("a/x", b"1" * 5000), ("a/y", b""), ("b/z", b"2" * 10), ("c", b"3")])
    p = plan(t, Options(target="generic", fat_type=32))
    cs = p.cluster_size
    assert p.dirs[0].is_root and p.dirs[0].first_cluster == 2      # FAT32 root first
    clusters = [d.first_cluster for d in p.dirs] + [f.first_cluster for f in p.files
                                                    if f.clusters]
    assert clusters == sorted(clusters)                             # directories, then files
    ext = dict(p.extents())
    assert ext["a/y"] == []
    (off, length), = ext["a/x"]
    assert length == 5000 and off == p.geometry.cluster_offset(p.files[0].first_cluster)
    assert p.files[0].clusters == -(-5000 // cs)
    end = 2
    for d in p.dirs:
        assert d.first_cluster == end
        end += d.clusters
    for f in p.files:
        if f.clusters:
            assert f.first_cluster == end
            end += f.clusters
    assert end == p.used_end and list(p.run_ends)[-1] == end - 1


def test_subdirectory_dot_entries():
    p = plan(from_pairs([("a/b/c", b"x")]), Options(target="generic", fat_type=16))
    a, b = p.dirs
    dot = DirEntry.parse(b.data[:32])
    dotdot = DirEntry.parse(b.data[32:64])
    assert dot.DIR_Name == b".          " and dot.DIR_FstClusLO == b.first_cluster
    assert dotdot.DIR_Name == b"..         " and dotdot.DIR_FstClusLO == a.first_cluster
    assert DirEntry.parse(a.data[32:64]).DIR_FstClusLO == 0          # parent is the root


def test_timestamps_utc_and_clamped():
    t = from_pairs([("OLD", b"o"), ("NEW", b"n")], mtime=0)
    p = plan(t, Options(target="generic", fat_type=12))
    e = DirEntry.parse(p.root.data[:32])
    assert (e.DIR_WrtDate, e.DIR_WrtTime) == fat_datetime(0)[:2] == ((1 << 5) | 1, 0)
    ts = calendar.timegm((2021, 6, 30, 23, 59, 59))
    t = from_pairs([("X", b"x")], mtime=ts)
    e = DirEntry.parse(plan(t, Options(target="generic")).root.data[:32])
    assert e.DIR_WrtDate == (41 << 9) | (6 << 5) | 30
    assert e.DIR_WrtTime == (23 << 11) | (59 << 5) | 29 and e.DIR_CrtTimeTenth == 100


def test_plan_deterministic():
    a = plan(tree(50), Options())
    b = plan(tree(50), Options())
    assert a.root.data == b.root.data and [d.data for d in a.dirs] == [d.data for d in b.dirs]
    assert a.geometry == b.geometry


def test_links_refused():
    for kind in (Kind.SYMLINK, Kind.HARDLINK):
        t = SourceTree((SourceEntry("l", kind, link_target="x"),))
        with pytest.raises(InvalidInput, match="FAT cannot store links") as ei:
            plan(t, Options())
        assert "l:" in str(ei.value)


def test_files_of_4gib_refused():
    t = SourceTree((SourceEntry("huge", Kind.FILE, size=4 * GiB, source="/x"),))
    with pytest.raises(InvalidInput, match="4 GiB"):
        plan(t, Options(target="generic"))
    ok = SourceTree((SourceEntry("big", Kind.FILE, size=4 * GiB - 1, source="/x"),))
    assert plan(ok, Options(target="generic")).fat_type == 32


def test_case_collision_names_both_paths():
    with pytest.raises(InvalidInput) as ei:
        plan(from_pairs([("d/README", b"1"), ("d/readme", b"2")]), Options())
    assert "'d/README'" in str(ei.value) and "'d/readme'" in str(ei.value)
    assert "case" in str(ei.value)


def test_forbidden_name_refused_with_rule():
    with pytest.raises(InvalidInput) as ei:
        plan(from_pairs([("d/what?", b"1")]), Options())
    assert "d/what?" in str(ei.value) and "FAT names" in str(ei.value)


def test_directory_entry_limit():
    names = [(f"d/{'x' * 200}{i:05d}", b"") for i in range(4000)]   # 17 entries each
    with pytest.raises(InvalidInput, match="65536 entries"):
        plan(from_pairs(names), Options(target="generic"))


def test_missing_parents_are_made():
    t = SourceTree((SourceEntry("a/b/c", Kind.FILE, size=1, data=b"x"),))
    p = plan(t, Options(target="generic"))
    assert [d.path for d in p.dirs] == ["a", "a/b"]


def test_options_validation():
    with pytest.raises(TypeError):
        Options(bogus=1)
    for bad in (dict(target="x"), dict(fat_type=8), dict(sector_size=8192),
                dict(align=3000), dict(free=-1), dict(cluster_size=256),
                dict(target="generic", volume_id=-1), dict(fats=3),
                dict(target="generic", label="way too long label"),
                dict(target="generic", label="bad*label")):
        with pytest.raises(InvalidInput):
            Options(**bad)
    o = Options(target="generic", label="boot", fat_type="32")
    assert o.label == "BOOT" and o.fat_type == 32 and o.sector_size == 512


def test_fat_chunks_bounded_for_32gib_volume():
    p = plan(tree(), Options(target="generic", size=32 * GiB))
    assert p.fat_type == 32 and p.cluster_size == 16384
    check_geometry(p)
    pieces = 0
    for off, chunk in p.fat_table().chunks(1 << 20):
        assert len(chunk) <= 1 << 20
        pieces += 1
    assert pieces == -(-p.geometry.fat_bytes // (1 << 20))


def test_duplicate_paths_refused():
    e = SourceEntry("a", Kind.FILE, size=1, data=b"x")
    with pytest.raises(InvalidInput, match="given twice"):
        plan(SourceTree((e, e)), Options())


@pytest.mark.parametrize("fat_type,align,ss", [(12, 4096, 512), (16, 4096, 4096), (16, 512, 512),
                                               (32, 4096, 512), (32, 1 << 20, 4096)])
def test_planned_geometry_is_what_the_boot_sector_says(fat_type, align, ss):
    """The planner's geometry (sectors) and the reader's (bytes, from the boot sector the
    writer packs) describe the same regions."""
    from blockimg.fat import geometry
    from blockimg.fat.writer import boot_sector
    p = plan(from_pairs([("a/b.txt", b"x" * 5000), ("README", b"r")]),
             Options(target="generic", fat_type=fat_type, align=align, sector_size=ss))
    want = p.geometry
    got = geometry.parse(boot_sector(p), want.image_size)
    assert (got.fat_type, got.bytes_per_sector, got.cluster_size, got.cluster_count,
            got.num_fats, got.fat_bytes, got.root_entries, got.volume_bytes) == \
        (want.fat_type, want.sector_size, want.cluster_size, want.cluster_count,
         want.num_fats, want.fat_bytes, want.root_entries, want.image_size)
    assert [got.fat_copy_offset(i) for i in range(got.num_fats)] == \
        [want.fat_offset(i) for i in range(want.num_fats)]
    assert (got.root_offset, got.data_offset, got.cluster_offset(7)) == \
        (want.root_offset, want.data_offset, want.cluster_offset(7))
