"""The side-by-side run: every tool of an operation, interleaved run by run."""
from __future__ import annotations

import re
import subprocess
import time
from typing import Callable, Dict, List, Optional, Sequence

from .measure import Measurement, MemoryLimit, median, run
from .suite import LOAD, Context, Tool, clear_output, tool_env, tools_for

__all__ = ["compare", "classify_failure", "summarize"]


def classify_failure(m: Measurement, limit: Optional[MemoryLimit] = None) -> str:
    """A short status for a failed run: "n/a: not implemented", "memory limit", "failed: ..."."""
    err = m.stderr
    if re.search(r"No module named '?blockimg\.|NotImplementedError|not implemented", err):
        return "n/a: not implemented"
    if m.killed_by_limit or "MemoryError" in err or "Cannot allocate memory" in err or \
            "Memory allocation" in err:
        return f"failed: over the memory limit{' ' + limit.describe() if limit else ''}"
    if m.returncode == -9:
        return "failed: killed (timeout?)"
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    last = lines[-1].strip() if lines else f"exit status {m.returncode}"
    return f"failed: {last[:150]}"


def summarize(runs: List[Measurement], data_bytes: int) -> dict:
    walls = [r.wall for r in runs]
    med = median(walls)
    return {"median_s": med, "min_s": min(walls), "max_s": max(walls), "n": len(walls),
            "mb_per_s": data_bytes / 1e6 / med if med > 0 else None,
            "max_rss": max(r.max_rss for r in runs),
            "peak_private": max(r.peak_private for r in runs),
            "cpu_s": median([r.user + r.sys for r in runs])}


def _pair(results: Dict[str, dict], reference: str = "blockimg") -> None:
    """Add ``paired_ratio``: the median over rounds of ``reference``'s time over the tool's
    in the same round. Conditions that drift during a run (a disk slowing as it fills,
    other load) move both runs of a round together, so this ratio is steadier than the
    ratio of medians."""
    ref = results.get(reference, {})
    mine = {r["round"]: r["wall"] for r in ref.get("runs", []) if "round" in r}
    for entry in results.values():
        ratios = [mine[r["round"]] / r["wall"] for r in entry.get("runs", [])
                  if r.get("round") in mine and r["wall"] > 0]
        if entry.get("status") == "ok" and ratios:
            entry["paired_ratio"] = median(ratios)


def compare(ctx: Context, op: str, *, reps: int = 5, skip: Sequence[str] = (),
            limit: Optional[MemoryLimit] = None, limit_all: bool = False,
            skip_slow: bool = False, tool_budget: float = 120.0, timeout: float = 600.0,
            log: Callable[[str], None] = lambda s: None) -> Dict[str, dict]:
    """Run ``op`` on ``ctx`` for every tool; returns {tool name: result dict}. An
    operation named ``*-loaded`` runs with :data:`~blockimg.bench.suite.LOAD` beside it."""
    if op.endswith("-loaded"):
        hog = subprocess.Popen(LOAD, stdin=subprocess.DEVNULL)
        try:
            time.sleep(0.2)                     # (running before the first run)
            return _compare(ctx, op, reps=reps, skip=skip, limit=limit, limit_all=limit_all,
                            skip_slow=skip_slow, tool_budget=tool_budget, timeout=timeout,
                            log=log)
        finally:
            hog.kill()
            hog.wait()
    return _compare(ctx, op, reps=reps, skip=skip, limit=limit, limit_all=limit_all,
                    skip_slow=skip_slow, tool_budget=tool_budget, timeout=timeout, log=log)


def _compare(ctx: Context, op: str, *, reps: int, skip: Sequence[str],
             limit: Optional[MemoryLimit], limit_all: bool, skip_slow: bool,
             tool_budget: float, timeout: float,
             log: Callable[[str], None]) -> Dict[str, dict]:
    tools = tools_for(op, skip=skip)
    results: Dict[str, dict] = {}
    active: List[Tool] = []
    budget_reps: Dict[str, int] = {}
    op = op[:-len("-loaded")] if op.endswith("-loaded") else op
    data_bytes = (ctx.info["largest_bytes"] if op.endswith("-cat") else
                  0 if op == "startup" else ctx.info["bytes"])
    for tool in tools:
        entry = {"role": tool.role, "status": "ok", "runs": []}
        results[tool.name] = entry
        why = _why_not(ctx, op, tool, skip_slow)
        if why is not None:
            entry["status"] = why if why.startswith(("n/a", "skipped")) else f"n/a: {why}"
            continue
        # warm-up: hot cache, and find out whether it works at all
        m = _once(ctx, tool, _limit_of(tool, limit, limit_all), timeout)
        if not m.ok:
            _failed(entry, m, limit)
            log(f"  {tool.name}: {entry['status']}")
            continue
        entry["warmup_s"] = m.wall
        budget_reps[tool.name] = max(1, min(reps, int(tool_budget / max(m.wall, 1e-3))))
        active.append(tool)
    for rep in range(reps):
        k = rep % max(len(active), 1)
        for tool in active[k:] + active[:k]:     # rotate: no tool always goes first
            entry = results[tool.name]
            if entry["status"] == "ok" and len(entry["runs"]) < budget_reps[tool.name]:
                _measure(ctx, tool, entry, rep, _limit_of(tool, limit, limit_all), limit,
                         timeout)
    for entry in results.values():
        _summarize_entry(entry, data_bytes, limit, limit_all)
    _pair(results)
    clear_output(ctx, tools[0] if tools else Tool("x", "peer", lambda c: []))
    return results


def _why_not(ctx: Context, op: str, tool: Tool, skip_slow: bool) -> Optional[str]:
    """Why ``tool`` does not run ``op`` (missing, slow and skipped, no image to read)."""
    why = tool.missing()
    if why is None and tool.slow and skip_slow:
        why = "skipped (slow; --slow to include)"
    fmt = op.split("-")[0]
    if why is None and op.endswith(("-extract", "-cat")) and fmt in ctx.broken:
        why = f"n/a: no {fmt} image to read ({ctx.broken[fmt]})"
    return why


def _limit_of(tool: Tool, limit: Optional[MemoryLimit], limit_all: bool):
    return limit if (tool.role == "blockimg" or limit_all) else None


def _failed(entry: dict, m: Measurement, limit: Optional[MemoryLimit]) -> None:
    entry["status"] = classify_failure(m, limit)
    entry["stderr"] = m.stderr[-1500:]


def _measure(ctx: Context, tool: Tool, entry: dict, rep: int, lim, limit, timeout: float) -> None:
    """One run of ``tool`` in round ``rep`` into ``entry`` (a failure ends its runs)."""
    m = _once(ctx, tool, lim, timeout)
    if not m.ok:
        _failed(entry, m, limit)
        return
    entry["runs"].append(dict(m.as_dict(), round=rep))
    entry.setdefault("_m", []).append(m)


def _summarize_entry(entry: dict, data_bytes: int, limit, limit_all: bool) -> None:
    ms = entry.pop("_m", [])
    if entry["status"] == "ok" and ms:
        entry.update(summarize(ms, data_bytes))
        entry["limited"] = bool(limit and (entry["role"] == "blockimg" or limit_all))
    elif entry["status"] == "ok":
        entry["status"] = "failed: no runs"


def _once(ctx: Context, tool: Tool, limit: Optional[MemoryLimit], timeout: float) -> Measurement:
    clear_output(ctx, tool)
    return run(tool.command(ctx), env=tool_env(tool), limit=limit, timeout=timeout)


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
