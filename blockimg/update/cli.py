"""The ``update`` and ``diff`` commands: declared here (:data:`COMMANDS`, which
:mod:`blockimg.cli` parses) and run here."""
from __future__ import annotations

import os

from ..cli.spec import arg, command, mtime
from ..quoting import escape
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    import argparse     # (imported by blockimg.cli when a parser is built)

__all__ = ["COMMANDS", "cmd_update", "cmd_diff"]


def _options(args: argparse.Namespace) -> dict:
    mtime = args.mtime
    if mtime is None and os.environ.get("SOURCE_DATE_EPOCH", "").strip().lstrip("-").isdigit():
        mtime = int(os.environ["SOURCE_DATE_EPOCH"])
    opts = dict(keep_links=args.keep_links, skip_special=args.skip_special, mtime=mtime,
                exclude=args.exclude, exclude_vcs=args.exclude_vcs,
                compare="never" if args.quick else args.compare)
    for k in ("target", "sector_size"):
        if getattr(args, k) is not None:
            opts[k] = getattr(args, k)
    return opts


def _partition(image: str, selector: str, writable: bool):
    """A window on partition ``selector`` of the disk ``image`` (writable unless a dry run);
    the disk is opened and its partition table read once."""
    from ..block.registry import open_device
    from ..block.window import WindowDevice
    from ..disk.reader import open_partition
    from ..errors import InvalidInput
    from .run import open_writable
    disk = open_writable(image) if writable else open_device(image)
    part = open_partition(disk, selector, image)   # checks the table, names the choices
    if not writable:
        return part
    try:
        where = part.partition
        if where.start % disk.sector_size or where.size % disk.sector_size:
            raise InvalidInput(f"partition {selector} is not whole sectors", path=image,
                               rule="partition alignment")
        window = WindowDevice(disk, where.start, where.size, writable=True)
        window.name = part.name
        return window
    except BaseException:
        disk.close()
        raise


def _run(args: argparse.Namespace, dry_run: bool) -> int:
    from . import update
    device = None
    if args.partition is not None:
        device = _partition(args.image, args.partition, not dry_run)
    try:
        result = update(args.image, args.src, dry_run=dry_run, device=device,
                        manifest=getattr(args, "manifest", None), **_options(args))
    finally:
        if device is not None:
            parent = device.parent
            device.close()
            if not parent.closed:
                parent.close()
    if dry_run:
        for line in result.diff.lines():
            print(escape(line))
    if dry_run or not getattr(args, "quiet", False):
        print(escape(result.line(args.image)))
    return 0


def cmd_update(args: argparse.Namespace) -> int:
    return _run(args, args.dry_run)


def cmd_diff(args: argparse.Namespace) -> int:
    return _run(args, True)



def _arguments(name: str) -> tuple:
    """The options ``update`` and ``diff`` share, then update's own."""
    return (
        arg("image", metavar="IMAGE", help="image file or device to update"),
        arg("src", metavar="SRC", help="source directory"),
        arg("--target", choices=["mirage", "generic"],
            help="the target the image was made for (default: mirage)"),
        arg("--sector-size", type=int, metavar="N",
            help="sector size the image was made with (default: 512)"),
        arg("--mtime", type=mtime, metavar="TIME",
            help="the --mtime the image was made with (default: SOURCE_DATE_EPOCH "
                 "if set, else each file's own)"),
        arg("--exclude", action="append", default=[], metavar="PATTERN",
            help="leave out matching paths, as create does"),
        arg("--exclude-vcs", action="store_true",
            help="leave out version control files, as create does"),
        arg("--keep-links", action="store_true", help="as create does"),
        arg("--skip-special", action="store_true", help="as create does"),
        arg("--partition", metavar="N|NAME",
            help="the volume is partition N (1-based) or the GPT partition NAME "
                 "of a partitioned disk"),
        arg("--compare", choices=["auto", "always", "never"], default="auto",
            help="when to read a file whose size, mtime and mode equal the "
                 "image's to compare its bytes: auto (default) where the mtime "
                 "cannot tell -- every file with --mtime or SOURCE_DATE_EPOCH, "
                 "else only files (or directories) changed within 2 s of the "
                 "image's last write or dated outside what FAT keeps; always; "
                 "never (size and mtime decide, as rsync's quick check)"),
        arg("--quick", action="store_true", help="the same as --compare never"),
    ) + ((
        arg("--dry-run", action="store_true",
            help="only list the changes and the bytes they would write"),
        arg("--manifest", metavar="FILE",
            help="rewrite this manifest for the updated image"),
        arg("-q", "--quiet", action="store_true", help="no summary line"),
    ) if name == "update" else ())


#: The commands of this module, declared once (:mod:`blockimg.cli.spec`).
COMMANDS = (
    command("update", "make an existing image hold a directory's tree, writing only what "
                      "changed", *_arguments("update"), run=cmd_update),
    command("diff", "list what `update` would add, change and remove", *_arguments("diff"),
            run=cmd_diff),
)
