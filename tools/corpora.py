#!/usr/bin/env python3
"""Generate the benchmark corpora deterministically (seeded PRNG, fixed mtimes).

    python3 tools/corpora.py [OUT] [--only site,small,big] [--quick | --tiny]

Corpora (under OUT, default ``corpora/``, which is git-ignored):

* ``site``  -- ~300 files, ~10 MB: html/css/js/md text and binary "images",
  nested a few levels, with lower-case, 13-character and long names;
* ``small`` -- ~20,000 files of 1-16 KiB (~175 MB) in 100 directories;
* ``big``   -- 4 files of 256 MiB.

``--quick`` makes smaller variants (small: 2,000 files; big: 4 x 32 MiB),
``--tiny`` very small ones (for tests). Each corpus records its parameters in
``OUT/<name>.json``; an existing corpus with the same parameters is kept.
Standard library only (runs inside the emulated ARM roots too).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
from typing import Dict, List, Tuple

MTIME = 1704067200  # 2024-01-01T00:00:00Z
VERSION = 1
KiB = 1024
MiB = 1024 * 1024

WORDS = ("mirage unikernel block device image tar fat cluster sector kernel ocaml "
         "network stack page static site serve request response header body table "
         "index style script content layout build read write memory board arm fast "
         "small file directory volume label entry chain boot record data offset").split()

PRESETS: Dict[str, Dict[str, Dict[str, int]]] = {
    "full": {"site": {"files": 300, "bytes": 10_000_000},
             "small": {"files": 20_000, "min": 1 * KiB, "max": 16 * KiB},
             "big": {"files": 4, "size": 256 * MiB}},
    "quick": {"site": {"files": 300, "bytes": 10_000_000},
              "small": {"files": 2_000, "min": 1 * KiB, "max": 16 * KiB},
              "big": {"files": 4, "size": 32 * MiB}},
    "tiny": {"site": {"files": 40, "bytes": 400_000},
             "small": {"files": 200, "min": 1 * KiB, "max": 16 * KiB},
             "big": {"files": 2, "size": 2 * MiB}},
}


def _text(rng: random.Random, size: int, kind: str) -> bytes:
    """Plausible text of about ``size`` bytes in the style of ``kind``."""
    out: List[str] = []
    n = 0
    opener = {"html": "<!doctype html>\n<html><head><title>page</title></head><body>\n",
              "css": "/* style */\n", "js": "'use strict';\n", "md": "# Notes\n\n"}[kind]
    out.append(opener)
    n += len(opener)
    while n < size:
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 14)))
        if kind == "html":
            line = f"<p class=\"{rng.choice(WORDS)}\">{words}</p>\n"
        elif kind == "css":
            line = f".{rng.choice(WORDS)}-{rng.randint(0, 99)} {{ margin: {rng.randint(0, 40)}px; }}\n"
        elif kind == "js":
            line = f"function {rng.choice(WORDS)}{rng.randint(0, 999)}(x) {{ return x + {rng.randint(0, 9)}; }} // {words}\n"
        else:
            line = words.capitalize() + ".\n"
        out.append(line)
        n += len(line)
    return "".join(out).encode()[:size]


def _binary(rng: random.Random, size: int, magic: bytes = b"\x89PNG\r\n\x1a\n") -> bytes:
    return (magic + rng.randbytes(max(size - len(magic), 0)))[:size]


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def _site_names(rng: random.Random, count: int) -> List[Tuple[str, str]]:
    """(relative path, kind) for the site: nested dirs, mixed name styles."""
    styles = [
        lambda i: f"page{i}",                                   # lower-case 8.3 candidates
        lambda i: f"PAGE{i:04d}",                               # upper-case 8.3
        lambda i: f"abcdefghi{i:04d}"[:13],                     # 13 characters
        lambda i: f"a-rather-long-file-name-for-testing-lfn-entries-number-{i:05d}",
        lambda i: f"Mixed Case {i}",
        lambda i: f"v{i}.min",                                   # two dots
    ]
    out = []
    seen = set()
    specials = [("index.html", "html"), ("README.md", "md"), ("favicon.ico", "img")]
    for p, k in specials:
        out.append((p, k))
        seen.add(p.lower())
    i = 0
    while len(out) < count:
        i += 1
        kind = rng.choices(["html", "css", "js", "md", "img"], [30, 8, 8, 14, 40])[0]
        d = rng.choice({"css": ["css", "assets/fonts"], "js": ["js", ""],
                        "img": ["img", "img/photos", "img/photos/2023", "Downloads"],
                        "md": ["docs", "docs/guide", "docs/guide/advanced-configuration-options"],
                        "html": ["", "blog", "blog/posts", "docs"]}[kind])
        ext = {"img": rng.choice(["png", "jpg", "webp"])}.get(kind, kind)
        base = rng.choice(styles)(i)
        path = f"{d}/{base}.{ext}" if d else f"{base}.{ext}"
        if path.lower() in seen:
            continue
        seen.add(path.lower())
        out.append((path, kind))
    return out


def make_site(root: str, params: Dict[str, int], seed: int) -> None:
    rng = random.Random(seed)
    names = _site_names(rng, params["files"])
    images = sum(1 for _, k in names if k == "img")
    texts = len(names) - images
    text_budget = params["bytes"] * 2 // 10
    img_budget = params["bytes"] - text_budget
    for path, kind in names:
        full = os.path.join(root, *path.split("/"))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        if kind == "img":
            mean = img_budget // max(images, 1)
            size = max(64, int(rng.expovariate(1 / mean)))
            _write(full, _binary(rng, size))
        else:
            mean = text_budget // max(texts, 1)
            size = max(32, int(rng.uniform(0.1, 1.9) * mean))
            _write(full, _text(rng, size, kind))


def make_small(root: str, params: Dict[str, int], seed: int) -> None:
    rng = random.Random(seed)
    n = params["files"]
    per_dir = 200
    block = rng.randbytes(64 * KiB)
    for i in range(n):
        d = os.path.join(root, f"d{i // (per_dir * 10):02d}", f"s{(i // per_dir) % 10:d}")
        if i % per_dir == 0:
            os.makedirs(d, exist_ok=True)
        size = rng.randint(params["min"], params["max"])
        start = rng.randrange(0, len(block) - size)
        name = f"f{i:05d}.dat" if i % 10 else f"file-number-{i:05d}.bin"
        _write(os.path.join(d, name), i.to_bytes(4, "little") + block[start:start + size - 4])


def make_big(root: str, params: Dict[str, int], seed: int) -> None:
    rng = random.Random(seed)
    block = rng.randbytes(MiB)
    os.makedirs(root, exist_ok=True)
    for k in range(params["files"]):
        with open(os.path.join(root, f"big{k}.bin"), "wb") as f:
            left = params["size"]
            chunk = 0
            while left > 0:
                # every MiB differs (a counter at its start), so no two chunks are equal
                piece = (chunk.to_bytes(8, "little") + k.to_bytes(8, "little")
                         + block[16:])[:min(left, MiB)]
                f.write(piece)
                left -= len(piece)
                chunk += 1


MAKERS = {"site": make_site, "small": make_small, "big": make_big}


def _fix_times(root: str) -> None:
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for f in filenames:
            os.utime(os.path.join(dirpath, f), (MTIME, MTIME))
        os.utime(dirpath, (MTIME, MTIME))


def tree_stats(root: str) -> Dict[str, int]:
    files = dirs = total = 0
    largest = ("", -1)
    for dirpath, dirnames, filenames in os.walk(root):
        dirs += len(dirnames)
        for f in filenames:
            p = os.path.join(dirpath, f)
            s = os.path.getsize(p)
            files += 1
            total += s
            if s > largest[1]:
                largest = (os.path.relpath(p, root).replace(os.sep, "/"), s)
    return {"files": files, "directories": dirs, "bytes": total,
            "largest": largest[0], "largest_bytes": largest[1]}


def make(out: str, name: str, preset: str, seed: int = 5, force: bool = False) -> dict:
    """Make corpus ``name`` under ``out`` (kept when already made with the same parameters)."""
    params = PRESETS[preset][name]
    key = {"version": VERSION, "name": name, "preset": preset, "params": params, "seed": seed}
    info_path = os.path.join(out, f"{name}.json")
    root = os.path.join(out, name)
    if not force and os.path.isdir(root) and os.path.exists(info_path):
        with open(info_path) as f:
            info = json.load(f)
        if info.get("key") == key:
            return info
    if os.path.exists(root):
        shutil.rmtree(root)
    os.makedirs(root)
    MAKERS[name](root, params, seed + sum(map(ord, name)))
    _fix_times(root)
    info = {"key": key, "path": root, **tree_stats(root)}
    info["digest"] = _digest(root)
    with open(info_path, "w") as f:
        json.dump(info, f, indent=1)
    return info


def _digest(root: str) -> str:
    """SHA-256 over paths and sizes (cheap; proves the layout is the same run to run)."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for f in sorted(filenames):
            p = os.path.join(dirpath, f)
            h.update(f"{os.path.relpath(p, root)}\0{os.path.getsize(p)}\n".encode())
    return h.hexdigest()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", nargs="?", default="corpora", help="output directory")
    ap.add_argument("--only", default="site,small,big", help="comma-separated corpora")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="smaller small/big corpora")
    g.add_argument("--tiny", action="store_true", help="very small corpora (tests)")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--force", action="store_true", help="regenerate even if present")
    args = ap.parse_args(argv)
    preset = "tiny" if args.tiny else "quick" if args.quick else "full"
    os.makedirs(args.out, exist_ok=True)
    for name in [n.strip() for n in args.only.split(",") if n.strip()]:
        if name not in MAKERS:
            ap.error(f"unknown corpus {name!r} (have: {', '.join(MAKERS)})")
        info = make(args.out, name, preset, args.seed, args.force)
        print(f"{info['path']}: {info['files']} files in {info['directories']} directories, "
              f"{info['bytes'] / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
