"""Start-up: a command imports only what it needs (every command is a short process)."""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blockimg import cli


@pytest.mark.parametrize("columns", ["50", "120"])
def test_help_is_argparse_s_own_for_the_terminal_width(monkeypatch, columns):
    """The formatter that skips shutil lays help out exactly as argparse's default does."""
    monkeypatch.setenv("COLUMNS", columns)
    ours = cli.build_parser()
    monkeypatch.setattr(cli, "_formatter", lambda: argparse.HelpFormatter)
    stock = cli.build_parser()
    for name in ("create", "ls", "verify"):
        a = ours._subparsers._group_actions[0].choices[name].format_help()
        b = stock._subparsers._group_actions[0].choices[name].format_help()
        assert a == b
    assert ours.format_help() == stock.format_help()
    assert max(len(ln) for ln in ours.format_help().splitlines()) > 40


def test_building_the_parser_does_not_import_shutil():
    code = ("import sys\n"
            "before = set(sys.modules)\n"
            "import blockimg.cli as c\n"
            "c.build_parser().parse_args(['ls', 'x.img'])\n"
            "print('shutil' in set(sys.modules) - before)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=dict(os.environ, COLUMNS="70")).stdout
    assert out.strip() == "False"


def _modules_added_by(code: str) -> list:
    """Top-level modules that ``code``, run in a fresh interpreter, imports (beyond the
    interpreter's own start-up)."""
    wrapped = ("import sys, json\n"
               "_before = set(sys.modules)\n"
               + code +
               "\nprint()\n"
               "print(json.dumps(sorted({m.split('.')[0] for m in set(sys.modules) - _before})))\n")
    out = subprocess.run([sys.executable, "-c", wrapped], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_commands_import_neither_dataclasses_inspect_construct_nor_numpy(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_bytes(b"a" * 100)
    d, x, y = (str(tmp_path / n) for n in ("d", "x.img", "y.tar"))
    added = _modules_added_by(
        "import blockimg.cli as c\n"
        f"c.main(['create', {d!r}, '-o', {x!r}, '--format', 'fat', '-q'])\n"
        f"c.main(['ls', {x!r}])\n"
        f"c.main(['extract', {x!r}, {str(tmp_path / 'out')!r}])\n"
        f"c.main(['create', {d!r}, '-o', {y!r}, '-q'])\n"
        f"c.main(['cat', {y!r}, 'a.txt'])\n")
    assert "blockimg" in added
    assert not {"dataclasses", "inspect", "construct", "numpy", "shutil"} & set(added)


@pytest.mark.parametrize("fmt", ["fat", "tar"])
def test_library_build_and_read_do_not_import_construct(tmp_path, fmt):
    """Reading decodes with struct (fat.structs.unpack, the tar field table)."""
    img, src = tmp_path / "a.img", tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "a long file name.txt").write_bytes(b"x" * 5000)
    added = _modules_added_by(
        "import blockimg\n"
        f"blockimg.create({str(src)!r}, {str(img)!r}, format={fmt!r})\n"
        f"with blockimg.open({str(img)!r}) as im:\n"
        "    assert im.read('d/a long file name.txt') == b'x' * 5000\n"
        "    im.fsinfo() if hasattr(im, 'fsinfo') else None\n")
    assert "blockimg" in added and "construct" not in added


def _modules_of_a_bare_interpreter(code: str) -> set:
    """Every module (full names) that ``code`` adds, run by an interpreter without
    ``site`` (so that nothing a .pth file or an editable install imports hides a cost),
    blockimg found on sys.path (and, after the interpreter's own, crcmod: verify needs
    it)."""
    import crcmod
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(cli.__file__))))
    crcmod_root = os.path.dirname(os.path.dirname(os.path.abspath(crcmod.__file__)))
    # (json is imported after the count: it imports re, enum, functools and collections,
    # which would otherwise be counted as there before the code ran)
    wrapped = ("import sys\n"
               f"sys.path.insert(0, {root!r})\n"
               f"sys.path.append({crcmod_root!r})\n"
               "_before = set(sys.modules)\n"
               + code +
               "\n_added = sorted(set(sys.modules) - _before)\n"
               "import json\n"
               "print()\n"
               "print(json.dumps(_added))\n")
    out = subprocess.run([sys.executable, "-S", "-c", wrapped], capture_output=True,
                         text=True, check=True).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


#: Heavy at start-up and needed by no command: typing (~4 ms: collections, functools,
#: contextlib, re), dataclasses/inspect, pathlib, urllib, ipaddress, importlib.metadata
#: (plugins are looked up only for a backend URL), shutil, numpy, construct.
NEVER = {"typing", "dataclasses", "inspect", "pathlib", "urllib", "urllib.parse", "ipaddress",
         "importlib.metadata", "shutil", "numpy", "construct", "tempfile", "textwrap"}


def test_importing_the_cli_imports_no_parser_nor_library():
    added = _modules_of_a_bare_interpreter("import blockimg.cli")
    assert not added & (NEVER | {"argparse", "re", "enum", "gettext", "blockimg.api",
                                 "blockimg.sources.directory", "blockimg.block.registry"}), added


def _modules_of_command(argv) -> set:
    """The modules ``blockimg ARGV`` adds to a bare interpreter (stdout silenced; the
    command must succeed)."""
    return _modules_of_a_bare_interpreter(
        "import blockimg.cli as c, os\n"
        "fd = os.dup(1); os.dup2(os.open(os.devnull, os.O_WRONLY), 1)\n"
        f"code = c.main({argv!r})\n"
        "sys.stdout.flush(); os.dup2(fd, 1)\n"
        "assert code == 0, code\n")


#: Kept out of every common command run on a one-file image or tree (beyond NEVER), each
#: imported only where it is needed: contextlib (~13 M instructions with the functools
#: and collections it brings; a build's atomic output uses it), importlib and warnings
#: (lazy.import_module instead), uuid and platform (a GPT's GUIDs), pickle and signal (a
#: second process), threading (a build's second buffer), fnmatch (--exclude), ctypes (an
#: image that is fsynced: a new file is not), json (--json), argparse, gettext and
#: locale (cli.parse_simple).
NOT_AT_START = {"contextlib", "importlib", "warnings", "uuid", "platform", "pickle", "signal",
                "threading", "fnmatch", "ctypes", "json", "argparse", "gettext", "locale"}
#: What each command may import of them all the same: a build makes its output
#: atomically (contextlib). (check of a FAT volume reads the interrupted-update marker
#: from blockimg.fat.marker, not from the planner in blockimg.fat.update.)
ALLOWED = {("create", "fat"): {"contextlib"}, ("create", "tar"): {"contextlib"}}
#: Reading a FAT volume needs no regular expression (nor the enum and functools that come
#: with re): the name tables of blockimg.fat.names are compiled by the commands that name
#: files (create, check).
NO_RE = {"re", "enum", "functools"}
#: A tar reader compiles its header patterns on first use (a pax record, an octal field
#: out of the usual form, the pass over headers of a lookup in an archive of more than
#: blockimg.tar.reader.PASS_AFTER members), and decodes no FAT table, so every command
#: on a small plain tar imports neither re nor array (which imports collections when it
#: loads); a tar build needs no re either.
NO_RE_NOR_ARRAY = NO_RE | {"array", "collections"}
#: Reading a FAT volume needs neither array nor collections (~8 M instructions of
#: start-up with the operator, itertools and keyword they bring): table windows are
#: memoryview casts, the walk keeps its runs in lists, a directory record is a plain
#: tuple subclass (blockimg.fat.update decodes into an array, for its count()). (ls -l
#: imports operator all the same: datetime does, for the dates.)
NO_ARRAY = {"array", "collections", "operator"}
#: The extraction side is for extract alone: ls, cat, info and check import none of it.
NOT_FOR_READING = {"blockimg.read.extract", "blockimg.read.extract_split",
                   "blockimg.write.parallel", "mmap"}


@pytest.fixture(scope="module")
def one_file(tmp_path_factory):
    """A directory of one file in a subdirectory, and its FAT and tar images."""
    from blockimg import api
    root = tmp_path_factory.mktemp("one")
    (root / "d" / "e").mkdir(parents=True)
    (root / "d" / "e" / "a.txt").write_bytes(b"a" * 100)
    for fmt in ("fat", "tar"):
        api.create(str(root / "d"), str(root / f"x.{fmt}"), format=fmt)
    return root


@pytest.mark.parametrize("fmt", ["fat", "tar"])
@pytest.mark.parametrize("command", ["create", "cat", "ls", "info", "check", "extract"])
def test_each_command_imports_only_what_it_uses(one_file, fmt, command):
    img, d = str(one_file / f"x.{fmt}"), str(one_file / "d")
    argv = {"create": ["create", d, "-o", str(one_file / f"new-{fmt}.img"), "--format", fmt,
                       "-q"],
            "cat": ["cat", img, "e/a.txt"], "ls": ["ls", "-l", img], "info": ["info", img],
            "check": ["check", img],
            "extract": ["extract", img, str(one_file / f"out-{fmt}")]}[command]
    added = _modules_of_command(argv)
    assert "blockimg.cli" in added
    forbidden = (NEVER | NOT_AT_START) - ALLOWED.get((command, fmt), set())
    if fmt == "fat" and command not in ("create", "check"):
        forbidden |= NO_RE
    if fmt == "fat" and command != "create":
        forbidden |= NO_ARRAY - ({"operator"} if command == "ls" else set())
    if fmt == "tar" and command != "create":
        forbidden |= NO_RE_NOR_ARRAY
    if command in ("cat", "ls", "info", "check"):
        forbidden |= NOT_FOR_READING
    if command in cli._NO_DISK_STEP:
        forbidden |= {"blockimg.disk.cli", "blockimg.cli.progress"} - (
            {"blockimg.cli.progress"} if command == "extract" else set())
    if command in ("info", "check"):   # a FAT volume or a tar archive is no disk
        forbidden |= {"blockimg.disk.reader", "blockimg.disk.table", "blockimg.disk.structs"}
    if fmt == "fat":                   # ASCII names and labels need no cp437 codec
        forbidden |= {"encodings.cp437"}
    if (command, fmt) == ("create", "tar"):
        forbidden |= {"re"}
    if (command, fmt) == ("check", "fat"):
        forbidden |= {"blockimg.fat.update", "blockimg.sources.directory"}
    assert not added & forbidden, sorted(added & forbidden)


@pytest.mark.parametrize("fmt", ["fat", "tar"])
@pytest.mark.parametrize("command", sorted(cli._NO_DISK_STEP))
def test_the_disk_step_has_nothing_to_do_where_the_cli_skips_it(one_file, fmt, command):
    """cli.main does not import blockimg.disk.cli for these commands on a plain image:
    its prepare would leave them alone (and it does not skip it for a partition)."""
    from blockimg.disk.cli import prepare
    img = str(one_file / f"x.{fmt}")
    argv = {"cat": ["cat", img, "e/a.txt"], "ls": ["ls", img],
            "extract": ["extract", img, str(one_file / "never")]}[command]
    args = cli.parse_simple(argv)
    assert not cli._disk_first(args)
    assert prepare(args) is None and vars(args) == vars(cli.parse_simple(argv))
    assert cli._disk_first(cli.parse_simple(argv + ["--partition", "1"]))
    assert cli._disk_first(cli.parse_simple([command, "partition:1:" + img] + argv[2:]))


def test_a_lookup_imports_neither_the_writers_nor_the_source_side(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_bytes(b"a" * 100)
    for fmt in ("fat", "tar"):
        img = str(tmp_path / f"x.{fmt}")
        blockimg_create = ("import blockimg.api as a\n"
                           f"a.create({str(tmp_path / 'd')!r}, {img!r}, format={fmt!r})\n")
        subprocess.run([sys.executable, "-c", blockimg_create], check=True)
        added = _modules_of_a_bare_interpreter(
            "import blockimg.cli as c, os\n"
            "fd = os.dup(1); os.dup2(os.open(os.devnull, os.O_WRONLY), 1)\n"
            f"assert c.main(['cat', {img!r}, 'a.txt']) == 0\n"
            "sys.stdout.flush(); os.dup2(fd, 1)\n")
        # (tar: blockimg.sources.directory comes with the codec, which encodes too)
        for name in ("blockimg.sources.directory" if fmt == "fat" else "blockimg.copy",
                     "blockimg.copy", f"blockimg.{fmt}.writer",
                     f"blockimg.{fmt}.layout", "blockimg.trust.manifest", "blockimg.block.mmap",
                     "blockimg.block.memory", "blockimg.write.parallel", "mmap"):
            assert name not in added, (fmt, name)


# Every command line is declared once (blockimg.cli.spec: cli.OWN, blockimg.disk.options,
# blockimg.update.cli); argparse's parser (cli.build_parser) and the fast one
# (cli.parse_simple) are both made from it, and these tests hold the two together.

def _by_argparse(argv):
    """vars() of argparse's parse of ``argv``, None when argparse refuses it."""
    parser = cli.build_parser(cli.command_in(argv))
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            args, extra = parser.parse_known_args(argv)
    except SystemExit:
        return None
    return None if extra else vars(args)


def _subparser(command):
    parser = cli.build_parser(command)
    return parser._subparsers._group_actions[0].choices[command]


def _declared_options(command):
    """{flag: argparse settings} of every option ``command`` declares."""
    return {flag: how for flags, _, how in cli.declared(command)["arguments"]
            if flags[0].startswith("-") for flag in flags}


def _required_words(command):
    """The shortest command line of ``command``: its required positionals and options."""
    words = [command]
    for flags, _, how in cli.declared(command)["arguments"]:
        if not flags[0].startswith("-") and how.get("nargs") in (None, "+"):
            words.append("x")
        elif how.get("required"):
            words += [flags[0], "out.img"]
    return words


def _a_value(how):
    """A value the option takes."""
    choices = how.get("choices")
    if choices is not None:
        return list(choices() if callable(choices) else choices)[-1]
    return {cli._size: "4K", int: "512", cli._mtime: "@1700000000", cli._jobs: "2",
            cli.int0: "0x10", None: "some/name"}[how.get("type")]


def test_every_command_is_declared_and_parsed_by_both():
    parser = cli.build_parser()
    assert list(parser._subparsers._group_actions[0].choices) == list(cli.NAMES)
    assert set(cli.NAMES) == {"create", "ls", "cat", "extract", "info", "check", "verify",
                              "build", "disk", "update", "diff"}


@pytest.mark.parametrize("command", cli.NAMES)
def test_each_option_of_each_command_is_parsed_as_argparse_does_without_it(command):
    """argparse knows exactly the declared options (and -h), and the fast parser parses
    each of them, in each spelling, as argparse does."""
    sub = _subparser(command)
    options = _declared_options(command)
    assert set(sub._option_string_actions) == set(options) | {"-h", "--help"}
    base = _required_words(command)
    assert cli.parse_simple(base) is not None
    assert vars(cli.parse_simple(base)) == _by_argparse(base)
    for flag, how in options.items():
        if how.get("action") in ("store_true", "store_false"):
            lines = [base + [flag]]
        else:
            value = _a_value(how)
            lines = [base + [flag, value], base + [f"{flag}={value}"]]
            if len(flag) == 2:
                lines.append(base + [flag + value])
        for argv in lines:
            fast = cli.parse_simple(argv)
            assert fast is not None, argv
            assert vars(fast) == _by_argparse(argv), argv


#: Command lines as people (and tools/bench) type them: parsed without argparse.
COMMON = [
    ["cat", "x.img", "a/b.txt"], ["cat", "mmap:x.img", "a"], ["--debug", "cat", "x", "y"],
    ["cat", "x", "y", "--debug"], ["cat", "x", "--partition", "2", "y"],
    ["ls", "x.img"], ["ls", "-l", "x.img", "d"], ["ls", "x.img", "d", "--json"],
    ["ls", "--one-level", "x"], ["info", "x.img"], ["info", "--json", "x.img"],
    ["check", "x.img"], ["check", "--target", "mirage", "x.img"],
    ["extract", "x.img", "out"], ["extract", "x.img", "out", "a", "b/*.html"],
    ["extract", "-j1", "--overwrite", "x.img", "out"], ["extract", "-q", "x", "o", "-j", "auto"],
    ["create", "site", "-o", "x.img"], ["create", "site", "-o", "x.img", "--format", "fat",
                                        "-q", "-j1"],
    ["create", "site", "--output=x.img", "--size", "64M", "--mtime", "@1700000000",
     "--exclude", "*.o", "--exclude", "tmp", "--exclude-vcs", "--no-fsync", "-j", "2"],
    ["create", "-", "-o", "x", "--fat-type", "16", "--volume-id", "0x1234", "--label", "L",
     "--format", "fat", "--target", "generic", "--align", "4K", "--free", "1M"],
    ["create", "repo", "--git-ref", "HEAD", "--git-path", "site", "-o", "x", "--check"],
    ["create", "site", "-o", "x.img", "--platform", "unix", "--attach", "a.txt"],
    ["verify", "x.img"], ["verify", "x.img", "src"], ["verify", "x.img", "--manifest", "m"],
    ["verify", "-q", "x.img", "src", "--manifest=m"], ["info", "x", "--platform", "unix"],
    ["update", "x.img", "src"], ["update", "x.img", "src", "--dry-run", "-q"],
    ["update", "--partition", "2", "x", "s", "--exclude", "a", "--exclude", "b"],
    ["diff", "x.img", "src", "--quick", "--sector-size", "4096", "--mtime", "5"],
    ["diff", "--debug", "x.img", "src", "--compare", "always"],
    ["disk", "a.img", "b/,format=fat", "-o", "d.img"],
    ["disk", "-o", "d.img", "--table", "gpt", "--align", "4K", "a", "empty:1M"],
    ["build"], ["build", "b.toml", "-q", "--show-secret"], ["--debug", "build"],
]


@pytest.mark.parametrize("argv", COMMON, ids=" ".join)
def test_common_command_lines_are_parsed_as_argparse_does_without_it(argv):
    assert _by_argparse(argv) is not None
    fast = cli.parse_simple(argv)
    assert fast is not None
    assert vars(fast) == _by_argparse(argv)


#: Left to argparse: help, errors, abbreviations, combined flags, values starting with -,
#: a positional after an option of a command with optional ones, a missing required one.
TO_ARGPARSE = [
    [], ["--bogus"], ["cat", "--help"], ["cat", "x"], ["cat", "x", "y", "z"],
    ["ls", "--one", "x"], ["ls", "-lq", "x"], ["extract", "x", "o", "-j", "-1"],
    ["extract", "x", "o", "-j", "0"], ["create", "s", "--size", "1M", "--min"],
    ["create", "s", "--fsync", "--no-fsync"], ["create", "s", "--format", "ext4"],
    ["info", "x", "--platform", "nowhere"], ["ls", "x", "-l", "d"], ["ls", "--json=1", "x"],
    ["create", "s", "--size", "lots"], ["create", "s", "-o"], ["cat", "--", "x", "y"],
    ["verify", "x", "--manifest", "m", "src"], ["update", "x"], ["cat", "-x", "y"],
    ["update", "x", "s", "--sector-size", "4K"], ["diff", "x", "s", "--dry-run"],
    ["disk", "a"], ["disk", "-o", "d"], ["disk", "a", "-o", "d", "b"], ["disk", "a", "--debug"],
    ["build", "a", "b"], ["verify", "x", "s", "t"], ["update", "x", "s", "--compare", "no"],
]


@pytest.mark.parametrize("argv", TO_ARGPARSE, ids=lambda a: " ".join(a) or "nothing")
def test_everything_else_is_left_to_argparse(argv):
    assert cli.parse_simple(argv) is None


@pytest.mark.parametrize("argv", [["--version"], ["--debug", "--version"]])
def test_version_is_printed_as_argparse_prints_it(argv, capsys):
    with pytest.raises(SystemExit) as fast:
        cli.parse_simple(argv)
    out = capsys.readouterr()
    with pytest.raises(SystemExit) as theirs:
        cli.build_parser().parse_args(argv)
    assert (fast.value.code, out) == (theirs.value.code, capsys.readouterr())
    assert out.out.startswith("blockimg ")


_WORDS = ["x", "d/e.txt", "-", "", "0", "1", "2", "auto", "4K", "64M", "fat", "tar",
          "mirage", "generic", "16", "@5", "0x10", "a=b", "unix", "gpt", "never", "512"]
_ODD = ["-1", "lots", "-x", "--", "--bogus", "-h", "--one", "-lq", "--version"]


@st.composite
def _command_lines(draw):
    """Mostly well-formed command lines of any command (positionals, flags, options
    with a value in each spelling), some with an odd word in them."""
    command = draw(st.sampled_from(cli.NAMES))
    options = _declared_options(command)
    word = st.sampled_from(_WORDS)

    def option(flag):
        if options[flag].get("action") in ("store_true", "store_false"):
            return st.just([flag])
        return st.one_of(st.tuples(st.just(flag), word).map(list),
                         word.map(lambda w: [f"{flag}={w}"]),
                         word.map(lambda w: [flag + w]) if len(flag) == 2 else st.nothing())
    items = draw(st.lists(st.one_of(
        word.map(lambda w: [w]), st.sampled_from(sorted(options)).flatmap(option),
        st.just(["--debug"]), st.sampled_from(_ODD).map(lambda w: [w]) if draw(st.booleans())
        else st.nothing()), max_size=7))
    before = ["--debug"] if draw(st.booleans()) else []
    return before + [command] + [w for item in items for w in item]


@settings(max_examples=800, deadline=None)
@given(_command_lines())
def test_any_command_line_parses_as_argparse_does_or_goes_to_it(argv):
    fast = cli.parse_simple(argv)
    if fast is not None:
        assert vars(fast) == _by_argparse(argv), argv


def test_common_commands_import_neither_argparse_nor_json_nor_signal(tmp_path):
    """Parsed by parse_simple (no argparse, gettext, locale), json only for --json,
    signal handlers through _signal (signal imports enum), signal for a second process."""
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_bytes(b"a" * 100)
    d = str(tmp_path / "d")
    for fmt in ("fat", "tar"):
        img = str(tmp_path / f"x.{fmt}")
        for argv in (["create", d, "-o", img, "--format", fmt, "-q", "-j1"], ["ls", "-l", img],
                     ["cat", img, "a.txt"], ["info", img], ["check", img],
                     ["extract", img, str(tmp_path / f"out-{fmt}")]):
            added = _modules_of_command(argv)
            assert not added & {"argparse", "gettext", "locale", "json", "signal"}, \
                (argv, added)


def test_a_bug_in_an_option_s_type_is_not_left_to_argparse():
    """A refused value goes to argparse to explain; any other exception is a bug and
    propagates (programming errors stay visible)."""
    from blockimg.cli.spec import arg, command, jobs, parse_plain

    def broken(text):
        raise RuntimeError("bug")
    declared = {"buggy": command("buggy", "a bug", arg("-j", type=broken)),
                "fine": command("fine", "no bug", arg("-j", type=jobs))}
    with pytest.raises(RuntimeError, match="bug"):
        parse_plain(["buggy", "-j", "2"], cli.TOP, declared.get, "p")
    # a refused value is argparse's: the fast parser steps aside
    assert parse_plain(["fine", "-j", "0"], cli.TOP, declared.get, "p") is None
    assert vars(parse_plain(["fine", "-j", "2"], cli.TOP, declared.get, "p")) == \
        {"debug": False, "command": "fine", "j": 2}


#: What ``create`` of a small directory does without (issue 16: its start-up within
#: 10 ms of the interpreter's). contextlib, enum and re each cost 4-7 ms with the
#: functools and collections they bring; ctypes is for the write-out hint of an image
#: past 8 MiB; array (which imports collections) for a FAT reader's table windows;
#: threading, pickle, signal and mmap for a big build's helper thread and processes;
#: the CRC-32C of a manifest's files.
CREATE_WITHOUT = {"contextlib", "enum", "functools", "collections", "re", "ctypes", "array",
                  "threading", "pickle", "signal", "mmap", "blockimg.trust.checksum"}
#: And per format: a FAT build needs no zlib (short-name hashes of crowded directories)
#: nor blockimg.fat.mirage (its records; names that Mirage would misread); a tar build
#: no struct nor bisect.
CREATE_WITHOUT_BY_FORMAT = {"fat": {"zlib", "blockimg.fat.mirage"}, "tar": {"struct", "bisect"}}


@pytest.mark.parametrize("replace", [False, True], ids=["new", "replaced"])
@pytest.mark.parametrize("fmt", ["fat", "tar"])
def test_create_of_a_small_tree_imports_only_what_it_uses(one_file, fmt, replace):
    """Both a new output and one replaced (fsynced, with the write-out hint asked for)."""
    out = one_file / f"small-{fmt}-{replace}.img"
    if replace:
        out.write_bytes(b"old")
    added = _modules_of_command(["create", str(one_file / "d"), "-o", str(out), "--format",
                                 fmt, "-q"])
    assert "blockimg.write.copier" in added
    forbidden = CREATE_WITHOUT | CREATE_WITHOUT_BY_FORMAT[fmt]
    assert not added & forbidden, sorted(added & forbidden)


#: What every command does without once its command line is parsed (issue 16: start-up
#: within 10 ms of the interpreter's): argparse (and the gettext and locale it brings),
#: and typing (annotations only: TYPE_CHECKING).
NO_PARSER = {"argparse", "gettext", "locale", "typing"}
#: And what update, diff and verify of a small image need none of: re, enum, contextlib
#: and functools (4-8 ms each, with what they bring), json and hashlib (a manifest's).
SMALL_WITHOUT = NO_PARSER | {"re", "enum", "contextlib", "functools", "json", "hashlib"}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A one-file directory, its FAT and tar images, one with a manifest, a config."""
    from blockimg import api
    root = tmp_path_factory.mktemp("small")
    (root / "d").mkdir()
    (root / "d" / "a.txt").write_bytes(b"a" * 100)
    for fmt in ("fat", "tar"):
        api.create(str(root / "d"), str(root / f"x.{fmt}"), format=fmt)
    api.create(str(root / "d"), str(root / "m.img"), manifest=str(root / "m.json"))
    (root / "blockimg.toml").write_text('[volumes.a]\nsource = "d"\noutput = "b.img"\n')
    return root


def _line(small, words):
    return [str(small / w) if (small / w.split(",")[0]).exists() or w.endswith(".new") else w
            for w in words]


@pytest.mark.parametrize("fmt", ["fat", "tar"])
@pytest.mark.parametrize("words", [["update", "x.IMG", "d"], ["update", "x.IMG", "d", "-q",
                                                               "--dry-run"],
                                   ["diff", "x.IMG", "d"], ["verify", "x.IMG", "d"],
                                   ["verify", "x.IMG"]], ids=" ".join)
def test_update_diff_and_verify_of_a_small_image_import_only_what_they_use(small, fmt, words):
    argv = _line(small, [w.replace("IMG", fmt) for w in words])
    added = _modules_of_command(argv)
    assert "blockimg.cli" in added
    forbidden = SMALL_WITHOUT | (NO_RE_NOR_ARRAY if fmt == "tar" else set())
    assert not added & forbidden, sorted(added & forbidden)


@pytest.mark.parametrize("words", [
    ["verify", "m.img", "--manifest", "m.json"],
    ["disk", "x.tar", "x.fat", "-o", "disk.new", "-q"],
    ["disk", "x.fat", "-o", "disk.new", "--table", "gpt", "-q"],
    ["build", "-q", "blockimg.toml"]], ids=" ".join)
def test_commands_that_do_more_import_no_parser(small, words):
    """A manifest is JSON (json imports re), a config TOML (tomllib imports re and
    typing), a disk's table needs uuid; none needs argparse once parsed, nor typing for
    its own code."""
    argv = _line(small, words)
    added = _modules_of_command(argv)
    assert "blockimg.cli" in added
    forbidden = NO_PARSER - ({"typing"} if argv[0] == "build" else set())
    assert not added & forbidden, sorted(added & forbidden)


def test_version_imports_nothing_but_the_command_line(small):
    added = _modules_of_a_bare_interpreter(
        "import blockimg.cli as c, os\n"
        "fd = os.dup(1); os.dup2(os.open(os.devnull, os.O_WRONLY), 1)\n"
        "try:\n"
        "    c.main(['--version'])\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0\n"
        "sys.stdout.flush(); os.dup2(fd, 1)\n")
    assert not added & (NO_PARSER | {"blockimg.api", "blockimg.disk.options",
                                     "blockimg.update"}), added


#: What each command does not import when it does not use it (beyond NO_PARSER): a disk
#: of image volumes derives its GUIDs without uuid (uuid brings platform, re and enum) and
#: reads deploy.platforms (re, shlex) only for --platform, and no source reader; a FAT
#: update or diff reads no blockimg.read.image (its index is blockimg.fat.update's);
#: verify with neither a manifest nor a source computes no CRC (crcmod).
WITHOUT_WHEN_UNUSED = [
    (["disk", "x.fat", "-o", "OUT", "-q"],
     {"uuid", "platform", "re", "enum", "shlex", "blockimg.deploy.platforms",
      "blockimg.sources.directory"}),
    (["disk", "x.tar", "x.fat", "-o", "OUT", "--table", "gpt", "-q"],
     {"uuid", "platform", "re", "enum", "shlex", "blockimg.deploy.platforms"}),
    (["diff", "x.fat", "d"], {"blockimg.read.image", "blockimg.write.device_guard"}),
    (["update", "x.fat", "d", "-q"], {"blockimg.read.image"}),
    (["verify", "x.fat"], {"crcmod", "blockimg.sources.directory"}),
    (["verify", "x.tar"], {"crcmod", "blockimg.sources.directory"}),
]


@pytest.mark.parametrize("words,unused", WITHOUT_WHEN_UNUSED,
                         ids=[" ".join(w) for w, _ in WITHOUT_WHEN_UNUSED])
def test_update_diff_verify_and_disk_import_what_they_use_only_when_they_use_it(
        small, tmp_path, words, unused):
    argv = [w.replace("OUT", str(tmp_path / "disk.img")) for w in _line(small, words)]
    added = _modules_of_command(argv)
    assert "blockimg.cli" in added
    assert not added & (NO_PARSER | unused), sorted(added & (NO_PARSER | unused))


def test_a_disk_with_a_platform_still_reads_its_rules(small, tmp_path):
    argv = _line(small, ["disk", "x.fat", "-o", "OUT", "--platform", "hvt", "-q"])
    argv = [w.replace("OUT", str(tmp_path / "disk.img")) for w in argv]
    assert "blockimg.deploy.platforms" in _modules_of_command(argv)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.text(alphabet="0123456789abcdef", max_size=64))
def test_the_disk_s_guids_are_uuid5_s(name, digest):
    """blockimg.disk.writer derives GUIDs without the uuid module: the same bytes, the
    same little-endian form (GPT's) and the same text as uuid.uuid5."""
    import uuid
    from blockimg.disk import writer
    ns = uuid.uuid5(uuid.NAMESPACE_DNS, "blockimg.disk")
    assert writer.NAMESPACE.bytes == ns.bytes
    ours = writer.partition_guid(name, digest)
    theirs = uuid.uuid5(ns, f"partition\0{name}\0{digest}")
    assert (ours.bytes, ours.bytes_le, str(ours)) == (theirs.bytes, theirs.bytes_le,
                                                      str(theirs))
    disk = writer.disk_guid("gpt", 1 << 20, [ours, ours])
    assert str(disk) == str(uuid.uuid5(ns, "\0".join(["disk", "gpt", str(1 << 20),
                                                       str(theirs), str(theirs)])))
    t = writer.Guid("EBD0A0A2-B9E5-4433-87C0-68B6B72699C7")
    assert t.bytes_le == uuid.UUID("EBD0A0A2-B9E5-4433-87C0-68B6B72699C7").bytes_le
