"""``Kind`` (made without :mod:`enum`) behaves as the ``str`` enum it replaces."""
from __future__ import annotations

import copy
import enum
import pickle

import pytest

from blockimg.sources.directory import Kind


class Reference(str, enum.Enum):
    """The ``str`` enum ``Kind`` was, the form it is held to."""

    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"

    def __str__(self) -> str:
        return self.value


def test_members_in_order_with_names_and_values():
    assert [(k.name, k.value) for k in Kind] == [(r.name, r.value) for r in Reference]
    assert len(Kind) == len(Reference) == 4
    assert [Kind.FILE, Kind.DIR, Kind.SYMLINK, Kind.HARDLINK] == list(Kind)
    assert all(type(k.value) is str and type(k) is Kind for k in Kind)


@pytest.mark.parametrize("ref", list(Reference))
def test_each_member_reads_compares_and_pickles_as_the_enum_s(ref):
    kind = getattr(Kind, ref.name)
    assert repr(kind) == repr(ref).replace("Reference.", "Kind.")
    assert str(kind) == str(ref) == f"{kind}" == ref.value
    assert f"{kind:>9}|{kind!s}" == f"{ref:>9}|{ref!s}"
    assert kind == ref.value and ref.value == kind and hash(kind) == hash(ref)
    assert kind in Kind and ref.value in Kind and isinstance(kind, str)
    assert Kind(ref.value) is kind and Kind(kind) is kind
    assert pickle.loads(pickle.dumps(kind)) is kind
    assert copy.copy(kind) is kind and copy.deepcopy(kind) is kind
    assert {kind: 1}[ref.value] == 1


def test_anything_else_is_refused_as_the_enum_refuses_it():
    for value in ("FILE", "fifo", "", None):
        with pytest.raises(ValueError) as ours:
            Kind(value)
        with pytest.raises(ValueError) as theirs:
            Reference(value)
        assert str(ours.value) == str(theirs.value).replace("Reference", "Kind")
