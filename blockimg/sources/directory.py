"""The source side: a directory tree (or an explicit list) as sorted, checked entries.

Writers never look at the file system themselves; they get a list of
:class:`SourceEntry` in image order (parents before children, siblings by
the bytes of their names) and copy file contents from ``entry.source``.
"""
from __future__ import annotations

import gc
import os
import stat
from operator import attrgetter
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Callable, Iterable, List, Optional, Sequence, Tuple, Union

from ..errors import InvalidInput
from ..record import FrozenRecordError, field, record

__all__ = ["Kind", "SourceEntry", "SourceTree", "OrderedEntries", "walk", "from_pairs",
           "sort_key", "excluder", "VCS_NAMES"]


class _Members(type):
    """:class:`Kind`'s class: ``Kind("file")`` is the member of that value (ValueError for
    any other), and ``Kind`` iterates over its members, as an enum's class does."""

    def __call__(cls, value: str) -> Kind:
        for member in cls._MEMBERS:
            if member == value:
                return member
        raise ValueError(f"{value!r} is not a valid {cls.__qualname__}")

    def __iter__(cls):
        return iter(cls._MEMBERS)

    def __len__(cls) -> int:
        return len(cls._MEMBERS)


class Kind(str, metaclass=_Members):
    """What a :class:`SourceEntry` is: ``Kind.FILE``, ``Kind.DIR``, ``Kind.SYMLINK`` or
    ``Kind.HARDLINK``. A ``str`` enum: each member equals its value, and prints as
    it (``f"a {Kind.DIR}"`` is ``a dir``), so that it reads the same as the plain
    strings that :attr:`blockimg.read.image.EntryInfo.kind` holds; ``Kind("dir")`` is
    ``Kind.DIR``, and ``.name``, ``.value``, ``repr``, iteration and pickling are an
    :class:`enum.Enum`'s. Made without :mod:`enum`, which with the :mod:`functools` and
    :mod:`collections` it imports is ~6 ms of ``create``'s start-up."""

    _MEMBERS: Tuple[Kind, ...]
    FILE: Kind
    DIR: Kind
    SYMLINK: Kind
    HARDLINK: Kind

    @property
    def value(self) -> str:
        return str.__str__(self)

    @property
    def name(self) -> str:
        return self.value.upper()

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"<{type(self).__qualname__}.{self.name}: {self.value!r}>"

    def __reduce_ex__(self, protocol):
        return type(self), (self.value,)


Kind._MEMBERS = tuple(str.__new__(Kind, v) for v in ("file", "dir", "symlink", "hardlink"))
Kind.FILE, Kind.DIR, Kind.SYMLINK, Kind.HARDLINK = Kind._MEMBERS


class _Fields:
    """:class:`SourceEntry`'s fields as plain writable slots: an entry is filled in as
    one of these and then becomes a SourceEntry (same layout), so that making one
    costs plain slot stores, not nine calls past the frozen ``__setattr__``."""

    __slots__ = ("path", "kind", "size", "mtime", "mode", "source", "data", "link_target",
                 "offset")


class SourceEntry(_Fields):
    """One thing to store.

    ``path`` is the path inside the image: ``/``-separated, relative, no
    ``.``/``..``/empty components, directories without a trailing slash.
    Regular files take their content from ``source`` (a file-system path) or
    ``data`` (bytes given through the library API). With ``offset`` the content is
    the ``size`` bytes of ``source`` from that byte on (a member of an archive),
    else the whole file. ``link_target`` is the symlink target, or for a hard
    link the image path it links to.

    A frozen value (like a frozen dataclass: compared and hashed by its fields),
    with ``__slots__``: a tree of many files stays small in memory.
    """

    __slots__ = ()
    FIELDS = _Fields.__slots__

    path: str
    kind: Kind
    size: int
    mtime: int
    mode: int
    source: Optional[str]
    data: Optional[bytes]
    link_target: Optional[str]
    offset: Optional[int]

    def __new__(cls, path: str, kind: Kind, size: int = 0, mtime: int = 0,
                mode: int = 0o644, source: Optional[str] = None, data: Optional[bytes] = None,
                link_target: Optional[str] = None, offset: Optional[int] = None) -> SourceEntry:
        e = _new_fields(_Fields)
        e.path = path
        e.kind = kind
        e.size = size
        e.mtime = mtime
        e.mode = mode
        e.source = source
        e.data = data
        e.link_target = link_target
        e.offset = offset
        e.__class__ = cls
        return e

    def __setattr__(self, name, value):
        raise FrozenRecordError(f"cannot assign to field {name!r}")

    def __delattr__(self, name):
        raise FrozenRecordError(f"cannot delete field {name!r}")

    def _astuple(self) -> tuple:
        return (self.path, self.kind, self.size, self.mtime, self.mode, self.source, self.data,
                self.link_target, self.offset)

    def __eq__(self, other):
        if other.__class__ is self.__class__:
            return self._astuple() == other._astuple()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._astuple())

    def __repr__(self) -> str:
        return ("SourceEntry(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self.FIELDS)
                + ")")

    def __reduce__(self):
        return (self.__class__, self._astuple())

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def parent(self) -> str:
        return self.path.rsplit("/", 1)[0] if "/" in self.path else ""

    @property
    def path_bytes(self) -> bytes:
        return self.path.encode("utf-8", "surrogateescape")


_new_fields = object.__new__


class OrderedEntries(tuple):
    """A tuple of entries that :func:`walk` made: already in image order, each path
    once, parents (directories) before their contents.

    Planners take it as it is instead of sorting and checking the entries again.
    A tuple cannot change, and what is made from it (a slice, a concatenation) is
    a plain tuple again, which planners sort and check.
    """

    __slots__ = ()


@record(frozen=True)
class SourceTree:
    """The sorted entries and what the walk skipped (with the reason)."""

    entries: Tuple[SourceEntry, ...]
    skipped: Tuple[Tuple[str, str], ...] = field(default=())

    @property
    def files(self) -> int:
        return [e.kind for e in self.entries].count(Kind.FILE)

    @property
    def total_bytes(self) -> int:
        FILE = Kind.FILE
        return sum([e.size for e in self.entries if e.kind is FILE])


def sort_key(path: str) -> Tuple[bytes, ...]:
    """Image order: component by component, by UTF-8 bytes (parents first)."""
    return tuple(c.encode("utf-8", "surrogateescape") for c in path.split("/"))


def check_image_path(path: str, *, where: Optional[str] = None) -> str:
    """Normalise an image path or raise InvalidInput naming it."""
    p = path.replace(os.sep, "/") if os.sep != "/" else path
    p = p.strip("/")
    parts = p.split("/")
    if not p or any(c in ("", ".", "..") for c in parts):
        raise InvalidInput("path inside the image must be relative, with no empty, '.' or "
                           "'..' components", path=where or path, rule="image path")
    if "\0" in p:
        raise InvalidInput("name contains a NUL byte", path=where or path, rule="no NUL in names")
    return p


class paused_gc:
    """``with paused_gc():`` -- the cyclic garbage collector paused while many acyclic
    objects are made.

    A walk or a plan makes one small object per entry and no reference cycles;
    the collector's passes over them (the oldest generation again and again as
    they accumulate) are pure overhead. Collection resumes afterwards as before
    (it is left off if it was off).
    """

    __slots__ = ("_was",)

    def __enter__(self) -> None:
        self._was = gc.isenabled()
        if self._was:
            gc.disable()

    def __exit__(self, *exc) -> None:
        if self._was:
            gc.enable()


_SCANDIR_FD = os.scandir in os.supports_fd and os.stat in os.supports_dir_fd
_DIR_READ = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_BY_NAME = attrgetter("name")


#: What ``--exclude-vcs`` leaves out: the names GNU tar 1.34's ``--exclude-vcs`` does
#: (checked against it in tests/unit/test_cli_terms.py), wherever they are in the tree.
VCS_NAMES = ("CVS", "RCS", "SCCS", ".git", ".gitignore", ".gitmodules", ".gitattributes",
             ".cvsignore", ".svn", ".arch-ids", "{arch}", "=RELEASE-ID", "=meta-update",
             "=update", ".bzr", ".bzrignore", ".bzrtags", ".hg", ".hgignore", ".hgtags",
             "_darcs")


def excluder(patterns: Sequence[str] = (), *, vcs: bool = False):
    """A test ``f(image_path) -> bool`` for the paths to leave out, or None for none.

    GNU tar's ``--exclude`` defaults: a shell wildcard (``*``, ``?``, ``[...]``; ``*``
    also matches ``/``) that matches the whole path as ``tar -C SRC -c .`` names it
    (``./a/b``) or any tail of it that starts at a component (``a/b``, ``b``). A
    directory left out takes its contents with it. ``vcs`` adds :data:`VCS_NAMES`.
    """
    pats = list(patterns) + (list(VCS_NAMES) if vcs else [])
    if not pats:
        return None
    import fnmatch      # (here, for --exclude: with its re, ~9 M instructions of start-up)
    match = fnmatch.fnmatchcase
    plain = frozenset(p for p in pats if not any(c in p for c in "*?[/"))
    wild = [p for p in pats if p not in plain]

    def excluded(path: str) -> bool:
        if path.rpartition("/")[2] in plain:
            return True
        if not wild:
            return False
        parts = path.split("/")
        tails = ["./" + path] + ["/".join(parts[i:]) for i in range(len(parts))]
        return any(match(t, p) for p in wild for t in tails)
    return excluded


def _mtime(st: os.stat_result, fixed: Optional[int]) -> int:
    return int(fixed) if fixed is not None else int(st.st_mtime)


def walk(root: Union[str, os.PathLike], *, keep_links: bool = False,
         skip_special: bool = False, mtime: Optional[int] = None,
         exclude: Optional[Callable[[str], bool]] = None,
         leave_out: Iterable[Union[str, os.PathLike]] = (),
         problems: Optional[List[InvalidInput]] = None) -> SourceTree:
    """Walk ``root`` into a :class:`SourceTree`.

    Symlinks are followed (their target's content is stored) unless
    ``keep_links``; hard-linked files are stored as full copies unless
    ``keep_links``, which makes later paths hard links to the first.
    Sockets, devices and FIFOs are refused, or are skipped and reported
    with ``skip_special``. ``mtime`` fixes every timestamp. ``exclude``
    (see :func:`excluder`) is asked about each image path; what it says yes
    to is left out, with its contents. ``leave_out`` names files that are
    never stored (the image being written, like GNU tar's own archive):
    where they are found in the tree, they are reported as skipped.

    Every refusal is found in one walk: they are raised together at the end
    (:meth:`InvalidInput.raise_all`), or appended to ``problems`` when a list
    is given (the tree then holds everything else).
    """
    root = os.fspath(root)
    try:
        st = os.stat(root)
    except OSError as e:
        raise InvalidInput(f"cannot read source: {e.strerror}", path=root) from None
    if not stat.S_ISDIR(st.st_mode):
        raise InvalidInput("source is not a directory", path=root, rule="source directory")
    w = _Walk(keep_links, skip_special, mtime, exclude, leave_out,
              [] if problems is None else problems)
    with paused_gc():
        w.enter(root, "", ((st.st_dev, st.st_ino),))
        w.run()
    if problems is None:
        InvalidInput.raise_all(w.refused)
    # Siblings are visited in byte order, depth first: that already is sort_key order.
    return SourceTree(OrderedEntries(w.entries), tuple(w.skipped))


_IFMT, _IFREG, _IFDIR, _IFLNK = 0o170000, stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK


class _Walk:
    """One :func:`walk`: depth first without recursion (a tree may be deeper than
    Python's stack), one frame per directory being listed, the innermost last."""

    def __init__(self, keep_links: bool, skip_special: bool, mtime: Optional[int],
                 exclude: Optional[Callable[[str], bool]], leave_out, refused: list) -> None:
        self.keep_links = keep_links
        self.skip_special = skip_special
        self.fixed = None if mtime is None else int(mtime)
        self.exclude = exclude
        self.entries: List[SourceEntry] = []
        self.skipped: List[Tuple[str, str]] = []
        self.refused = refused
        self.ours = set()          # (device, inode) of the files never stored
        for p in leave_out:
            try:
                o = os.stat(p)
            except OSError:
                continue
            self.ours.add((o.st_dev, o.st_ino))
        # Their inode numbers alone: the common file, whose number is none of them, is
        # stored inline without making a (device, inode) key.
        self.our_inodes = frozenset(ino for _, ino in self.ours)
        self.first_paths: dict = {}     # (device, inode) -> the image path stored first
        # One int object per distinct value: many files share an mtime, a mode or a size.
        self.same = {}.setdefault
        self.stack: List[tuple] = []

    def enter(self, fs_dir: str, img_dir: str, ancestors: Tuple[Tuple[int, int], ...]) -> None:
        """List ``fs_dir`` (image path ``img_dir``): its entries are walked next."""
        sep = "" if fs_dir.endswith(os.sep) else os.sep
        try:
            listed = _listed(fs_dir, sep)
        except InvalidInput as e:
            self.refused.append(e)
            return
        self.stack.append((fs_dir + sep, img_dir + "/" if img_dir else "", ancestors,
                           iter(listed)))

    def run(self) -> None:
        stack, exclude, append, same = self.stack, self.exclude, self.entries.append, self.same
        make = SourceEntry.__new__          # (what SourceEntry(...) calls, without type's call)
        FILE, fixed, ours, keep_links = Kind.FILE, self.fixed, self.our_inodes, self.keep_links
        while stack:
            fs_dir, prefix, ancestors, listed = stack[-1]
            for name, st in listed:
                img_path = prefix + name
                if exclude is not None and exclude(img_path):
                    continue
                fs_path = fs_dir + name
                if st.st_mode & _IFMT == _IFLNK:
                    st = self.symlink(fs_path, img_path, st)
                    if st is None:
                        continue
                fmt = st.st_mode & _IFMT
                if fmt == _IFREG:
                    if (keep_links and st.st_nlink > 1) or st.st_ino in ours:
                        self.file(fs_path, img_path, st)
                        continue
                    # The common case, inline: a file stored as itself.
                    mt = int(st.st_mtime) if fixed is None else fixed
                    # (sizes are rarely shared: not looked up in ``same``)
                    mode = st.st_mode & 0o7777
                    append(make(SourceEntry, img_path, FILE, st.st_size, same(mt, mt),
                                same(mode, mode), fs_path))
                elif fmt == _IFDIR:
                    if self.directory(fs_path, img_path, st, ancestors):
                        break             # the new directory first, then the rest here
                else:
                    self.special(fs_path, st)
            else:
                stack.pop()

    def _mtime(self, st: os.stat_result) -> int:
        return int(st.st_mtime) if self.fixed is None else self.fixed

    def symlink(self, fs_path: str, img_path: str, st: os.stat_result):
        """A symlink stored as one (``keep_links``: None), else what it leads to (its stat;
        None, refused, when it leads nowhere)."""
        if self.keep_links:
            try:
                target = os.readlink(fs_path)
            except OSError as e:
                self.refused.append(InvalidInput(f"cannot read symlink: {e.strerror}",
                                                 path=fs_path))
                return None
            self.entries.append(SourceEntry(img_path, Kind.SYMLINK, 0, self._mtime(st), 0o777,
                                            None, None, target))
            return None
        try:
            return os.stat(fs_path)
        except OSError as e:
            self.refused.append(InvalidInput(
                f"symlink cannot be followed: {e.strerror} (remove it, or keep it as a link "
                "with --keep-links)", path=fs_path, rule="symlinks are followed"))
            return None

    def file(self, fs_path: str, img_path: str, st: os.stat_result) -> None:
        """A regular file that may be the image itself, or a hard link (``keep_links``)."""
        key = (st.st_dev, st.st_ino)
        if key in self.ours:
            self.skipped.append((fs_path, "the image being written"))
            return
        same, mt, mode = self.same, self._mtime(st), st.st_mode & 0o7777
        if self.keep_links and st.st_nlink > 1:
            first = self.first_paths.setdefault(key, img_path)
            if first != img_path:
                self.entries.append(SourceEntry(img_path, Kind.HARDLINK, 0, same(mt, mt),
                                                same(mode, mode), None, None, first))
                return
        size = st.st_size
        self.entries.append(SourceEntry(img_path, Kind.FILE, same(size, size), same(mt, mt),
                                        same(mode, mode), fs_path))

    def directory(self, fs_path: str, img_path: str, st: os.stat_result,
                  ancestors: tuple) -> bool:
        """Store the directory and enter it (True); a link back to one of its own parents
        is refused (False)."""
        key = (st.st_dev, st.st_ino)
        if key in ancestors:
            self.refused.append(InvalidInput("symlink leads back to one of its own parent "
                                             "directories", path=fs_path,
                                             rule="no directory cycles"))
            return False
        mt, mode = self._mtime(st), st.st_mode & 0o7777
        self.entries.append(SourceEntry(img_path, Kind.DIR, 0, self.same(mt, mt),
                                        self.same(mode, mode)))
        self.enter(fs_path, img_path, ancestors + (key,))
        return True

    def special(self, fs_path: str, st: os.stat_result) -> None:
        what = _special_kind(st.st_mode)
        if self.skip_special:
            self.skipped.append((fs_path, what))
            return
        self.refused.append(InvalidInput(f"is a {what}; only files, directories and links "
                                         "can be stored (use --skip-special to leave it "
                                         "out)", path=fs_path, rule="special files"))


def _listed(fs_dir: str, sep: str) -> List[Tuple[str, os.stat_result]]:
    """The names in ``fs_dir`` with their lstat, siblings by the bytes of their names.

    Listed through a directory fd where the host allows it: each lstat is then
    an fstatat of the bare name (no path looked up again); the fd is closed
    before returning.
    """
    dfd = -1
    try:
        try:
            if _SCANDIR_FD:
                dfd = os.open(fs_dir, _DIR_READ)
            with os.scandir(dfd if dfd >= 0 else fs_dir) as it:
                children = list(it)
        except OSError as e:
            raise InvalidInput(f"cannot list directory: {e.strerror}", path=fs_dir) from None
        # For ASCII names (the usual case) byte order is the order of the strings.
        if "".join([d.name for d in children]).isascii():
            children.sort(key=_BY_NAME)
        else:
            children.sort(key=lambda d: os.fsencode(d.name))
        try:
            stats = [d.stat(follow_symlinks=False) for d in children]
        except OSError:                       # again, one at a time: which one, to say so
            stats = [_lstat_of(d, fs_dir + sep) for d in children]
        return list(zip([d.name for d in children], stats))
    finally:
        if dfd >= 0:
            os.close(dfd)


def _lstat_of(d: os.DirEntry, fs_dir: str) -> os.stat_result:
    """``d``'s lstat, or InvalidInput naming it (``fs_dir`` ends with the separator)."""
    try:
        return d.stat(follow_symlinks=False)
    except OSError as e:
        raise InvalidInput(f"cannot stat: {e.strerror}", path=fs_dir + d.name) from None


def _special_kind(mode: int) -> str:
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    return "special file"


def from_pairs(pairs: Iterable[Tuple[str, Union[str, os.PathLike, bytes, None]]], *,
               mtime: Optional[int] = None) -> SourceTree:
    """Entries from ``(path_in_image, source)`` pairs.

    ``source`` is a file-system path (file or directory, stored as that
    single entry), ``bytes`` (a file with that content) or ``None`` (an
    empty directory). Missing parent directories are added.
    """
    by_path = {}
    for img_path, src in pairs:
        p = check_image_path(str(img_path))
        if p in by_path:
            raise InvalidInput("given twice", path=p, rule="unique paths")
        if src is None:
            e = SourceEntry(p, Kind.DIR, 0, int(mtime or 0), 0o755)
        elif isinstance(src, (bytes, bytearray, memoryview)):
            data = bytes(src)
            e = SourceEntry(p, Kind.FILE, len(data), int(mtime or 0), 0o644, data=data)
        else:
            fs = os.fspath(src)
            try:
                st = os.stat(fs)
            except OSError as err:
                raise InvalidInput(f"cannot read source: {err.strerror}", path=fs) from None
            if stat.S_ISDIR(st.st_mode):
                e = SourceEntry(p, Kind.DIR, 0, _mtime(st, mtime), stat.S_IMODE(st.st_mode))
            elif stat.S_ISREG(st.st_mode):
                e = SourceEntry(p, Kind.FILE, st.st_size, _mtime(st, mtime),
                                stat.S_IMODE(st.st_mode), source=fs)
            else:
                raise InvalidInput(f"is a {_special_kind(st.st_mode)}", path=fs,
                                   rule="special files")
        by_path[p] = e
    for p in list(by_path):
        parts = p.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            existing = by_path.get(parent)
            if existing is None:
                by_path[parent] = SourceEntry(parent, Kind.DIR, 0, int(mtime or 0), 0o755)
            elif existing.kind is not Kind.DIR:
                raise InvalidInput(f"is a file but {p!r} is inside it", path=parent,
                                   rule="parents are directories")
    entries = sorted(by_path.values(), key=lambda e: sort_key(e.path))
    return SourceTree(tuple(entries))


def as_tree(src: Union[str, os.PathLike, SourceTree, Sequence], **walk_options) -> SourceTree:
    """Accept a directory, a ready SourceTree or a list of pairs."""
    if isinstance(src, SourceTree):
        return src
    if isinstance(src, (str, os.PathLike)):
        return walk(src, **walk_options)
    return from_pairs(src, mtime=walk_options.get("mtime"))
