"""``blockimg build``: every output of a :class:`~blockimg.deploy.config.BuildPlan`,
all or nothing.

Each volume is made by :func:`blockimg.api.create` (``secret`` volumes mode
0600 from their first byte), the disk by :func:`blockimg.disk.writer.build_disk`
from those very images, each into a staging file beside its output named as
:mod:`blockimg.write.atomic` names its temporaries (so one left by a killed build is
removed by the next). Only when every output is complete are they renamed into
place, one ``rename`` each (a failed rename puts back the outputs already
replaced); on any failure every staging file is removed and no existing output
is touched.
"""
from __future__ import annotations

import os
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import List, Optional, Tuple

from .. import api
from ..write.atomic import TMP_SUFFIX, output_target, stale_temporaries
from .config import BuildPlan, VolumeSpec
from ..errors import DeviceError, InvalidInput
from ..record import record

__all__ = ["build", "BuildResult"]


@record(frozen=True)
class BuildResult:
    """What :func:`build` made: ``(spec, Summary)`` per volume with a file, the disk's summary."""

    volumes: Tuple[tuple, ...]
    disk: object = None


def _staging(path: str) -> str:
    directory, base = os.path.split(path)
    return os.path.join(directory, f".{base}.{os.getpid()}.{os.urandom(4).hex()}{TMP_SUFFIX}")


#: create's keywords as the config names them (errors name the key a user wrote).
_KEYS = {"sector_size": "sector-size", "fat_type": "fat-type", "volume_id": "volume-id"}


def _raise_in(table: str, error: InvalidInput) -> None:
    """``error``'s problems, each naming the config table (and key) it comes from."""
    out = []
    for p in error.problems:
        if type(p) is InvalidInput:
            key = _KEYS.get(p.path, p.path)
            out.append(InvalidInput(p.message, path=f"{table} {key}" if key else table,
                                    rule=p.rule))
        else:
            out.append(InvalidInput(str(p), path=table))
    InvalidInput.raise_all(out)
    raise error


def _put_in_place(staged: List[Tuple[str, str, bool]]) -> None:
    """Rename every staging file over its output; if one rename fails, the outputs
    already replaced get their old files back (kept as hard links until the end)."""
    backups = []
    try:
        for _, final, _ in staged:
            backup = None
            if os.path.lexists(final):
                backup = _staging(final)
                os.link(final, backup)
            backups.append(backup)
    except OSError as e:
        _remove([b for b in backups if b])
        raise DeviceError(f"{final}: cannot keep the old file until every output is "
                          f"built: {e.strerror}", errno=e.errno) from None
    done = 0
    try:
        for tmp, final, _ in staged:
            os.replace(tmp, final)
            done += 1
    except BaseException:
        for (_, final, _), backup in reversed(list(zip(staged[:done], backups))):
            if backup is None:
                os.unlink(final)
            else:
                os.replace(backup, final)
        raise
    finally:
        _remove([b for b in backups if b])


def _remove(paths) -> None:
    for p in paths:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


def _wipe_and_remove(paths) -> None:
    """Overwrite a secret volume's staging files with zeros, then remove them."""
    for p in paths:
        try:
            fd = os.open(p, os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            size, done, zeros = os.fstat(fd).st_size, 0, bytes(1 << 20)
            while done < size:
                done += os.pwrite(fd, zeros[:min(len(zeros), size - done)], done)
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)
        _remove([p])


def _target(path: str) -> str:
    """Where ``path`` is written (a symlink is written through, only a regular file is
    replaced: :func:`~blockimg.write.atomic.output_target`); stale staging files removed."""
    path = output_target(path)
    for stale in stale_temporaries(path):
        os.unlink(stale)
    return path


def _mtime(spec: VolumeSpec) -> Optional[int]:
    if spec.mtime is not None:
        return spec.mtime
    env = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not env:
        return None
    try:
        return int(env.lstrip("@"))
    except ValueError:
        raise InvalidInput(f"not a number of seconds: {env!r}", path="SOURCE_DATE_EPOCH",
                           rule="SOURCE_DATE_EPOCH") from None


def build(plan: BuildPlan, *, fsync: Optional[bool] = None) -> BuildResult:
    """Build every output of ``plan``; none is replaced unless all were built.

    ``fsync`` as :func:`blockimg.api.create` takes it; None: each output that replaces
    an existing file is made durable before the renames."""
    staged: List[Tuple[str, str, bool]] = []    # (staging file, final path, secret)
    try:
        summaries = []
        images = {}
        for spec in plan.volumes:
            if spec.source is None:
                continue
            try:
                summary = _volume(spec, staged, fsync)
            except InvalidInput as e:
                _raise_in(f"[volumes.{spec.name}]", e)
            summaries.append((spec, summary))
            images[spec.name] = (staged[-1][0] if spec.manifest is None else staged[-2][0],
                                 summary.image_size)
        disk = None
        if plan.disk is not None:
            try:
                disk = _disk(plan, images, staged, fsync)
            except InvalidInput as e:
                _raise_in("[disk]", e)
        _put_in_place(staged)
        staged.clear()
    finally:
        _remove(tmp for tmp, _, secret in staged if not secret)
        _wipe_and_remove(tmp for tmp, _, secret in staged if secret)
    return BuildResult(tuple(summaries), disk)


def _volume(spec: VolumeSpec, staged: list, fsync) -> "api.Summary":
    from ..sources.directory import excluder
    from ..sources import open_source
    output = _target(spec.output)
    image = _staging(output)
    manifest = _staging(_target(spec.manifest)) if spec.manifest else None
    # Claimed before create makes them, so that a failure inside create cleans up too.
    staged.append((image, output, spec.secret))
    if manifest:
        staged.append((manifest, _target(spec.manifest), spec.secret))
    mtime = _mtime(spec)
    if fsync is None:     # as create decides for the output itself, not for its staging file
        fsync = os.path.lexists(output)
    with open_source(spec.source, git_ref=spec.git_ref, git_path=spec.git_path,
                     spool_dir=os.path.dirname(spec.output), keep_links=spec.keep_links,
                     skip_special=spec.skip_special, mtime=mtime,
                     exclude=excluder(spec.exclude, vcs=spec.exclude_vcs)) as src:
        return api.create(src, image, format=spec.format, keep_links=spec.keep_links,
                          skip_special=spec.skip_special, mtime=mtime, secret=spec.secret,
                          manifest=manifest, fsync=fsync, exclude=spec.exclude,
                          exclude_vcs=spec.exclude_vcs, platform=spec.platform,
                          **dict(spec.options))


def _disk(plan: BuildPlan, images: dict, staged: list, fsync):
    from ..disk.volumes import Volume
    from ..disk.writer import build_disk
    d = plan.disk
    by_name = {v.name: v for v in plan.volumes}
    volumes = []
    for name in d.volumes:
        spec = by_name[name]
        if spec.source is None:
            volumes.append(Volume("empty", name, None, spec.size))
        else:
            path, size = images[name]
            volumes.append(Volume("image", name, path, size))
    output = _target(d.output)
    tmp = _staging(output)
    staged.append((tmp, output, d.secret))
    if fsync is None:
        fsync = os.path.lexists(output)
    summary = build_disk(volumes, tmp, table=d.table, align=d.align, platform=d.platform,
                         fsync=fsync, secret=d.secret)
    return summary
