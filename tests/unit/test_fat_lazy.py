"""FAT images opened with ``lazy=True`` (``blockimg cat``): a path is looked up through
the directories on its way only, with the checks of the whole walk on what it reads;
anything that needs the whole tree indexes it first, and then matches a full open."""
from __future__ import annotations

import gzip

import pytest

import blockimg
from blockimg.cli import main
from blockimg.errors import CorruptImage, NotFound
from blockimg.fat import dirents
from blockimg.fat import reader as fat_reader
from blockimg.fat import walk as fat_walk
from conftest import ROOT

MTIME = 1_700_000_000


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    src = tmp_path_factory.mktemp("lazy") / "src"
    for d in range(12):
        for f in range(15):
            p = src / f"dir{d:02d}" / f"sub{f % 3}" / f"file with a long name {f}.txt"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(f"{d}/{f}".encode() * (50 + 97 * f))
    (src / "top.html").write_bytes(b"<html>top</html>")
    img = src.parent / "t.img"
    blockimg.create(src, img, format="fat", mtime=MTIME)
    return src, img


def test_a_lookup_reads_only_the_directories_on_its_way(tree, monkeypatch):
    src, img = tree
    parsed = []
    real = dirents.parse_directory

    def counting(data, *, fat32):
        parsed.append(len(data))
        return real(data, fat32=fat32)
    monkeypatch.setattr(fat_walk, "parse_directory", counting)
    path = "dir07/sub1/file with a long name 4.txt"
    with blockimg.open(img, lazy=True) as im:
        assert im.read(path) == (src / path).read_bytes()
        assert len(parsed) == 3                      # root, dir07, dir07/sub1
    parsed.clear()
    with blockimg.open(img) as im:
        im.read(path)
    assert len(parsed) == 1 + 12 + 36                # the whole tree


def test_every_path_is_the_entry_of_the_whole_index(tree):
    src, img = tree
    with blockimg.open(img) as im:
        full = {e.path: e for e in im.list()}
    with blockimg.open(img, lazy=True) as im:
        for path, entry in full.items():
            assert im.stat(path) == entry
            assert im.exists(path)
        assert im.stat("").kind == "dir"


@pytest.mark.parametrize("path", ["nope", "dir03/nope", "top.html/x", "dir03/sub0/x/y",
                                  "DIR03/sub0"])
def test_missing_paths_are_not_found(tree, path):
    _src, img = tree
    with blockimg.open(img, lazy=True) as im:
        with pytest.raises(NotFound):
            im.stat(path)


def test_whole_tree_calls_index_it_all_like_a_full_open(tree, tmp_path):
    src, img = tree
    with blockimg.open(img) as full:
        want = (full.list(), full.info(), list(full.warnings))
    with blockimg.open(img, lazy=True) as im:
        im.stat("dir05/sub2/file with a long name 5.txt")
        im.stat("top.html")
        assert (im.list(), im.info(), list(im.warnings)) == want
        assert not im._lazy
    with blockimg.open(img, lazy=True) as im:
        im.stat("dir01/sub0/file with a long name 0.txt")
        im.extract(tmp_path / "out")
    from conftest import assert_same_tree
    assert_same_tree(src, tmp_path / "out")


@pytest.mark.parametrize("fixture, broken", [
    ("fat-dir-cycle-self.img.gz", "sub/LOOP/A.TXT"),
    ("fat-dir-cycle-ancestor.img.gz", "sub/DEEP/UP/A.TXT"),
    ("fat-dir-chain-loop.img.gz", "sub"),
    ("fat-chain-loop.img.gz", "hello.txt"),
    ("fat-file-size-beyond-chain.img.gz", "hello.txt"),
])
def test_hostile_images_give_an_error_or_an_entry_never_a_hang(tmp_path, fixture, broken):
    """A path through the broken part is CorruptImage (cycles and loops on the way are
    caught); every other path a lenient open finds is an entry inside the image."""
    data = gzip.decompress((ROOT / "fixtures" / "hostile" / fixture).read_bytes())
    img = tmp_path / "h.img"
    img.write_bytes(data)
    from blockimg.block.file import FileDevice
    with fat_reader.FatImage(FileDevice(str(img)), owns_device=True, strict=False) as loose:
        paths = [e.path for e in loose.list()]
        assert loose.problems                           # the fixture is broken somewhere
    with blockimg.open(img, lazy=True) as im:
        with pytest.raises(CorruptImage):
            im.stat(broken)
    for path in paths:
        if path == broken:
            continue
        with blockimg.open(img, lazy=True) as im:
            info = im.stat(path)
            for off, n in info.extents:
                assert 0 <= off and off + n <= img.stat().st_size
    with pytest.raises(CorruptImage):
        with blockimg.open(img):                        # strict and whole: refused
            pass


def test_cli_cat_reads_lazily_and_gives_the_bytes(tree, capsysbinary, monkeypatch):
    src, img = tree
    opened = []
    real = blockimg.api.open

    def spy(image, **kw):
        opened.append(kw.get("lazy"))
        return real(image, **kw)
    monkeypatch.setattr(blockimg.api, "open", spy)
    path = "dir11/sub2/file with a long name 14.txt"
    assert main(["cat", str(img), path]) == 0
    assert capsysbinary.readouterr().out == (src / path).read_bytes()
    assert opened == [True]


def test_tar_images_ignore_lazy(tmp_path, tree):
    src, _img = tree
    t = tmp_path / "t.tar"
    blockimg.create(src, t, format="tar", mtime=MTIME)
    with blockimg.open(t, lazy=True) as im:
        assert im.read("top.html") == b"<html>top</html>"
        assert len(im) == len(list(src.rglob("*")))


@pytest.mark.parametrize("target", ["generic", "mirage"])
def test_check_of_a_lazy_image_is_the_full_ones(tree, target):
    from blockimg.fat import check
    _src, img = tree
    with blockimg.open(img) as full:
        want = check(full, target=target)
    with blockimg.open(img, lazy=True) as im:
        im.stat("top.html")
        assert check(im, target=target) == want
