"""The benchmark machinery itself: corpora, measuring a child, memory caps, reports."""
from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

from blockimg.bench import measure
from blockimg.bench.compare import classify_failure, summarize
from blockimg.bench.report import format_table, write_json
from blockimg.bench.suite import OPERATIONS, fat_size_for

ROOT = Path(__file__).resolve().parents[2]


def _corpora():
    spec = importlib.util.spec_from_file_location("corpora_t", ROOT / "tools" / "corpora.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_corpora_are_deterministic(tmp_path):
    mod = _corpora()
    a = mod.make(str(tmp_path / "a"), "site", "tiny")
    b = mod.make(str(tmp_path / "b"), "site", "tiny")
    assert a["digest"] == b["digest"] and a["files"] == 40
    for name in ("index.html", a["largest"]):
        pa, pb = tmp_path / "a" / "site" / name, tmp_path / "b" / "site" / name
        assert pa.read_bytes() == pb.read_bytes()
        assert pa.stat().st_mtime == mod.MTIME
    # kept when asked again with the same parameters
    assert mod.make(str(tmp_path / "a"), "site", "tiny") == a


def test_corpora_names_cover_fat_cases(tmp_path):
    mod = _corpora()
    info = mod.make(str(tmp_path), "site", "full")
    names = [p.name for p in (tmp_path / "site").rglob("*")]
    stems = [n.rsplit(".", 1)[0] for n in names]
    assert any(len(s) == 13 for s in stems)
    assert any(len(n) > 40 for n in names)
    assert any(n != n.upper() and len(n) <= 12 for n in names)
    assert 250 <= info["files"] <= 350 and 5e6 < info["bytes"] < 15e6


def test_run_measures_child_not_parent():
    m = measure.run([sys.executable, "-c", "x = bytearray(60 << 20); import time; time.sleep(0.05)"])
    assert m.ok and m.wall > 0.05
    assert m.max_rss >= 60 << 20
    small = measure.run(["true"])
    if measure.gnu_time():
        assert small.max_rss < 8 << 20, "peak RSS of `true` should not include this process"


def test_memory_limit_data_enforced():
    lim = measure.MemoryLimit(64 << 20, "data")
    m = measure.run([sys.executable, "-c", "x = bytearray(200 << 20)"], limit=lim)
    assert not m.ok and "MemoryError" in m.stderr
    assert classify_failure(m, lim).startswith("failed: over the memory limit")
    ok = measure.run([sys.executable, "-c", "import numpy"], limit=lim)
    assert ok.ok, ok.stderr


def test_single_thread_env_in_child():
    m = measure.run([sys.executable, "-c",
                     "import os, sys; sys.exit(os.environ['OPENBLAS_NUM_THREADS'] != '1')"])
    assert m.ok


def test_not_implemented_is_reported_as_na():
    m = measure.Measurement(0.1, 0, 0, 0, 0, 1,
                            stderr="ModuleNotFoundError: No module named 'blockimg.fat.writer'")
    assert classify_failure(m) == "n/a: not implemented"


def test_table_and_json(tmp_path):
    runs = [measure.Measurement(w, 0.01, 0.0, 10 << 20, 5 << 20, 0) for w in (0.2, 0.1, 0.3)]
    res = {"blockimg": {"role": "blockimg", "status": "ok", **summarize(runs, 10_000_000)},
           "GNU tar": {"role": "peer", "status": "ok", **summarize(runs[:1], 10_000_000)},
           "bsdtar": {"role": "peer", "status": "n/a: bsdtar not installed"}}
    assert res["blockimg"]["median_s"] == 0.2
    text = format_table("t", res)
    assert "1.00x" in text and "n/a: bsdtar not installed" in text and "50.0" in text
    write_json(str(tmp_path / "r.json"), {"results": res})
    assert json.loads((tmp_path / "r.json").read_text())["results"]["blockimg"]["n"] == 3


def test_rows_beside_python_c_pass_get_their_time_over_it():
    def row(wall, role="blockimg"):
        runs = [measure.Measurement(wall, 0.01, 0.0, 10 << 20, 5 << 20, 0)]
        return {"role": role, "status": "ok", **summarize(runs, 0)}
    res = {"blockimg": row(0.06), "python -c pass": row(0.02, "limit"), "mtype": row(0.01)}
    lines = format_table("t", res).splitlines()
    assert lines[1].split()[-2:] == ["/", "python"]
    assert [ln.split()[-1] for ln in lines[2:]] == ["3.00x", "1.00x", "0.50x"]
    del res["python -c pass"]
    assert "/ python" not in format_table("t", res)


def test_small_ops_name_a_startup_row_per_common_command_and_cat_beside_python():
    from blockimg.bench.cli import SMALL_OPS
    from blockimg.bench.suite import OPERATIONS
    assert {o for ops in SMALL_OPS.values() for o in ops} <= set(OPERATIONS)
    startup = " ".join(t.name for t in OPERATIONS["startup"])
    for command in ("ls", "info", "check", "extract", "create"):
        assert f"blockimg {command}" in startup
    for op in ("startup", "fat-cat", "tar-cat"):
        assert "python -c pass" in [t.name for t in OPERATIONS[op]]


def test_ratio_by_round_follows_drifting_conditions():
    """Every tool slows down 3x after round 1 (a disk filling up): the ratio of medians
    is then far from 0.5, the median of the per-round ratios is exactly it."""
    from blockimg.bench.compare import _pair
    mine = [0.1, 0.1, 0.3, 0.3, 0.3]
    peer = [0.2, 0.2, 0.6, 0.6]                          # fewer runs: rounds 0-3 only
    res = {"blockimg": {"status": "ok", "runs": [{"wall": w, "round": i}
                                                 for i, w in enumerate(mine)]},
           "peer": {"status": "ok", "runs": [{"wall": w, "round": i}
                                             for i, w in enumerate(peer)]},
           "gone": {"status": "n/a: not installed", "runs": []}}
    _pair(res)
    assert res["peer"]["paired_ratio"] == 0.5 and res["blockimg"]["paired_ratio"] == 1.0
    assert "paired_ratio" not in res["gone"]
    for r in res.values():
        r.update({"median_s": 1.0, "mb_per_s": 1.0, "max_rss": 0, "peak_private": 0, "n": 1})
    assert "0.50x" in format_table("t", res)


def test_operations_have_blockimg_and_a_limit():
    for op, tools in OPERATIONS.items():
        roles = [t.role for t in tools]
        if op.endswith("-loaded"):          # -j auto against -j 1 beside a busy CPU
            assert [t.name for t in tools] == ["blockimg", "blockimg -j1"], op
            continue
        assert roles[0] == "blockimg" and "limit" in roles and "peer" in roles, op
    assert fat_size_for({"bytes": 10 << 20, "files": 300, "directories": 10}) % (1 << 20) == 0


@pytest.mark.skipif(not measure.gnu_time(), reason="GNU time not installed")
def test_cli_runs_tiny_corpus(tmp_path, capsys):
    from blockimg.bench.cli import main
    assert main(["--tiny", "--corpora", str(tmp_path / "c"), "--corpus", "site", "--ops",
                 "tar-build", "--reps", "1", "--out", str(tmp_path / "r"),
                 "--skip", "bsdtar", "--skip", "cp -r"]) == 0
    doc = json.loads((tmp_path / "r" / "results.json").read_text())
    row = doc["results"]["site"]["tar-build"]
    assert row["GNU tar"]["status"].startswith(("ok", "n/a"))
    assert "blockimg" in row


def test_outputs_are_set_aside_then_dropped_and_runs_start_clean(tmp_path):
    from blockimg.bench.suite import Context, Tool, clear_output
    ctx = Context(corpus=str(tmp_path), name="t", info={}, work=str(tmp_path / "w"),
                  sync_between=False, set_aside=True)
    tool = Tool("x", "peer", lambda c: [], output="dir+")
    os.makedirs(ctx.out)
    for i in range(3):
        with open(os.path.join(ctx.out, "f"), "w") as f:
            f.write(str(i))
        clear_output(ctx, tool)
        assert os.listdir(ctx.out) == []              # each run starts with an empty dir
    assert sorted(os.listdir(ctx.aside_dir)) == ["1", "2", "3"]
    with open(os.path.join(ctx.aside_dir, "2", "f")) as f:
        assert f.read() == "1"
    assert ctx.drop_aside() == 3
    assert not os.path.exists(ctx.aside_dir) and ctx.drop_aside() == 0
    ctx.set_aside = False
    clear_output(ctx, tool)
    assert not os.path.exists(ctx.aside_dir)
