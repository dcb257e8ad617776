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
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Dict, List, Mapping, Optional, Tuple

from .errors import InvalidInput
from .record import record

__all__ = ["Platform", "PLATFORMS", "NAMES", "get", "format_options", "plan_problems",
           "image_problems", "disk_problems", "attach", "default_device_name", "MIB"]

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
    multiple of this. ``naming``: how the unikernel names the device
    (``solo5``: the name given to ``block_of_file``, alphanumeric; ``xen``: the
    n-th declared device is ``xvdb``, ``xvdc`` ...; ``unix``: the file's path).
    ``partition_tables``: tables Mirage's partition readers can use there.
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


_SOLO5_RULES = ("solo5-size", "solo5-sector-option", "solo5-one-block", "solo5-names")

PLATFORMS: Dict[str, Platform] = {p.name: p for p in (
    Platform("unix", "Unix (mirage-block-unix)", True, 512, False, 512, "unix",
             ("mbr", "gpt"), ("unix-512",)),
    Platform("hvt", "Solo5 hvt", True, 512, True, 512, "solo5", ("mbr", "gpt"), _SOLO5_RULES),
    Platform("spt", "Solo5 spt", True, 512, True, 512, "solo5", ("mbr", "gpt"), _SOLO5_RULES),
    Platform("virtio", "Solo5 virtio", True, 512, False, 512, "solo5", ("mbr", "gpt"),
             ("virtio-512", "virtio-order", "solo5-names")),
    Platform("muen", "Solo5 muen", False, 512, False, 512, "solo5", (), ("muen-none",)),
    Platform("xen", "Xen (mirage-block-xen blkfront)", True, 4096, False, 4096, "xen", (),
             ("xen-4096", "xen-pages", "xen-vdev", "mbr-512")),
    Platform("albatross", "albatross (Solo5 hvt)", True, 512, True, MIB, "solo5",
             ("mbr", "gpt"), ("albatross-mib", "albatross-hvt") + _SOLO5_RULES),
)}
NAMES = tuple(PLATFORMS)

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
    return []


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
    if format == "fat" and p.device_sector > 512:
        if ss is None:
            out["sector_size"] = p.device_sector
        elif ss < p.device_sector:
            problems.append(
                f"--sector-size {ss}: {p.title} reports {p.device_sector}-byte sectors and a "
                f"FAT volume's sector must be a multiple of the device's {_cite('xen-4096')} "
                f"{_cite('fat-sector')}; fix: --sector-size {p.device_sector} (or leave it out)")
    if format == "tar" and p.device_sector > 512:
        if ss is None:
            out["sector_size"] = p.device_sector
        elif ss < p.device_sector:
            problems.append(
                f"--sector-size {ss}: {p.title} reads whole {p.device_sector}-byte pages and "
                f"drops any tail past a {p.device_sector}-byte multiple, which would cut the "
                f"archive's end blocks {_cite('xen-4096')}; fix: --sector-size "
                f"{p.device_sector} (or leave it out)")
    size = out.get("size")
    if isinstance(size, int) and size % p.size_multiple:
        problems.append(_size_rule(p, f"--size {size}", size))
    if problems:
        raise InvalidInput("; ".join(problems), path=f"--platform {p.name}",
                           rule="platform rules")
    return out


def _size_rule(p: Platform, what: str, size: int) -> str:
    if p.name == "albatross":
        return (f"{what}: albatross block devices are whole MiB (it refuses other sizes and "
                f"truncates data to the device size) {_cite('albatross-mib')}; fix: a size "
                f"of {_round(size, MIB)} (or leave --size out: the image is rounded up)")
    if p.name == "xen":
        return (f"{what}: blkfront reports 4096-byte sectors and drops the tail past a "
                f"4096-byte multiple {_cite('xen-4096')}; fix: a multiple of 4096")
    key = "unix-512" if p.name == "unix" else "virtio-512" if p.name == "virtio" else \
        "solo5-size"
    return (f"{what}: {p.title} refuses a device whose length is not a multiple of its "
            f"{p.size_multiple}-byte block {_cite(key)}; fix: a multiple of {p.size_multiple}")


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
    if p.naming == "unix":
        lines.append(f'config.ml:  let block = block_of_file "{path}"'
                     + (f"  (then {kv} block)" if kv else ""))
        lines.append("run:        the unikernel opens that path itself; nothing to attach")
    elif p.naming == "xen":
        lines.append(f'config.ml:  let block = block_of_file "{name}"'
                     + (f"  (then {kv} block)" if kv else "")
                     + "   # the first block_of_file is xvdb, the second xvdc, ...")
        lines.append(f"xl config:  disk = [ 'format=raw, vdev=xvdb, access=rw, target={path}' ]")
        lines.append("            (what `mirage configure -t xen` writes in NAME.xl; give "
                     "each further block_of_file the next vdev)")
    else:
        lines.append(f'config.ml:  let block = block_of_file "{name}"'
                     + (f"  (then {kv} block)" if kv else "")
                     + f"   # Solo5 device name {name!r}")
        big = sector_size > 512 and image_size % sector_size == 0 and p.sector_option \
            and not partitions
        sector_arg = f" --block-sector-size:{name}={sector_size}" if big else ""
        if p.name in ("hvt", "spt"):
            lines.append(f"run:        solo5-{p.name} --block:{name}={path}{sector_arg} -- "
                         f"unikernel.{p.name}")
        elif p.name == "virtio":
            lines.append(f"run:        solo5-virtio-run -d {path} unikernel.virtio")
            lines.append("            (several -d: devices are matched to the manifest in PCI "
                         "order; check it with `solo5-elftool query-manifest unikernel.virtio`)")
        elif p.name == "albatross":
            mib = _round(image_size, MIB) // MIB
            at = f"@{sector_size}" if big else ""
            lines.append(f"upload:     albatross-client create-block {name} {mib} --data={path}")
            lines.append(f"run:        albatross-client create UNIKERNEL unikernel.hvt "
                         f"--block={name}:{name}{at}")
            lines.append(f"update:     albatross-client set-block {name} {path}")
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
