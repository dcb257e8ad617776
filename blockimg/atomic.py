"""Atomic output: build beside the target, rename over it only on success."""
from __future__ import annotations

import contextlib
import os
import signal
import tempfile
from typing import Iterator

from .errors import DeviceError

__all__ = ["atomic_path", "interrupts_as_exceptions"]

TMP_SUFFIX = ".blockimg-tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str, *, secret: bool = False) -> Iterator[str]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success.

    On any exception (including KeyboardInterrupt) the temporary file is
    removed and ``path`` is untouched. The file is created mode 0600 (so a
    secret image is never readable by others, not even while it is written)
    and gets ``0666 & ~umask`` at the end unless ``secret``.
    """
    path = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".",
                                   suffix=TMP_SUFFIX, dir=directory)
    except OSError as e:
        raise DeviceError(f"{path}: cannot create a temporary file beside it: {e.strerror}",
                          errno=e.errno) from None
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o600 if secret else 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp, wipe=secret)
        raise
    try:
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _remove(tmp: str, *, wipe: bool) -> None:
    try:
        if wipe:
            # Overwrite what was written before unlinking (best effort).
            size = os.path.getsize(tmp)
            with open(tmp, "r+b", buffering=0) as f:
                chunk = bytes(1 << 20)
                done = 0
                while done < size:
                    n = f.write(chunk[:min(len(chunk), size - done)])
                    done += n
                os.fsync(f.fileno())
        os.unlink(tmp)
    except OSError:
        pass


class Terminated(BaseException):
    """SIGTERM/SIGHUP turned into an exception, so clean-up code runs."""


@contextlib.contextmanager
def interrupts_as_exceptions() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Terminated`."""
    def handler(signum, frame):
        raise Terminated(signum)
    old = {}
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is None:
            continue
        try:
            old[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread
            pass
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
