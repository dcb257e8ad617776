"""The command line as plain data: each command and option declared once, with the
value types they take. :mod:`blockimg.cli.parsing` makes from it both argparse's parser
(help, errors, abbreviations) and the fast parser of plain command lines; this module
imports nothing (no argparse, no re), so declaring costs no start-up."""
from __future__ import annotations

TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Optional

__all__ = ["SUPPRESS", "arg", "command", "mtime", "jobs", "int0"]

#: argparse.SUPPRESS: an option that, not given, sets nothing.
SUPPRESS = "==SUPPRESS=="


def arg(*flags: str, group: Optional[str] = None, **settings) -> tuple:
    """One argument: its flags (or a positional's name) and argparse's ``add_argument``
    keywords; ``group`` names a mutually exclusive group of its command. ``choices`` may
    be a function giving them (called when they are needed)."""
    return flags, group, settings


def command(name: str, help: str, *arguments: tuple, description: Optional[str] = None,
            run=None, debug: bool = True) -> dict:
    """One command: its name, help line, arguments (made by :func:`arg`), the function
    that runs it (None: :mod:`blockimg.cli` knows it), and whether it also takes
    ``--debug`` after its name."""
    return {"name": name, "help": help, "description": description,
            "arguments": arguments, "run": run, "debug": debug}


def mtime(text: str) -> int:
    """A ``--mtime`` value: seconds since 1970 (N or @N, as GNU tar) or ISO 8601."""
    text = text.strip()
    if text.startswith("@") and text[1:].lstrip("-").isdigit():     # GNU tar's @EPOCH
        return int(text[1:])
    if text.lstrip("-").isdigit():
        return int(text)
    import argparse
    import datetime
    try:
        dt = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a timestamp: {text} (seconds since 1970 as N or @N, or ISO 8601 such as "
            "2024-05-01T12:00:00Z)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return int(dt.timestamp())


def jobs(text: str) -> Optional[int]:
    """A ``--jobs`` value: a number of processes, or None for ``auto``."""
    if text == "auto":
        return None
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        import argparse
        raise argparse.ArgumentTypeError(f"not a number of processes: {text!r} "
                                         "(1 or more, or auto)")
    return n


#: An integer in any base Python writes (0x1234ABCD). A lambda: argparse names the type
#: in its error ("invalid <lambda> value"), as it always has.
int0 = lambda text: int(text, 0)  # noqa: E731
