"""The reading side's modules use each other through public names only, without cycles
(issue 13): the image base, extraction, and the FAT reader, walk, split walk and checks."""
from __future__ import annotations

import ast
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "blockimg")
MODULES = ["image", "extract", "extract_split", "fuzz", "fat.reader", "fat.walk",
           "fat.split_walk", "fat.checks", "fat.dirents"]
#: Private names of other modules that are theirs to share (the standard library's).
ALLOWED = {("os", "_exit")}


def _tree(module: str) -> ast.Module:
    with open(os.path.join(ROOT, *module.split(".")) + ".py") as f:
        return ast.parse(f.read())


def _imports(module: str) -> set:
    """The modules of MODULES that ``module`` imports anywhere (in functions, under
    TYPE_CHECKING too)."""
    package = module.rsplit(".", 1)[0] if "." in module else ""
    out = set()
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".") if package else []
            base = base[:len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
            names = [target] + [f"{target}.{a.name}".lstrip(".") for a in node.names]
            out.update(n for n in names if n in MODULES and n != module)
    return out


def test_no_import_cycles():
    graph = {m: _imports(m) for m in MODULES}

    def reaches(start, goal, seen):
        for nxt in graph[start]:
            if nxt == goal:
                return True
            if nxt not in seen:
                seen.add(nxt)
                if reaches(nxt, goal, seen):
                    return True
        return False
    cycles = [m for m in MODULES if reaches(m, m, set())]
    assert cycles == []


def test_no_private_names_of_other_objects():
    """``x._name`` only on ``self`` (or ``cls``): never on another module's objects."""
    found = []
    for module in MODULES:
        for node in ast.walk(_tree(module)):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                    and not node.attr.startswith("__"):
                owner = node.value.id if isinstance(node.value, ast.Name) else None
                if owner not in ("self", "cls") and (owner, node.attr) not in ALLOWED:
                    found.append(f"{module}:{node.lineno}: {ast.unparse(node)}")
            if isinstance(node, ast.ImportFrom):
                found += [f"{module}:{node.lineno}: import {a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]
    assert found == []
