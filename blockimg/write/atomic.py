"""Atomic output: build beside the target, put it in place only on success.

:func:`atomic_file` is what :func:`blockimg.create` uses. Where the file
system supports it (Linux, ``O_TMPFILE``) the image is built in an
*anonymous* file in the target's directory and linked into place only when
complete, so nothing is left behind whatever happens to the process, even
``SIGKILL`` or a power cut. Elsewhere it falls back to a named temporary
file ``.NAME.PID.RANDOM.blockimg-tmp`` that is removed on every failure
Python sees; one left by a killed process is removed by the next
``blockimg create`` of the same target (its PID no longer runs).

Only a regular file is ever replaced (:func:`output_target`): a device node,
FIFO, socket or directory at the output's name is refused, and a symlink is
written through -- the file it leads to is replaced, atomically, and the link
stays, as GNU tar and cp do.
"""
from __future__ import annotations

import errno as _errno
import os
import stat
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Optional, Tuple

from ..errors import DeviceError, InvalidInput
from ..quoting import escape

__all__ = ["atomic_path", "atomic_file", "write_all", "TempOutput", "stale_temporaries",
           "output_target", "TMP_SUFFIX"]

TMP_SUFFIX = ".blockimg-tmp"
_HEX = frozenset("0123456789abcdef")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class TempOutput:
    """The file being built: ``fd`` (read-write, mode 0600) and ``name`` for messages.

    ``anonymous`` is True when the file has no name yet (``O_TMPFILE``).
    """

    def __init__(self, fd: int, name: str, path: Optional[str]) -> None:
        self.fd = fd
        self.name = name
        self.path = path
        self.anonymous = path is None


def _link_fd(fd: int, dest: str) -> None:
    """Give the anonymous file ``fd`` the name ``dest``.

    ``linkat(/proc/self/fd, "<fd>", dest, AT_SYMLINK_FOLLOW)``: the directory
    fd makes :func:`os.link` call ``linkat`` with the follow flag (plain
    ``link`` would link the /proc symlink itself).
    """
    procfd = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.link(str(fd), dest, src_dir_fd=procfd, follow_symlinks=True)
    finally:
        os.close(procfd)


_KINDS = ((stat.S_ISDIR, "directory"), (stat.S_ISCHR, "character device"),
          (stat.S_ISBLK, "block device"), (stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"))


def output_target(path: str) -> str:
    """The absolute name an output ``path`` is put at: ``path``, or the file a symlink
    there leads to (the link is written through and stays).

    Raises :class:`InvalidInput` when that is not a regular file (a device node, a
    FIFO, a socket, a directory) or the symlink leads nowhere: only regular files
    are replaced. A name that does not exist yet is fine.
    """
    path = os.path.abspath(os.fspath(path))
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return path           # nothing there: creating it reports a bad directory
    if not stat.S_ISLNK(mode):
        _check_replaceable(path, mode)
        return path
    found = _follow(path)
    if found is None:
        raise InvalidInput(f"is a symlink to {escape(os.path.realpath(path))}, which does "
                           "not exist; create that file or remove the link", path=path,
                           rule="an output symlink is written through")
    real, mode = found
    _check_replaceable(path, mode, real)
    return real


def _check_replaceable(path: str, mode: int, real: Optional[str] = None) -> None:
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "special file")
        what = f"a {kind}" if real is None else f"a symlink to {escape(real)}, a {kind}"
        raise InvalidInput(f"is {what}, not a regular file; refusing to replace it",
                           path=path, rule="only a regular file is replaced by an output")


def _follow(path: str) -> Optional[Tuple[str, int]]:
    """Where the symlink ``path`` leads and the mode of what is there (None: nothing),
    found by the kernel as an ``open`` would (so its protections of links in sticky
    directories apply; ``/dev/stdout`` leads to the pipe itself), else by reading links."""
    try:
        if getattr(os, "O_PATH", 0) and os.path.isdir("/proc/self/fd"):
            fd = os.open(path, os.O_PATH | getattr(os, "O_CLOEXEC", 0))
            try:
                return os.readlink(f"/proc/self/fd/{fd}"), os.fstat(fd).st_mode
            finally:
                os.close(fd)
        return os.path.realpath(path), os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        raise DeviceError(f"{escape(path)}: cannot follow the symlink: {e.strerror}",
                          errno=e.errno) from None


def _temp_name(path: str) -> str:
    directory, base = os.path.split(path)
    return os.path.join(directory, f".{base}.{os.getpid()}.{os.urandom(4).hex()}{TMP_SUFFIX}")


def stale_temporaries(path: str) -> list:
    """Named temporaries of ``path`` left by blockimg processes that no longer run
    (``.NAME.PID.HEX`` + :data:`TMP_SUFFIX`, as :func:`_temp_name` makes them)."""
    directory, base = os.path.split(os.path.abspath(path))
    prefix = f".{base}."
    out = []
    try:
        names = os.listdir(directory)
    except OSError:
        return out
    for name in names:
        if not (name.startswith(prefix) and name.endswith(TMP_SUFFIX)):
            continue
        # (string tests, not a pattern: re costs ~8 M instructions of every build's start-up)
        pid, _, rand = name[len(prefix):-len(TMP_SUFFIX)].partition(".")
        if not (pid.isdecimal() and rand and set(rand) <= _HEX):
            continue
        try:
            os.kill(int(pid), 0)
            continue  # still running (or not ours to judge)
        except ProcessLookupError:
            out.append(os.path.join(directory, name))
        except PermissionError:
            continue
    return sorted(out)


def _open_anonymous(directory: str) -> Optional[int]:
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or os.link not in os.supports_dir_fd or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.open(directory, flag | os.O_RDWR | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError as e:
        if e.errno in (_errno.EOPNOTSUPP, _errno.EISDIR, _errno.EINVAL, _errno.ENOENT,
                       _errno.ENOTSUP):
            return None
        raise


class atomic_file:
    """``with atomic_file(path) as out``: a :class:`TempOutput` beside ``path``, put at
    ``path`` on success.

    On any exception (including KeyboardInterrupt, and SIGTERM as the command
    raises it: :mod:`blockimg.cli.interrupts`) ``path`` is untouched and the
    temporary file is gone (overwritten with zeros first when ``secret``). The file is mode 0600 from its creation
    and gets ``0666 & ~umask`` at the end unless ``secret``.
    ``anonymous=False`` forces the named fallback (tests). ``durable`` fsyncs
    the directory after the rename (the caller fsyncs the file's data).
    ``path`` is resolved by :func:`output_target` (refused unless a regular file).
    (A class, not a ``contextlib`` generator: contextlib is ~4 ms of ``create``'s start-up.)
    """

    def __init__(self, path: str, *, secret: bool = False, anonymous: Optional[bool] = None,
                 durable: bool = True) -> None:
        self.path = path
        self.secret = secret
        self.anonymous = anonymous
        self.durable = durable

    def __enter__(self) -> TempOutput:
        path = self.path = _claim(self.path, self.secret)
        fd = tmp = None
        try:
            if self.anonymous is not False:
                fd = _open_anonymous(os.path.dirname(path))
            if fd is None:
                tmp = _temp_name(path)
                fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL |
                             getattr(os, "O_CLOEXEC", 0), 0o600)
        except OSError as e:
            raise DeviceError(f"{path}: cannot create a temporary file beside it: "
                              f"{e.strerror}", errno=e.errno) from None
        self.fd, self.tmp = fd, tmp
        return TempOutput(fd, path if tmp is None else tmp, tmp)

    def __exit__(self, kind, value, traceback) -> None:
        try:
            if kind is not None:
                self._discard()
                return
            try:
                self._put_in_place()
            except BaseException:
                self._discard()
                raise
        finally:
            os.close(self.fd)
        if self.durable:
            _fsync_dir(os.path.dirname(self.path))

    def _put_in_place(self) -> None:
        fd, path = self.fd, self.path
        try:
            os.fchmod(fd, 0o600 if self.secret else 0o666 & ~_umask())
            if self.tmp is None:
                try:
                    _link_fd(fd, path)  # fails with EEXIST when the target exists
                except FileExistsError:
                    self.tmp = _temp_name(path)
                    _link_fd(fd, self.tmp)
                    os.replace(self.tmp, path)
            else:
                os.replace(self.tmp, path)
        except OSError as e:
            raise DeviceError(f"{path}: cannot put the image in place: {e.strerror}",
                              errno=e.errno) from None

    def _discard(self) -> None:
        if self.secret:
            _wipe_fd(self.fd)
        if self.tmp is not None:
            _remove(self.tmp, wipe=False)


class atomic_path:
    """``with atomic_path(path) as tmp``: a temporary *path* beside ``path``, renamed over
    ``path`` on success.

    For small files written by name. Same guarantees as :class:`atomic_file`
    except after SIGKILL, when the named temporary stays until the next run removes it.
    """

    def __init__(self, path: str, *, secret: bool = False) -> None:
        self.path = path
        self.secret = secret

    def __enter__(self) -> str:
        path = self.path = _claim(self.path, self.secret)
        tmp = self.tmp = _temp_name(path)
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as e:
            raise DeviceError(f"{path}: cannot create a temporary file beside it: "
                              f"{e.strerror}", errno=e.errno) from None
        os.close(fd)
        return tmp

    def __exit__(self, kind, value, traceback) -> None:
        if kind is not None:
            _remove(self.tmp, wipe=self.secret)
            return
        try:
            os.chmod(self.tmp, 0o600 if self.secret else 0o666 & ~_umask())
            os.replace(self.tmp, self.path)
        except BaseException:
            _remove(self.tmp, wipe=self.secret)
            raise
        _fsync_dir(os.path.dirname(self.path))


def write_all(fd: int, data: bytes, *, sync: bool = True) -> None:
    """Write all of ``data`` to ``fd`` and fsync it unless not ``sync`` (DeviceError on failure)."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view):]
        if sync:
            os.fsync(fd)
    except OSError as e:
        raise DeviceError(f"write failed: {e.strerror}", errno=e.errno) from None


def _fsync_dir(directory: str) -> None:
    try:
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _wipe_fd(fd: int) -> None:
    """Overwrite an open file with zeros (best effort)."""
    try:
        size = os.fstat(fd).st_size
        chunk = bytes(1 << 20)
        done = 0
        while done < size:
            n = os.pwrite(fd, chunk[:min(len(chunk), size - done)], done)
            if n <= 0:
                break
            done += n
        os.fsync(fd)
    except OSError:
        pass


def _claim(path: str, secret: bool) -> str:
    """``path`` resolved by :func:`output_target`, with the temporaries an interrupted run
    left beside it removed (wiped first when ``secret``)."""
    path = output_target(path)
    for stale in stale_temporaries(path):
        _remove(stale, wipe=secret)
    return path


def _remove(tmp: str, *, wipe: bool) -> None:
    try:
        if wipe:
            fd = os.open(tmp, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
            try:
                _wipe_fd(fd)
            finally:
                os.close(fd)
        os.unlink(tmp)
    except OSError:
        pass


def temporaries_in(directory: str) -> list:
    """Every blockimg temporary file in ``directory`` (tests and diagnostics)."""
    try:
        return sorted(n for n in os.listdir(directory) if n.endswith(TMP_SUFFIX))
    except OSError:
        return []
