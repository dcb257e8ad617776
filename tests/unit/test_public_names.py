"""The package's public names (issue 13): every name in ``blockimg.__all__`` is one that
``__getattr__`` gives and that the ``TYPE_CHECKING`` block declares for readers."""
from __future__ import annotations

import ast
from pathlib import Path

import blockimg


def _declared() -> set:
    tree = ast.parse(Path(blockimg.__file__).read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "_TYPE_CHECKING":
            for imp in node.body:
                names.update(a.asname or a.name for a in imp.names)
    return names


def test_all_lists_what_getattr_gives_and_what_is_declared():
    lazy = set(blockimg._LAZY)
    assert set(blockimg.__all__) == lazy | {"__version__"}
    assert _declared() == lazy
    for name in blockimg.__all__:
        assert getattr(blockimg, name) is not None
