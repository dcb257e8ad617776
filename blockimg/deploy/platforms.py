"""What each MirageOS platform's block device accepts, and how to attach an image there.

One frozen :class:`Platform` per target, named as Solo5 and the ``mirage``
tool name them. Each holds the rules that decide whether an image works on
that platform (the sector size the unikernel's block driver reports, the
multiple the image length must be, whether the platform has block devices
at all, how devices are named) and the template of its attach instructions.
Every rule names the upstream source it was read from (``docs/deploy.md``
lists them with commits and lines).

Pure functions only: :func:`format_options` fills in and checks a format's
options before planning, :func:`plan_problems` checks a finished plan,
:func:`image_problems` an existing image's facts, :func:`disk_problems` a
partitioned disk; :func:`attach` returns the instructions as text.
"""
from __future__ import annotations

import os
import re
import shlex
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Dict, List, Mapping, Optional, Tuple

from ..errors import InvalidInput
from ..record import record

__all__ = ["Platform", "PLATFORMS", "NAMES", "get", "format_options", "plan_problems",
           "image_problems", "disk_problems", "attach", "default_device_name", "xl_quote",
           "MIB"]

MIB = 1 << 20

#: Where each rule comes from (repository@commit path:lines); docs/deploy.md has the story.
SOURCES: Dict[str, str] = {
    "solo5-size": "Solo5/solo5@469c1a8 tenders/hvt/hvt_module_blk.c:212-230 "
                  "(tenders/spt/spt_module_block.c:122-140)",
    "solo5-sector-option": "Solo5/solo5@469c1a8 tenders/hvt/hvt_module_blk.c:123-188",
    "solo5-one-block": "Solo5/solo5@469c1a8 bindings/hvt/block.c:38-44,71-77 "
                       "(bindings/spt/block.c:58,82)",
    "solo5-names": "Solo5/solo5@469c1a8 elftool/elftool.c:198-207, "
                   "tenders/hvt/hvt_module_blk.c:143-147",
    "virtio-512": "Solo5/solo5@469c1a8 bindings/virtio/virtio_blk.c:39,244-245,266-270",
    "virtio-order": "Solo5/solo5@469c1a8 bindings/virtio/pci.c:66-88 (since a8d7ce4, v0.9.0)",
    "muen-none": "Solo5/solo5@469c1a8 bindings/muen/muen-block.c:23-29; "
                 "mirage/mirage@4e11161 lib/devices/block.ml:86",
    "xen-4096": "mirage/mirage-block-xen@07ed0c7 lib/front/blkfront.ml:349-368",
    "xen-pages": "mirage/mirage-block-xen@07ed0c7 lib/front/blkfront.ml:459-465",
    "xen-vdev": "mirage/mirage@4e11161 lib/devices/block.ml:15-28,50-67, "
                "lib/devices/target.ml:174-194",
    "unix-512": "mirage/mirage-block-unix@98efe7a lib/block.ml:163-166,203-204",
    "albatross-mib": "robur-coop/albatross@961c4e3 src/vmm_unix.ml:559-587,642-646",
    "albatross-hvt": "robur-coop/albatross@961c4e3 src/vmm_unix.ml:484-491",
    "albatross-names": "robur-coop/albatross@961c4e3 src/vmm_core.ml:57-74 (block names are "
                       "labels of 1 to 63 characters)",
    "solo5-path": "Solo5/solo5@469c1a8 tenders/hvt/hvt_module_blk.c:141-147 (the path is "
                  "read with sscanf's %s: up to the first white space)",
    "xl-disk": "xen-project/xen@c447b73 docs/man/xl-disk-configuration.5.pod.in:5-50,79-93; "
               "tools/libs/util/libxlu_disk_l.l:77-80,228 (target= takes the rest, less one "
               "trailing comma); tools/libs/util/libxlu_cfg_l.l:75-82, libxlu_cfg.c:598-660 "
               "(quoted strings take backslash escapes)",
    "mbr-512": "reynir/mirage-block-partition@86694e4 lib/mirage_block_partition_mbr.ml:19-25",
    "fat-sector": "mirage/ocaml-fat@75f0042 src/fat.ml:89-111,187-189 (the volume's sector "
                  "must be a multiple of the device's, the device's at most 4096)",
}


@record(frozen=True)
class Platform:
    """One platform's block-device rules.

    ``blocks``: the platform has block devices at all. ``device_sector``: the
    sector size the unikernel's driver reports for an image attached plainly.
    ``sector_option``: the sector size can be raised when attaching (Solo5's
    ``--block-sector-size``). ``size_multiple``: the image length must be a
    multiple of this; ``size_why`` says why (``{what}``, ``{multiple}`` and
    ``{fit}`` filled in) and ``size_source`` cites it. ``naming``: how the
    unikernel names the device (``solo5``: the name given to ``block_of_file``,
    alphanumeric; ``xen``: the n-th declared device is ``xvdb``, ``xvdc`` ...;
    ``unix``: the file's path). ``partition_tables``: tables Mirage's partition
    readers can use there. ``run``: the attach lines after ``config.ml``'s
    (``{name}``, ``{path}``, ``{sector_arg}``, ``{mib}``, ``{at}`` filled in).
    """

    name: str
    title: str
    blocks: bool
    device_sector: int
    sector_option: bool
    size_multiple: int
    naming: str
    partition_tables: Tuple[str, ...]
    rules: Tuple[str, ...]
    size_why: str
    size_source: str
    run: Tuple[str, ...]
    name_max: int = 67


_SOLO5_RULES = ("solo5-size", "solo5-sector-option", "solo5-one-block", "solo5-names")
_BLOCK_MULTIPLE = ("{what}: {title} refuses a device whose length is not a multiple of its "
                   "{multiple}-byte block {cite}; fix: a multiple of {multiple}")
_TENDER_RUN = ("run:        solo5-{platform} --block:{name}={path}{sector_arg} -- "
               "unikernel.{platform}",)

#: One row per platform: name, title, blocks, device sector, sector option, size multiple,
#: naming, partition tables, rules, why the size rule, its source, attach lines.
PLATFORMS: Dict[str, Platform] = {p.name: p for p in (
    Platform("unix", "Unix (mirage-block-unix)", True, 512, False, 512, "unix",
             ("mbr", "gpt"), ("unix-512",), _BLOCK_MULTIPLE, "unix-512",
             ("run:        the unikernel opens that path itself; nothing to attach",)),
    Platform("hvt", "Solo5 hvt", True, 512, True, 512, "solo5", ("mbr", "gpt"), _SOLO5_RULES,
             _BLOCK_MULTIPLE, "solo5-size", _TENDER_RUN),
    Platform("spt", "Solo5 spt", True, 512, True, 512, "solo5", ("mbr", "gpt"), _SOLO5_RULES,
             _BLOCK_MULTIPLE, "solo5-size", _TENDER_RUN),
    Platform("virtio", "Solo5 virtio", True, 512, False, 512, "solo5", ("mbr", "gpt"),
             ("virtio-512", "virtio-order", "solo5-names"), _BLOCK_MULTIPLE, "virtio-512",
             ("run:        solo5-virtio-run -d {path} unikernel.virtio",
              "            (several -d: devices are matched to the manifest in PCI order; "
              "check it with `solo5-elftool query-manifest unikernel.virtio`)")),
    Platform("muen", "Solo5 muen", False, 512, False, 512, "solo5", (), ("muen-none",),
             _BLOCK_MULTIPLE, "solo5-size", ()),
    Platform("xen", "Xen (mirage-block-xen blkfront)", True, 4096, False, 4096, "xen", (),
             ("xen-4096", "xen-pages", "xen-vdev", "mbr-512"),
             "{what}: blkfront reports 4096-byte sectors and drops the tail past a "
             "4096-byte multiple {cite}; fix: a multiple of 4096", "xen-4096",
             ("xl config:  disk = [ 'format=raw, vdev=xvdb, access=rw, target={xl_path}' ]",
              "            (what `mirage configure -t xen` writes in NAME.xl; give each "
              "further block_of_file the next vdev)")),
    Platform("albatross", "albatross (Solo5 hvt)", True, 512, True, MIB, "solo5",
             ("mbr", "gpt"), ("albatross-mib", "albatross-hvt") + _SOLO5_RULES,
             "{what}: albatross block devices are whole MiB (it refuses other sizes and "
             "truncates data to the device size) {cite}; fix: a size of {fit} (or leave "
             "--size out: the image is rounded up)", "albatross-mib",
             ("upload:     albatross-client create-block {name} {mib} --data={path}",
              "run:        albatross-client create UNIKERNEL unikernel.hvt "
              "--block={name}:{name}{at}",
              "update:     albatross-client set-block {name} {path}"),
             name_max=63),
)}
NAMES = tuple(PLATFORMS)

#: Why a format's sector must be at least the device's (``{ss}``, ``{device}``, ``{title}``).
_SECTOR_WHY = {
    "fat": ("--sector-size {ss}: {title} reports {device}-byte sectors and a FAT volume's "
            "sector must be a multiple of the device's {cite_xen} {cite_fat}; fix: "
            "--sector-size {device} (or leave it out)"),
    "tar": ("--sector-size {ss}: {title} reads whole {device}-byte pages and drops any tail "
            "past a {device}-byte multiple, which would cut the archive's end blocks "
            "{cite_xen}; fix: --sector-size {device} (or leave it out)"),
}

#: How ``config.ml`` names the device, per naming: (the path or the name, a comment).
_DECLARE = {"unix": ("path", ""),
            "xen": ("name", "   # the first block_of_file is xvdb, the second xvdc, ..."),
            "solo5": ("name", "   # Solo5 device name {name}")}

_SOLO5_NAME = re.compile(r"^[A-Za-z0-9]{1,67}$")


def get(name: str) -> Platform:
    try:
        return PLATFORMS[name]
    except KeyError:
        raise InvalidInput(f"unknown platform {name!r} (have: {', '.join(NAMES)})",
                           rule="platform") from None


def _cite(key: str) -> str:
    return f"[{SOURCES[key]}]"


def _no_blocks(p: Platform) -> List[str]:
    return [f"{p.title} has no block devices: Solo5's muen bindings answer every block call "
            f"with an error and `mirage configure -t muen` refuses block_of_file "
            f"{_cite('muen-none')}; fix: use hvt, spt or xen, or compile the data in (crunch)"]


def default_device_name(output: str) -> str:
    """The device name to suggest for an image file: its base name's letters and digits."""
    stem = os.path.basename(output).split(".")[0]
    return re.sub(r"[^A-Za-z0-9]", "", stem)[:67] or "storage"


def name_problems(p: Platform, name: str) -> List[str]:
    if p.naming == "solo5" and not _SOLO5_NAME.match(name):
        return [f"device name {name!r}: Solo5 device names are 1 to 67 letters and digits "
                f"{_cite('solo5-names')}; fix: --device-name with letters and digits only"]
    if len(name) > p.name_max:
        return [f"device name {name!r}: {p.title} block names are at most {p.name_max} "
                f"characters {_cite('albatross-names')}; fix: a shorter --device-name"]
    return []


def xl_quote(path: str) -> str:
    """``path`` as the ``target=`` of a disk in xl's configuration file, inside the
    single quotes of its string: backslash escapes for ``\\``, ``'`` and control
    characters; a trailing comma doubled (xl's disk parser drops one)."""
    out = []
    for ch in path:
        if ch in "\\'":
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out) + ("," if path.endswith(",") else "")


def format_options(p: Platform, format: str, options: Mapping[str, object]) -> Dict[str, object]:
    """The format's options with the platform's rules applied; refuses what cannot work.

    Fills in what the platform needs where the caller left it open (Xen: a
    4096-byte FAT sector and a tar padded to 4 KiB) and raises one
    :class:`InvalidInput` naming every rule an explicit option breaks.
    """
    out = dict(options)
    problems: List[str] = []
    if not p.blocks:
        problems += _no_blocks(p)
    ss = out.get("sector_size")
    if format in _SECTOR_WHY and p.device_sector > 512:
        if ss is None:
            out["sector_size"] = p.device_sector
        elif ss < p.device_sector:
            problems.append(_SECTOR_WHY[format].format(
                ss=ss, title=p.title, device=p.device_sector, cite_xen=_cite("xen-4096"),
                cite_fat=_cite("fat-sector")))
    size = out.get("size")
    if isinstance(size, int) and size % p.size_multiple:
        problems.append(_size_rule(p, f"--size {size}", size))
    if problems:
        raise InvalidInput("; ".join(problems), path=f"--platform {p.name}",
                           rule="platform rules")
    return out


def _size_rule(p: Platform, what: str, size: int) -> str:
    return p.size_why.format(what=what, title=p.title, multiple=p.size_multiple,
                             fit=_round(size, p.size_multiple), cite=_cite(p.size_source))


def _round(n: int, m: int) -> int:
    return -(-n // m) * m


def fitted_size(p: Platform, image_size: int, explicit_size: bool) -> Optional[int]:
    """The size to plan again with so the image fits the platform, or None when it does.

    Only albatross rounds (its devices are whole MiB); an explicit size that
    does not fit was refused by :func:`format_options` already.
    """
    if explicit_size or image_size % p.size_multiple == 0:
        return None
    return _round(max(image_size, 1), p.size_multiple)


def plan_problems(p: Platform, format: str, image_size: int, sector_size: int) -> List[str]:
    """Rules a planned image breaks on ``p`` (empty when it fits)."""
    if not p.blocks:
        return _no_blocks(p)
    problems = []
    if image_size % p.size_multiple or image_size < p.size_multiple:
        problems.append(_size_rule(p, f"image of {image_size} bytes", image_size))
    if format == "fat" and sector_size < p.device_sector:
        problems.append(
            f"FAT sector size {sector_size}: {p.title} reports {p.device_sector}-byte sectors "
            f"{_cite('xen-4096')} {_cite('fat-sector')}; fix: --sector-size {p.device_sector}")
    return problems


def image_problems(p: Platform, info: Mapping[str, object]) -> List[str]:
    """Rules an existing image (its ``Image.info()``) breaks on ``p``."""
    size = int(info.get("image_bytes", 0))            # type: ignore[arg-type]
    ss = int(info.get("bytes_per_sector", 512))       # type: ignore[arg-type]
    return plan_problems(p, str(info.get("format")), size, ss)


def disk_problems(p: Platform, table: str, disk_size: int) -> List[str]:
    """Rules a partitioned disk (``table`` ``"mbr"`` or ``"gpt"``) breaks on ``p``."""
    if not p.blocks:
        return _no_blocks(p)
    problems = []
    if table not in p.partition_tables:
        problems.append(
            f"a {table.upper()} disk on {p.title}: blkfront reports 4096-byte sectors "
            f"{_cite('xen-4096')} and Mirage's MBR reader (mirage-block-partition's Mbr) "
            f"refuses any device whose sectors are not 512 bytes {_cite('mbr-512')}; no "
            f"Mirage GPT reader exists either; fix: attach each volume as its own Xen disk "
            f"(`blockimg create --platform xen` per volume, several entries in xl's disk=[...])")
    if disk_size % p.size_multiple:
        problems.append(_size_rule(p, f"disk of {disk_size} bytes", disk_size))
    return problems


def attach(p: Platform, image: str, *, name: str, format: str, sector_size: int,
           image_size: int, partitions: Tuple[Tuple[str, int, int], ...] = (),
           table: str = "") -> str:
    """How to attach ``image`` on ``p`` and declare it in the unikernel's ``config.ml``.

    ``partitions`` (name, first byte, length) are listed for a partitioned disk whose
    partition ``table`` is ``"mbr"`` or ``"gpt"``.
    """
    path = os.path.abspath(image)
    kv = {"fat": "fat_ro", "tar": "tar_kv_ro"}.get(format)
    lines = [f"# {p.title}: attach {os.path.basename(image)} ({image_size} bytes)"]
    device, comment = _DECLARE[p.naming]
    lines.append(f'config.ml:  let block = block_of_file "{path if device == "path" else name}"'
                 + (f"  (then {kv} block)" if kv else "") + comment.format(name=repr(name)))
    big = p.naming == "solo5" and sector_size > 512 and image_size % sector_size == 0 \
        and p.sector_option and not partitions
    fill = {"platform": p.name, "name": name, "path": shlex.quote(path), "xl_path": xl_quote(path),
            "mib": _round(image_size, MIB) // MIB,
            "sector_arg": f" --block-sector-size:{name}={sector_size}" if big else "",
            "at": f"@{sector_size}" if big else ""}
    lines += [line.format(**fill) for line in p.run]
    if p.name in ("hvt", "spt") and any(ch.isspace() for ch in path):
        lines.append(f"            (solo5-{p.name} reads the path up to its first white space "
                     f"{_cite('solo5-path')}: move or link the image to a path without)")
    if big:
        lines.append(f"            ({sector_size}-byte blocks: Solo5 does one block per "
                     "request, so each read moves 8 times more than at 512; the image "
                     "also reads at the default 512)")
    if partitions:
        lines.append("partitions: " + ("Mirage_block_partition_mbr.Make(Block).connect reads "
                                       "the MBR" if table == "mbr" else
                                       "no Mirage block driver reads a GPT; use "
                                       "Mirage_block_partition.Make(Block).subpartition")
                     + " (sectors of 512 bytes):")
    for pname, start, length in partitions:
        lines.append(f"            {pname}: ~start:{start // 512}L ~len:{length // 512}L "
                     f"(bytes {start}..{start + length})")
    return "\n".join(lines) + "\n"
