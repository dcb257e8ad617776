"""Property: random trees -> FAT image -> fsck.fat clean; blockimg, mtools, pyfatfs agree."""
import os
import tempfile
from pathlib import Path

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from blockimg.errors import InvalidInput
from blockimg.fat.names import check_name, fold
from blockimg.sources.directory import walk

from conftest import require_tool
from helpers.fat_readback import build_image, verify

ASCII = list("abcdeXYZ0123456789 .-_~+,;=[]()!#'")
UNICODE = ASCII + ["é", "Ω", "日", "ß"]

#: ~15 by default; the "thorough" hypothesis profile (tests/conftest.py) runs more.
EXAMPLES = 15 if settings.default.max_examples <= 25 else settings.default.max_examples


def names(alphabet):
    return st.text(st.sampled_from(alphabet), min_size=1, max_size=30)


def trees(alphabet, depth=3, min_size=0):
    leaf = st.binary(max_size=6000)
    if depth == 0:
        return st.dictionaries(names(alphabet), leaf, min_size=min_size, max_size=6)
    return st.dictionaries(names(alphabet), leaf | trees(alphabet, depth - 1),
                           min_size=min_size, max_size=6)


def usable(tree, mirage, path=""):
    """Every name storable, no case collisions (those are refused, tested elsewhere)."""
    seen = set()
    for name, sub in tree.items():
        try:
            check_name(name, path=path + name, mirage=mirage)
        except InvalidInput:
            return False
        if fold(name) in seen:
            return False
        seen.add(fold(name))
        if isinstance(sub, dict) and not usable(sub, mirage, path + name + "/"):
            return False
    return True


def materialise(tree, root: Path):
    root.mkdir(exist_ok=True)
    for name, sub in tree.items():
        if isinstance(sub, dict):
            materialise(sub, root / name)
        else:
            (root / name).write_bytes(sub)


OPTIONS = st.one_of(
    st.builds(dict, sector_size=st.sampled_from([512, 4096]), align=st.sampled_from([512, 4096])),
    st.builds(dict, target=st.just("generic"), fat_type=st.sampled_from(["auto", 12, 16, 32]),
              sector_size=st.sampled_from([512, 4096]), align=st.sampled_from([512, 4096])))


@settings(max_examples=EXAMPLES)
@given(st.data())
def test_random_trees_read_back(data):
    require_tool("fsck.fat")
    require_tool("mcopy")
    opts = data.draw(OPTIONS)
    mirage = opts.get("target") != "generic"
    tree = data.draw(trees(ASCII if mirage else UNICODE, min_size=1))
    assume(usable(tree, mirage))
    if opts.get("fat_type") == 32 and opts["sector_size"] == 4096:
        opts["sector_size"] = 512          # keep the 256 MiB FAT32/4K case to the interop tests
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "src"
        materialise(tree, src)
        for p in src.rglob("*"):
            os.utime(p, (1_234_567_890, 1_234_567_890))
        img = tmp / "fat.img"
        build_image(walk(src, mtime=1_234_567_890), img, **opts)
        verify(img, src, tmp, mirage=mirage)
