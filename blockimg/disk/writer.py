"""Building a partitioned disk: plan every volume and the table, then write once.

Each volume is written straight into its partition of the new disk file:
an image file is copied in, a source tree is laid out by its format's
writer on a window over the partition, empty space stays a hole. Each
partition's SHA-256, from which the GUIDs are derived, is computed as it is
written (:mod:`blockimg.disk.digest`: the gathered writes are hashed on
their way, on the writer's helper thread; a big file or an image copied in
is read through a buffer, each piece hashed on a helper thread while the
next is read; only a hole is read back); then the table is written. The
disk is built in a temporary file and put in place only when complete
(:func:`blockimg.write.atomic.atomic_file`).
"""
from __future__ import annotations

import os
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import List, Optional, Sequence, Tuple

from ..write.atomic import atomic_file
from ..block.file import FileDevice
from ..errors import BlockImgError, DeviceError, InvalidInput, SourceChanged
from ..record import record
from .digest import HashingWindow
from .layout import DEFAULT_ALIGN, DiskPlan, plan_disk
from .table import GPT_TYPES, MBR_TYPES, encode_gpt, encode_mbr
from .volumes import Volume

__all__ = ["build_disk", "DiskSummary", "Guid", "NAMESPACE", "uuid5", "partition_guid", "disk_guid"]

_bytes = bytes     # (Guid's keyword ``bytes``, as uuid.UUID's, hides the type)


class Guid:
    """A GUID as blockimg derives them (RFC 4122 name-based, version 5): its 16 bytes in
    big-endian field order, ``bytes_le`` as GPT stores it, and the usual text form. (Not
    :class:`uuid.UUID`: ``uuid`` imports ``platform``, ``re`` and ``enum`` when it loads.)"""

    __slots__ = ("bytes",)

    def __init__(self, text: str = "", *, bytes: bytes = b"") -> None:
        raw = bytes or _bytes.fromhex(text.replace("-", ""))
        if len(raw) != 16:
            raise ValueError(f"a GUID is 16 bytes, not {len(raw)}")
        self.bytes = raw

    @property
    def bytes_le(self) -> bytes:
        b = self.bytes
        return b[3::-1] + b[5:3:-1] + b[7:5:-1] + b[8:]

    def __str__(self) -> str:
        h = self.bytes.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def __repr__(self) -> str:
        return f"Guid({str(self)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Guid) and other.bytes == self.bytes

    def __hash__(self) -> int:
        return hash(self.bytes)


def uuid5(namespace: Guid, name: str) -> Guid:
    """RFC 4122 section 4.3 (as :func:`uuid.uuid5`): SHA-1 of the namespace and the name,
    with the version (5) and variant bits set."""
    from hashlib import sha1
    h = bytearray(sha1(namespace.bytes + name.encode("utf-8")).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x50
    h[8] = (h[8] & 0x3F) | 0x80
    return Guid(bytes=_bytes(h))


#: The namespace of every GUID blockimg derives (uuid5 of names and content hashes).
NAMESPACE = Guid("40aa7b79-e2da-53e1-8298-b99a220c4df4")   # uuid5(NAMESPACE_DNS, "blockimg.disk")


def partition_guid(name: str, sha256: str) -> Guid:
    return uuid5(NAMESPACE, f"partition\0{name}\0{sha256}")


def disk_guid(table: str, disk_size: int, partitions: Sequence[Guid]) -> Guid:
    return uuid5(NAMESPACE, "\0".join(["disk", table, str(disk_size)]
                                      + [str(g) for g in partitions]))


@record(frozen=True)
class DiskSummary:
    path: str
    plan: DiskPlan
    guids: Tuple[str, ...]
    disk_id: str

    def line(self) -> str:
        parts = ", ".join(f"{i + 1} {s.name} ({s.kind}, {s.size} bytes at {s.start})"
                          for i, s in enumerate(self.plan.slots))
        return (f"{self.path}: {self.plan.table.upper()} disk of {self.plan.disk_size} bytes, "
                f"{len(self.plan.slots)} partitions: {parts}")


def _image_kind(path: str) -> str:
    from ..formats import detect_format
    dev = FileDevice(path)
    try:
        try:
            fmt = detect_format(dev)
        except BlockImgError:        # any bytes are a volume; only the type code differs
            return "data"
        if fmt != "fat":
            return fmt
        from ..fat.geometry import parse     # the one boot-sector reader: its FAT type
        return f"fat{parse(dev.pread(0, 512), dev.size).fat_type}"
    finally:
        dev.close()


def _plan_volumes(volumes: Sequence[Volume], profile, mtime: Optional[int]):
    """``[(volume, kind, size, format plan or None)]``; every volume's problems at once."""
    out, problems = [], []
    for v in volumes:
        try:
            if v.kind == "empty":
                out.append((v, "empty", v.size, None, None))
            elif v.kind == "image":
                out.append((v, _image_kind(v.path), v.size, None, None))
            else:            # (a source directory: its reader and planner, only then)
                from ..formats import format_module
                from ..sources.directory import as_tree, paused_gc
                mod = format_module(v.format)
                options = v.format_options()
                if profile is not None:
                    from ..deploy import platforms
                    options = platforms.format_options(profile, v.format, options)
                tree = as_tree(v.path, mtime=mtime)
                with paused_gc():   # one acyclic object per entry: no cycles to find
                    plan = mod.plan(tree, mod.Options(**options))
                kind = f"fat{plan.geometry.fat_type}" if v.format == "fat" else "tar"
                out.append((v, kind, plan.image_size, plan, mod))
        except InvalidInput as e:
            problems.append(f"volume {v.name}: {e}")
    if problems:
        raise InvalidInput("; ".join(problems), rule="disk volumes")
    return out


def build_disk(volumes: Sequence[Volume], output: str, *, table: str = "mbr",
               align: int = DEFAULT_ALIGN, platform: Optional[str] = None,
               mtime: Optional[int] = None, fsync: Optional[bool] = None,
               secret: bool = False) -> DiskSummary:
    """Write ``volumes`` as partitions of a new disk image at ``output`` (atomically).

    ``secret``: the disk is mode 0600 from its first byte and its temporary file is
    wiped on failure (as ``create --secret``)."""
    profile = None
    if platform is not None:
        from ..deploy import platforms
        profile = platforms.get(platform)
    planned = _plan_volumes(volumes, profile, mtime)
    plan = plan_disk([(v.name, kind, size) for v, kind, size, _, _ in planned], table=table,
                     align=align, size_multiple=profile.size_multiple if profile else 1)
    if profile is not None:
        problems = platforms.disk_problems(profile, table, plan.disk_size)
        if problems:
            raise InvalidInput("; ".join(problems), path=f"--platform {profile.name}",
                               rule="platform rules")
    output = os.fspath(output)
    if os.path.exists(output) and not os.path.isfile(output):
        raise InvalidInput("is not a regular file; write the disk to a file, then copy it",
                           path=output, rule="disk output")
    if fsync is None:
        fsync = os.path.lexists(output)
    with atomic_file(output, durable=fsync, secret=secret) as out:
        try:
            os.ftruncate(out.fd, plan.disk_size)
        except OSError as e:
            raise DeviceError(f"{output}: cannot make a {plan.disk_size}-byte disk: "
                              f"{e.strerror}", errno=e.errno) from None
        dev = FileDevice(out.name, writable=True, _fd=os.dup(out.fd))
        try:
            guids = []
            for slot, (v, _, _, fplan, mod) in zip(plan.slots, planned):
                window = HashingWindow(dev, slot.start, slot.size)
                try:
                    _write_volume(window, v, fplan, mod)
                    guids.append(partition_guid(slot.name, window.hexdigest()))
                finally:
                    window.close()        # ends its helper thread, even on an error
            disk_id = _write_table(dev, plan, guids)
            if fsync:
                dev.flush()
        finally:
            dev.close()
    return DiskSummary(output, plan, tuple(str(g) for g in guids), disk_id)


def _write_volume(window: HashingWindow, v: Volume, fplan, mod) -> None:
    if v.kind == "source":
        mod.write(fplan, window)
    elif v.kind == "image":
        try:
            fd = os.open(v.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as e:
            raise DeviceError(f"{v.path}: cannot open: {e.strerror}", errno=e.errno) from None
        try:
            done = window.copy_from(0, fd, window.size)
            if done != window.size or os.fstat(fd).st_size != window.size:
                raise SourceChanged(f"changed size while being copied ({window.size} bytes "
                                    "planned)", path=v.path, rule="sources stay unchanged")
        finally:
            os.close(fd)


def _write_table(dev: FileDevice, plan: DiskPlan, guids: List[Guid]) -> str:
    dguid = disk_guid(plan.table, plan.disk_size, guids)
    if plan.table == "mbr":
        signature = int.from_bytes(dguid.bytes[:4], "little") or 1
        dev.pwrite(0, encode_mbr([(s.start, s.size, MBR_TYPES.get(s.kind, 0xDA))
                                  for s in plan.slots], signature))
        return f"0x{signature:08x}"
    parts = [(s.start, s.size, Guid(GPT_TYPES["fat" if s.kind.startswith("fat") else
                                                   "data"]), g, s.name)
             for s, g in zip(plan.slots, guids)]
    for offset, data in sorted(encode_gpt(parts, dguid, plan.disk_size).items()):
        dev.pwrite(offset, data)
    return str(dguid)
