"""Value classes: the part of :mod:`dataclasses` blockimg uses, cheaper to start.

``@record`` / ``@record(frozen=True)`` read the class's annotations in order
and add ``__init__`` (positional or keyword, defaults, ``field(default_factory=...)``,
then ``__post_init__`` if the class has one), ``__repr__``, ``__eq__``, and for
frozen records ``__hash__`` and assignment that raises :class:`FrozenRecordError`
(an ``AttributeError``; ``object.__setattr__`` in ``__post_init__`` still works).

Why not :mod:`dataclasses`: every blockimg command is a short process and
its start-up is measured against C tools. Importing dataclasses imports
``inspect`` (~7 ms here) and each decorated class costs ~0.6 ms more; this
module imports nothing, and compiles a class's methods when it is first used
(a command pays only for the records it makes). Behaviour is checked
against dataclasses in ``tests/unit/test_record.py``.
"""
from __future__ import annotations

__all__ = ["record", "field", "fields", "replace", "FrozenRecordError"]

_MISSING = object()


class FrozenRecordError(AttributeError):
    """Assignment to a field of a frozen record."""


class Field:
    """A field's default, default factory and whether it shows in repr / counts in ==."""

    __slots__ = ("default", "default_factory", "repr", "compare")

    def __init__(self, default=_MISSING, default_factory=_MISSING, repr: bool = True,
                 compare: bool = True) -> None:
        if default is not _MISSING and default_factory is not _MISSING:
            raise ValueError("cannot give both default and default_factory")
        self.default = default
        self.default_factory = default_factory
        self.repr = repr
        self.compare = compare


def field(*, default=_MISSING, default_factory=_MISSING, repr: bool = True,
          compare: bool = True) -> Field:
    """Options of one field (as :func:`dataclasses.field`)."""
    return Field(default, default_factory, repr, compare)


def fields(obj) -> tuple:
    """The field names of a record class or instance, in order."""
    return tuple(obj.__record_fields__)


def replace(obj, **changes):
    """A copy of ``obj`` with ``changes`` (``__post_init__`` runs again)."""
    values = {name: getattr(obj, name) for name in obj.__record_fields__}
    unknown = set(changes) - set(values)
    if unknown:
        raise TypeError(f"{type(obj).__name__} has no field(s) {', '.join(sorted(unknown))}")
    values.update(changes)
    return type(obj)(**values)


def _frozen_setattr(self, name, value):
    raise FrozenRecordError(f"cannot assign to field {name!r} of a frozen "
                            f"{type(self).__name__}")


def _frozen_delattr(self, name):
    raise FrozenRecordError(f"cannot delete field {name!r} of a frozen {type(self).__name__}")


def _make(cls, frozen: bool):
    names = [n for n in cls.__dict__.get("__annotations__", {})
             if not str(cls.__annotations__[n]).startswith(("ClassVar", "typing.ClassVar"))]
    specs = {}
    for name in names:
        value = cls.__dict__.get(name, _MISSING)
        spec = value if isinstance(value, Field) else Field(default=value)
        specs[name] = spec
        if isinstance(value, Field):
            if spec.default is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, spec.default)
    env = {"_MISSING": _MISSING, "_set": object.__setattr__}
    params, body = [], []
    seen_default = False
    for name in names:
        spec = specs[name]
        if spec.default is not _MISSING:
            env[f"_d_{name}"] = spec.default
            params.append(f"{name}=_d_{name}")
            seen_default = True
        elif spec.default_factory is not _MISSING:
            env[f"_f_{name}"] = spec.default_factory
            params.append(f"{name}=_MISSING")
            body.append(f" if {name} is _MISSING: {name} = _f_{name}()")
            seen_default = True
        elif seen_default:
            raise TypeError(f"{cls.__name__}: field {name!r} without a default follows one "
                            "with a default")
        else:
            params.append(name)
        body.append(f" _set(self, {name!r}, {name})" if frozen else f" self.{name} = {name}")
    if hasattr(cls, "__post_init__"):
        body.append(" self.__post_init__()")
    shown = [n for n in names if specs[n].repr]
    compared = [n for n in names if specs[n].compare]
    key = "(" + "".join(f"self.{n}, " for n in compared) + ")"
    other_key = key.replace("self.", "other.")
    src = [
        f"def __init__(self, {', '.join(params)}):",
        *(body or [" pass"]),
        "def __repr__(self):",
        f" return f'{cls.__qualname__}(" + ", ".join(f"{n}={{self.{n}!r}}" for n in shown)
        + ")'",
        "def __eq__(self, other):",
        " if other.__class__ is not self.__class__: return NotImplemented",
        f" return {key} == {other_key}",
        "def __hash__(self):",
        f" return hash({key})",
    ]
    methods = ("__init__", "__repr__", "__eq__") + (("__hash__",) if frozen else ())

    def build() -> None:
        # Compiling the methods is most of a record's cost (~0.7 ms): done on first use,
        # so that a command pays only for the records it makes.
        # exec of the text, not of compile(): compile() makes the ast module's ~100
        # node classes on its first call (~3 ms); the code gets its file name after.
        if "__init__" not in env:
            exec("\n".join(src), env)
            for name in methods:
                fn = env[name]
                fn.__code__ = fn.__code__.replace(
                    co_filename=f"<record {cls.__qualname__}>")
                fn.__qualname__ = f"{cls.__qualname__}.{name}"
                setattr(cls, name, fn)

    def first_use(name: str):
        def method(self, *args, **kwargs):
            build()
            return env[name](self, *args, **kwargs)
        method.__name__ = name
        method.__qualname__ = f"{cls.__qualname__}.{name}"
        return method

    for name in methods:
        setattr(cls, name, first_use(name))
    if frozen:
        cls.__setattr__ = _frozen_setattr
        cls.__delattr__ = _frozen_delattr
    else:
        cls.__hash__ = None
    cls.__record_fields__ = tuple(names)
    cls.__match_args__ = tuple(names)
    return cls


def record(cls=None, *, frozen: bool = False):
    """Class decorator: a value class from the annotations (see the module docstring)."""
    if cls is None:
        return lambda c: _make(c, frozen)
    return _make(cls, frozen)
