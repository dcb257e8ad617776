"""``blockimg`` command line: arguments in (declared once: :mod:`blockimg.cli.spec`),
library calls out; no format logic here."""
from __future__ import annotations

import os
import sys
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    import argparse
    from typing import List, Optional

from .. import __version__
# A command imports what it needs when it runs (start-up counts: docs/PERFORMANCE.rst):
# argparse only for what the fast parser leaves to it, the library (api) in the command, the
# progress bar in the commands that show one (create, extract, verify).
from .interrupts import Terminated, interrupts_as_exceptions
from ..errors import (BlockImgError, CorruptImage, DeviceError, InvalidInput,
                     NotARegularFile, NotFound, Problems, Unsupported)
from ..quoting import escape
from ..units import human_size, plural, size_argument as _size
from .spec import (SUPPRESS, Arguments, add_arguments, arg, command, int0, jobs as _jobs,
                   mtime as _mtime, parse_plain)

__all__ = ["main", "run"]


_JOBS_HELP = ("processes that copy file contents, and for a FAT extraction also index the "
              "image (default: auto, one per CPU up to 2 and per 1000 files; 1 for a single "
              "process); the result is the same")
_CREATE_JOBS_HELP = ("processes that copy file contents into the image (default: auto, one "
                     "per CPU up to 2 and per 1000 files; 1 for a single process); the image "
                     "is the same")

#: The command-line option of each format option (errors name the option a user typed).
_FLAGS = {"target": "--target", "sector_size": "--sector-size", "align": "--align",
          "size": "--size", "free": "--free", "fat_type": "--fat-type", "label": "--label",
          "volume_id": "--volume-id"}
#: Options only one format takes (given to the other, they are refused by name).
_FAT_ONLY = ("free", "fat_type", "label", "volume_id")


def _in_cli_terms(e: InvalidInput) -> InvalidInput:
    """``e`` naming the command-line option instead of the library's keyword."""
    if type(e) is InvalidInput and e.path in _FLAGS:
        return InvalidInput(e.message, path=_FLAGS[e.path], rule=e.rule)
    return e


def _print_problems(e: InvalidInput) -> None:
    """One line per problem, at most Problems.SHOWN of them, then the count."""
    problems = e.problems
    for p in problems[:Problems.SHOWN]:
        print(f"blockimg: error: {_in_cli_terms(p)}", file=sys.stderr)
    if len(problems) > Problems.SHOWN:
        print(f"blockimg: ... and {len(problems) - Problems.SHOWN} more", file=sys.stderr)
    print(f"blockimg: {plural(len(problems), 'problem')} found; nothing was written",
          file=sys.stderr)




def _formatter() -> type:
    """argparse's formatter, told the terminal width so that it does not import shutil
    for it (argparse makes a formatter per argument; shutil costs ~2 ms of start-up)."""
    import argparse

    class _Formatter(argparse.HelpFormatter):
        def __init__(self, prog: str, **kwargs) -> None:
            kwargs.setdefault("width", _columns() - 2)
            super().__init__(prog, **kwargs)
    return _Formatter


def _columns() -> int:
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return 80


#: Every command's help starts with its own --debug (SUPPRESS: not given there, the
#: global value stays).
_DEBUG = arg("--debug", action="store_true", default=SUPPRESS, help="show tracebacks on errors")
#: The options before the command.
TOP = (arg("--debug", action="store_true",
           help="show tracebacks on errors (also after the command)"),
       arg("--version", action="version", version=f"%(prog)s {__version__}"))
_IMAGE = arg("image", metavar="IMAGE", help="image file")

#: The commands this module runs, declared once: build_parser and parse_simple are made
#: from these (and from blockimg.disk.options and blockimg.update.cli for the others).
OWN = (
    command(
        "create", "build an image from a directory, a tar archive or a git tree",
        arg("src", metavar="SRC",
            help="source directory; or a tar archive (plain, gzip, xz or bzip2), '-' "
                 "for one on standard input; or, with --git-ref, a git repository"),
        arg("--git-ref", metavar="REF",
            help="read SRC's tree at this commit, branch or tag, without a checkout "
                 "(default: none, SRC is a directory or tar archive); times are the "
                 "commit's unless --mtime"),
        arg("--git-path", metavar="PATH",
            help="with --git-ref: only this directory of the tree (default: the "
                 "whole tree)"),
        arg("-o", "--output", metavar="IMAGE",
            help="image file (written atomically; only a regular file is replaced, "
                 "a symlink is followed to the file it leads to) or block device "
                 "node; required unless --check"),
        arg("--check", action="store_true",
            help="only check the tree against the format's and target's rules (every "
                 "problem at once) and say what the image would be; write nothing"),
        arg("--format", choices=["tar", "fat"], default="tar",
            help="image format (default: tar)"),
        arg("--target", choices=["mirage", "generic"],
            help="mirage: only what the Mirage drivers read; generic: the standard "
                 "form (default: mirage)"),
        arg("--sector-size", type=_size, metavar="N",
            help="device sector size the image is laid out for: 512..4096 for fat, "
                 "512..64K for tar (default: 4096 for fat --target mirage, else 512)"),
        arg("--align", type=_size, metavar="N",
            help="start file data (tar) / FAT regions (fat) on N-byte boundaries "
                 "(default: none for tar, 4K for fat)"),
        arg("--size", type=_size, metavar="N", group="size",
            help="exact image size, a whole number of sectors (e.g. 64M; default: "
                 "the smallest that holds the tree)"),
        arg("--min", action="store_true", group="size",
            help="smallest image that holds the tree (the default)"),
        arg("--free", type=_size, metavar="N",
            help="free space to leave, fat only (default: 0)"),
        arg("--fat-type", choices=["12", "16", "32", "auto"],
            help="FAT type, fat only (default: auto; 16 for --target mirage)"),
        arg("--label", help="volume label, fat --target generic only (default: none)"),
        arg("--volume-id", type=int0, metavar="N",
            help="volume serial number, fat only (default: 0x1234ABCD, fixed so "
                 "that images are reproducible)"),
        arg("--mtime", type=_mtime, metavar="TIME",
            help="timestamp for every entry: seconds since 1970 (N or @N, as GNU "
                 "tar) or ISO 8601 (default: $SOURCE_DATE_EPOCH, else the files' own)"),
        arg("--exclude", action="append", default=[], metavar="PATTERN",
            help="leave out files and directories matching PATTERN, a shell wildcard "
                 "matched against each name and each path below SRC, as GNU tar "
                 "does; repeatable (default: none)"),
        arg("--exclude-vcs", action="store_true",
            help="leave out version control files (.git, .gitignore, .svn, CVS, .hg, "
                 ".bzr, _darcs, ...: GNU tar's --exclude-vcs list)"),
        arg("--keep-links", action="store_true",
            help="store symlinks and hard links as links instead of copies (tar "
                 "--target generic; default: store copies)"),
        arg("--skip-special", action="store_true",
            help="leave out sockets, devices and FIFOs instead of refusing them"),
        arg("--manifest", metavar="FILE",
            help="write a JSON manifest of the image (default: none)"),
        arg("--secret", action="store_true",
            help="image mode 0600 from the first byte; no names in progress output"),
        arg("--fsync", dest="fsync", action="store_true", default=None, group="fsync",
            help="always make the image durable (fsync) before putting it in place"),
        arg("--no-fsync", dest="fsync", action="store_false", group="fsync",
            help="never fsync (like cp and tar; a crash soon after can leave an "
                 "image with missing data). Default: fsync when the image replaces "
                 "an existing file or is a device, not when it is a new file"),
        arg("--force", action="store_true",
            help="overwrite a block device that already holds a file system"),
        arg("-j", "--jobs", type=_jobs, default=None, metavar="N", help=_CREATE_JOBS_HELP),
        arg("-q", "--quiet", action="store_true",
            help="no progress bar and no summary line")),
    command(
        "ls", "list an image (recursively; --one-level: like mdir or ls)",
        _IMAGE,
        arg("path", nargs="?", default="", metavar="PATH",
            help="directory (or file) in the image (default: the whole image)"),
        arg("-l", action="store_true", dest="long",
            help="long listing: mode, size, time (local, with its UTC offset), name"),
        arg("--one-level", action="store_true",
            help="only the entries directly in PATH (default: everything below it)"),
        arg("--json", action="store_true",
            help="JSON output, names exact, times in seconds since 1970 (otherwise "
                 "control characters in names are escaped as GNU tar shows them: "
                 "\\033, \\n, \\\\)")),
    command(
        "cat", "write a file of the image to stdout",
        _IMAGE, arg("path", metavar="PATH", help="file in the image")),
    command(
        "extract", "extract an image into a directory",
        _IMAGE,
        arg("dest", metavar="DEST", help="directory to extract into (made if missing)"),
        arg("paths", nargs="*", metavar="PATH",
            help="only these paths and what is below them (default: everything); a "
                 "PATH that is not an entry may be a shell pattern, as with GNU tar "
                 "--wildcards ('docs/*.html'; * also matches /). One that selects "
                 "nothing is an error (exit status 2)"),
        arg("--overwrite", action="store_true",
            help="replace existing files (default: leave them alone)"),
        arg("-j", "--jobs", type=_jobs, default=None, metavar="N", help=_JOBS_HELP),
        arg("-q", "--quiet", action="store_true", help="no progress bar")),
    command(
        "info", "format, geometry and counts of an image",
        _IMAGE, arg("--json", action="store_true", help="JSON output")),
    command(
        "check", "check an image's structure (read-only)",
        _IMAGE,
        arg("--target", choices=["mirage", "generic"], default="generic",
            help="mirage: also report everything the Mirage driver would fail on "
                 "(default: generic)")),
    command(
        "verify", "compare an image with its manifest and/or source",
        _IMAGE,
        arg("src", nargs="?", metavar="SRC",
            help="source directory to compare with (default: none)"),
        arg("--manifest", metavar="FILE", help="manifest to compare with (default: none)"),
        arg("-q", "--quiet", action="store_true", help="no progress bar")),
    command(
        "build", "build every volume (and the disk) a blockimg.toml describes",
        arg("config", nargs="?", default="blockimg.toml", metavar="CONFIG",
            help="the config file (default: blockimg.toml); its paths are relative "
                 "to its directory"),
        arg("--show-secret", action="store_true",
            help="also name the skipped files of secret volumes (default: only "
                 "their count; no file of a secret volume is named)"),
        arg("-q", "--quiet", action="store_true",
            help="no summary lines or attach instructions")),
)

#: Every command, in the order --help lists them, and the module that declares it
#: (None: this one).
_DECLARED_IN = {c["name"]: None for c in OWN}
_DECLARED_IN.update(disk="disk", update="update", diff="update")
#: Every command's name, in the order --help lists them.
NAMES = tuple(_DECLARED_IN)


def declared(name: str) -> Optional[dict]:
    """Command ``name`` as declared, with --debug first (unless the command has none) and
    the options other modules add to it last (the disk's --partition on the readers,
    --platform on create and info); None if there is no such command."""
    if name not in _DECLARED_IN:
        return None
    from ..disk import options as disk
    where = _DECLARED_IN[name]
    if where is None:
        commands = OWN
    elif where == "disk":
        commands = disk.COMMANDS
    else:
        from ..update import cli as update
        commands = update.COMMANDS
    c = next(c for c in commands if c["name"] == name)
    arguments = ((_DEBUG,) if c["debug"] else ()) + c["arguments"] + disk.EXTRA.get(name, ())
    return dict(c, arguments=arguments)


def command_in(argv: List[str]) -> Optional[str]:
    """The command ``argv`` runs, when it names one before anything else but --debug."""
    for word in argv:
        if word != "--debug":
            return word if word in _DECLARED_IN else None
    return None


def build_parser(only: Optional[str] = None) -> argparse.ArgumentParser:
    """argparse's parser of the declared command line; with ``only``, the arguments of
    that command alone (building every command's arguments costs ~3 ms of start-up)."""
    import argparse
    formatter = _formatter()
    p = argparse.ArgumentParser(
        prog="blockimg", formatter_class=formatter,
        description="Build and read FAT and tar block-device images (for MirageOS unikernels).")
    add_arguments(p, TOP)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _DECLARED_IN:
        if only is not None and name != only:
            continue
        c = declared(name)
        parser = sub.add_parser(name, help=c["help"], formatter_class=formatter,
                                **({"description": c["description"]} if c["description"]
                                   else {}))
        add_arguments(parser, c["arguments"])
    return p


def cmd_create(args: argparse.Namespace) -> int:
    _check_create_args(args)
    from .. import api
    from .progress import ProgressBar
    mtime = args.mtime
    if mtime is None and os.environ.get("SOURCE_DATE_EPOCH", "").strip():
        mtime = _mtime(os.environ["SOURCE_DATE_EPOCH"])
    common = dict(format=args.format, keep_links=args.keep_links,
                  skip_special=args.skip_special, mtime=mtime, exclude=args.exclude,
                  exclude_vcs=args.exclude_vcs, platform=args.platform,
                  **_format_options(args))
    bar = ProgressBar("writing" if args.secret or args.output is None
                      else f"writing {os.path.basename(args.output)}",
                      enabled=False if args.quiet or args.check else None)
    from ..sources.directory import excluder
    from ..sources import open_source
    try:
        with open_source(args.src, git_ref=args.git_ref, git_path=args.git_path,
                         spool_dir=_spool_dir(args.output), keep_links=args.keep_links,
                         skip_special=args.skip_special, mtime=mtime,
                         exclude=excluder(args.exclude, vcs=args.exclude_vcs)) as src:
            if args.check:
                summary = api.plan(src, **common)
            else:
                summary = api.create(src, args.output, secret=args.secret, force=args.force,
                                     progress=bar if bar.enabled else None,
                                     manifest=args.manifest, fsync=args.fsync,
                                     jobs=args.jobs, **common)
    except InvalidInput as e:
        return _refused(e)
    finally:
        bar.finish()
    _print_skipped(summary.skipped, secret=args.secret)
    if args.check:
        _print_plan(args.src, summary)
        return 0
    if not args.quiet:
        print(_safe(summary.line()))
    from ..disk.cli import after_create
    after_create(args, summary)
    return 0


def _check_create_args(args: argparse.Namespace) -> None:
    """An output (unless --check), and no FAT option for a tar image."""
    if args.output is None and not args.check:
        raise InvalidInput("no image to write: give -o IMAGE (or --check to only check the "
                           "tree)", path="--output", rule="create needs an output")
    given = [k for k in _FAT_ONLY if getattr(args, k) is not None]
    if args.format == "tar" and given:
        raise InvalidInput("applies to --format fat only (this image is tar)",
                           path=", ".join(_FLAGS[k] for k in given),
                           rule="option of another format")


def _format_options(args: argparse.Namespace) -> dict:
    """The format options given on the command line (by the library's keywords)."""
    options = {k: getattr(args, k) for k in _FLAGS if k != "fat_type"}
    if args.fat_type is not None:
        options["fat_type"] = args.fat_type if args.fat_type == "auto" else int(args.fat_type)
    return {k: v for k, v in options.items() if v is not None}


def _refused(e: InvalidInput) -> int:
    """Exit status 1 after printing each of several problems; one is raised, in the
    command line's terms."""
    if len(e.problems) > 1:
        _print_problems(e)
        return 1
    raise _in_cli_terms(e) from None


def _print_skipped(skipped, *, secret: bool) -> None:
    if secret and skipped:
        # --secret: no file names in what blockimg prints on success.
        print(f"blockimg: skipped {len(skipped)} special files", file=sys.stderr)
    elif not secret:
        for path, what in skipped:
            print(f"blockimg: skipped {escape(path)}: {what}", file=sys.stderr)


def cmd_build(args: argparse.Namespace) -> int:
    """``build [CONFIG]``: parse and check the whole config, build every output into a
    staging file, put them all in place (blockimg.deploy.build); then the summaries and the
    attach instructions of every volume and disk with a platform."""
    from ..deploy import platforms
    from ..deploy.build import build
    from ..deploy.config import parse
    try:
        with open(args.config, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise InvalidInput(f"not UTF-8 text (byte {e.start})", path=args.config,
                           rule="TOML is UTF-8") from None
    try:
        plan = parse(text, config=args.config,
                     base=os.path.dirname(os.path.abspath(args.config)))
        result = build(plan)
    except InvalidInput as e:
        return _refused(e)
    attach = []
    for spec, summary in result.volumes:
        shown = args.show_secret or not spec.secret
        for path, what in summary.skipped if shown else ():
            print(f"blockimg: skipped {escape(path)}: {what}", file=sys.stderr)
        if summary.skipped and not shown:
            print(f"blockimg: {spec.output}: skipped {len(summary.skipped)} special files",
                  file=sys.stderr)
        if not args.quiet:
            # Counts and sizes only: no file of the volume is named.
            print(_safe(spec.output + summary.line()[len(summary.path):]))
        if spec.platform:
            p = platforms.get(spec.platform)
            attach.append(platforms.attach(
                p, spec.output, format=summary.format, sector_size=summary.sector_size,
                image_size=summary.image_size,
                name=spec.device_name or platforms.default_device_name(spec.output)))
    d = plan.disk
    if d is not None:
        disk = result.disk
        if not args.quiet:
            print(_safe(d.output + disk.line()[len(disk.path):]))
        if d.platform:
            p = platforms.get(d.platform)
            attach.append(platforms.attach(
                p, d.output, name=d.device_name or platforms.default_device_name(d.output),
                format="disk", sector_size=512, image_size=disk.plan.disk_size,
                partitions=tuple((s.name, s.start, s.size) for s in disk.plan.slots),
                table=d.table))
    if not args.quiet:
        sys.stdout.write("".join(attach))
    return 0


def _print_plan(src: str, summary) -> None:
    """``create --check``: what the image would be."""
    plan = summary.plan
    target = plan.options.target
    print(f"{src}: OK for a {summary.format} image, target {target} (nothing written)")
    print(f"format: {summary.format}")
    if summary.format == "fat":
        print(f"FAT type: FAT{plan.fat_type}")
        print(f"cluster size: {human_size(plan.cluster_size)}")
    print(f"image size: {human_size(summary.image_size)} ({summary.image_size} bytes)")
    print(f"sector size: {summary.sector_size} bytes")
    print(f"contents: {plural(summary.files, 'file')} in "
          f"{plural(summary.directories, 'directory', 'directories')}, "
          f"{human_size(summary.file_bytes)} of data")


def _spool_dir(output: Optional[str]) -> Optional[str]:
    """Where a stream is spooled: beside an image file (the same file system as the
    output, which must have room anyway), else the system's temporary directory."""
    if output is None:
        return None
    directory = os.path.dirname(os.path.abspath(output))
    if output.startswith("/dev/") or not os.path.isdir(directory):
        return None
    return directory


def _mode_string(e) -> str:
    kind = {"dir": "d", "symlink": "l", "hardlink": "h"}.get(e.kind, "-")
    bits = "".join(ch if e.mode & (1 << (8 - i)) else "-" for i, ch in enumerate("rwxrwxrwx"))
    return kind + bits


def cmd_ls(args: argparse.Namespace) -> int:
    from .. import api
    with api.open(args.image) as img:
        entries = img.list(args.path, recursive=not args.one_level)
        if args.json:
            import json     # (here: json imports re, ~8 ms of start-up)
            json.dump([e.as_dict() for e in entries], sys.stdout, indent=1)
            sys.stdout.write("\n")
            return report_reading(img, args.image)
        for e in entries:
            name = escape(e.path) + ("/" if e.kind == "dir" else "")
            if args.long:
                link = f" -> {escape(e.link_target)}" if e.link_target else ""
                print(f"{_mode_string(e)} {e.size:>12} {_local_time(e.mtime)} {name}{link}")
            else:
                print(name)
    return report_reading(img, args.image)


def _local_time(mtime: int) -> str:
    """``2024-05-01 14:00 +0200``: local time (as GNU tar -tv shows), with its UTC offset."""
    import datetime
    when = datetime.datetime.fromtimestamp(mtime, datetime.timezone.utc).astimezone()
    return f"{when:%Y-%m-%d %H:%M %z}"


def cmd_cat(args: argparse.Namespace) -> int:
    from .. import api
    out = sys.stdout.buffer
    # One path: only what decides it is indexed (FAT: the directories on its way).
    with api.open(args.image, lazy=True) as img, _reporting(img, args.image):
        try:
            f = img.open(args.path)
        except NotFound:
            hint = _other_case(img, args.path)
            if hint is None:
                raise
            raise NotFound(f"not in the image, but {escape(hint)} is (names differ in case)",
                           path=args.path, rule="names are matched exactly") from None
        try:
            fd = out.fileno()
        except (AttributeError, OSError, ValueError):   # stdout replaced (tests, embedding)
            fd = None
        if fd is None:
            for chunk in img.iter_chunks(args.path):
                out.write(chunk)
        else:
            # Straight from the image to fd 1, inside the kernel where it can
            # (copy_file_range to a file, sendfile to a pipe), else in bounded chunks.
            sys.stdout.flush()
            try:
                f.copy_to(fd)
            except BrokenPipeError:
                raise
            except OSError as e:
                raise DeviceError(f"standard output: cannot copy {escape(args.path)} to it: "
                                  f"{e.strerror}", errno=e.errno) from None
    out.flush()
    return 1 if img.skipped else 0


def _other_case(img, path: str):
    """The image path that matches ``path`` but for case, if there is one."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    at = ""
    for part in parts:
        try:
            names = [e.path.rpartition("/")[2] for e in img.list(at, recursive=False)]
        except BlockImgError:
            return None
        if part not in names:
            near = [n for n in names if n.casefold() == part.casefold()]
            if not near:
                return None
            part = near[0]
        at = f"{at}/{part}" if at else part
    return at


def cmd_extract(args: argparse.Namespace) -> int:
    from .. import api
    from .progress import ProgressBar
    # Lazily: with -j, a FAT image is indexed in parts by the processes that extract them.
    with api.open(args.image, lazy=True) as img:
        bar = ProgressBar("extracting", enabled=False if args.quiet else None)
        try:
            report = img.extract(args.dest, overwrite=args.overwrite,
                                 paths=args.paths or None, jobs=args.jobs,
                                 progress=bar if bar.enabled else None)
        except NotFound as e:
            if args.debug or not e.paths:
                raise
            # As GNU tar: each PATH that selects nothing, on a line of its own; exit 2.
            for path in e.paths:
                print(f"blockimg: {escape(path)}: not found in image", file=sys.stderr)
            return 2
        finally:
            bar.finish()
        report_reading(img, args.image, skips=False)    # (they are in report.refused)
    for path in report.existing:
        print(f"blockimg: {escape(path)}: exists, not overwritten (use --overwrite)",
              file=sys.stderr)
    for path, why in report.refused:
        print(f"blockimg: {escape(path)}: refused: {_safe(why)}", file=sys.stderr)
    print(f"extracted {plural(len(report.written), 'entry', 'entries')} to "
          f"{escape(args.dest)}"
          + (f", refused {len(report.refused)}" if report.refused else "")
          + (f", {len(report.existing)} existing left alone" if report.existing else ""))
    return 0 if report.ok else 1


def cmd_info(args: argparse.Namespace) -> int:
    from .. import api
    with api.open(args.image) as img:
        info = img.info()
    if args.json:
        import json
        json.dump(info, sys.stdout, indent=1, default=str)
        sys.stdout.write("\n")
    else:
        for k, v in info.items():
            print(f"{k.replace('_', ' ')}: {escape(_shown(v))}")
    return report_reading(img, args.image)


def _shown(value) -> str:
    """An info value as a person reads it: lists joined, None as "none", yes/no."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


def cmd_check(args: argparse.Namespace) -> int:
    from .. import api
    from ..formats import format_module
    with api.open(args.image) as img:
        mod = format_module(img.format)
        found = mod.check(img, target=args.target)
    # Warnings (the image works, with a limit) are printed but do not fail the check,
    # for both formats: the reader's warnings, and tar's "(warning)" findings.
    image = escape(args.image)
    warnings = list(img.warnings)
    problems = [p for p in found if p not in warnings and not p.endswith("(warning)")]
    for p in problems:
        print(f"{image}: {_safe(p)}")
    for w in found:
        if w not in problems and w not in warnings:
            print(f"blockimg: {image}: warning: {_safe(w.removesuffix(' (warning)'))}",
                  file=sys.stderr)
    report_reading(img, args.image, skips=False)   # the reader's warnings (skips: problems)
    if not problems:
        print(f"{image}: {img.format} image OK"
              + (" for the Mirage driver" if args.target == "mirage" else ""))
    else:
        print(f"{image}: {plural(len(problems), 'problem')}", file=sys.stderr)
    return 1 if problems else 0


def cmd_verify(args: argparse.Namespace) -> int:
    """The ``verify`` command: print every difference; exit 0 only when all agree."""
    from ..trust.verify import verify
    from .progress import ProgressBar
    if args.manifest is None and args.src is None:
        print(f"blockimg: {args.image}: no --manifest or SRC given; checking structure and "
              "reading every file", file=sys.stderr)
    if args.src is not None and not os.path.isdir(args.src):
        raise InvalidInput("source is not a directory", path=args.src, rule="source directory")
    bar = ProgressBar("verifying", enabled=False if getattr(args, "quiet", False) else None)
    try:
        report = verify(args.image, manifest=args.manifest, source=args.src, progress=bar)
    finally:
        bar.finish()
    image = escape(args.image)
    for d in report.differences:
        print(f"{image}: {escape(str(d), backslash=False)}")
    against = " and ".join(x for x in (
        "its manifest" if args.manifest else "", "the source" if args.src else "") if x)
    if report.ok:
        print(f"{image}: OK, {report.files_checked} files"
              + (f" agree with {against}" if against else " read, structure clean"))
        return 0
    print(f"{image}: {len(report.differences)} difference"
          f"{'s' if len(report.differences) != 1 else ''}", file=sys.stderr)
    return 1


def report_reading(img, image: str, *, shown=(), skips: bool = True) -> int:
    """Print on stderr, once, what reading ``img`` met: each warning (but those in
    ``shown``) and, with ``skips``, each entry left out and why. The exit status: 1 when
    an entry was left out (the output misses it, as GNU tar fails after such errors),
    else 0."""
    for w in img.warnings:
        if w not in shown:
            print(f"blockimg: {escape(image)}: warning: {_safe(w)}", file=sys.stderr)
    skipped = img.skipped
    if skips:
        for name, why in skipped:
            print(f"blockimg: {escape(image)}: '{escape(name)}' left out: {_safe(why)}",
                  file=sys.stderr)
    return 1 if skipped else 0


class _reporting:
    """:func:`report_reading` once the block ends, also when it fails (a path not found
    may be one that was left out). (A class: contextlib costs ~4 ms of start-up.)"""

    def __init__(self, img, image: str) -> None:
        self.img, self.image = img, image

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc) -> None:
        report_reading(self.img, self.image)


def _naming_image(error: BlockImgError, image: Optional[str]) -> str:
    """``error``'s message naming the image once: errors about what is in it (corrupt,
    unsupported, no such path) get its name in front; the others name their own file."""
    text = str(error)
    if image is not None and isinstance(error, _ABOUT_IMAGE) and \
            not text.startswith(f"{image}: "):
        text = f"{image}: {text}"
    return text


_ABOUT_IMAGE = (CorruptImage, Unsupported, NotFound, NotARegularFile)


def _safe(message: str) -> str:
    """A message for people, its names already escaped: what a name embedded raw could
    still bring (control characters) escaped too, line by line."""
    return "\n".join(escape(line, backslash=False) for line in message.split("\n"))


def _os_error(e: OSError) -> str:
    """One line for an OSError: the path(s) it names, and the cause."""
    names = [escape(os.fsdecode(n)) for n in (e.filename, e.filename2)
             if isinstance(n, (str, bytes))]
    return ": ".join(names + [e.strerror or str(e)])


def parse_simple(argv: List[str]) -> Optional[Arguments]:
    """``argv`` parsed without argparse, when it is a plain command line (importing
    argparse and building its parser is ~10 ms of start-up); None for anything else --
    help, an error, an abbreviated or combined option, a value that starts with "-" --
    which argparse parses (and explains). Both parse the same declarations."""
    return parse_plain(argv, TOP, declared, "blockimg")


COMMANDS = {"create": cmd_create, "ls": cmd_ls, "cat": cmd_cat, "extract": cmd_extract,
            "info": cmd_info, "check": cmd_check, "verify": cmd_verify,
            "build": cmd_build}


#: Commands that blockimg.disk.cli.prepare has nothing to do for, unless they name a
#: partition (tests/unit/test_startup.py holds the two together).
_NO_DISK_STEP = ("ls", "cat", "extract")


def _disk_first(args) -> bool:
    """Whether ``args`` need :func:`blockimg.disk.cli.prepare` before the command: not for
    ls, cat and extract of a plain image (the module is ~1.3 M instructions of start-up)."""
    return args.command not in _NO_DISK_STEP or args.partition is not None or \
        str(args.image).startswith("partition:")


def _function(name: str):
    """The function that runs command ``name`` (disk is run by blockimg.disk.cli)."""
    return COMMANDS.get(name) or declared(name)["run"]


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_simple(argv)
    if args is None:
        parser = build_parser(command_in(argv))
        args, extra = parser.parse_known_args(argv)
        # argparse cannot take `verify IMAGE --manifest M SRC` (a positional after an
        # option).
        if args.command == "verify" and args.src is None and len(extra) == 1 \
                and not extra[0].startswith("-"):
            args.src, extra = extra[0], []
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        with interrupts_as_exceptions():
            done = None
            if _disk_first(args):
                from ..disk.cli import prepare   # disk; --partition; partitioned disks; --platform
                done = prepare(args)
            return done if done is not None else _function(args.command)(args)
    except BlockImgError as e:
        if args.debug:
            raise
        print(f"blockimg: error: {_safe(_naming_image(e, getattr(args, 'image', None)))}",
              file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Terminated):
        print("blockimg: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        sys.stdout = None  # type: ignore[assignment]  (nothing more to flush at exit)
        return 141
    except OSError as e:
        # The system refused something (a full disk, a read-only file system, a missing
        # directory): one line; anything else is a bug and keeps its traceback.
        if args.debug:
            raise
        print(f"blockimg: error: {_os_error(e)}", file=sys.stderr)
        return 1


def run() -> None:
    """The ``blockimg`` program: :func:`main`, then exit without tearing the interpreter down.

    A finished command has closed its files and put its outputs in place;
    freeing every object of a big tree one by one (and running the collector
    over them) would only delay the exit, by ~10 ms on 20,000 files. The
    standard streams are flushed first; an exception that escapes ``main``
    (a bug, or ``--debug``) still exits the normal way, with its traceback.
    """
    try:
        code = main()
    except SystemExit as e:      # argparse: --help, usage errors
        code = e.code
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except BrokenPipeError:
            code = code or 141
        except OSError as e:
            _report_unwritable(stream, e)
            code = code or 1
        except ValueError:
            code = code or 1
    os._exit(code)


def _report_unwritable(stream, e: OSError) -> None:
    """Say (on stderr, if that is not the stream that failed) that output was lost."""
    if stream is sys.stderr:
        return
    try:
        print(f"blockimg: error: standard output: {e.strerror or e}", file=sys.stderr)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    run()
