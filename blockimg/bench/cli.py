"""``python -m blockimg.bench``: side-by-side runs against the peers, and the scale run.

    python -m blockimg.bench [run] [--corpus site,small] [--ops fat-build,...] [--reps 5]
                             [--memory-limit 64M] [--limit-type data|as|cgroup] [--out DIR]
    python -m blockimg.bench scale [--formats fat,tar] [--memory-limit 64M]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from typing import List, Optional

from .measure import LIMIT_TYPES, MemoryLimit, cgroup_available
from .suite import (OPERATIONS, REFERENCES, REPO, Context, fat_size_for, prepare_disk,
                    prepare_images, prepare_sources, prepare_startup)

__all__ = ["main"]

#: Seconds ext4 keeps skipping freed inodes (fs/ext4/ialloc.c, recently_deleted), plus margin.
SETTLE_S = 65

DEFAULT_OPS = ["startup", "fat-build", "tar-build", "fat-extract", "fat-cat", "tar-extract", "tar-cat",
               "fat-build-loaded", "tar-build-loaded", "fat-extract-loaded"]


#: ``--small-ops``: the rows of issue 16's table, each on the corpus it is about --
#: start-up (each common command on a one-file image) and the example site's builds on
#: ``site``; one file out of the 20,000-file images and ``-j auto`` against ``-j 1``,
#: idle and with one CPU kept busy, on ``small``.
SMALL_OPS = {"site": ["startup", "fat-build", "tar-build"],
             "small": ["fat-cat", "tar-cat", "fat-build", "fat-build-loaded"]}


def _size(text: str) -> int:
    t = text.strip().upper().rstrip("B").rstrip("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    if t and t[-1] in mult:
        return int(float(t[:-1]) * mult[t[-1]])
    return int(t)


def _load_corpus(corpora: str, name: str, preset: Optional[str]) -> dict:
    info_path = os.path.join(corpora, f"{name}.json")
    root = os.path.join(corpora, name)
    if not (os.path.isdir(root) and os.path.exists(info_path)) or preset:
        gen = os.path.join(REPO, "tools", "corpora.py")
        if not os.path.exists(gen):
            raise SystemExit(f"bench: no corpus {root}; make it with tools/make-corpora")
        cmd = [sys.executable, gen, corpora, "--only", name]
        if preset in ("quick", "tiny"):
            cmd.append("--" + preset)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(info_path) as f:
        info = json.load(f)
    info["path"] = root
    return info


def _machine() -> dict:
    d = {"machine": platform.machine(), "python": platform.python_version(),
         "cpus": os.cpu_count(), "kernel": platform.release(),
         "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    try:
        with open("/proc/meminfo") as f:
            d["mem_total_kib"] = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    try:
        d["blockimg_source"] = subprocess.run(
            ["git", "-C", REPO, "describe", "--always", "--dirty"], capture_output=True,
            text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        d["blockimg_source"] = None
    for prog in ("tar", "bsdtar", "mkfs.fat", "mcopy"):
        try:
            out = subprocess.run([prog, "--version"], capture_output=True, text=True,
                                 stdin=subprocess.DEVNULL, timeout=10)
            text = (out.stdout or out.stderr).strip().splitlines()
            d[prog] = text[0] if text else "?"
        except (OSError, subprocess.SubprocessError):
            d[prog] = None
    return d


def _limit(args) -> Optional[MemoryLimit]:
    if not args.memory_limit:
        return None
    try:
        return MemoryLimit(args.memory_limit, args.limit_type)
    except OSError as e:
        raise SystemExit(f"bench: cannot set a {args.limit_type} memory limit: {e}")


def cmd_run(args) -> int:
    preset = "tiny" if args.tiny else "quick" if args.quick else None
    ops = _operations(args.ops)
    plan = SMALL_OPS if args.small_ops else {}
    if plan:
        args.corpus = ",".join(plan)
        _operations(",".join(o for v in plan.values() for o in v))
    limit = _limit(args)
    work = args.work or tempfile.mkdtemp(prefix="blockimg-bench-")
    os.makedirs(work, exist_ok=True)
    # Start-up counts: blockimg's modules compiled once, as an installed package has them
    # (PYTHONDONTWRITEBYTECODE would otherwise make every run compile them).
    subprocess.run([args.python, "-m", "compileall", "-q", os.path.join(REPO, "blockimg")],
                   stdout=subprocess.DEVNULL, check=False)
    from .compare import now
    doc = {"label": args.label, "started": now(), "machine": _machine(),
           "args": {k: v for k, v in vars(args).items() if k != "func"},
           "memory_limit": limit.describe() if limit else None, "corpora": {}, "results": {}}
    texts: List[str] = []
    try:
        for name in [c.strip() for c in args.corpus.split(",") if c.strip()]:
            ops = plan.get(name, ops)
            info = _load_corpus(args.corpora, name, preset)
            doc["corpora"][name] = {k: info.get(k) for k in
                                    ("files", "directories", "bytes", "largest", "largest_bytes")}
            ctx = _context(args, name, info, work, ops)
            doc["results"][name] = {}
            _run_corpus(args, ctx, info, ops, limit, doc, texts)
    finally:
        if limit is not None:
            limit.close()
        if not args.keep_work and not args.work:
            import shutil
            shutil.rmtree(work, ignore_errors=True)
    _finish(args, doc, texts, limit)
    return 0


def _operations(text: str) -> List[str]:
    ops = [o.strip() for o in text.split(",") if o.strip()]
    for o in ops:
        if o not in OPERATIONS:
            raise SystemExit(f"bench: unknown operation {o} (have: {', '.join(OPERATIONS)})")
    return ops


def _context(args, name: str, info: dict, work: str, ops: List[str]) -> Context:
    """The context of one corpus's runs, with the images and sources its operations read."""
    ctx = Context(corpus=info["path"], name=name, info=info, work=os.path.join(work, name),
                  python=args.python, sync_between=getattr(args, "sync", True),
                  set_aside=info["files"] >= 1000)
    os.makedirs(ctx.work, exist_ok=True)
    ctx.fat_size = fat_size_for(info)
    ctx.one_file = info["largest"]
    need = {o.split("-")[0] for o in ops
            if o.replace("-loaded", "").endswith(("-extract", "-cat"))}
    if need:
        ctx.broken = prepare_images(ctx, read_from=args.read_from, formats=sorted(need))
    if "sources" in ops:
        ctx.broken.update(prepare_sources(ctx))
    if "disk" in ops:
        ctx.broken.update(prepare_disk(ctx))
    if "startup" in ops:
        ctx.broken.update(prepare_startup(ctx))
    if args.same_size:
        ctx.blockimg_fat_size = ctx.fat_size
    return ctx


def _run_corpus(args, ctx: Context, info: dict, ops: List[str], limit, doc: dict,
                texts: List[str]) -> None:
    """Every operation on one corpus: its table printed and kept, ``doc`` updated."""
    from .compare import compare
    from .report import format_table, write_json
    name = ctx.name
    skip_slow = not args.slow and info["files"] > args.slow_max_files
    dropped_at = None
    for op in ops:
        if op.replace("-loaded", "").endswith("-extract") and dropped_at is not None:
            _settle(name, dropped_at)
        print(f"[{name}] {op} ...", file=sys.stderr, flush=True)
        res = compare(ctx, op, reps=args.reps, skip=args.skip, limit=limit,
                      limit_all=args.limit_all, skip_slow=skip_slow,
                      tool_budget=args.tool_budget, timeout=args.timeout,
                      log=lambda s: print(s, file=sys.stderr, flush=True))
        if ctx.drop_aside() and info["files"] >= 1000:
            os.sync()
            dropped_at = time.monotonic()
        doc["results"][name][op] = res
        title = _title(name, info, op)
        if op == "disk" and ctx.half_images:
            # The row is two volumes of 512 MiB: the full ``big`` corpus, not --quick.
            title += " - volumes of " + " and ".join(
                f"{os.path.getsize(p) / 2**20:.0f} MiB" for p in ctx.half_images
                if os.path.exists(p))
        text = format_table(title, res, REFERENCES.get(op, "blockimg"))
        texts.append(text)
        print(text + "\n", flush=True)
        if args.out:
            write_json(os.path.join(args.out, "results.json"), doc)


def _settle(name: str, dropped_at: float) -> None:
    """ext4 passes over inodes freed in the last 60 s when it allocates new ones: let the
    trees deleted after the last operation age first."""
    wait = SETTLE_S - (time.monotonic() - dropped_at)
    if wait > 0:
        print(f"[{name}] waiting {wait:.0f} s for deleted outputs to age",
              file=sys.stderr, flush=True)
        time.sleep(wait)


def _title(name: str, info: dict, op: str) -> str:
    mb = info["bytes"] / 1e6
    what = (f"one file of {info['largest_bytes'] / 1e6:.1f} MB"
            if op.endswith("-cat") else "start-up" if op == "startup" else
            f"{info['files']} files, {mb:.1f} MB")
    return f"{name} ({what}) - {op}" + (
        " (one other process keeps a CPU busy)" if op.endswith("-loaded") else "")


def _finish(args, doc: dict, texts: List[str], limit) -> None:
    """The notes under the tables; with ``--out``, the results, tables and chart."""
    from .compare import now
    from .report import write_chart, write_json
    if limit:
        print(f"* blockimg rows ran under a {limit.describe()} memory limit", flush=True)
    print("peak RSS: child process tree (wait4); private: sampled RssAnon of the process "
          "(mapped image pages are page cache and not counted)")
    if hasattr(os, "getloadavg"):
        start = doc["machine"].get("loadavg") or [0]
        print(f"load average: {start[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end "
              f"({os.cpu_count()} CPUs; other work on the machine slows every tool)")
    if args.out:
        doc["finished"] = now()
        doc["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
        write_json(os.path.join(args.out, "results.json"), doc)
        with open(os.path.join(args.out, "results.txt"), "w") as f:
            f.write("\n\n".join(texts) + "\n")
        png = write_chart(os.path.join(args.out, "results.png"), doc)
        print(f"results: {os.path.join(args.out, 'results.json')}"
              + (f", chart {png}" if png else " (no chart: matplotlib not importable)"))


def cmd_scale(args) -> int:
    from .report import write_json
    from .scale import FILE_SIZES, IMAGE_SIZES, format_scale, scale_run
    limit = _limit(args)
    info = _load_corpus(args.corpora, "site", None)
    work = args.work or tempfile.mkdtemp(prefix="blockimg-scale-")
    def sizes(text, default):
        if text is None:
            return default
        return [_size(s) for s in text.split(",") if s.strip() and s.strip() != "none"]
    image_sizes = sizes(args.image_sizes, IMAGE_SIZES)
    file_sizes = sizes(args.file_sizes, FILE_SIZES)
    try:
        doc = scale_run(info["path"], work, python=args.python,
                        formats=[f for f in args.formats.split(",") if f],
                        image_sizes=image_sizes, file_sizes=file_sizes, limit=limit,
                        peers=args.peers, timeout=args.timeout,
                        log=lambda s: print(s, file=sys.stderr, flush=True))
    finally:
        if limit is not None:
            limit.close()
        if not args.work:
            import shutil
            shutil.rmtree(work, ignore_errors=True)
    doc["memory_limit"] = limit.describe() if limit else None
    doc["machine"] = _machine()
    text = format_scale(doc)
    print(text)
    if args.out:
        write_json(os.path.join(args.out, "scale.json"), doc)
        with open(os.path.join(args.out, "scale.txt"), "w") as f:
            f.write(text + "\n")
    return 0


def cmd_limits(args) -> int:
    """Which memory-limit types work here with numpy loaded."""
    from .measure import run
    env = dict(os.environ)
    code = ("import numpy, resource; "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)")
    probe = ("x = bytearray(%d); print('allocated')" % (args.memory_limit * 2))
    for kind in LIMIT_TYPES:
        try:
            lim = MemoryLimit(args.memory_limit, kind)
        except OSError as e:
            print(f"{kind:>6}: unavailable ({e})")
            continue
        try:
            a = run([args.python, "-c", code], env=env, limit=lim)
            b = run([args.python, "-c", probe], env=env, limit=lim)
        finally:
            lim.close()
        ok_numpy = "works" if a.ok else f"FAILS ({(a.stderr.strip().splitlines() or ['?'])[-1][:80]})"
        enforced = "enforced" if not b.ok else "NOT enforced"
        print(f"{kind:>6}: import numpy under {args.memory_limit >> 20} MiB {ok_numpy}; "
              f"allocating twice the limit: {enforced}")
    print(f"cgroup: {cgroup_available() or 'no writable memory cgroup'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m blockimg.bench", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command")

    def common(q):
        q.add_argument("--corpora", default="corpora", help="corpora directory (tools/make-corpora)")
        q.add_argument("--python", default=sys.executable, help="interpreter for python tools")
        q.add_argument("--memory-limit", type=_size, metavar="N",
                       help="cap blockimg runs at N bytes (e.g. 64M)")
        q.add_argument("--limit-type", choices=LIMIT_TYPES, default="data",
                       help="RLIMIT_DATA (default; works with numpy), RLIMIT_AS, or a cgroup")
        q.add_argument("--work", help="scratch directory (default: a temporary one)")
        q.add_argument("--out", help="write results.json/.txt/.png here")
        q.add_argument("--label", default="", help="free text stored with the results")

    r = sub.add_parser("run", help="side-by-side benchmark (the default)")
    common(r)
    r.add_argument("--corpus", default="site,small", help="corpora, comma-separated")
    r.add_argument("--ops", default=",".join(DEFAULT_OPS), help="operations, comma-separated")
    r.add_argument("--reps", type=int, default=5, help="timed runs per tool")
    r.add_argument("--skip", action="append", default=[], metavar="TOOL",
                   help="leave a tool out (repeatable), e.g. --skip pyfatfs")
    r.add_argument("--slow", action="store_true", help="run slow peers (pyfatfs) on big corpora")
    r.add_argument("--slow-max-files", type=int, default=5000,
                   help="without --slow, skip slow peers above this many files")
    r.add_argument("--tool-budget", type=float, default=120.0,
                   help="fewer repetitions for a tool whose runs would exceed this many seconds")
    r.add_argument("--timeout", type=float, default=600.0, help="kill a run after this long")
    r.add_argument("--limit-all", action="store_true", help="cap the peers too")
    r.add_argument("--read-from", choices=["peer", "blockimg"], default="peer",
                   help="who makes the images the read operations read")
    r.add_argument("--same-size", action="store_true",
                   help="give blockimg the peers' FAT volume size (default: its own minimum)")
    g = r.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="quick corpora (generated if needed)")
    g.add_argument("--tiny", action="store_true", help="tiny corpora (generated if needed)")
    r.add_argument("--small-ops", action="store_true",
                   help="the small-operation rows (start-up, one-file reads, the example "
                        "site's builds, -j auto vs -j 1 idle and loaded), each on its corpus "
                        "(site, small); --corpus and --ops are ignored")
    r.add_argument("--keep-work", action="store_true")
    r.add_argument("--no-sync", dest="sync", action="store_false",
                   help="do not sync (untimed) before every run")
    r.set_defaults(func=cmd_run)

    s = sub.add_parser("scale", help="peak memory as image and file sizes grow")
    common(s)
    s.add_argument("--formats", default="fat,tar")
    s.add_argument("--image-sizes", help="e.g. 64M,256M,1G,4G,16G,32G")
    s.add_argument("--file-sizes", help="e.g. 64M,256M,1G,4G")
    s.add_argument("--peers", action="store_true", help="also pyfatfs and mkfs.fat+mcopy (FAT)")
    s.add_argument("--timeout", type=float, default=600.0, help="kill a run after this long")
    s.set_defaults(func=cmd_scale)

    lm = sub.add_parser("limits", help="which memory-limit types work here")
    lm.add_argument("--memory-limit", type=_size, default=64 << 20)
    lm.add_argument("--python", default=sys.executable)
    lm.set_defaults(func=cmd_limits)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("run", "scale", "limits", "-h", "--help"):
        argv.insert(0, "run")
    args = build_parser().parse_args(argv)
    return args.func(args)
