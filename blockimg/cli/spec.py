"""The command line as plain data -- each command and option declared once (:func:`arg`,
:func:`command`), with the value types they take -- and the two parsers made from it:
argparse's (:func:`add_arguments`: help, errors, abbreviations) and :func:`parse_plain`,
which parses a plain command line without importing argparse (~10 ms of start-up) and
steps aside for anything else. Importing this module imports nothing (no argparse, no
re): declaring costs no start-up."""
from __future__ import annotations

import sys

TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import List, Optional

__all__ = ["SUPPRESS", "arg", "command", "mtime", "jobs", "int0", "add_arguments",
           "parse_plain", "Arguments"]

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


def _for_argparse(settings: dict) -> dict:
    """``settings`` as argparse takes them: choices made, argparse's own SUPPRESS (it
    compares by identity)."""
    import argparse
    settings = dict(settings)
    if callable(settings.get("choices")):
        settings["choices"] = settings["choices"]()
    if settings.get("default") == SUPPRESS:
        settings["default"] = argparse.SUPPRESS
    return settings


def add_arguments(parser, arguments) -> None:
    """Add the declared ``arguments`` to the argparse ``parser``, in their order."""
    groups = {}
    for flags, group, settings in arguments:
        target = parser
        if group is not None:
            if group not in groups:
                groups[group] = parser.add_mutually_exclusive_group()
            target = groups[group]
        target.add_argument(*flags, **_for_argparse(settings))


class Arguments:
    """A parsed command line: one attribute per option, as argparse's Namespace."""

    def __init__(self, **values) -> None:
        self.__dict__.update(values)

    def __eq__(self, other) -> bool:
        return vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"Arguments({vars(self)!r})"


class _Fallback(Exception):
    """This command line is argparse's to parse (and explain)."""


class _Option:
    """What the fast parser needs of one declared option."""

    def __init__(self, index: int, flags, group, settings: dict) -> None:
        self.index, self.group = index, group
        self.action = settings.get("action", "store")
        self.dest = settings.get("dest") or _dest(flags)
        self.type, self.choices = settings.get("type"), settings.get("choices")
        self.required = settings.get("required", False)
        self.version = settings.get("version")
        if self.action not in ("store", "store_true", "store_false", "append", "version") or \
                settings.get("nargs") is not None or "const" in settings:
            raise ValueError(f"the fast parser does not know {flags}: {settings}")
        default = settings.get("default", False if self.action == "store_true" else
                               True if self.action == "store_false" else
                               SUPPRESS if self.action == "version" else None)
        if isinstance(default, str) and default != SUPPRESS and self.type is not None:
            default = self.type(default)    # (argparse converts a string default)
        self.default = default

    def value(self, text: str):
        value = text if self.type is None else self.type(text)
        if self.choices is not None:
            choices = self.choices() if callable(self.choices) else self.choices
            if value not in choices:
                raise _Fallback
        return value


def _dest(flags) -> str:
    long = [f for f in flags if f.startswith("--")]
    return (long or list(flags))[0].lstrip("-").replace("-", "_")


def _plan(arguments) -> tuple:
    """(positionals as (dest, nargs, default), {flag: _Option}, defaults) of a command."""
    positionals, options, defaults = [], {}, {}
    for index, (flags, group, settings) in enumerate(arguments):
        if not flags[0].startswith("-"):
            nargs = settings.get("nargs")
            if nargs not in (None, "?", "*", "+") or "type" in settings:
                raise ValueError(f"the fast parser does not know {flags}: {settings}")
            default = settings.get("default", [] if nargs == "*" else None)
            positionals.append((flags[0], nargs, default))
            continue
        opt = _Option(index, flags, group, settings)
        for flag in flags:
            options[flag] = opt
        if opt.default != SUPPRESS:
            defaults.setdefault(opt.dest, opt.default)
    return positionals, options, defaults


_PLANS: dict = {}


def parse_plain(argv: List[str], top, commands, prog: str) -> Optional[Arguments]:
    """``argv`` parsed as argparse parses it, given the options ``top``, the commands
    ``commands(name)`` declares (None: no such command) and the program's name ``prog``,
    when it is a plain command line; None for anything else -- help, an error, an
    abbreviated or combined option, a value that starts with "-", a positional after an
    option where argparse places words its own way -- which argparse parses (and
    explains). ``--version`` is printed, and exits, as argparse does."""
    _, top_options, values = _plan(top)
    values = dict(values)
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        opt = top_options.get(argv[i])
        if opt is None or opt.action not in ("store_true", "version"):
            return None
        if opt.action == "version":    # as argparse: print it, exit 0
            sys.stdout.write(opt.version.replace("%(prog)s", prog) + "\n")
            raise SystemExit(0)
        values[opt.dest] = True
        i += 1
    if i == len(argv):
        return None
    declared = commands(argv[i])
    if declared is None:
        return None
    plan = _PLANS.get(declared["name"])
    if plan is None:
        plan = _PLANS[declared["name"]] = _plan(declared["arguments"])
    positionals, options, defaults = plan
    values.update({k: (list(v) if isinstance(v, list) else v) for k, v in defaults.items()})
    values["command"] = argv[i]
    try:
        chunks, seen = _options(iter(argv[i + 1:]), options, values)
        groups = {}
        for opt in seen:
            if opt.group is not None:
                groups.setdefault(opt.group, set()).add(opt.index)
        if any(len(members) > 1 for members in groups.values()):
            return None     # argparse says which ones conflict
        if any(o.required and o not in seen for o in options.values()):
            return None
        _positionals(chunks, positionals, values)
    except _Fallback:
        return None
    except Exception as e:
        if _refusal(e):
            return None
        raise
    return Arguments(**values)


def _refusal(e: Exception) -> bool:
    """Whether ``e`` is how an option's value or name is refused (argparse explains it);
    anything else is a bug and stays visible. (ArgumentTypeError by name: argparse is not
    imported here.)"""
    return isinstance(e, (KeyError, StopIteration, ValueError)) or \
        type(e).__name__ == "ArgumentTypeError"


def _options(args, options: dict, values: dict):
    """Every option of ``args`` into ``values``; the positionals in chunks, split where
    options come between, and the options seen."""
    chunks: List[List[str]] = [[]]
    seen = set()
    for arg in args:
        if arg == "-" or not arg.startswith("-"):
            chunks[-1].append(arg)
            continue
        if chunks[-1]:
            chunks.append([])
        flag, eq, value = arg.partition("=")
        if not flag.startswith("--") and len(flag) > 2:     # -j2, -oIMAGE
            flag, eq, value = arg[:2], "=", arg[2:]
        opt = options[flag]
        seen.add(opt)
        if opt.action in ("store_true", "store_false"):
            if eq:
                raise _Fallback
            values[opt.dest] = opt.action == "store_true"
            continue
        if not eq:
            value = next(args)
        if value.startswith("-"):
            raise _Fallback
        if opt.action == "append":
            values[opt.dest] = list(values[opt.dest] or ()) + [opt.value(value)]
        else:
            values[opt.dest] = opt.value(value)
    return chunks, seen


def _positionals(chunks: List[List[str]], positionals: list, values: dict) -> None:
    """The positional words into ``values``, as argparse places them."""
    words = [w for chunk in chunks for w in chunk]
    if len([c for c in chunks if c]) > 1 and any(n for _, n, _ in positionals):
        raise _Fallback     # argparse gives "?" and "*" their values at the first positional
    for dest, nargs, default in positionals:
        if nargs in ("*", "+"):
            if nargs == "+" and not words:
                raise _Fallback
            values[dest], words = words, []
        elif words:
            values[dest], words = words[0], words[1:]
        elif nargs is None:
            raise _Fallback
        else:
            values[dest] = default
    if words:
        raise _Fallback
