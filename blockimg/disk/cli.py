"""The command line's deploy part: ``disk``, ``--platform``/``--attach`` on ``create``,
``--partition`` on the readers, and recognising a partitioned disk.

The options are declared in :mod:`blockimg.disk.options`; :func:`prepare` runs
before a command (it runs ``disk`` itself, opens the partition asked for, answers
``info`` on a disk or with ``--platform``); :func:`after_create` prints or writes the
attach instructions.
"""
from __future__ import annotations

import os
import sys

from .options import READERS
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    import argparse     # (imported by blockimg.cli when a parser is built)
    from typing import Optional

__all__ = ["prepare", "after_create", "READERS"]


def prepare(args: argparse.Namespace) -> Optional[int]:
    """Run what this module owns; None when the ordinary command should run now."""
    if args.command == "disk":
        return _cmd_disk(args)
    if args.command == "create":
        _check_create(args)
        return None
    if args.command not in READERS:
        return None
    if args.partition is not None:
        # Opened (and checked) by the readers through the partition: backend.
        from .reader import partition_url
        empty = _empty_partition(args.image, args.partition)
        args.image = partition_url(args.image, args.partition)
        if empty is not None and args.command in ("info", "check", "verify"):
            return _answer_empty(args, empty)
    elif isinstance(args.image, str) and args.image.startswith("partition:"):
        empty = _empty_partition(args.image, None)
        if empty is not None and args.command in ("info", "check", "verify"):
            return _answer_empty(args, empty)
    else:
        # info and check take a whole disk; the other readers are stopped by format
        # detection, which names the partitions (blockimg.disk.reader).
        table = _table_of(args.image) if args.command in ("info", "check") else None
        if table is not None:
            if args.command == "info":
                return _info_disk(args, table)
            return _check_disk(args, table)
    if args.command == "info" and args.platform:
        return _info_platform(args)
    return None


def _empty_partition(image: str, selector: Optional[str]):
    """The partition (``selector`` of the disk ``image``, or the ``partition:`` URL
    ``image``) when it is empty space (all zeros), else None. Opening it checks it."""
    from ..block.registry import open_device
    from .reader import is_empty_space, partition_url
    dev = open_device(image if selector is None else partition_url(image, selector))
    try:
        return dev.partition if is_empty_space(dev) else None
    finally:
        dev.close()


def _empty_line(part) -> str:
    return (f"empty space ({part.size} bytes of zeros, as `empty:SIZE` makes: a writable "
            "area), no FAT volume or tar archive")


def _answer_empty(args: argparse.Namespace, part) -> int:
    """``info``/``check``/``verify`` of a partition that is empty space: say so. Exit 0,
    except ``verify`` against a manifest or source (their files are not there) and
    ``info --platform`` when the partition's size breaks the platform's rules."""
    if args.command == "verify" and (args.manifest is not None or args.src is not None):
        print(f"{args.image}: {_empty_line(part)}: nothing of the "
              f"{'manifest' if args.manifest is not None else 'source'} is there")
        return 1
    if args.command != "info":
        print(f"{args.image}: {_empty_line(part)}; nothing to "
              f"{'check' if args.command == 'check' else 'verify'}")
        return 0
    problems = []
    if args.platform:
        from ..deploy import platforms
        problems = platforms.plan_problems(platforms.get(args.platform), "empty", part.size,
                                           512)
    if args.json:
        _dump_json(args, problems, {"format": "empty", "image_bytes": part.size,
                                    "partition": _fields(part)})
    else:
        print("format: empty")
        print(f"image bytes: {part.size}")
        print(f"partition: {part.label()}, start {part.start}, type {part.type}")
        print(f"contents: {_empty_line(part)}")
        _print_verdict(args, problems)
    return 1 if problems else 0


def _table_of(image):
    """The table of the disk at ``image`` (a path), None for a volume or anything else."""
    import stat
    try:
        mode = os.stat(image).st_mode if isinstance(image, str) else 0
    except OSError:
        return None
    if not (stat.S_ISREG(mode) or stat.S_ISBLK(mode)):
        return None
    from ..block.file import FileDevice
    from ..errors import InvalidInput
    from .detect import may_hold_table
    try:
        dev = FileDevice(image)
    except InvalidInput:       # not whole sectors: the ordinary open says so
        return None
    try:
        if not may_hold_table(bytes(dev.pread(0, min(dev.size, 512)))):
            return None        # (a FAT volume, a tar archive: no table codecs imported)
        from .reader import read_table
        return read_table(dev)
    finally:
        dev.close()


def _check_create(args: argparse.Namespace) -> None:
    from ..errors import InvalidInput
    if args.attach and not args.platform:
        raise InvalidInput("--attach needs --platform (the instructions are per platform)",
                           rule="--attach")
    if args.platform:
        from ..deploy import platforms
        p = platforms.get(args.platform)
        name = args.device_name or platforms.default_device_name(args.output or args.src)
        problems = platforms.name_problems(p, name)
        if problems:
            raise InvalidInput("; ".join(problems), path=f"--platform {p.name}",
                               rule="platform rules")


def after_create(args: argparse.Namespace, summary) -> None:
    """Print (or write to ``--attach``) how to attach the image just built."""
    if not args.platform:
        return
    from ..deploy import platforms
    p = platforms.get(args.platform)
    name = args.device_name or platforms.default_device_name(args.output)
    text = platforms.attach(p, args.output, name=name, format=summary.format,
                            sector_size=summary.sector_size, image_size=summary.image_size)
    _emit(args, text)


def _emit(args: argparse.Namespace, text: str) -> None:
    if args.attach:
        from ..write.atomic import atomic_file, write_all
        with atomic_file(args.attach, durable=False) as out:
            write_all(out.fd, text.encode("utf-8"), sync=False)
    elif not args.quiet:
        sys.stdout.write(text)


def _cmd_disk(args: argparse.Namespace) -> int:
    from .volumes import parse_volumes
    from .writer import build_disk
    mtime = args.mtime
    if mtime is None and os.environ.get("SOURCE_DATE_EPOCH", "").strip():
        mtime = int(os.environ["SOURCE_DATE_EPOCH"])
    p = None
    if args.platform:     # (deploy.platforms, with its re and shlex, only for --platform)
        from ..deploy import platforms
        from ..errors import InvalidInput
        p = platforms.get(args.platform)
        name = args.device_name or platforms.default_device_name(args.output)
        problems = platforms.name_problems(p, name)
        if problems:
            raise InvalidInput("; ".join(problems), path=f"--platform {p.name}",
                               rule="platform rules")
    summary = build_disk(parse_volumes(args.volumes), args.output, table=args.table,
                         align=args.align, platform=args.platform, mtime=mtime,
                         secret=args.secret)
    if not args.quiet:
        print(summary.line())
    if p is not None:
        parts = tuple((s.name, s.start, s.size) for s in summary.plan.slots)
        _emit(args, platforms.attach(p, args.output, name=name, format="disk", sector_size=512,
                                     image_size=summary.plan.disk_size, partitions=parts,
                                     table=args.table))
    return 0


def _info_disk(args: argparse.Namespace, table) -> int:
    size = os.path.getsize(args.image) if os.path.isfile(args.image) else None
    problems = []
    if args.platform:
        from ..deploy import platforms
        problems = platforms.disk_problems(platforms.get(args.platform), table.kind,
                                           size or 0)
    if args.json:
        _dump_json(args, problems, {"format": "disk", "table": table.kind,
                                    "disk_id": table.disk_id, "image_bytes": size,
                                    "partitions": [_fields(p) for p in table.partitions]})
    else:
        print("format: disk")
        print(f"table: {table.kind}")
        print(f"disk_id: {table.disk_id}")
        print(f"image_bytes: {size}")
        for p in table.partitions:
            print(f"partition {p.label()}: start {p.start}, size {p.size}, type {p.type}"
                  + (f", guid {p.guid}" if p.guid else ""))
        _print_verdict(args, problems)
    return 1 if problems else 0


def _dump_json(args: argparse.Namespace, problems, fields: dict) -> None:
    """``info --json`` of a disk or empty space: ``fields``, and the platform's verdict
    when one was asked for."""
    import json
    if args.platform:
        fields = dict(fields, platform=args.platform, platform_problems=problems)
    json.dump(fields, sys.stdout, indent=1)
    sys.stdout.write("\n")


def _fields(p) -> dict:
    return {k: getattr(p, k) for k in ("number", "start", "size", "type", "name", "guid")}


def _print_verdict(args: argparse.Namespace, problems) -> None:
    if not args.platform:
        return
    if problems:
        for line in problems:
            print(f"{args.image}: not fit for {args.platform}: {line}")
    else:
        print(f"platform {args.platform}: fit")


def _info_platform(args: argparse.Namespace) -> int:
    from .. import api
    from ..deploy import platforms
    with api.open(args.image) as img:
        info = img.info()
    problems = platforms.image_problems(platforms.get(args.platform), info)
    if args.json:
        import json
        json.dump({**info, "platform": args.platform, "platform_problems": problems},
                  sys.stdout, indent=1, default=str)
        sys.stdout.write("\n")
    else:
        for k, v in info.items():
            print(f"{k}: {v}")
        _print_verdict(args, problems)
    return 1 if problems else 0


def _check_disk(args: argparse.Namespace, table) -> int:
    """``check DISK``: the table (a GPT's backup too), then every partition that holds a
    FAT or tar volume, as ``check --partition N`` would."""
    from .. import api
    from ..block.file import FileDevice
    from ..errors import CorruptImage, Unsupported
    from ..formats import detect_format, format_module
    from .reader import PartitionDevice, is_empty_space, partition_url, table_problems
    dev = FileDevice(args.image)
    bad = 0
    try:
        for line in table_problems(dev, table):
            print(f"{args.image}: {line}")
            bad += 1
        for part in table.partitions:
            window = PartitionDevice(dev, part, args.image)
            where = partition_url(args.image, str(part.number)) + \
                (f" ({part.name})" if part.name else "")
            if is_empty_space(window):
                print(f"{where}: {_empty_line(part)}, not checked")
                continue
            try:
                fmt = detect_format(window)
            except (CorruptImage, Unsupported):
                print(f"{where}: no FAT or tar volume (raw data), not checked")
                continue
            with api.open(window, format=fmt) as img:
                problems = format_module(fmt).check(img, target=args.target)
            for line in problems:
                print(f"{where}: {line}")
            bad += len(problems)
            if not problems:
                print(f"{where}: {fmt} image OK"
                      + (" for the Mirage driver" if args.target == "mirage" else ""))
    finally:
        dev.close()
    if not bad:
        print(f"{args.image}: {table.kind.upper()} table OK, {len(table.partitions)} "
              "partitions")
    return 1 if bad else 0
