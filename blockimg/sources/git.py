"""A tree of a git repository, at a commit, as the source of an image -- no checkout.

Read with git's own plumbing, the ``git`` command: ``git ls-tree`` lists the
tree (mode, type, object, path) and one ``git cat-file --batch`` streams every
distinct blob, with its size, into an anonymous spool file
(:mod:`blockimg.sources.spool`; each blob once, however many paths share it),
from which the image writer copies each file's range. Blob content is taken as committed: no
``.gitattributes`` filters, no line-ending conversion, no ``export-ignore``.

The tree is stored as a checkout with the usual umask would hold it:
directories 0755, files 0644 or 0755 (executable), symlinks as links (kept
with ``keep_links``, else followed inside the tree, like a directory's).
Every time is the commit's committer time, unless ``mtime`` is given: the
same commit gives the same image on any machine. Submodules (``gitlinks``,
commits of other repositories) have no files in this tree: refused, or left
out and reported with ``skip_special``.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import threading
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Callable, Dict, Iterator, List, Optional, Tuple

from ..errors import InvalidInput
from ..read.image import EntryInfo
from .directory import SourceTree
from .spool import CHUNK, Spool
from .tree import tree_from_entries

__all__ = ["git_source", "GitTree", "list_tree"]

#: The longest symlink target read from a blob (Linux's PATH_MAX).
MAX_LINK = 4096
#: git's ``core.bigFileThreshold`` for the ``cat-file`` that reads the blobs: a packed blob
#: larger than this (and not stored as a delta) is streamed by git too, instead of read
#: whole into git's memory (git's default is 512 MiB). Measured: a 400 MiB packed blob
#: costs git 400 MiB of anonymous memory by default, none with this.
STREAM_OVER = "16m"
#: git's ``core.deltaBaseCacheLimit`` for that ``cat-file`` (git's default: 96 MiB): the
#: cache of delta bases it keeps while it rebuilds objects. Measured on 20,000 blobs:
#: git's anonymous memory 63 MiB by default, 0.40 s; with 16 MiB, 0.44 s; with 8 MiB
#: (and the pack windows below) no slower when blobs are asked for in tree order.
DELTA_CACHE = "8m"
#: git's ``core.packedGitWindowSize`` and ``core.packedGitLimit`` for that ``cat-file``
#: (defaults 1 GiB and 8 GiB on 64-bit): git maps its pack files in windows of this size,
#: at most this much at once, and every mapped page it touched counts in its RSS. Measured
#: on the 20,000-file corpus (a 62 MB pack): git's peak RSS 82 MiB with the defaults,
#: 21 MiB with these; asking for the blobs in tree order (close to the order ``git gc``
#: packs them) keeps the small windows from being remapped for every object.
PACK_WINDOW = "1m"
PACK_LIMIT = "8m"
#: What a variable of the caller's environment must not change here: REPO is explicit,
#: and a partial clone must not fetch missing objects over the network.
_ENV_DROP = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE")
_ENV_SET = {"GIT_NO_LAZY_FETCH": "1", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}


class GitTree:
    """What ``git ls-tree`` says of one tree: ``entries`` as ``(path, mode, type,
    object id)`` and the commit and its time."""

    def __init__(self, commit: str, time: int,
                 entries: List[Tuple[str, str, str, str]]) -> None:
        self.commit = commit
        self.time = time
        self.entries = entries


def _git_env() -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _ENV_DROP}
    env.update(_ENV_SET)
    return env


def _git(repo: str, *args: str) -> bytes:
    """Output of ``git -C repo ARGS``; a failure is an InvalidInput with git's words."""
    try:
        done = subprocess.run(["git", "-C", repo, *args], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_git_env())
    except FileNotFoundError:
        raise InvalidInput("reading a git repository needs the git command, which is not "
                           "installed", path=repo, rule="--git-ref") from None
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise InvalidInput(f"git {args[0]} failed: {said[-1] if said else done.returncode}",
                           path=repo, rule="--git-ref")
    return done.stdout


def list_tree(repo: str, ref: str, path: Optional[str] = None) -> GitTree:
    """The tree at ``ref`` (a commit, branch or tag), or its subdirectory ``path``."""
    if not ref or ref.startswith("-"):
        raise InvalidInput(f"not a git revision: {ref!r}", path=repo, rule="--git-ref")
    commit = _git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options",
                  f"{ref}^{{commit}}").decode().strip()
    time = _committer_time(_git(repo, "cat-file", "commit", commit), repo)
    spec = commit
    if path:
        parts = [p for p in path.strip("/").split("/") if p not in ("", ".")]
        if ".." in parts:
            raise InvalidInput("must not contain '..'", path=path, rule="--git-path")
        if parts:
            spec = f"{commit}:{'/'.join(parts)}"
            kind = _git(repo, "cat-file", "-t", spec).decode().strip()
            if kind != "tree":
                raise InvalidInput(f"is a {kind} at {ref}, not a directory", path=path,
                                   rule="--git-path")
    # No ``-l``: the sizes come with the blobs from ``cat-file`` (measured: ``ls-tree -l``
    # reads every blob's header, mapping the whole pack -- 66 MiB of RSS on 20,000 files).
    out = _git(repo, "ls-tree", "-r", "-t", "-z", spec)
    entries = []
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, name = record.partition(b"\t")
        mode, kind, oid = meta.decode("ascii").split()
        entries.append((name.decode("utf-8", "surrogateescape"), mode, kind, oid))
    return GitTree(commit, time, entries)


def _committer_time(commit: bytes, repo: str) -> int:
    for line in commit.split(b"\n"):
        if not line:
            break
        if line.startswith(b"committer "):
            try:
                return int(line.rsplit(b" ", 2)[-2])
            except (ValueError, IndexError):
                break
    raise InvalidInput("the commit has no committer time git can give", path=repo,
                       rule="--git-ref")


def _spool_blobs(repo: str, oids: List[str], spool: Spool) -> Dict[str, Tuple[int, int]]:
    """Copy each blob into ``spool`` (one ``git cat-file --batch``); ``(offset, size)`` by
    object id."""
    where: Dict[str, Tuple[int, int]] = {}
    proc = subprocess.Popen(["git", "-c", f"core.bigFileThreshold={STREAM_OVER}",
                             "-c", f"core.deltaBaseCacheLimit={DELTA_CACHE}",
                             "-c", f"core.packedGitWindowSize={PACK_WINDOW}",
                             "-c", f"core.packedGitLimit={PACK_LIMIT}", "-C", repo,
                             "cat-file", "--batch"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_git_env(),
                            bufsize=CHUNK)

    def ask() -> None:
        try:
            for oid in oids:
                proc.stdin.write(oid.encode("ascii") + b"\n")
            proc.stdin.close()
        except (BrokenPipeError, OSError, ValueError):
            pass                          # git stopped: its exit status says why

    asker = threading.Thread(target=ask, daemon=True)
    asker.start()
    buf = memoryview(bytearray(CHUNK))
    out = proc.stdout
    try:
        for oid in oids:
            header = out.readline().split()
            if len(header) != 3 or header[1] != b"blob":
                raise InvalidInput(f"git cat-file cannot give blob {oid} "
                                   f"({b' '.join(header[1:]).decode('ascii', 'replace')})",
                                   path=repo, rule="--git-ref")
            size = int(header[2])
            where[oid] = (spool.size, size)
            left = size
            while left:
                n = out.readinto(buf[:min(left, CHUNK)])
                if not n:
                    raise InvalidInput(f"git cat-file ended inside blob {oid}", path=repo,
                                       rule="--git-ref")
                spool.append(buf[:n])
                left -= n
            out.read(1)                   # the newline after each object
    finally:
        out.close()
        asker.join()
        err = proc.stderr.read().decode("utf-8", "replace").strip()
        proc.stderr.close()
        if proc.wait() != 0 and err:
            raise InvalidInput(f"git cat-file failed: {err.splitlines()[-1]}", path=repo,
                               rule="--git-ref")
    return where


@contextlib.contextmanager
def git_source(repo: str, ref: str, path: Optional[str] = None, *,
               spool_dir: Optional[str] = None, keep_links: bool = False,
               skip_special: bool = False, mtime: Optional[int] = None,
               exclude: Optional[Callable[[str], bool]] = None) -> Iterator[SourceTree]:
    """The :class:`SourceTree` of ``path`` (default: the top) in ``repo`` at ``ref``,
    valid inside the ``with``. ``mtime`` (default: the committer time of ``ref``)
    fixes every timestamp; the other options are those of
    :func:`blockimg.sources.directory.walk`."""
    repo = os.fspath(repo)
    if not os.path.isdir(repo):
        raise InvalidInput("is not a directory (a git repository)", path=repo,
                           rule="--git-ref")
    with Spool(spool_dir) as spool:
        # Built in a function of its own: the listing and the index are freed before the
        # image is built from the tree.
        yield _tree_in_spool(repo, ref, path, spool, keep_links=keep_links,
                             skip_special=skip_special, mtime=mtime, exclude=exclude)


def _tree_in_spool(repo: str, ref: str, path: Optional[str], spool: Spool, *,
                   keep_links: bool, skip_special: bool, mtime: Optional[int],
                   exclude: Optional[Callable[[str], bool]]) -> SourceTree:
    """List the tree, copy its blobs into ``spool`` and make the SourceTree."""
    tree = list_tree(repo, ref, path)
    when = tree.time if mtime is None else int(mtime)
    # Each blob once, in tree order (see PACK_WINDOW).
    blobs = list(dict.fromkeys(oid for _, _, kind, oid in tree.entries if kind == "blob"))
    where = _spool_blobs(repo, blobs, spool)
    del blobs
    entries: List[EntryInfo] = []
    for name, mode, kind, oid in tree.entries:
        if kind == "tree":
            entries.append(EntryInfo(name, "dir", 0, when, 0o755))
        elif kind == "commit":
            entries.append(EntryInfo(name, "other", 0, when, 0o755))
        elif mode == "120000":
            offset, size = where[oid]
            if size > MAX_LINK:
                raise InvalidInput(f"symlink target of {size} bytes (more than "
                                   f"{MAX_LINK})", path=name, rule="symlinks")
            target = os.pread(spool.fd, size, offset)
            entries.append(EntryInfo(name, "symlink", 0, when, 0o777, (),
                                     target.decode("utf-8", "surrogateescape")))
        else:
            offset, size = where[oid]
            perm = 0o755 if mode == "100755" else 0o644
            entries.append(EntryInfo(name, "file", size, when, perm,
                                     ((offset, size),) if size else ()))
    specials = {n: "submodule" for n, _, k, _ in tree.entries if k == "commit"}
    del tree, where
    return tree_from_entries(entries, spool.path, keep_links=keep_links,
                             skip_special=skip_special, mtime=when, what=f"{repo} at {ref}",
                             specials=specials, exclude=exclude)
