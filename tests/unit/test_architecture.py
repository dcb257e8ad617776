"""The package's shape, as docs/ARCHITECTURE.md states it: no import cycles (imports
inside functions and under TYPE_CHECKING counted), no module using another module's
private names or reaching into its objects' private attributes, a docstring on every
module."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import blockimg

LIBRARY = Path(blockimg.__file__).parent


def _modules() -> dict:
    names = {}
    for path in sorted(LIBRARY.rglob("*.py")):
        parts = path.relative_to(LIBRARY.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


MODULES = _modules()


def _tree(mod: str) -> ast.Module:
    return ast.parse(MODULES[mod].read_text(encoding="utf-8"), str(MODULES[mod]))


def _import_graph() -> dict:
    """``{module: {modules it imports}}`` for the library, every import statement counted
    (also those inside functions and ``TYPE_CHECKING`` blocks); a package's own parents
    left out (importing a submodule imports them anyway)."""
    names = MODULES
    graph = {}
    for mod, path in names.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[:len(package.split(".")) - node.level + 1] \
                    if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                targets = [target] + [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in names:
                    t = t.rpartition(".")[0]
                if t and t != mod and not mod.startswith(t + "."):
                    deps.add(t)
        graph[mod] = deps
    return graph


def _cycles(graph: dict) -> set:
    """The sets of modules that import each other, directly or not."""
    reach = {m: set() for m in graph}
    for m in graph:
        todo = list(graph[m])
        while todo:
            n = todo.pop()
            if n not in reach[m]:
                reach[m].add(n)
                todo.extend(graph[n])
    return {frozenset({m} | {n for n in reach[m] if m in reach[n]}) for m in graph
            if m in reach[m]}


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == {frozenset({"a", "b", "c"})}


def test_no_import_cycles():
    assert _cycles(_import_graph()) == set()


def _bound_modules(mod: str) -> tuple:
    """(names bound to library modules in ``mod``, private names ``mod`` imports from
    another library module)."""
    package = mod if MODULES[mod].name == "__init__.py" else mod.rpartition(".")[0]
    bound, private = {}, []
    for node in ast.walk(_tree(mod)):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] \
                if node.level else []
            source = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                if f"{source}.{alias.name}" in MODULES:
                    bound[alias.asname or alias.name] = f"{source}.{alias.name}"
                elif source in MODULES and source != mod and alias.name.startswith("_") \
                        and not alias.name.startswith("__"):
                    private.append(f"{mod}:{node.lineno} imports {source}.{alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES and alias.asname:
                    bound[alias.asname] = alias.name
    return bound, private


def test_no_module_uses_another_modules_private_names():
    found = []
    for mod in MODULES:
        bound, private = _bound_modules(mod)
        found += private
        for node in ast.walk(_tree(mod)):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in bound and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                found.append(f"{mod}:{node.lineno} uses {bound[node.value.id]}.{node.attr}")
    assert found == []


#: Underscore names that are public elsewhere: os._exit, namedtuple's methods.
PUBLIC_UNDERSCORE = {"_exit", "_make", "_replace", "_asdict", "_fields"}


def _own_names(tree: ast.Module) -> set:
    own = set(PUBLIC_UNDERSCORE)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            own.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) \
                and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            own.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            own.add(node.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            own.add(node.target.id)
        elif isinstance(node, ast.alias):
            own.add(node.asname or node.name.split(".")[0])
    return own


def _foreign_attributes(mod: str) -> list:
    """``obj._name`` where ``obj`` is not self/cls and ``mod`` defines no ``_name`` (no
    such method, class attribute or ``self._name``): reaching into another module's
    object."""
    tree = _tree(mod)
    own = _own_names(tree)
    return [f"{mod}:{node.lineno} {ast.unparse(node)}" for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr.startswith("_")
            and not node.attr.startswith("__") and node.attr not in own
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))]


def test_the_reach_finder_finds_a_reach(tmp_path, monkeypatch):
    src = tmp_path / "m.py"
    src.write_text("class A:\n    def f(self, other):\n        return other._mine, other._theirs\n"
                   "    _mine = 1\n")
    monkeypatch.setitem(MODULES, "m", src)
    assert _foreign_attributes("m") == ["m:3 other._theirs"]


def test_no_module_reaches_into_another_modules_objects():
    assert [f for mod in MODULES for f in _foreign_attributes(mod)] == []


@pytest.mark.parametrize("mod", sorted(MODULES))
def test_every_module_says_what_it_is_for(mod):
    assert ast.get_docstring(_tree(mod)), f"{mod} has no docstring"
