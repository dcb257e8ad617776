"""Extraction: an image's tree written below a destination directory, safely.

:func:`extract` checks every entry (names, kinds, links, what is above it in
the image), makes the directories, then the files -- split over processes
when asked (:mod:`blockimg.write.parallel`) -- then the symlinks, and last the
directories' modes and times. All of it goes through :class:`TreeWriter`:
directory file descriptors, ``O_NOFOLLOW`` and ``O_EXCL``, so nothing is
ever written through a symlink or outside the destination.
"""
from __future__ import annotations

import errno as _errno
import os
import stat as _stat
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Callable, List, Optional, Sequence, Tuple

from ..block.base import FORKABLE
from ..errors import BlockImgError, DeviceError, InvalidInput, NotFound
from ..quoting import escape
from ..record import field, record

__all__ = ["extract", "ExtractReport", "unsafe_host_name", "plan_parts", "ONE_PROCESS_BELOW"]

# The images extracted here are blockimg.read.image.Image objects, used through their public
# interface (index, key, resolve, copy_data, skipped, device, format): this module does
# not import blockimg.read.image, which imports it for Image.extract.

#: With ``jobs`` None, fewer entries than this are extracted by one process: the rule of
#: :func:`blockimg.write.parallel.auto_jobs` (a second process from ``2 *
#: MIN_FILES_PER_JOB`` files on; a test holds the two equal), applied here so that a
#: small image's extract decides without loading the parallel machinery.
ONE_PROCESS_BELOW = 2000


@record
class ExtractReport:
    """What :meth:`Image.extract` did."""

    written: List[str] = field(default_factory=list)
    refused: List[Tuple[str, str]] = field(default_factory=list)
    existing: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.refused and not self.existing


def extract(image: "Image", dest: str, *, overwrite: bool = False,
            paths: Optional[Sequence[str]] = None, jobs: Optional[int] = 1,
            progress=None) -> ExtractReport:
    """:meth:`Image.extract <blockimg.read.image.Image.extract>` (see there), in one pass over
    the index (its files written from ``jobs`` processes)."""
    check_host()
    report = ExtractReport()
    dest = os.path.abspath(os.fspath(dest))
    wanted = None
    if paths is not None:
        # Every PATH must select something, before anything is made (GNU tar: "Not
        # found in archive").
        from .members import Selection
        wanted = Selection(paths, image.index, image.key)
        if wanted.missing:
            raise NotFound(f"not found in {image.format} image", paths=wanted.missing,
                           rule="each PATH names an entry or matches one")
    real_dest = prepare_destination(dest)
    index = image.index
    if jobs is None:
        jobs = 1 if len(index) < ONE_PROCESS_BELOW else _auto_jobs(len(index))
    report.refused.extend(image.skipped)   # (found by the walk)
    writer = TreeWriter(real_dest, overwrite, report)
    try:
        dirs, files, links = sort_out(image, index, wanted, real_dest, report.refused)
        dirs = [info for info in dirs if writer.make_dir(info.path)]
        _write_files(image, files, writer, real_dest, overwrite, jobs, progress)
        made = make_links(writer, links)
    finally:
        writer.close()
    finish(report, real_dest, made, dirs)
    return report


def check_host() -> None:
    """BlockImgError unless this host's ``os`` functions take ``dir_fd`` (TreeWriter needs it)."""
    if not _HAVE_DIR_FD:
        raise BlockImgError("extract needs a host whose os functions take dir_fd")


def prepare_destination(dest: str) -> str:
    """Make the directory ``dest`` (see :func:`make_destination`); its real path."""
    make_destination(dest)
    return os.path.realpath(dest)


def make_destination(dest: str) -> None:
    """Make the directory ``dest`` (and its parents) unless it is one; DeviceError if not."""
    try:
        os.makedirs(dest, exist_ok=True)
    except FileExistsError:       # exists, and is not a directory (or a link to one)
        raise DeviceError(f"{escape(dest)}: cannot extract into it: it exists and is not a "
                          "directory", errno=_errno.EEXIST) from None
    except OSError as e:
        where = e.filename if isinstance(e.filename, str) else dest
        raise DeviceError(f"{escape(where)}: cannot make the destination directory: "
                          f"{e.strerror}", errno=e.errno) from None


def sort_out(image: "Image", index, wanted: Optional[Callable[[str], bool]], real_dest: str,
             refused: List[Tuple[str, str]]):
    """Check the entries of ``index`` (those ``wanted`` selects, if given) in image order:
    ``(dirs, files, links)`` to make, the refusals added to ``refused``. A file is
    ``(entry, the file whose data it gets)``: a hard link is written as a copy."""
    dirs: List[EntryInfo] = []
    files: List[Tuple[EntryInfo, EntryInfo]] = []
    links: List[EntryInfo] = []
    checked, below_non_dir = "", None  # the last parent path looked at, and its verdict
    verdicts: dict = {}
    for info in sorted(index.values(), key=order):
        if wanted is not None and not wanted(info.path):
            continue
        parent = info.path.rpartition("/")[0]
        if parent != checked:  # entries come grouped by directory
            checked, below_non_dir = parent, _non_dir_ancestor(index, parent, verdicts)
        why = unsafe_host_name(info.path) or below_non_dir or \
            _kind_problem(image, info, real_dest)
        if why is not None:
            refused.append((info.path, why))
        elif info.kind == "symlink":
            links.append(info)
        elif info.kind == "dir":
            dirs.append(info)
        else:
            files.append((info, info if info.kind == "file" else image.resolve(info.path)))
    return dirs, files, links


def make_links(writer: "TreeWriter", links) -> List[Tuple["EntryInfo", str]]:
    """Make the symlinks ``links``; those made, with their targets."""
    return [(info, info.link_target or "") for info in links
            if writer.make_symlink(info.path, info.link_target or "")]


def finish(report: ExtractReport, real_dest: str, made, dirs) -> None:
    """After everything is written: symlinks that escape are removed (and refused), and
    the directories ``dirs`` get their modes and times."""
    # A link can escape through another link (a -> ., b -> a/x/../..): judge
    # each against the finished tree, where nothing changes any more.
    for info, link in made:
        target = os.path.join(real_dest, *info.path.split("/"))
        if _inside(os.path.realpath(target), real_dest):
            report.written.append(info.path)
        else:
            os.unlink(target)
            report.refused.append((info.path, f"symlink to '{escape(link)}' resolves outside "
                                              "the destination"))
    # Directory modes and times last: making what is inside them changes both.
    for info in reversed(dirs):
        target = os.path.join(real_dest, *info.path.split("/"))
        try:
            os.chmod(target, (info.mode & 0o777) | 0o700, follow_symlinks=False)
            os.utime(target, (info.mtime, info.mtime), follow_symlinks=False)
        except (OSError, NotImplementedError):
            pass


def _write_files(image: "Image", files, writer: "TreeWriter", real_dest: str,
                 overwrite: bool, jobs: int, progress=None) -> None:
    """Write ``files`` through ``writer``, or split over ``jobs`` processes (each with a
    writer of its own; outcomes merged into ``writer.report`` in image order)."""
    total = sum(data.size for _, data in files)
    tick = progress and (lambda done: progress(done, total))
    if jobs <= 1 or not forkable(image.device):
        write_some(image, files, writer, tick)          # (what fork_map does for one part)
        return
    from ..write.parallel import fork_map, split_files
    ranges = split_files((data.size for _, data in files), jobs)

    def part(i: int, tick) -> Optional[tuple]:
        start, stop = ranges[i]
        if i == 0:
            write_some(image, files[start:stop], writer, tick)
            return None
        own = TreeWriter(real_dest, overwrite, ExtractReport())
        try:
            write_some(image, files[start:stop], own, tick)
        finally:
            own.close()
        return own.report.written, own.report.refused, own.report.existing

    report = writer.report
    for got in fork_map(part, len(ranges), progress=tick)[1:]:
        report.written += got[0]
        report.refused += got[1]
        report.existing += got[2]


def write_some(image: "Image", files, writer: "TreeWriter", tick=None) -> None:
    """Write ``files``; ``tick(bytes)`` after each (the file bytes of this part so far)."""
    copy = image.copy_data
    if tick is not None:
        done = 0
        copy_data = copy

        def copy(data, fd) -> None:
            nonlocal done
            copy_data(data, fd)
            done += data.size
            tick(done)
    writer.write_files(((info.path, info.mode, data.mtime, data) for info, data in files),
                       copy)


def _auto_jobs(files: int) -> int:
    """:func:`blockimg.write.parallel.auto_jobs` (imported here: one process needs none of
    that module)."""
    from ..write.parallel import auto_jobs
    return auto_jobs(files)


def plan_parts(image: "Image", dest: str, jobs: Optional[int]):
    """``(split, real destination)`` (made) to extract ``image``'s whole tree in parts
    with :func:`blockimg.read.extract_split.extract_in_parts`, or None when one pass does
    it: a device children cannot share, a format or tree that offers no split
    (:meth:`Image.split_plan <blockimg.read.image.Image.split_plan>`), or too few
    entries. (Decided before :mod:`.extract_split` and the parallel machinery load.)"""
    check_host()
    if not forkable(image.device):
        return None
    real_dest = prepare_destination(os.path.abspath(os.fspath(dest)))
    split = image.split_plan(jobs)
    return None if split is None else (split, real_dest)


def forkable(device) -> bool:
    """Whether forked children can read ``device`` as the parent does: the built-in
    backends (a file descriptor, a shared mapping or memory copied on fork); not a
    plugin's, which may hold a connection that must not be shared."""
    return hasattr(os, "fork") and type(device) in FORKABLE


def _non_dir_ancestor(index, parent: str, verdicts: dict) -> Optional[str]:
    """Why nothing can be written in the image directory ``parent`` (it or an ancestor
    is not a directory in the image), or None; ``verdicts`` keeps each directory's, so
    a deep tree costs each directory one look, not one per descendant."""
    chain = []
    p = parent
    while p and p not in verdicts:
        chain.append(p)
        p = p.rpartition("/")[0]
    why = verdicts.get(p) if p else None
    for q in reversed(chain):
        if why is None:
            up = index.get(q)
            if up is not None and up.kind != "dir":
                why = (f"is below '{escape(up.path)}', which is a {up.kind} in the image "
                       "(nothing is written through links)")
        verdicts[q] = why
    return why


def _kind_problem(image: "Image", info: "EntryInfo", real_dest: str) -> Optional[str]:
    """Why an entry of this kind cannot be extracted, or None."""
    if info.kind in ("dir", "file"):
        return None
    link = info.link_target or ""
    if info.kind == "symlink":
        at = os.path.dirname(os.path.join(real_dest, *info.path.split("/")))
        if not link or os.path.isabs(link) or "\0" in link or \
                not _inside(os.path.normpath(os.path.join(at, link)), real_dest):
            return f"symlink to '{escape(link)}' leads outside the destination"
        return None
    if info.kind != "hardlink":
        return f"{info.kind} entries are not extracted"
    src = image.key(link)
    if src not in image.index or src == info.path:
        return f"hard link to '{escape(link)}' which is not in the image"
    try:
        image.resolve(src)
    except InvalidInput as e:  # a link to a directory, or a chain of links
        return f"hard link to '{escape(link)}': {e}"
    return None


_O = {name: getattr(os, name, 0) for name in ("O_DIRECTORY", "O_NOFOLLOW", "O_CLOEXEC")}
_DIR_FLAGS = os.O_RDONLY | _O["O_DIRECTORY"] | _O["O_NOFOLLOW"] | _O["O_CLOEXEC"]
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O["O_NOFOLLOW"] | _O["O_CLOEXEC"]
_HAVE_DIR_FD = {os.open, os.mkdir, os.stat, os.unlink, os.symlink} <= os.supports_dir_fd \
    and os.utime in os.supports_fd and all(_O.values())


class _Blocked(Exception):
    """An entry's parent directory cannot be opened (the reason is the message)."""


class TreeWriter:
    """Makes entries below one destination through directory file descriptors.

    The directories from the destination down to the current parent stay
    open, each opened with ``O_NOFOLLOW`` relative to the one above (missing
    ones are created), so no path is looked up twice and nothing is followed
    out of the tree. Entries come in sorted path order, so only that one
    chain is open, and only its deepest :attr:`MAX_OPEN` levels; a closed
    level is opened again, the same way, when the walk climbs back to it.
    Outcomes go to ``report``. A failure of the whole destination (no space left, a
    quota, a read-only file system) stops it: :class:`DeviceError` naming the entry,
    after removing the file it was writing.
    """

    MAX_OPEN = 64

    def __init__(self, root: str, overwrite: bool, report: ExtractReport) -> None:
        try:
            self.root = os.open(root, _DIR_FLAGS)
        except OSError as e:
            raise DeviceError(f"{escape(root)}: cannot open the destination directory: "
                              f"{e.strerror}", errno=e.errno) from None
        self.root_path = root
        self.overwrite = overwrite
        self.report = report
        self.umask = _umask()
        self.names: List[str] = []            # the open chain, below root
        self.fds: List[Optional[int]] = []    # one per name; None once closed
        self.blocked: Tuple[Tuple[str, ...], str] = ((), "")  # last prefix that failed

    def make_dir(self, path: str) -> bool:
        """Make (or keep) the directory ``path``; True if it is one now."""
        try:
            parent, name = self._parent(path)
            try:
                os.mkdir(name, 0o777, dir_fd=parent)
            except FileExistsError:
                if not _stat.S_ISDIR(os.stat(name, dir_fd=parent,
                                             follow_symlinks=False).st_mode):
                    if not self._remove(parent, name):
                        self.report.existing.append(path)
                        return False
                    os.mkdir(name, 0o777, dir_fd=parent)
        except (_Blocked, OSError) as e:
            self._refuse(path, e)
            return False
        self.report.written.append(path)
        return True

    def write_files(self, files, copy) -> None:
        """Create the files ``(path, mode, mtime, data)`` (``O_EXCL|O_NOFOLLOW``), each
        filled with ``copy(data, fd)``; in image order, each directory looked up once."""
        report = self.report
        written = report.written.append
        umask = self.umask
        at_dir = None                 # the directory of the file before
        parent, blocked = self.root, None
        for path, mode, mtime, data in files:
            dir_path, _, name = path.rpartition("/")
            if dir_path != at_dir:
                at_dir = dir_path
                try:
                    parent = self._open_chain(dir_path.split("/") if dir_path else [])
                    blocked = None
                except _Blocked as e:
                    blocked = str(e)
            if blocked is not None:
                report.refused.append((path, blocked))
                continue
            perm = mode & 0o777
            try:
                try:
                    fd = os.open(name, _FILE_FLAGS, perm, dir_fd=parent)
                except FileExistsError:
                    if not self._remove(parent, name):
                        report.existing.append(path)
                        continue
                    fd = os.open(name, _FILE_FLAGS, perm, dir_fd=parent)
                try:
                    try:
                        copy(data, fd)
                    except BaseException:
                        # Never leave a partial file under the entry's name.
                        _unlink_quietly(parent, name)
                        raise
                    if perm & umask:  # open() applied the umask
                        os.fchmod(fd, perm)
                    os.utime(fd, (mtime, mtime))
                finally:
                    os.close(fd)
            except OSError as e:
                self._refuse(path, e)
                continue
            written(path)

    def make_symlink(self, path: str, link: str) -> bool:
        """Create the symlink ``path -> link``; True if made."""
        try:
            parent, name = self._parent(path)
            try:
                os.symlink(link, name, dir_fd=parent)
            except FileExistsError:
                if not self._remove(parent, name):
                    self.report.existing.append(path)
                    return False
                os.symlink(link, name, dir_fd=parent)
        except (_Blocked, OSError) as e:
            self._refuse(path, e)
            return False
        return True

    def close(self) -> None:
        for fd in self.fds:
            if fd is not None:
                os.close(fd)
        self.names, self.fds = [], []
        os.close(self.root)

    def _refuse(self, path: str, e: Exception) -> None:
        """Note that ``path`` could not be made; stop on a failure of the whole
        destination (:data:`STOP_ERRNOS`)."""
        if isinstance(e, OSError) and e.errno in STOP_ERRNOS:
            raise DeviceError(f"{escape(os.path.join(self.root_path, path))}: cannot write: "
                              f"{e.strerror}; extraction stopped", errno=e.errno) from None
        self.report.refused.append((path, _why(e)))

    def _remove(self, parent: int, name: str) -> bool:
        """With ``overwrite``, unlink ``name`` unless it is a directory; True if done."""
        if not self.overwrite:
            return False
        try:
            os.unlink(name, dir_fd=parent)
        except OSError:
            if _lstat_is(parent, name, _stat.S_ISDIR):
                return False
            raise
        return True

    def _parent(self, path: str) -> Tuple[int, str]:
        """The open parent directory of ``path`` and its last component."""
        *parents, name = path.split("/")
        return self._open_chain(parents), name

    def _open_chain(self, parts: List[str]) -> int:
        """Make ``parts`` the open chain (keeping the common prefix); its last fd."""
        bad, reason = self.blocked
        if bad and tuple(parts[:len(bad)]) == bad:
            raise _Blocked(reason)
        names, fds = self.names, self.fds
        k = 0
        while k < len(names) and k < len(parts) and names[k] == parts[k]:
            k += 1
        for fd in fds[k:]:
            if fd is not None:
                os.close(fd)
        del names[k:], fds[k:]
        if fds and fds[-1] is None:
            fds[-1] = self._reopen()
        for name in parts[k:]:
            fds.append(self._open_dir(fds[-1] if fds else self.root, name, parts[:k + 1]))
            names.append(name)
            k += 1
            if len(fds) > self.MAX_OPEN and fds[-self.MAX_OPEN - 1] is not None:
                os.close(fds[-self.MAX_OPEN - 1])
                fds[-self.MAX_OPEN - 1] = None
        return fds[-1] if fds else self.root

    def _reopen(self) -> int:
        """Open the chain's last level again from its deepest open ancestor."""
        j = len(self.fds) - 1
        while j >= 0 and self.fds[j] is None:
            j -= 1
        at = self.fds[j] if j >= 0 else self.root
        for i in range(j + 1, len(self.fds)):
            try:
                fd = self._open_dir(at, self.names[i], self.names[:i + 1])
            finally:
                if i > j + 1:
                    os.close(at)  # a level between: not kept
            at = fd
        return at

    def _open_dir(self, parent: int, name: str, prefix: List[str]) -> int:
        """Open directory ``name`` in ``parent`` without following a link, creating
        it if missing; raise :class:`_Blocked` (and remember ``prefix``) if not."""
        try:
            try:
                return os.open(name, _DIR_FLAGS, dir_fd=parent)
            except FileNotFoundError:
                try:
                    os.mkdir(name, 0o777, dir_fd=parent)
                except FileExistsError:
                    pass
                return os.open(name, _DIR_FLAGS, dir_fd=parent)
        except OSError as e:
            where = "/".join(prefix)
            if e.errno in STOP_ERRNOS:
                self._refuse(where, e)
            if _lstat_is(parent, name, _stat.S_ISLNK):
                reason = (f"is below '{escape(where)}', which is a symlink in the destination "
                          "(nothing is written through links)")
            else:
                reason = f"cannot write '{escape(where)}': {e.strerror}"
            self.blocked = (tuple(prefix), reason)
            raise _Blocked(reason) from None


#: Failures of the whole destination, not of one entry: extraction stops at the first.
STOP_ERRNOS = frozenset({_errno.ENOSPC, _errno.EDQUOT, _errno.EROFS})


def _unlink_quietly(parent: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=parent)
    except OSError:
        pass


def _why(e: Exception) -> str:
    return str(e) if isinstance(e, _Blocked) else f"cannot write: {e.strerror}"


def _lstat_is(parent: int, name: str, test) -> bool:
    try:
        return test(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _umask() -> int:
    """The process umask, read without changing it where ``/proc`` tells it."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$",
                     *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}


def unsafe_host_name(path: str, *, host: Optional[str] = None) -> Optional[str]:
    """Why ``path`` cannot be created safely below a directory on ``host``
    (``os.name`` by default), or None.

    Everywhere: empty, ``.`` or ``..`` components, NUL bytes, absolute
    paths. On Windows also reserved device names (``CON``, ``nul.txt``),
    ``<>:"|?*\\``, control characters and trailing dots or spaces.
    """
    host = os.name if host is None else host
    if not path or path.startswith("/"):
        return "is absolute or empty"
    for part in path.split("/"):
        if part in ("", ".", ".."):
            return f"has a {part or 'empty'!r} component"
        if "\0" in part:
            return "has a NUL byte in its name"
        if host == "nt":
            if any(c in '<>:"|?*\\' or ord(c) < 32 for c in part):
                return f"'{escape(part)}' has a character Windows does not allow in names"
            if part[-1] in ". ":
                return f"'{escape(part)}' ends with a dot or space (Windows drops them)"
            if part.split(".")[0].upper().rstrip(" ") in _WINDOWS_RESERVED:
                return f"'{escape(part)}' is a reserved device name on Windows"
    return None


def order_key(path: str) -> str:
    """Image order (parents first, then siblings by name), cheaply: with "/" as the
    lowest character, comparing strings compares the paths component by component,
    and code point order is UTF-8 byte order."""
    return path.replace("/", "\0")


def order(info: "EntryInfo") -> str:
    """:func:`order_key` of an entry's path."""
    return info.path.replace("/", "\0")


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)
