"""blockimg.record behaves as the dataclasses features it stands in for."""
from __future__ import annotations

import dataclasses
from typing import List, Optional, Tuple

import pytest

from blockimg.record import FrozenRecordError, field, fields, record, replace


def _pair(frozen: bool):
    """The same class made by dataclasses and by record."""
    made = []
    for deco, fld in ((dataclasses.dataclass(frozen=frozen), dataclasses.field),
                      (record(frozen=frozen), field)):
        @deco
        class Point:
            x: int
            y: int = 2
            tags: List[str] = fld(default_factory=list)
            note: Optional[str] = fld(default=None, repr=False, compare=False)
            pair: Tuple[int, ...] = ()
        made.append(Point)
    return made


@pytest.mark.parametrize("frozen", [False, True])
def test_init_repr_eq_match_dataclasses(frozen):
    dc, rc = _pair(frozen)
    for args, kw in [((1,), {}), ((1, 5), {}), ((), {"x": 3, "tags": ["a"]}),
                     ((1, 2, ["t"], "n", (4,)), {}), ((7,), {"note": "hidden", "pair": (1, 2)})]:
        a, b = dc(*args, **kw), rc(*args, **kw)
        assert repr(a) == repr(b)
        assert [getattr(a, f.name) for f in dataclasses.fields(a)] == \
            [getattr(b, n) for n in fields(b)]
    assert rc(1) == rc(1, note="other")            # compare=False
    assert rc(1) != rc(2) and rc(1) != (1, 2)
    assert rc(1).tags is not rc(1).tags            # a fresh default each time
    with pytest.raises(TypeError):
        rc()
    with pytest.raises(TypeError):
        rc(1, nope=3)


def test_frozen_records_hash_and_refuse_assignment():
    dc, rc = _pair(True)
    with pytest.raises(TypeError):      # a list field: unhashable, as with dataclasses
        hash(dc(1))
    with pytest.raises(TypeError):
        hash(rc(1))
    p = rc(1, tags=(), pair=(3,))
    assert hash(p) == hash(rc(1, tags=(), pair=(3,), note="x"))
    assert len({p, rc(1, tags=(), pair=(3,)), rc(2, tags=())}) == 2
    with pytest.raises(FrozenRecordError):
        p.x = 5
    with pytest.raises(AttributeError):
        del p.y
    assert p.x == 1


def test_mutable_records_are_unhashable_and_assignable():
    _, rc = _pair(False)
    p = rc(1)
    p.x = 9
    assert p.x == 9
    with pytest.raises(TypeError):
        hash(p)


def test_post_init_runs_and_may_normalise_a_frozen_record():
    @record(frozen=True)
    class Opt:
        size: int = 0

        def __post_init__(self):
            if self.size < 0:
                raise ValueError("size")
            object.__setattr__(self, "size", int(self.size))

    assert Opt("5" if False else 5).size == 5
    with pytest.raises(ValueError):
        Opt(-1)
    assert replace(Opt(3), size=4) == Opt(4)
    with pytest.raises(ValueError):
        replace(Opt(3), size=-2)
    with pytest.raises(TypeError):
        replace(Opt(3), colour=1)


def test_field_order_rule_and_conflicting_defaults():
    with pytest.raises(TypeError):
        @record
        class Bad:
            a: int = 1
            b: int
    with pytest.raises(ValueError):
        field(default=1, default_factory=list)


def _library_records() -> list:
    import importlib
    import pkgutil

    import blockimg
    found = []
    for info in pkgutil.walk_packages(blockimg.__path__, "blockimg."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        found += [v for v in vars(module).values() if isinstance(v, type)
                  and "__record_fields__" in v.__dict__ and v.__module__ == module.__name__]
    return found


def test_the_library_s_records_use_only_what_is_held_equal_to_dataclasses_above():
    """What record does not do as dataclasses would (fields inherited from a base
    record or dataclass, ClassVar / InitVar / KW_ONLY annotations) is used nowhere."""
    records = _library_records()
    assert len(records) > 20
    for cls in records:
        assert not [b for b in cls.__mro__[1:] if hasattr(b, "__record_fields__")
                    or dataclasses.is_dataclass(b)], cls
        annotations = [str(a) for a in cls.__dict__.get("__annotations__", {}).values()]
        assert not [a for a in annotations if any(w in a for w in ("ClassVar", "InitVar",
                                                                   "KW_ONLY"))], cls
        assert fields(cls) == tuple(cls.__annotations__), cls


def test_each_method_is_compiled_when_first_called():
    """Making records compiles only ``__init__`` (a build makes its records and never
    prints or compares them: the other methods' compiles were most of what records cost
    its start-up); the others are compiled, and work, when first called."""
    @record(frozen=True)
    class Point:
        x: int
        y: int = 2

    def compiled(name):
        return getattr(Point, name).__code__.co_filename.startswith("<record ")

    p = Point(1)
    assert compiled("__init__")
    assert not any(compiled(n) for n in ("__repr__", "__eq__", "__hash__"))
    assert hash(p) == hash(Point(1)) and compiled("__hash__") and not compiled("__eq__")
    assert p == Point(1, 2) and p != Point(1, 3) and compiled("__eq__")
    assert repr(p).endswith(".Point(x=1, y=2)") and compiled("__repr__")
