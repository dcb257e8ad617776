"""Value classes: the part of :mod:`dataclasses` blockimg uses, cheaper to start.

``@record`` / ``@record(frozen=True)`` read the class's annotations in order
and add ``__init__`` (positional or keyword, defaults, ``field(default_factory=...)``,
then ``__post_init__`` if the class has one), ``__repr__``, ``__eq__``, and for
frozen records ``__hash__`` and assignment that raises :class:`FrozenRecordError`
(an ``AttributeError``; ``object.__setattr__`` in ``__post_init__`` still works).
A mutable record is unhashable, as a dataclass is.

Why not :mod:`dataclasses`: every blockimg command is a short process, and
its start-up is measured against C tools (the target: 10 ms over ``python -c
pass``). Importing dataclasses imports ``inspect`` (with ``ast``, ``dis``,
``tokenize``): 9-11 ms in ``python -X importtime``; with the library's records
made by dataclasses instead, ``blockimg ls``, ``cat`` and ``create`` of a small
image took 8-23 ms more CPU time each (two interleaved runs, 30 and 40 rounds,
on a loaded 2-CPU machine, December). This module
imports nothing and compiles each method of a class when it is first called, so a
command pays only for the records it uses. ``tests/unit/test_record.py`` holds
it equal to dataclasses for every feature listed here.
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


def record(cls=None, *, frozen: bool = False):
    """Class decorator: a value class from the annotations (see the module docstring)."""
    if cls is None:
        return lambda c: _make(c, frozen)
    return _make(cls, frozen)


def _make(cls, frozen: bool):
    specs = _specs(cls)
    env = {"_MISSING": _MISSING, "_set": object.__setattr__}
    sources = {"__init__": "\n".join(_init_source(cls, specs, frozen, env)),
               **_value_source(cls, specs)}
    if not frozen:
        del sources["__hash__"]
    methods = _OnFirstCall(cls, sources, env)
    for name in sources:
        setattr(cls, name, methods.stub(name))
    if frozen:
        cls.__setattr__ = _frozen_setattr
        cls.__delattr__ = _frozen_delattr
    else:
        cls.__hash__ = None
    cls.__record_fields__ = cls.__match_args__ = tuple(specs)
    return cls


def _specs(cls) -> dict:
    """``{name: Field}`` in annotation order (``ClassVar`` annotations are no fields); the
    class attribute of each field becomes its default, or goes."""
    specs = {}
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        if str(annotation).startswith(("ClassVar", "typing.ClassVar")):
            continue
        value = cls.__dict__.get(name, _MISSING)
        if not isinstance(value, Field):
            specs[name] = Field(default=value)
            continue
        specs[name] = value
        if value.default is _MISSING:
            delattr(cls, name)
        else:
            setattr(cls, name, value.default)
    return specs


def _init_source(cls, specs: dict, frozen: bool, env: dict) -> list:
    """The lines of ``__init__``; the defaults and factories it names go into ``env``."""
    params, body = [], []
    for name, spec in specs.items():
        if spec.default is not _MISSING:
            env[f"_d_{name}"] = spec.default
            params.append(f"{name}=_d_{name}")
        elif spec.default_factory is not _MISSING:
            env[f"_f_{name}"] = spec.default_factory
            params.append(f"{name}=_MISSING")
            body.append(f" if {name} is _MISSING: {name} = _f_{name}()")
        elif params and "=" in params[-1]:
            raise TypeError(f"{cls.__name__}: field {name!r} without a default follows one "
                            "with a default")
        else:
            params.append(name)
        body.append(f" _set(self, {name!r}, {name})" if frozen else f" self.{name} = {name}")
    if hasattr(cls, "__post_init__"):
        body.append(" self.__post_init__()")
    return [f"def __init__(self, {', '.join(params)}):", *(body or [" pass"])]


def _value_source(cls, specs: dict) -> dict:
    """The text of ``__repr__``, ``__eq__`` and ``__hash__``, by name."""
    shown = ", ".join(f"{n}={{self.{n}!r}}" for n, s in specs.items() if s.repr)
    key = "(" + "".join(f"self.{n}, " for n, s in specs.items() if s.compare) + ")"
    return {
        "__repr__": f"def __repr__(self):\n return f'{cls.__qualname__}({shown})'",
        "__eq__": "def __eq__(self, other):\n"
                  " if other.__class__ is not self.__class__: return NotImplemented\n"
                  f" return {key} == {key.replace('self.', 'other.')}",
        "__hash__": f"def __hash__(self):\n return hash({key})",
    }


class _OnFirstCall:
    """A record class's methods, each compiled (most of a record's cost) and put on the
    class when it is first called: a command that only makes a record compiles only its
    ``__init__`` (~1.4 M instructions for all four methods of a ten-field record, about
    half of that for ``__init__``). The text is exec'd, not compile()d: compile() makes
    the ast module's ~100 node classes on its first call (~3 ms); the code gets its file
    name after."""

    def __init__(self, cls, sources: dict, env: dict) -> None:
        self.cls, self.sources, self.env = cls, sources, env

    def compiled(self, name: str):
        env = self.env
        if name not in env:
            qualname = self.cls.__qualname__
            exec(self.sources[name], env)
            fn = env[name]
            fn.__code__ = fn.__code__.replace(co_filename=f"<record {qualname}>")
            fn.__qualname__ = f"{qualname}.{name}"
            setattr(self.cls, name, fn)
        return env[name]

    def stub(self, name: str):
        """``name`` until compiled: compiles, then calls the real method."""
        compiled = self.compiled

        def method(self, *args, **kwargs):
            return compiled(name)(self, *args, **kwargs)
        method.__name__ = name
        method.__qualname__ = f"{self.cls.__qualname__}.{name}"
        return method


def _frozen_setattr(self, name, value):
    raise FrozenRecordError(f"cannot assign to field {name!r} of a frozen "
                            f"{type(self).__name__}")


def _frozen_delattr(self, name):
    raise FrozenRecordError(f"cannot delete field {name!r} of a frozen {type(self).__name__}")
