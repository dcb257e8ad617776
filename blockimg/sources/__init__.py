"""Where an image's files come from: a directory, a tar archive or stream, or a git tree.

:func:`open_source` turns the ``create`` command's SRC into what
:func:`blockimg.api.create` takes: a directory stays a path (walked by
:func:`blockimg.sources.directory.walk`); a tar archive (``-``: standard input) and a git
tree become a :class:`~blockimg.sources.directory.SourceTree` (:func:`.archive.archive_source`,
:func:`.git.git_source`) whose file contents are
byte ranges of the archive or of a spool file, valid inside the ``with``.
"""
from __future__ import annotations

import os
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Callable, ContextManager, Optional, Union

from ..errors import InvalidInput
from .directory import SourceTree

__all__ = ["open_source", "STDIN"]

#: The source name that means "a tar archive on standard input".
STDIN = "-"


def open_source(src: str, *, git_ref: Optional[str] = None, git_path: Optional[str] = None,
                spool_dir: Optional[str] = None, keep_links: bool = False,
                skip_special: bool = False, mtime: Optional[int] = None,
                exclude: Optional[Callable[[str], bool]] = None
                ) -> ContextManager[Union[str, SourceTree]]:
    """``src`` as a source for :func:`blockimg.api.create`, inside the ``with``.

    With ``git_ref``, ``src`` is a git repository and the tree at that commit
    (below ``git_path``) is read. Else ``-`` or a regular file is a tar archive
    (plain, gzip, xz or bzip2), and anything else is given back as it is (a
    directory, walked by ``create``). ``spool_dir`` holds the temporary copy of
    a stream, a compressed archive or a git tree's blobs. ``exclude``
    (:func:`blockimg.sources.directory.excluder`) leaves paths out of an archive or git tree.
    """
    options = dict(spool_dir=spool_dir, keep_links=keep_links, skip_special=skip_special,
                   mtime=mtime, exclude=exclude)
    # Imported here: a build from a directory needs neither the tar reader nor git
    # (nor contextlib, which they use: ~4 ms of start-up).
    if git_ref is not None:
        from .git import git_source
        return git_source(src, git_ref, git_path, **options)
    if git_path is not None:
        raise InvalidInput("--git-path needs --git-ref", rule="--git-path")
    if src == STDIN or os.path.isfile(src):
        from .archive import archive_source
        return archive_source(None if src == STDIN else src, **options)
    return _Given(src)


class _Given:
    """A directory source: ``with _Given(path) as src`` gives ``path`` back."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path

    def __enter__(self) -> str:
        return self.path

    def __exit__(self, *exc) -> None:
        return None
