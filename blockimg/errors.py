"""blockimg's exceptions.

Four kinds, kept apart so a caller can tell whose fault a failure is:

* :class:`InvalidInput` -- the caller's mistake: a bad option, a source tree
  that cannot be stored (names the path and the rule).
* :class:`CorruptImage` -- the image being read breaks a rule of its format
  (names the byte offset, the field and the rule).
* :class:`Unsupported` -- valid, but beyond what blockimg does.
* :class:`DeviceError` -- an I/O failure of the block device or a source file.

Bugs stay ordinary Python exceptions.
"""
from __future__ import annotations

TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Any, Optional, Tuple

from .quoting import escape, human_size

__all__ = [
    "BlockImgError",
    "InvalidInput",
    "DoesNotFit",
    "NotWholeSectors",
    "NotARegularFile",
    "Problems",
    "SourceChanged",
    "CorruptImage",
    "Unsupported",
    "DeviceError",
]


class BlockImgError(Exception):
    """Base of every error blockimg raises on purpose."""

    def __reduce__(self):
        # Pickled with its message and fields as they are (the constructors take keyword
        # arguments that pickle's default would not pass): errors cross process boundaries.
        return (_rebuild, (self.__class__, self.args, self.__dict__))


def _rebuild(cls, args: tuple, state: dict) -> BlockImgError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class InvalidInput(BlockImgError, ValueError):
    """The caller asked for something that cannot be done.

    ``path`` names the source file (or option) at fault, ``rule`` the rule
    it breaks. The message shows ``path`` escaped (:func:`blockimg.quoting.escape`);
    the attribute keeps it exact.
    """

    def __init__(self, message: str, *, path: Optional[str] = None,
                 rule: Optional[str] = None) -> None:
        self.path = path
        self.rule = rule
        self.message = message
        text = message
        if path is not None:
            text = f"{escape(str(path))}: {message}"
        if rule is not None and rule not in message:
            text = f"{text} ({rule})"
        super().__init__(text)

    @property
    def problems(self) -> list:
        """Every violation this error stands for: itself (see :class:`Problems`)."""
        return [self]

    @staticmethod
    def raise_all(problems) -> None:
        """Raise nothing for no problems, the problem itself for one, else :class:`Problems`."""
        problems = [q for p in problems for q in p.problems]
        if len(problems) == 1:
            raise problems[0]
        if problems:
            raise Problems(problems)


class DoesNotFit(InvalidInput):
    """The content does not fit the requested image size."""

    def __init__(self, message: str, *, needed: int, available: int) -> None:
        self.needed = needed
        self.available = available
        super().__init__(
            f"{message}: needs {human_size(needed)}, {human_size(available)} available "
            f"(short by {human_size(needed - available)})")


class Problems(InvalidInput):
    """Everything wrong with an input at once: ``problems`` holds one
    :class:`InvalidInput` per violation (each naming its file and rule)."""

    #: How many problems ``str()`` spells out before "and N more".
    SHOWN = 50

    def __init__(self, problems, *, what: str = "the source tree") -> None:
        self._problems = list(problems)
        self.what = what
        n = len(self._problems)
        lines = [str(p) for p in self._problems[:self.SHOWN]]
        if n > self.SHOWN:
            lines.append(f"and {n - self.SHOWN} more")
        head = f"{n} problem{'' if n == 1 else 's'} in {what}:"
        super().__init__("\n  ".join([head] + lines))

    @property
    def problems(self) -> list:
        return list(self._problems)


class NotWholeSectors(InvalidInput):
    """An image file whose length is not a whole number of sectors (``hint``: why, when
    its first bytes say: a FAT volume or tar archive cut short)."""

    def __init__(self, path: str, *, size: int, sector_size: int,
                 hint: Optional[str] = None) -> None:
        self.size = size
        self.sector_size = sector_size
        self.hint = hint
        rule = "image length must be whole sectors"
        super().__init__(f"size {size} is not a multiple of the {sector_size}-byte sector "
                         f"size ({rule})" + (f"; {hint}" if hint else ""), path=path,
                         rule=rule)


class NotARegularFile(InvalidInput):
    """A path of the image that is not a regular file was asked for as one."""


class SourceChanged(InvalidInput):
    """A source file changed between planning and copying."""


class CorruptImage(BlockImgError):
    """The image breaks a rule of its format.

    ``offset`` is the byte offset in the image (or None when unknown),
    ``field`` the on-disk field, ``value`` the offending value.
    """

    def __init__(self, rule: str, *, offset: Optional[int] = None,
                 field: Optional[str] = None, value: Any = None) -> None:
        self.rule = rule
        self.offset = offset
        self.field = field
        self.value = value
        parts = []
        if offset is not None:
            parts.append(f"at byte {offset} (0x{offset:x})")
        if field is not None:
            parts.append(f"field {field}" + ("" if value is None else f"={value!r}"))
        where = ", ".join(parts)
        super().__init__(f"corrupt image {where}: {rule}" if where
                         else f"corrupt image: {rule}")


class Unsupported(BlockImgError):
    """Valid input that blockimg does not handle."""


class DeviceError(BlockImgError):
    """Reading or writing a device or source file failed."""

    def __init__(self, message: str, *, errno: Optional[int] = None) -> None:
        self.errno = errno
        super().__init__(message)


class NotFound(InvalidInput, KeyError):
    """No such path in the image.

    ``paths``: every path asked for that is not there (``path`` when only one).
    """

    def __init__(self, message: str, *, path: Optional[str] = None,
                 rule: Optional[str] = None, paths: Tuple[str, ...] = ()) -> None:
        self.paths = tuple(paths) or (() if path is None else (path,))
        if path is None and self.paths:
            message = f"{', '.join(escape(str(p)) for p in self.paths)}: {message}"
        super().__init__(message, path=path, rule=rule)

    def __str__(self) -> str:  # KeyError would add quotes
        return Exception.__str__(self)


__all__.append("NotFound")
