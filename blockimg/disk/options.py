"""The deploy part of the command line, declared (:mod:`blockimg.cli.spec`): the ``disk``
command, ``--platform``/``--device-name``/``--attach`` on ``create``, ``--partition`` on
the readers, ``--platform`` on ``info``. :mod:`blockimg.disk.cli` runs them; importing
this module imports neither (nor argparse, nor the platforms' rules)."""
from __future__ import annotations

from ..cli.spec import arg, command
from ..units import size_argument

__all__ = ["COMMANDS", "EXTRA", "READERS"]

#: The commands that read an image (and take --partition).
READERS = ("ls", "cat", "extract", "info", "check", "verify")


def _platforms() -> tuple:
    """The platforms' names (the choices of --platform, looked up when one is given)."""
    from ..deploy.platforms import NAMES
    return NAMES


_PLATFORM_HELP = ("check and apply this platform's block-device rules (unix, hvt, spt, virtio, "
                  "muen, xen, albatross; default: none, platform-neutral)")
_PARTITION = arg("--partition", metavar="N|NAME",
                 help="read partition N (1-based) or the GPT partition NAME of a partitioned "
                      "disk")

#: The options added to the other commands, after their own.
EXTRA = {
    "create": (
        arg("--platform", choices=_platforms, help=_PLATFORM_HELP),
        arg("--device-name", metavar="NAME",
            help="the block device's name in the unikernel (block_of_file NAME); default: "
                 "the image's base name, letters and digits only"),
        arg("--attach", metavar="FILE",
            help="write the attach instructions to FILE (needs --platform; default: "
                 "print them)")),
    **{name: (_PARTITION,) for name in READERS},
}
EXTRA["info"] += (arg("--platform", choices=_platforms,
                      help="also say whether the image (or disk) works there"),)

COMMANDS = (
    command(
        "disk", "put several volumes on one partitioned disk image",
        arg("volumes", nargs="+", metavar="VOLUME",
            help="an image file, a source directory or empty:SIZE, then ,key=value options"),
        arg("-o", "--output", required=True, metavar="DISK",
            help="disk image file (written atomically)"),
        arg("--table", choices=["mbr", "gpt"], default="mbr",
            help="partition table (default mbr: what Mirage's partition reader reads; "
                 "gpt: up to 128 named partitions)"),
        arg("--align", type=size_argument, default=1 << 20, metavar="N",
            help="start every partition on an N-byte boundary (default 1M)"),
        arg("--platform", choices=_platforms, help=_PLATFORM_HELP),
        arg("--attach", metavar="FILE",
            help="write the attach instructions to FILE instead of printing them"),
        arg("--device-name", metavar="NAME",
            help="the disk's name in the unikernel (default: from DISK)"),
        arg("--mtime", type=int, metavar="SECONDS",
            help="timestamp for every entry of built volumes (default: "
                 "$SOURCE_DATE_EPOCH, else the files' own)"),
        arg("--secret", action="store_true",
            help="disk mode 0600 from the first byte (a volume holds keys)"),
        arg("-q", "--quiet", action="store_true", help="no summary line"),
        description="VOLUME is an image file, a source directory (built into its "
                    "partition) or empty:SIZE, followed by ,key=value options: name=NAME "
                    "(partition name), and for a directory format=tar|fat, target=, "
                    "sector-size=, align=, size=, free=, fat-type= as create takes them. "
                    "Example: site/,name=site,format=fat  keys.img  empty:64M,name=data",
        debug=False),
)
