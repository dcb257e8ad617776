"""Rules for the library's top-level modules (issue 13, points 5, 6 and 8)."""
from __future__ import annotations

import ast
import gc
from pathlib import Path

import pytest

import blockimg
from blockimg.formats import format_module
from blockimg.sources.directory import from_pairs

LIBRARY = Path(blockimg.__file__).parent


def _library_trees():
    for path in sorted(LIBRARY.rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"), str(path))


@pytest.mark.parametrize("fmt", ["fat", "tar"])
def test_plan_leaves_the_garbage_collector_alone(monkeypatch, fmt):
    """plan() is pure: pausing the collector (process-wide state) is its callers' choice."""
    calls = []
    monkeypatch.setattr(gc, "disable", lambda: calls.append("disable"))
    monkeypatch.setattr(gc, "enable", lambda: calls.append("enable"))
    tree = from_pairs([("a/b.txt", b"x" * 3000), ("c", None)], mtime=0)
    mod = format_module(fmt)
    laid = mod.plan(tree, mod.Options())
    assert laid.image_size > 3000
    assert calls == []


def test_no_return_break_or_continue_in_a_finally_block():
    """They would swallow the exception being raised (a bug's traceback included)."""
    found = []
    for path, tree in _library_trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Try):
                for stmt in node.finalbody:
                    found += [f"{path.name}:{n.lineno}" for n in ast.walk(stmt)
                              if isinstance(n, (ast.Return, ast.Break, ast.Continue))]
    assert found == []


def test_kind_reads_as_the_strings_entry_info_holds(tmp_path):
    """EntryInfo.kind stays a plain string (``ls --json`` unchanged; reading does not
    import enum); Kind equals and prints as those strings."""
    from blockimg.sources.directory import Kind
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "f").write_bytes(b"x")
    (src / "s").symlink_to("d/f")
    import os
    os.link(src / "d" / "f", src / "h")
    img = tmp_path / "a.tar"
    blockimg.create(src, img, keep_links=True, mtime=0, target="generic")
    with blockimg.open(img) as im:
        kinds = {e.kind for e in im}
        assert all(type(e.kind) is str for e in im)
    assert kinds == {k.value for k in Kind} == {str(k) for k in Kind} == \
        {f"{k}" for k in Kind} == set(Kind)


@pytest.mark.parametrize("package", ["blockimg", "blockimg.block"])
def test_lazy_names_are_listed_once_declared_for_readers_and_given(package):
    """One table per package (``_LAZY``) gives ``__all__`` and ``__getattr__``
    (:func:`blockimg.lazy.lazy_names`); its ``TYPE_CHECKING`` block declares every name."""
    import importlib
    mod = importlib.import_module(package)
    table = mod._LAZY
    assert [n for n in mod.__all__ if n != "__version__"] == list(table)
    declared = set()
    for node in ast.walk(ast.parse(Path(mod.__file__).read_text(encoding="utf-8"))):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "_TYPE_CHECKING":
            declared.update(a.asname or a.name for imp in node.body for a in imp.names)
    assert declared == set(table)
    for name in table:
        assert getattr(mod, name) is not None and name in dir(mod)
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        getattr(mod, "nothing_here")
