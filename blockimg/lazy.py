"""A package's names imported on first use (PEP 562): importing the package costs only
what a program then uses (``blockimg create`` loads no reader, ``open`` no writer)."""
from __future__ import annotations

import sys

__all__ = ["lazy_names", "import_module"]


def lazy_names(namespace: dict, where: dict):
    """``(__getattr__, __dir__)`` for the package whose globals are ``namespace``: each
    name in ``where`` is imported from the submodule named beside it when first asked
    for, and kept in ``namespace`` (asked once)."""
    package = namespace["__name__"]

    def __getattr__(name: str):
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list:
        return sorted(set(namespace) | set(where))

    return __getattr__, __dir__


def import_module(name: str):
    """The module ``name`` (dotted), imported if it is not yet: ``importlib.import_module``
    without importing importlib (~2 M instructions of start-up, with warnings)."""
    __import__(name)
    return sys.modules[name]
