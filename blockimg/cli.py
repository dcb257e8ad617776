"""``blockimg`` command line: argparse in, library calls out; no format logic here."""
from __future__ import annotations

import contextlib
import os
import sys
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    import argparse
    from typing import List, Optional

# A command imports what it needs when it runs (start-up counts: docs/PERFORMANCE.rst):
# argparse when the command line is parsed, the library (api) in the command.
from .atomic import Terminated, interrupts_as_exceptions
from .errors import (BlockImgError, CorruptImage, InvalidInput, NotARegularFile, NotFound,
                     Unsupported)
from .progress import ProgressBar

__all__ = ["main", "run"]


def _mtime(text: str) -> int:
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    import argparse
    import datetime
    try:
        dt = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a timestamp: {text!r} (seconds since 1970, or ISO 8601)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return int(dt.timestamp())


def _jobs(text: str) -> Optional[int]:
    import argparse
    if text == "auto":
        return None
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"not a number of processes: {text!r} "
                                         "(1 or more, or auto)")
    return n


_JOBS_HELP = ("processes that copy file contents, and for a FAT extraction also index the "
              "image (default: auto, one per CPU up to 2 and per 1000 files; 1 for a single "
              "process); the result is the same")


def _size(text: str) -> int:
    import argparse
    from .units import parse_size
    try:
        return parse_size(text)
    except InvalidInput as e:
        raise argparse.ArgumentTypeError(str(e)) from None


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


class _NotBuilt:
    """Stands for the parser of a command that is not run: what is added to it is
    dropped (building every command's arguments costs ~3 ms of start-up)."""

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: self


def command_in(argv: List[str]) -> Optional[str]:
    """The command ``argv`` runs, when it names one before anything else but --debug."""
    for arg in argv:
        if arg != "--debug":
            return arg if arg in COMMANDS else None
    return None


def build_parser(only: Optional[str] = None) -> argparse.ArgumentParser:
    """The command line parser; with ``only``, the arguments of that command alone."""
    import argparse
    formatter = _formatter()
    p = argparse.ArgumentParser(
        prog="blockimg", formatter_class=formatter,
        description="Build and read FAT and tar block-device images (for MirageOS unikernels).")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        if only is not None and name != only:
            return _NotBuilt()   # type: ignore[return-value]
        return sub.add_parser(name, help=help, formatter_class=formatter)
    sub.required = True

    c = command("create", "build an image from a directory")
    c.add_argument("src", metavar="SRC", help="source directory")
    c.add_argument("-o", "--output", required=True, metavar="IMAGE",
                   help="image file (written atomically) or block device node")
    c.add_argument("--format", choices=["tar", "fat"], default="tar")
    c.add_argument("--target", choices=["mirage", "generic"],
                   help="mirage (default): only what the Mirage drivers read; generic: the "
                        "standard form")
    c.add_argument("--sector-size", type=_size, metavar="N",
                   help="device sector size the image is laid out for (512..4096)")
    c.add_argument("--align", type=_size, metavar="N",
                   help="start file data (tar) / FAT regions (fat) on N-byte boundaries")
    sz = c.add_mutually_exclusive_group()
    sz.add_argument("--size", type=_size, metavar="N", help="exact image size (e.g. 64M)")
    sz.add_argument("--min", action="store_true", help="smallest image that holds the tree "
                                                       "(the default)")
    c.add_argument("--free", type=_size, metavar="N", help="free space to leave (fat)")
    c.add_argument("--fat-type", choices=["12", "16", "32", "auto"], help="FAT type (fat)")
    c.add_argument("--label", help="volume label (fat)")
    c.add_argument("--volume-id", type=lambda s: int(s, 0), help="volume serial (fat)")
    c.add_argument("--mtime", type=_mtime, metavar="TIME",
                   help="timestamp for every entry (default: $SOURCE_DATE_EPOCH, else the "
                        "files' own)")
    c.add_argument("--keep-links", action="store_true",
                   help="store symlinks and hard links as links instead of copies (tar)")
    c.add_argument("--skip-special", action="store_true",
                   help="leave out sockets, devices and FIFOs instead of refusing them")
    c.add_argument("--manifest", metavar="FILE", help="write a JSON manifest of the image")
    c.add_argument("--secret", action="store_true",
                   help="image mode 0600 from the first byte; no names in progress output")
    sync = c.add_mutually_exclusive_group()
    sync.add_argument("--fsync", dest="fsync", action="store_true", default=None,
                      help="always make the image durable (fsync) before putting it in place")
    sync.add_argument("--no-fsync", dest="fsync", action="store_false",
                      help="never fsync (like cp and tar; a crash soon after can leave an "
                           "image with missing data). Default: fsync when the image replaces "
                           "an existing file or is a device, not when it is a new file")
    c.add_argument("--force", action="store_true",
                   help="overwrite a block device that already holds a file system")
    c.add_argument("-j", "--jobs", type=_jobs, default=None, metavar="N", help=_JOBS_HELP)
    c.add_argument("-q", "--quiet", action="store_true", help="no summary line")

    ls = command("ls", "list an image")
    ls.add_argument("image", metavar="IMAGE")
    ls.add_argument("path", nargs="?", default="", metavar="PATH")
    ls.add_argument("-l", action="store_true", dest="long", help="long listing")
    ls.add_argument("--json", action="store_true", help="JSON output")

    cat = command("cat", "write a file of the image to stdout")
    cat.add_argument("image", metavar="IMAGE")
    cat.add_argument("path", metavar="PATH")

    ex = command("extract", "extract an image into a directory")
    ex.add_argument("image", metavar="IMAGE")
    ex.add_argument("dest", metavar="DEST")
    ex.add_argument("paths", nargs="*", metavar="PATH", help="only these paths")
    ex.add_argument("--overwrite", action="store_true", help="replace existing files")
    ex.add_argument("-j", "--jobs", type=_jobs, default=None, metavar="N", help=_JOBS_HELP)

    inf = command("info", "format, geometry and counts of an image")
    inf.add_argument("image", metavar="IMAGE")
    inf.add_argument("--json", action="store_true")

    ck = command("check", "check an image's structure (read-only)")
    ck.add_argument("image", metavar="IMAGE")
    ck.add_argument("--target", choices=["mirage", "generic"], default="generic",
                    help="mirage: also report everything the Mirage driver would fail on")

    vf = command("verify", "compare an image with its manifest and/or source")
    vf.add_argument("image", metavar="IMAGE")
    vf.add_argument("src", nargs="?", metavar="SRC")
    vf.add_argument("--manifest", metavar="FILE")
    return p


def cmd_create(args: argparse.Namespace) -> int:
    from . import api
    mtime = args.mtime
    if mtime is None and os.environ.get("SOURCE_DATE_EPOCH", "").strip():
        mtime = _mtime(os.environ["SOURCE_DATE_EPOCH"])
    options = {k: v for k, v in (
        ("target", args.target), ("sector_size", args.sector_size), ("align", args.align),
        ("size", args.size), ("free", args.free), ("label", args.label),
        ("volume_id", args.volume_id),
        ("fat_type", None if args.fat_type is None else
         (args.fat_type if args.fat_type == "auto" else int(args.fat_type))),
    ) if v is not None}
    bar = ProgressBar("writing" if args.secret else f"writing {os.path.basename(args.output)}")
    try:
        summary = api.create(args.src, args.output, format=args.format,
                             keep_links=args.keep_links, skip_special=args.skip_special,
                             mtime=mtime, secret=args.secret, force=args.force,
                             progress=bar if bar.enabled else None,
                             manifest=args.manifest, fsync=args.fsync,
                             jobs=args.jobs, **options)
    finally:
        bar.finish()
    if args.secret and summary.skipped:
        # --secret: no file names in what blockimg prints on success.
        print(f"blockimg: skipped {len(summary.skipped)} special files", file=sys.stderr)
    else:
        for path, what in summary.skipped:
            print(f"blockimg: skipped {path}: {what}", file=sys.stderr)
    if not args.quiet:
        print(summary.line())
    return 0


def _mode_string(e) -> str:
    kind = {"dir": "d", "symlink": "l", "hardlink": "h"}.get(e.kind, "-")
    bits = "".join(ch if e.mode & (1 << (8 - i)) else "-" for i, ch in enumerate("rwxrwxrwx"))
    return kind + bits


def cmd_ls(args: argparse.Namespace) -> int:
    import datetime
    import json
    from . import api
    with api.open(args.image) as img:
        entries = img.list(args.path)
        if args.json:
            json.dump([e.as_dict() for e in entries], sys.stdout, indent=1)
            sys.stdout.write("\n")
            return report_reading(img, args.image)
        for e in entries:
            name = e.path + ("/" if e.kind == "dir" else "")
            if args.long:
                when = datetime.datetime.fromtimestamp(e.mtime, datetime.timezone.utc)
                link = f" -> {e.link_target}" if e.link_target else ""
                print(f"{_mode_string(e)} {e.size:>12} {when:%Y-%m-%d %H:%M} {name}{link}")
            else:
                print(name)
    return report_reading(img, args.image)


def cmd_cat(args: argparse.Namespace) -> int:
    from . import api
    out = sys.stdout.buffer
    # One path: only what decides it is indexed (FAT: the directories on its way).
    with api.open(args.image, lazy=True) as img, _reporting(img, args.image):
        f = img.open(args.path)
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
            f.copy_to(fd)
    out.flush()
    return 1 if img.skipped else 0


def cmd_extract(args: argparse.Namespace) -> int:
    from . import api
    # Lazily: with -j, a FAT image is indexed in parts by the processes that extract them.
    with api.open(args.image, lazy=True) as img:
        report = img.extract(args.dest, overwrite=args.overwrite, paths=args.paths or None,
                             jobs=args.jobs)
        report_reading(img, args.image, skips=False)    # (they are in report.refused)
    for path in report.existing:
        print(f"blockimg: {path}: exists, not overwritten (use --overwrite)", file=sys.stderr)
    for path, why in report.refused:
        print(f"blockimg: {path}: refused: {why}", file=sys.stderr)
    print(f"extracted {len(report.written)} entries to {args.dest}"
          + (f", refused {len(report.refused)}" if report.refused else "")
          + (f", {len(report.existing)} existing left alone" if report.existing else ""))
    return 0 if report.ok else 1


def cmd_info(args: argparse.Namespace) -> int:
    import json
    from . import api
    with api.open(args.image) as img:
        info = img.info()
    if args.json:
        json.dump(info, sys.stdout, indent=1, default=str)
        sys.stdout.write("\n")
    else:
        for k, v in info.items():
            print(f"{k}: {v}")
    return report_reading(img, args.image)


def cmd_check(args: argparse.Namespace) -> int:
    from . import api
    from .formats import format_module
    with api.open(args.image) as img:
        mod = format_module(img.format)
        problems = mod.check(img, target=args.target)
    for p in problems:
        print(f"{args.image}: {p}")
    report_reading(img, args.image, shown=problems, skips=False)   # (skips are problems)
    if not problems:
        print(f"{args.image}: {img.format} image OK"
              + (" for the Mirage driver" if args.target == "mirage" else ""))
    return 1 if problems else 0


def cmd_verify(args: argparse.Namespace) -> int:
    from .verify import verify_cli
    return verify_cli(args)


def report_reading(img, image: str, *, shown=(), skips: bool = True) -> int:
    """Print on stderr, once, what reading ``img`` met: each warning (but those in
    ``shown``) and, with ``skips``, each entry left out and why. The exit status: 1 when
    an entry was left out (the output misses it, as GNU tar fails after such errors),
    else 0."""
    for w in img.warnings:
        if w not in shown:
            print(f"blockimg: {image}: warning: {w}", file=sys.stderr)
    skipped = img.skipped
    if skips:
        for name, why in skipped:
            print(f"blockimg: {image}: {name!r} left out: {why}", file=sys.stderr)
    return 1 if skipped else 0


@contextlib.contextmanager
def _reporting(img, image: str):
    """:func:`report_reading` once the block ends, also when it fails (a path not found
    may be one that was left out)."""
    try:
        yield
    finally:
        report_reading(img, image)


def _naming_image(error: BlockImgError, image: Optional[str]) -> str:
    """``error``'s message naming the image once: errors about what is in it (corrupt,
    unsupported, no such path) get its name in front; the others name their own file."""
    text = str(error)
    if image is not None and isinstance(error, _ABOUT_IMAGE) and \
            not text.startswith(f"{image}: "):
        text = f"{image}: {text}"
    return text


_ABOUT_IMAGE = (CorruptImage, Unsupported, NotFound, NotARegularFile)


COMMANDS = {"create": cmd_create, "ls": cmd_ls, "cat": cmd_cat, "extract": cmd_extract,
            "info": cmd_info, "check": cmd_check, "verify": cmd_verify}


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(command_in(argv))
    args, extra = parser.parse_known_args(argv)
    # argparse cannot take `verify IMAGE --manifest M SRC` (a positional after an option).
    if args.command == "verify" and args.src is None and len(extra) == 1 \
            and not extra[0].startswith("-"):
        args.src, extra = extra[0], []
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        with interrupts_as_exceptions():
            return COMMANDS[args.command](args)
    except BlockImgError as e:
        if args.debug:
            raise
        print(f"blockimg: error: {_naming_image(e, getattr(args, 'image', None))}",
              file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Terminated):
        print("blockimg: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        try:
            sys.stdout = None  # type: ignore[assignment]
        finally:
            return 141


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
        except (OSError, ValueError):
            code = code or 1
    os._exit(code)


if __name__ == "__main__":
    run()
