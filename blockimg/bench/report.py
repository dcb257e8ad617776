"""Printing the side-by-side tables, writing JSON and (with matplotlib) a PNG chart."""
from __future__ import annotations

import json
import os
from typing import Dict, List, Optional

__all__ = ["format_table", "write_json", "write_chart", "MiB"]

MiB = 1 << 20
#: The interpreter's own start-up: where a table has this row, every row also gets its
#: time over it ("/ python"; the start-up and one-file rows).
BASELINE = "python -c pass"


def _fmt_s(v: float) -> str:
    return f"{v:.3f}" if v < 10 else f"{v:.1f}"


def _fmt_rate(v: Optional[float]) -> str:
    if not v:
        return "-"
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}"


def format_table(title: str, results: Dict[str, dict], reference: str = "blockimg") -> str:
    """One operation on one corpus: a row per tool, ratios ``blockimg / tool`` (of the
    medians, and the median of the ratios of runs in the same round)."""
    ref = results.get(reference, {})
    ref_t = ref.get("median_s") if ref.get("status") == "ok" else None
    base = results.get(BASELINE, {})
    base_t = base.get("median_s") if base.get("status") == "ok" else None
    lines = [title,
             f"  {'tool':<22} {'median s':>9} {'CPU s':>6} {'MB/s':>7} {'peak RSS':>9} "
             f"{'private':>8} {'runs':>4}  {reference + ' / tool':>15} {'by round':>8}"
             + (f" {'/ python':>8}" if base_t else "")]
    for name, r in results.items():
        if r.get("status") != "ok":
            lines.append(f"  {name:<22} {r.get('status', '?')}")
            continue
        ratio = f"{ref_t / r['median_s']:.2f}x" if ref_t and r["median_s"] > 0 else "-"
        paired = f"{r['paired_ratio']:.2f}x" if r.get("paired_ratio") else "-"
        lim = "*" if r.get("limited") else " "
        cpu = r.get("cpu_s")
        cpu = "-" if cpu is None else _fmt_s(cpu)
        over = f" {r['median_s'] / base_t:>7.2f}x" if base_t else ""
        lines.append(f"  {name:<22} {_fmt_s(r['median_s']):>9} {cpu:>6} "
                     f"{_fmt_rate(r['mb_per_s']):>7} "
                     f"{r['max_rss'] / MiB:>7.1f}M{lim}{r['peak_private'] / MiB:>7.1f}M "
                     f"{r['n']:>4}  {ratio:>15} {paired:>8}{over}")
    return "\n".join(lines)


def write_json(path: str, doc: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, default=str)


def write_chart(path: str, doc: dict) -> Optional[str]:
    """A PNG of throughput and peak RSS per tool, one row per corpus and operation
    (None: no row, or no matplotlib)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = _chart_rows(doc)
    if not rows:
        return None
    fig, axes = plt.subplots(len(rows), 2, figsize=(11, 1.1 + 0.32 * sum(len(r[1]) for r in rows)),
                             squeeze=False,
                             gridspec_kw={"height_ratios": [len(r[1]) for r in rows]})
    for i, (label, ok) in enumerate(rows):
        _chart_row(axes[i], label, ok)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _chart_rows(doc: dict) -> List[tuple]:
    """``(label, [(tool, result)])`` of each corpus and operation with a tool that ran."""
    rows: List[tuple] = []
    for corpus, ops in doc.get("results", {}).items():
        for op, tools in ops.items():
            ok = [(n, r) for n, r in tools.items() if r.get("status") == "ok"]
            if ok:
                rows.append((f"{corpus}: {op}", ok))
    return rows


def _chart_row(axes, label: str, ok: List[tuple]) -> None:
    """Throughput (or seconds, when no tool has a rate) and peak RSS of one row."""
    names = [n for n, _ in ok]
    colors = ["tab:blue" if r["role"] == "blockimg" else
              "tab:gray" if r["role"] == "limit" else "tab:orange" for _, r in ok]
    ax = axes[0]
    if any(r.get("mb_per_s") for _, r in ok):
        ax.barh(names, [r["mb_per_s"] or 0 for _, r in ok], color=colors)
        ax.set_title(f"{label} - MB/s (median)", fontsize=8)
    else:
        ax.barh(names, [r["median_s"] for _, r in ok], color=colors)
        ax.set_title(f"{label} - seconds (median)", fontsize=8)
    ax.invert_yaxis()
    ax.tick_params(labelsize=7)
    ax = axes[1]
    ax.barh(names, [r["max_rss"] / MiB for _, r in ok], color=colors)
    ax.set_title(f"{label} - peak RSS MiB", fontsize=8)
    ax.invert_yaxis()
    ax.tick_params(labelsize=7)
