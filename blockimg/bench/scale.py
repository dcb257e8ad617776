"""Scale run: peak memory of build and read as the image or the file grows.

Two series per format: the same small site in images of 64 MiB ... 32 GiB
(``--size``, sparse files), and one file of 64 MiB ... 4 GiB (a sparse source
file; the reads through the image are real). Memory must stay flat.
"""
from __future__ import annotations

import os
import shutil
from typing import Callable, Dict, List, Optional, Sequence

from .measure import MemoryLimit, Measurement, run as _run
from .suite import MTOOLS_ENV, PEERS, blockimg_env
from .compare import classify_failure

__all__ = ["IMAGE_SIZES", "FILE_SIZES", "scale_run", "format_scale"]

MiB = 1 << 20
GiB = 1 << 30
IMAGE_SIZES = [64 * MiB, 256 * MiB, 1 * GiB, 4 * GiB, 16 * GiB, 32 * GiB]
FILE_SIZES = [64 * MiB, 256 * MiB, 1 * GiB, 4 * GiB]
FAT_MAX_FILE = (1 << 32) - 1


def _env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = dict(os.environ)
    env.update(blockimg_env())
    env.update(MTOOLS_ENV)
    env.update(extra or {})
    return env


def _human(n: int) -> str:
    for unit, size in (("G", GiB), ("M", MiB)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return f"{n / GiB:.2f}G" if n >= GiB else f"{n / MiB:.1f}M"


def _row(m: Measurement, limit: Optional[MemoryLimit]) -> dict:
    if not m.ok:
        return {"status": classify_failure(m, limit), "stderr": m.stderr[-800:]}
    return {"status": "ok", "wall": m.wall, "max_rss": m.max_rss, "peak_private": m.peak_private}


def _clean(*paths: str) -> None:
    for p in paths:
        if os.path.isdir(p):
            shutil.rmtree(p)
        elif os.path.lexists(p):
            os.unlink(p)


def scale_run(site: str, work: str, *, python: str, formats: Sequence[str] = ("fat", "tar"),
              image_sizes: Sequence[int] = IMAGE_SIZES, file_sizes: Sequence[int] = FILE_SIZES,
              limit: Optional[MemoryLimit] = None, peers: bool = False,
              timeout: float = 600.0, log: Callable[[str], None] = print) -> dict:
    """Returns {"image": {fmt: [rows]}, "file": {fmt: [rows]}}."""
    os.makedirs(work, exist_ok=True)
    img = os.path.join(work, "scale.img")
    out = os.path.join(work, "scale-out")
    env = _env()
    bi = [python, "-m", "blockimg"]
    largest = _largest(site)
    doc: dict = {"image": {}, "file": {}}

    def run(cmd, env, limit=None):
        return _run(cmd, env=env, limit=limit, timeout=timeout)

    for fmt in formats:
        rows: List[dict] = []
        for size in image_sizes:
            row: dict = {"size": size}
            _clean(img, out)
            build = bi + ["create", site, "-o", img, "--format", fmt, "--size", str(size), "-q"]
            row["build"] = _row(run(build, env=env, limit=limit), limit)
            if fmt == "fat" and _needs_generic(row["build"]):
                row["build"] = _row(run(build + GENERIC, env=env, limit=limit), limit)
                row["target"] = "generic"
            if row["build"]["status"] == "ok":
                row["extract"] = _row(run(bi + ["extract", img, out], env=env, limit=limit), limit)
                row["cat"] = _row(run(bi + ["cat", img, largest], env=env, limit=limit), limit)
                row["cat_mmap"] = _row(run(bi + ["cat", "mmap:" + img, largest], env=env,
                                           limit=limit), limit)
            if peers and fmt == "fat":
                _clean(img)
                row["pyfatfs_build"] = _row(run([python, PEERS, "pyfatfs-create", img, site,
                                                 str(size)], env=env), None)
                if row["pyfatfs_build"]["status"] == "ok":
                    row["pyfatfs_cat"] = _row(run([python, PEERS, "pyfatfs-cat", img, largest],
                                                  env=env), None)
                _clean(img)
                row["mkfs_mcopy"] = _row(run(
                    f"mkfs.fat -C {img} {size // 1024} >/dev/null && cd '{site}' && "
                    f"mcopy -s -Q -i {img} -- * ::/", env=env), None)
                if row["mkfs_mcopy"]["status"] == "ok":
                    row["mtype"] = _row(run(["mtype", "-i", img, "::/" + largest], env=env), None)
            log(f"  {fmt} image {_human(size)}{' (generic)' if 'target' in row else ''}: "
                + _brief(row))
            rows.append(row)
        doc["image"][fmt] = rows
        rows = []
        src = os.path.join(work, "one-file")
        for size in file_sizes:
            if fmt == "fat":
                size = min(size, FAT_MAX_FILE)
            _clean(src, img, out)
            os.makedirs(src)
            with open(os.path.join(src, "big.bin"), "wb") as f:
                f.write(b"blockimg scale run\n")
                f.truncate(size)
            row = {"size": size}
            build = bi + ["create", src, "-o", img, "--format", fmt, "-q"]
            row["build"] = _row(run(build, env=env, limit=limit), limit)
            if fmt == "fat" and _needs_generic(row["build"]):
                _clean(img)
                row["build"] = _row(run(build + GENERIC, env=env, limit=limit), limit)
                row["target"] = "generic"
            if row["build"]["status"] == "ok":
                row["cat"] = _row(run(bi + ["cat", img, "big.bin"], env=env, limit=limit), limit)
                row["cat_mmap"] = _row(run(bi + ["cat", "mmap:" + img, "big.bin"], env=env,
                                           limit=limit), limit)
            log(f"  {fmt} one file {_human(size)}{' (generic)' if 'target' in row else ''}: "
                + _brief(row))
            rows.append(row)
        doc["file"][fmt] = rows
        _clean(src, img, out)
    return doc


# The Mirage target is FAT16 only (ocaml-fat); past FAT16's reach the scale run
# measures the generic target (FAT32) and marks the row.
GENERIC = ["--target", "generic"]


def _needs_generic(result: dict) -> bool:
    status = result.get("status", "")
    return "FAT16" in status and ("cannot be" in status or "allows at most" in status)


def _largest(root: str) -> str:
    best = ("", -1)
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            s = os.path.getsize(p)
            if s > best[1]:
                best = (os.path.relpath(p, root).replace(os.sep, "/"), s)
    return best[0]


def _cell(r: Optional[dict], what: str = "memory") -> str:
    if r is None:
        return "-"
    if r["status"] != "ok":
        return "n/a" if r["status"].startswith("n/a") else "FAIL"
    if what == "wall":
        return f"{r['wall']:.2f}"
    return f"{r['max_rss'] / MiB:.1f}/{r['peak_private'] / MiB:.1f}"


def _brief(row: dict) -> str:
    parts = []
    for k, v in row.items():
        if isinstance(v, dict):
            parts.append(f"{k} {_cell(v)}" + ("" if v["status"] == "ok" else f" ({v['status']})"))
    return ", ".join(parts)


def format_scale(doc: dict) -> str:
    """Tables of peak RSS / peak private MiB per size."""
    out = []
    for series, label in (("image", "site in an image of"), ("file", "one file of")):
        for fmt, rows in doc.get(series, {}).items():
            if rows:
                out += _scale_tables(fmt, label, rows)
    if any(r.get("target") == "generic" for series in doc.values() if isinstance(series, dict)
           for rows in series.values() if isinstance(rows, list) for r in rows):
        out.append("* FAT32 (--target generic): the Mirage target is FAT16 only")
    return "\n".join(out)


def _scale_tables(fmt: str, label: str, rows: List[dict]) -> List[str]:
    """The memory and the time table of one format's series: a column per tool."""
    keys: List[str] = []
    for r in rows:
        keys += [k for k in r if isinstance(r[k], dict) and k not in keys]
    out = []
    for what, unit in (("memory", "peak RSS / private MiB"), ("wall", "seconds")):
        out.append(f"{fmt}: {label} ... ({unit})")
        out.append("  " + f"{'size':>8} " + " ".join(f"{k:>13}" for k in keys))
        for r in rows:
            mark = "*" if r.get("target") == "generic" else " "
            out.append("  " + f"{_human(r['size']):>8}{mark}"
                       + " ".join(f"{_cell(r.get(k), what):>13}" for k in keys))
    return out
