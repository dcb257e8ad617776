"""Fuzzing the readers against their invariant.

The invariant (see :mod:`blockimg.read.image`): opening, listing, reading or
verifying any byte string as an image either works or raises a
:class:`~blockimg.errors.BlockImgError` -- never another exception, a hang,
or memory that grows with a forged field. :func:`exercise` applies it to one
input; :class:`Mutator` makes inputs from seed images with format-aware
mutations (tar header fields with their checksum fixed up, FAT boot-sector
fields, FAT entries and directory entries), deterministically from a seed.

A developer tool, not part of the installed package: it reads the repository's
fixtures. ``tools/fuzz --iterations N --seed S`` runs it (``python -m helpers.fuzzer``
from the checkout with ``tests/`` on ``PYTHONPATH``) with a per-input alarm and a
memory limit; ``tools/fuzz --atheris`` uses atheris' coverage-guided engine with the
same :func:`exercise`. ``tests/fuzz`` runs a bounded smoke run of it.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import signal
import struct
import sys
import time
import traceback
from pathlib import Path
from typing import Iterable, List, Optional, Tuple

from blockimg.block.memory import MemoryDevice
from blockimg.errors import BlockImgError
from blockimg.formats import detect_format, format_module

__all__ = ["exercise", "exercise_extract", "InvariantBroken", "Hang", "Mutator", "load_seeds", "run"]

READ_CHUNK = 64 * 1024
ROOT = Path(__file__).resolve().parents[2]


class InvariantBroken(Exception):
    """A reader did something the invariant forbids (the message says what)."""


class Hang(BaseException):
    """Raised by the per-input alarm."""


def _pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % 512)


def readers() -> Tuple[str, ...]:
    """The formats whose readers are present (both, once the FAT reader exists)."""
    import importlib
    out = []
    for name in ("tar", "fat"):
        try:
            importlib.import_module(f"blockimg.{name}.reader")
        except ImportError:
            continue
        out.append(name)
    return tuple(out)


def exercise(data: bytes, *, formats: Optional[Iterable[str]] = None) -> List[str]:
    """Open ``data`` as each format, list, stat, read every file, check, verify.

    Returns the outcome per format (``ok`` or the BlockImgError class name);
    raises :class:`InvariantBroken` for anything else.
    """
    from blockimg.trust.verify import verify
    if formats is None:
        formats = ("detect",) + readers()
    outcomes = []
    dev = MemoryDevice(data=_pad(bytes(data)), writable=False)
    for name in formats:
        try:
            outcomes.append(_one(dev, name))
        except BlockImgError as e:
            outcomes.append(type(e).__name__)
        except InvariantBroken:
            raise
        except RecursionError as e:
            raise InvariantBroken(f"{name}: unbounded recursion: {e}") from e
        except MemoryError as e:
            raise InvariantBroken(f"{name}: memory limit hit (a forged size?)") from e
        except Exception as e:
            raise InvariantBroken(f"{name}: {type(e).__name__}: {e}\n"
                                  f"{traceback.format_exc()}") from e
    try:
        verify(dev)
    except BlockImgError:
        pass
    except Exception as e:
        raise InvariantBroken(f"verify: {type(e).__name__}: {e}\n{traceback.format_exc()}") \
            from e
    return outcomes


#: Paths looked up in every image opened lazily (some exist in the seeds built from the
#: example site, so mutations of those hit real entries).
PROBE_PATHS = ("index.html", "images/photos/boot-sequence.png", "blog/2024/06/release.html",
               "downloads/.keep", "images", "a/b/c", "")


def _one(dev: MemoryDevice, name: str) -> str:
    if name == "detect":
        name = detect_format(dev)
    mod = format_module(name)
    if getattr(mod, "LAZY_OPEN", False):
        _lazy_lookups(dev, mod, name, PROBE_PATHS)
        for parts in (2, 3):
            _split_walk(dev, mod, name, parts)
    img = mod.open_image(dev)
    with img:
        entries = img.list()
        if getattr(mod, "LAZY_OPEN", False):
            # What a lookup finds is what the whole index holds.
            _lazy_lookups(dev, mod, name, [e.path for e in entries[:64]],
                          expect={e.path: e for e in entries[:64]})
        for info in entries:
            img.stat(info.path)
            if info.kind != "file":
                continue
            _check_extents(dev, info)
            got = 0
            for chunk in img.iter_chunks(info.path, READ_CHUNK):
                if not chunk:
                    raise InvariantBroken(f"{name}: {info.path!r}: empty read at {got} of "
                                          f"{info.size}")
                got += len(chunk)
                if got > info.size:
                    raise InvariantBroken(f"{name}: {info.path!r}: read {got} bytes of "
                                          f"{info.size}")
        img.info()
        for target in ("generic", "mirage"):
            for problem in mod.check(img, target=target):
                str(problem)
    return "ok"


def _lazy_lookups(dev: MemoryDevice, mod, name: str, paths, expect=None) -> None:
    """Open ``dev`` with ``lazy=True`` and look ``paths`` up (reading files whole): each
    gives an entry or a BlockImgError; with ``expect``, exactly its entries."""
    try:
        img = mod.open_image(dev, lazy=True)
    except BlockImgError:
        if expect is not None:
            raise InvariantBroken(f"{name}: lazy open failed where the full one worked")
        return
    with img:
        for path in paths:
            try:
                info = img.stat(path)
            except BlockImgError:
                if expect is not None:
                    raise InvariantBroken(f"{name}: lazy lookup of {path!r} failed where the "
                                          f"whole index has it") from None
                continue
            if expect is not None and info != expect[path]:
                raise InvariantBroken(f"{name}: lazy lookup of {path!r} gave {info!r}, the "
                                      f"whole index {expect[path]!r}")
            if info.kind == "file":
                _check_extents(dev, info)
                got = sum(len(c) for c in img.iter_chunks(info.path, READ_CHUNK))
                if got != info.size:
                    raise InvariantBroken(f"{name}: lazy read of {path!r}: {got} of "
                                          f"{info.size} bytes")


def _split_walk(dev: MemoryDevice, mod, name: str, parts: int) -> None:
    """Index ``dev`` in ``parts`` parts as a parallel extraction does (each part on an
    image of its own, as in its own process): the parts together must be the whole
    index, and fail (a part raises, or the merge finds crossed chains) exactly when
    the whole walk fails."""
    try:
        whole = mod.open_image(dev)
    except BlockImgError:
        whole = None
    try:
        lead = mod.open_image(dev, lazy=True)
        split = lead.split_plan(parts)
    except BlockImgError:
        split = None
    if split is None:
        return
    answers, index, warnings, unsafe = [], {}, [], []
    try:
        for i in range(split.parts):
            img = lead if i == 0 else mod.open_image(dev, lazy=True)
            own = type(split)(img, split.owner, split.needed)
            answers.append(own.walk(i))
            overlap = index.keys() & img.walk.index.keys()
            if overlap:
                raise InvariantBroken(f"{name}: split walk: parts share {sorted(overlap)[:3]}")
            index.update(img.walk.index)
            warnings += answers[-1]["warnings"]
            unsafe += answers[-1]["unsafe_names"]
        ok = split.merge(answers)
    except BlockImgError:
        ok = False
    if ok != (whole is not None):
        raise InvariantBroken(f"{name}: split walk in {parts} parts "
                              f"{'succeeded' if ok else 'failed'}, the whole walk "
                              f"{'did' if whole is not None else 'did not'}")
    if whole is None:
        return
    if index != whole.index:
        missing = whole.index.keys() ^ index.keys()
        raise InvariantBroken(f"{name}: split walk in {parts} parts indexed other entries "
                              f"than the whole walk ({sorted(missing)[:3]} differ)")
    walked = whole.warnings[whole.walk.warnings_from:]
    if len(walked) < 100 and sorted(warnings) != sorted(walked):
        raise InvariantBroken(f"{name}: split walk warnings {warnings[:3]} differ from the "
                              f"whole walk's {walked[:3]}")
    if sorted(unsafe) != sorted(whole.unsafe_names):
        raise InvariantBroken(f"{name}: split walk unsafe names differ")


def exercise_extract(data: bytes, workdir: str, *, split: bool = True) -> str:
    """Extract ``data`` (format detected) below ``workdir``/dest: it must write nothing
    beside ``dest`` and leave no link that leads out of it. With ``split``, it is
    extracted again as ``blockimg extract`` does (opened lazily, two processes: a FAT
    image is then indexed in parts), which must give the same outcome, report and tree."""
    import shutil
    from blockimg.api import open as open_image
    dest = os.path.join(workdir, "dest")
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    dev = MemoryDevice(data=_pad(bytes(data)), writable=False)
    try:
        with open_image(dev) as img:
            report = img.extract(dest)
    except BlockImgError as e:
        report = type(e).__name__
    except Exception as e:
        raise InvariantBroken(f"extract: {type(e).__name__}: {e}\n{traceback.format_exc()}") \
            from e
    if split:
        _same_split_extraction(dev, workdir + "-split", report, dest)
    if isinstance(report, str):
        return report
    if sorted(os.listdir(workdir)) != ["dest"]:
        raise InvariantBroken(f"extract wrote beside its destination: {os.listdir(workdir)}")
    real = os.path.realpath(dest)
    for dirpath, dirs, files in os.walk(dest):
        for n in dirs + files:
            p = os.path.realpath(os.path.join(dirpath, n))
            if p != real and not p.startswith(real + os.sep):
                raise InvariantBroken(f"extract left {os.path.join(dirpath, n)!r} leading "
                                      f"outside to {p!r}")
    return "ok"


def _same_split_extraction(dev: MemoryDevice, workdir: str, want, want_dest: str) -> None:
    """Extract ``dev`` lazily opened with ``jobs=2`` below ``workdir``: the outcome
    (``want``: a report, or an error's class name) and the tree of ``want_dest``."""
    import shutil
    from blockimg.api import open as open_image
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    dest = os.path.join(workdir, "dest")
    try:
        with open_image(dev, lazy=True) as img:
            got = img.extract(dest, jobs=2)
    except BlockImgError as e:
        got = type(e).__name__
    except Exception as e:
        raise InvariantBroken(f"split extract: {type(e).__name__}: {e}\n"
                              f"{traceback.format_exc()}") from e
    try:
        if got != want:
            raise InvariantBroken(f"split extract: {str(got)[:300]}, one process: "
                                  f"{str(want)[:300]}")
        if set(os.listdir(workdir)) - {"dest"}:
            raise InvariantBroken(f"split extract wrote beside its destination: "
                                  f"{os.listdir(workdir)}")
        if not isinstance(want, str) and _snapshot(dest) != _snapshot(want_dest):
            raise InvariantBroken("split extract wrote another tree than one process")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _snapshot(root: str) -> dict:
    """{relative path: kind and bytes or link target} of a tree (not following links)."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            elif os.path.isdir(p):
                out[rel] = "dir"
            else:
                with open(p, "rb") as f:
                    out[rel] = f.read()
    return out


def _check_extents(dev, info) -> None:
    total = 0
    for off, length in info.extents:
        if off < 0 or length < 0 or off + length > dev.size:
            raise InvariantBroken(f"{info.path!r}: extent ({off}, {length}) outside the "
                                  f"{dev.size}-byte device")
        total += length
    if total != info.size:
        raise InvariantBroken(f"{info.path!r}: extents hold {total} bytes, size says "
                              f"{info.size}")


# ------------------------------------------------------------------- seeds ----
def _read_maybe_gz(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def mirage_fat_volume(fixtures: Path) -> bytes:
    """The Mirage FAT16 fixture's three pieces assembled into a volume (truncated
    after the root directory and a few data clusters)."""
    boot = (fixtures / "fat" / "bootsector.dat").read_bytes()
    fat = (fixtures / "fat" / "fat.dat").read_bytes()
    root = (fixtures / "fat" / "root.dat").read_bytes()
    bps, spc, reserved, nfats, root_entries = struct.unpack_from("<HBHBH", boot, 11)
    fatsz = struct.unpack_from("<H", boot, 22)[0]
    total = struct.unpack_from("<H", boot, 19)[0] or struct.unpack_from("<I", boot, 32)[0]
    vol = bytearray(total * bps)
    vol[:len(boot)] = boot
    for i in range(nfats):
        off = (reserved + i * fatsz) * bps
        vol[off:off + len(fat)] = fat
    off = (reserved + nfats * fatsz) * bps
    vol[off:off + len(root)] = root
    return bytes(vol)


def load_seeds(max_size: int = 20 << 20) -> List[Tuple[str, bytes]]:
    """Every image under fixtures/ (``.img``, ``.tar``, ``.gz`` of those) and the Mirage
    fixtures (FAT pieces assembled), up to ``max_size`` bytes each."""
    seeds = []
    fixtures = ROOT / "fixtures"
    if fixtures.is_dir():
        for p in sorted(fixtures.rglob("*")):
            if p.is_file() and p.name.endswith((".img", ".tar", ".img.gz", ".tar.gz")):
                data = _read_maybe_gz(p)
                if len(data) <= max_size:
                    seeds.append((str(p.relative_to(ROOT)), data))
    seeds.extend(built_seeds(fixtures / "site", max_size))
    env = os.environ.get("BLOCKIMG_MIRAGE_FIXTURES")
    mirage = Path(env) if env else ROOT.parent / "shared" / "mirage-fixtures"
    if (mirage / "tar").is_dir():
        for p in sorted((mirage / "tar").glob("*.tar")):
            seeds.append((f"mirage:{p.name}", p.read_bytes()))
    if (mirage / "fat" / "bootsector.dat").is_file():
        vol = mirage_fat_volume(mirage)
        seeds.append(("mirage:fat16-volume", vol[:max_size]))
    return seeds


BUILT = [("tar", {"target": "mirage"}), ("tar", {"target": "generic"}),
         ("fat", {"target": "generic"}), ("fat", {"target": "generic", "fat_type": 16}),
         ("fat", {"target": "mirage", "sector_size": 512})]


def built_seeds(site: Path, max_size: int) -> List[Tuple[str, bytes]]:
    """Images of the bundled example site made by blockimg's own writers."""
    import tempfile
    from blockimg.api import create
    out = []
    if not site.is_dir():
        return out
    with tempfile.TemporaryDirectory(prefix="blockimg-fuzz-") as tmp:
        for fmt, options in BUILT:
            path = os.path.join(tmp, "seed.img")
            try:
                create(str(site), path, format=fmt, mtime=0, **options)
            except (BlockImgError, ImportError):
                continue  # a format not there yet
            if os.path.getsize(path) <= max_size:
                label = ",".join(f"{k}={v}" for k, v in sorted(options.items()))
                out.append((f"built:{fmt}:{label}", Path(path).read_bytes()))
    return out


# ----------------------------------------------------------------- mutator ----
INTERESTING = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0xFFF, 0xFF7, 0xFF8, 0x1000, 0x7FFF, 0x8000,
               0xFFF7, 0xFFFF, 0x10000, 0x0FFFFFF7, 0x0FFFFFFF, 0x7FFFFFFF, 0x80000000,
               0xFFFFFFFF]


def _tar_checksum(block: bytearray) -> None:
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % (sum(block) & 0o777777)


class Mutator:
    """Deterministic, format-aware mutations of seed images."""

    def __init__(self, seeds: List[Tuple[str, bytes]], seed: int = 0,
                 weights: Optional[List[float]] = None) -> None:
        if not seeds:
            raise ValueError("no seeds")
        self.seeds = seeds
        self.weights = weights
        self.rng = random.Random(seed)

    def next(self) -> Tuple[str, bytes]:
        name, data = self.rng.choices(self.seeds, weights=self.weights)[0]
        buf = bytearray(data)
        for _ in range(self.rng.randint(1, 4)):
            op = self.rng.random()
            if buf[:512].endswith(b"\x55\xaa") and op < 0.6:
                self._fat(buf)
            elif op < 0.55 and len(buf) >= 512:
                self._tar(buf)
            else:
                self._generic(buf)
        return name, bytes(buf)

    # generic byte-level mutations, biased towards the start of the image
    def _pos(self, buf) -> int:
        limit = len(buf) if self.rng.random() < 0.2 else min(len(buf), 64 * 1024)
        return self.rng.randrange(max(limit, 1))

    def _generic(self, buf: bytearray) -> None:
        r = self.rng.random()
        if not buf:
            buf.extend(bytes(512))
            return
        if r < 0.3:
            i = self._pos(buf)
            buf[i] ^= 1 << self.rng.randrange(8)
        elif r < 0.5:
            i = self._pos(buf)
            buf[i] = self.rng.choice((0, 0xFF, 0x7F, 0x80, 0x2E, 0x2F, 0xE5))
        elif r < 0.7:
            i = self._pos(buf)
            width = self.rng.choice((2, 4))
            if i + width <= len(buf):
                v = self.rng.choice(INTERESTING) & ((1 << (8 * width)) - 1)
                buf[i:i + width] = v.to_bytes(width, "little")
        elif r < 0.8:
            cut = self.rng.randrange(len(buf) // 512 + 1) * 512
            del buf[cut:]
        elif r < 0.9 and len(buf) >= 64:
            n = self.rng.randrange(1, 64)
            a = self._pos(buf)
            b = self._pos(buf)
            buf[b:b + n] = buf[a:a + n]
        else:
            i = self._pos(buf)
            n = self.rng.choice((1, 32, 512))
            if self.rng.random() < 0.5:
                buf[i:i] = bytes(self.rng.randrange(256) for _ in range(n))
            else:
                del buf[i:i + n]

    def _tar(self, buf: bytearray) -> None:
        nblocks = len(buf) // 512
        start = self.rng.randrange(min(nblocks, 128)) * 512
        block = bytearray(buf[start:start + 512])
        r = self.rng.random()
        if r < 0.35:
            value = self.rng.choice([
                b"%011o\0" % self.rng.choice((0, 1, 511, 512, 513, 1 << 20, 0o77777777777)),
                b"\x80" + bytes(10) + b"\x01", b"\xff" * 12, b"\x80" + b"\xff" * 11,
                b"           \0", b"-0000000001\0", b"00000000009\0"])
            block[124:136] = value
        elif r < 0.5:
            block[156] = self.rng.choice(b"0125xgLKSV7A\0")
        elif r < 0.65:
            name = self.rng.choice((b"../x", b"/abs", b"a\0b", b"a/../../b", b"", b".",
                                    b"d/", b"x" * 100))
            block[0:100] = name[:100].ljust(100, b"\0")
        elif r < 0.8:
            # pax-like payload garbage: records with lying lengths
            rec = self.rng.choice((b"999 path=x\n", b"5 path=xyz\n", b"0 =\n",
                                   b"18446744073709551616 size=1\n", b"12 size=-1\n",
                                   b"20 path=a\0b/../c\n", b"11 size=99\n"))
            off = self.rng.randrange(0, 512 - len(rec))
            block[off:off + len(rec)] = rec
        else:
            i = self.rng.randrange(512)
            block[i] = self.rng.randrange(256)
        if self.rng.random() < 0.85:
            _tar_checksum(block)
        buf[start:start + 512] = block

    def _fat(self, buf: bytearray) -> None:
        try:
            bps, spc, reserved, nfats, root_entries = struct.unpack_from("<HBHBH", buf, 11)
            fatsz = struct.unpack_from("<H", buf, 22)[0] or struct.unpack_from("<I", buf, 36)[0]
        except struct.error:
            return self._generic(buf)
        r = self.rng.random()
        if r < 0.2:
            field = self.rng.choice([("<H", 11), ("<B", 13), ("<H", 14), ("<B", 16),
                                     ("<H", 17), ("<H", 19), ("<H", 22), ("<I", 32),
                                     ("<I", 36), ("<I", 44), ("<B", 21), ("<H", 48)])
            fmt, off = field
            bits = struct.calcsize(fmt) * 8
            v = self.rng.choice(INTERESTING + [self.rng.randrange(1 << bits)])
            struct.pack_into(fmt, buf, off, v & ((1 << bits) - 1))
            return
        bps = bps if bps in (512, 1024, 2048, 4096) else 512
        fat_start = reserved * bps
        fat_bytes = max(fatsz * bps, 0)
        root_start = fat_start + nfats * fatsz * bps
        if r < 0.55 and fat_bytes:
            # a FAT entry (12/16/32-bit guesses all land somewhere interesting)
            width = self.rng.choice((2, 2, 4))
            off = fat_start + self.rng.randrange(0, min(fat_bytes, 4096) - width + 1)
            if off + width <= len(buf):
                v = self.rng.choice(INTERESTING + [self.rng.randrange(2, 64)])
                buf[off:off + width] = (v & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
                if nfats > 1 and self.rng.random() < 0.7:
                    mirror = off + fatsz * bps
                    if mirror + width <= len(buf):
                        buf[mirror:mirror + width] = buf[off:off + width]
            return
        # a directory entry: in the root directory or (subdirectories, FAT32) a data cluster
        span = 32 * 64 if self.rng.random() < 0.5 else 64 * 1024
        region = root_start + self.rng.randrange(0, span) // 32 * 32
        if region + 32 > len(buf):
            return self._generic(buf)
        e = region
        choice = self.rng.random()
        if choice < 0.25:
            struct.pack_into("<H", buf, e + 26, self.rng.choice(INTERESTING) & 0xFFFF)
        elif choice < 0.4:
            struct.pack_into("<H", buf, e + 20, self.rng.choice(INTERESTING) & 0xFFFF)
        elif choice < 0.55:
            struct.pack_into("<I", buf, e + 28, self.rng.choice(INTERESTING))
        elif choice < 0.7:
            buf[e + 11] = self.rng.choice((0x0F, 0x10, 0x08, 0x20, 0x3F, 0x16))
        elif choice < 0.8:
            buf[e] = self.rng.choice((0x00, 0xE5, 0x2E, 0x41, 0x42, 0x01, 0x05, 0x20))
        elif choice < 0.9:
            buf[e + 13] ^= 1 << self.rng.randrange(8)  # LFN checksum
        else:
            name = self.rng.choice((b".          ", b"..         ", b"/          ",
                                    b"A\0B     TXT", b"           "))
            buf[e:e + 11] = name


# --------------------------------------------------------------------- run ----
def _alarm(seconds: float):
    def handler(signum, frame):
        raise Hang(f"no answer after {seconds} s")
    old = signal.signal(signal.SIGALRM, handler)
    return old


def run(iterations: Optional[int] = None, *, seconds: Optional[float] = None, seed: int = 0,
        timeout: float = 10.0, save_dir: Optional[Path] = None,
        seeds: Optional[List[Tuple[str, bytes]]] = None, max_failures: int = 20,
        extract_every: int = 20) -> dict:
    """Run the mutator; returns counts and the failures (input saved to ``save_dir``).

    Every ``extract_every``-th input is also extracted into a scratch directory.
    """
    import tempfile
    with tempfile.TemporaryDirectory(prefix="blockimg-fuzz-") as workdir:
        return _run(iterations, seconds, seed, timeout, save_dir, seeds, max_failures,
                    extract_every, workdir)


def _run(iterations, seconds, seed, timeout, save_dir, seeds, max_failures, extract_every,
         workdir) -> dict:
    seeds = seeds if seeds is not None else load_seeds()
    weights = []
    mut = Mutator(seeds, seed, weights)
    old = _alarm(timeout)
    stats = {"executions": 0, "seeds": len(seeds), "outcomes": {}, "failures": []}
    start = time.monotonic()
    try:
        # the seeds themselves first; seeds some reader accepts are mutated 8x as often
        queue = [(n, d, "seed") for n, d in seeds]
        i = 0
        while True:
            if queue:
                name, data, how = queue.pop(0)
            else:
                if len(weights) < len(seeds):
                    weights.extend([1.0] * (len(seeds) - len(weights)))
                if iterations is not None and i >= iterations:
                    break
                if seconds is not None and time.monotonic() - start >= seconds:
                    break
                name, data = mut.next()
                how = f"mutation {i} of seed {seed}"
                i += 1
            signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                outcome = exercise(data)
                if extract_every and stats["executions"] % extract_every == 0:
                    exercise_extract(data, os.path.join(workdir, "x"))
                if how == "seed":
                    weights.append(8.0 if "ok" in outcome else 1.0)
                key = "/".join(outcome)
                stats["outcomes"][key] = stats["outcomes"].get(key, 0) + 1
            except (InvariantBroken, Hang) as e:
                if how == "seed":
                    weights.append(1.0)
                failure = {"from": name, "how": how, "error": str(e)[:4000]}
                if save_dir is not None:
                    save_dir.mkdir(parents=True, exist_ok=True)
                    out = save_dir / f"crash-{seed}-{stats['executions']}.bin"
                    out.write_bytes(data)
                    failure["saved"] = str(out)
                stats["failures"].append(failure)
                if len(stats["failures"]) >= max_failures:
                    break
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            stats["executions"] += 1
    finally:
        signal.signal(signal.SIGALRM, old)
    stats["seconds"] = round(time.monotonic() - start, 1)
    return stats


def limit_memory(extra_mb: int) -> None:
    """Cap this process's address space at its current size plus ``extra_mb`` MiB."""
    import resource
    try:
        with open("/proc/self/status") as f:
            vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    except (OSError, StopIteration):
        return
    limit = vm + extra_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))


def _atheris(seconds: float, seeds) -> int:
    """Coverage-guided fuzzing with atheris; only blockimg's own code is instrumented."""
    import importlib
    import atheris
    own = __spec__.name if __spec__ is not None else __name__   # helpers.fuzzer under -m too
    for name in [m for m in sys.modules
                 if m in ("blockimg", own) or m.startswith("blockimg.")]:
        del sys.modules[name]
    with atheris.instrument_imports(include=["blockimg"]):
        fresh = importlib.import_module(own)
        for fmt in fresh.readers():
            importlib.import_module(f"blockimg.{fmt}.reader")

    def target(data: bytes) -> None:
        fresh.exercise(data)  # InvariantBroken propagates: atheris saves the input
    corpus = Path(os.environ.get("TMPDIR", "/tmp")) / "blockimg-fuzz-corpus"
    corpus.mkdir(exist_ok=True)
    for name, data in seeds:
        if len(data) <= 1 << 20:
            (corpus / name.replace("/", "_").replace(":", "_")).write_bytes(data)
    atheris.Setup([sys.argv[0], str(corpus), f"-max_total_time={int(seconds)}",
                   "-timeout=10", "-rss_limit_mb=2048", "-max_len=1048576"], target)
    atheris.Fuzz()
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="tools/fuzz",
                                description="Fuzz blockimg's tar and FAT readers.")
    p.add_argument("--iterations", type=int, help="mutations to run (after the seeds)")
    p.add_argument("--seconds", type=float, help="run for this long")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=10.0, help="per-input alarm, seconds")
    p.add_argument("--memory-mb", type=int, default=1024,
                   help="address space allowed above the start-up size")
    p.add_argument("--save", type=Path, help="write failing inputs here")
    p.add_argument("--max-seed-mb", type=int, default=20,
                   help="leave out seed images larger than this (the FAT32 ones are 33 MiB)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--atheris", action="store_true", help="use atheris (coverage-guided)")
    args = p.parse_args(argv)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 3000))
    seeds = load_seeds(args.max_seed_mb << 20)
    # Import everything the readers use before capping memory.
    for name in readers():
        try:
            exercise(seeds[0][1], formats=(name,))
        except InvariantBroken:
            pass
    limit_memory(args.memory_mb)
    if args.atheris:
        return _atheris(args.seconds or 60, seeds)
    if args.iterations is None and args.seconds is None:
        args.iterations = 1000
    stats = run(args.iterations, seconds=args.seconds, seed=args.seed, timeout=args.timeout,
                save_dir=args.save, seeds=seeds)
    if args.json:
        print(json.dumps(stats, indent=1, sort_keys=True))
    else:
        print(f"{stats['executions']} executions from {stats['seeds']} seeds in "
              f"{stats['seconds']} s; {len(stats['failures'])} failures")
        for k, v in sorted(stats["outcomes"].items(), key=lambda kv: -kv[1])[:15]:
            print(f"  {v:7d}  {k}")
        for f in stats["failures"]:
            print(f"FAILURE from {f['from']} ({f['how']}): {f['error'][:2000]}"
                  + (f"\n  input: {f['saved']}" if "saved" in f else ""))
    return 1 if stats["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
