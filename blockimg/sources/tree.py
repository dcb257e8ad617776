"""An archive's entries as a :class:`~blockimg.sources.directory.SourceTree`, by the
rules of a walk.

The tar and git sources both end here: a list of
:class:`~blockimg.read.image.EntryInfo` (paths already normalised, a file's data one
extent of the file ``data_path``) becomes the entries a walk of the same tree
unpacked on disk would give -- the same order, kinds, modes and times -- with
each file's content a byte range of ``data_path`` (``SourceEntry.offset``).

Symlinks are followed inside the archive (a link to a directory stores the
directory's contents again under the link's name, as the walk does), or kept
as links with ``keep_links``; a link that leads out of the archive, dangles or
loops is refused. What ``extract`` refuses is refused here too (names with
``..``, hard links to what is not in the archive), all of it in one error.
"""
from __future__ import annotations

import os
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from ..errors import InvalidInput, Problems
from ..read.extract import unsafe_host_name
from ..read.image import EntryInfo
from .directory import Kind, OrderedEntries, SourceEntry, SourceTree, paused_gc

__all__ = ["tree_from_entries", "MAX_LINK_HOPS"]

#: Symlinks followed while resolving one path (Linux's limit, ELOOP past it).
MAX_LINK_HOPS = 40
#: Only Windows has rules for names a cheap look cannot rule out (reserved names...).
_CHECK_ALL = os.name == "nt"


class _Refused(Exception):
    """A path that cannot be resolved inside the archive (the reason is the message)."""


class _Outside(_Refused):
    """A path that leads out of the archive."""


def _name_key(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


class _Index:
    """The entries by path, and each directory's children in byte order."""

    def __init__(self, entries: Iterable[EntryInfo]) -> None:
        if isinstance(entries, dict):         # an image's index: already by path
            self.by_path: Dict[str, EntryInfo] = entries
        else:
            self.by_path = {}
            for e in entries:
                self.by_path[e.path] = e
        children: Dict[str, List[str]] = {"": []}
        for path in self.by_path:
            parent, _, name = path.rpartition("/")
            children.setdefault(parent, []).append(name)
        for names in children.values():
            try:
                # Names that are all Unicode scalar values (no escaped bytes): their
                # code point order is their UTF-8 byte order.
                "".join(names).encode("utf-8")
            except UnicodeEncodeError:
                names.sort(key=_name_key)
            else:
                names.sort()
        self.children = children

    def resolve(self, path: str, *, follow_last: bool) -> str:
        """The archive path ``path`` leads to, following symlinks inside the archive."""
        todo = path.split("/")[::-1]          # components left, the next one last
        done: List[str] = []
        hops = 0
        while todo:
            part = todo.pop()
            if part in ("", "."):
                continue
            if part == "..":
                if not done:
                    raise _Outside("leads outside the archive")
                done.pop()
                continue
            here = "/".join(done + [part])
            e = self.by_path.get(here)
            if e is None:
                raise _Refused(f"{here!r} is not in the archive")
            if e.kind == "symlink" and (todo or follow_last):
                hops += 1
                if hops > MAX_LINK_HOPS:
                    raise _Refused(f"more than {MAX_LINK_HOPS} symlinks on the way (a loop?)")
                target = e.link_target or ""
                if not target or target.startswith("/"):
                    raise _Outside(f"{here!r} links to {target!r}, outside the archive")
                todo.extend(target.split("/")[::-1])
                continue
            if todo and e.kind != "dir":
                raise _Refused(f"{here!r} is a {e.kind}, not a directory")
            done.append(part)
        return "/".join(done)


def tree_from_entries(entries: Iterable[EntryInfo], data_path: str, *, keep_links: bool = False,
                      skip_special: bool = False, mtime: Optional[int] = None,
                      refused: Sequence[Tuple[str, str]] = (),
                      specials: Optional[Dict[str, str]] = None,
                      exclude: Optional[Callable[[str], bool]] = None,
                      what: str = "archive") -> SourceTree:
    """The :class:`SourceTree` of ``entries``, file contents read from ``data_path``.

    ``refused`` are ``(name, reason)`` pairs the reader already refused (names
    with ``..``); every refusal is raised at once (:class:`~blockimg.errors.Problems`),
    each naming its entry. ``exclude`` (:func:`blockimg.sources.directory.excluder`) leaves
    out the image paths it says yes to, with their contents. ``mtime`` fixes every timestamp. Entries of kind ``other``
    (devices, FIFOs, sparse files; ``specials`` names what some are) are
    refused, or skipped and reported with ``skip_special``.
    """
    index = _Index(entries)
    problems: List[Tuple[str, str]] = list(refused)
    skipped: List[Tuple[str, str]] = []
    out: List[SourceEntry] = []
    append = out.append
    fixed = None if mtime is None else int(mtime)
    same = {}.setdefault
    FILE = Kind.FILE
    firsts: Dict[str, str] = {}            # with keep_links: file path -> image path of it

    def when(e: EntryInfo) -> int:
        return same(e.mtime, e.mtime) if fixed is None else fixed

    def file_entry(img_path: str, data: EntryInfo) -> SourceEntry:
        extents = data.extents
        if len(extents) > 1:
            raise _Refused("is stored in pieces (a sparse file), which cannot be read as one "
                           "range of the archive")
        mode, size = data.mode, data.size
        return SourceEntry(img_path, FILE, same(size, size), same(data.mtime, data.mtime)
                           if fixed is None else fixed, same(mode, mode), data_path, None, None,
                           extents[0][0] if extents else 0)

    def visit(e: EntryInfo, img_path: str) -> Optional[str]:
        """Append the entries for ``e`` at ``img_path``; the real directory to descend
        into (for a directory, or a symlink to one that is followed), else None."""
        if _CHECK_ALL or "\0" in img_path or img_path[:1] == "." or "/." in img_path \
                or "//" in img_path or img_path.endswith("/"):
            why = unsafe_host_name(img_path)
            if why is not None:
                raise _Refused(why)
        kind = e.kind
        if kind == "dir":
            append(SourceEntry(img_path, Kind.DIR, 0, when(e), same(e.mode, e.mode)))
            return e.path
        if kind == "file" or kind == "hardlink":
            data = e if kind == "file" else index.by_path[_hardlink_target(index, e)]
            if keep_links:
                # As the walk keeps them: the first name of a file (in image order) holds
                # the data, later ones are hard links to it. (Nothing is reached through
                # a symlink with keep_links, so img_path is the entry's own path.)
                first = firsts.setdefault(data.path, img_path)
                if first != img_path:
                    append(SourceEntry(img_path, Kind.HARDLINK, 0, when(data),
                                       same(data.mode, data.mode), None, None, first))
                    return None
            append(file_entry(img_path, data))
            return None
        if kind == "symlink":
            link = e.link_target or ""
            if keep_links:
                # extract's rule: a stored link may not lead out of the tree (a link
                # that dangles inside it is stored as it is).
                if not link or "\0" in link:
                    raise _Outside(f"symlink to {link!r} leads outside the archive")
                try:
                    index.resolve(e.path, follow_last=True)
                except _Outside:
                    raise _Refused(f"symlink to {link!r} leads outside the archive") from None
                except _Refused:
                    pass
                append(SourceEntry(img_path, Kind.SYMLINK, 0, when(e), 0o777, None, None,
                                   link))
                return None
            try:
                target = index.resolve(e.path, follow_last=True)
            except _Refused as err:
                raise _Refused(f"symlink to {link!r} cannot be followed inside {what}: "
                               f"{err}") from None
            if target == "":
                raise _Refused("symlink leads back to one of its own parent directories")
            t = index.by_path[target]
            if t.kind == "dir":
                append(SourceEntry(img_path, Kind.DIR, 0, when(t), same(t.mode, t.mode)))
                return t.path
            if t.kind == "hardlink":
                t = index.by_path[_hardlink_target(index, t)]
            if t.kind == "file":
                append(file_entry(img_path, t))
                return None
            return visit_other(t, img_path)
        return visit_other(e, img_path)

    def visit_other(e: EntryInfo, img_path: str) -> None:
        named = (specials or {}).get(e.path)
        if skip_special:
            skipped.append((img_path, named or "special entry"))
            return None
        if named == "submodule":
            raise _Refused("is a submodule (a commit of another repository, whose files are "
                           "not in this tree): build from a checkout that has them, or leave "
                           "it out with --skip-special")
        raise _Refused(f"is a {named or 'special entry (a device, FIFO or sparse file)'}; "
                       "only files, directories and links can be stored (use --skip-special "
                       "to leave it out)")

    # Depth first, siblings in byte order: the order of a walk. A directory reached
    # through a symlink is walked again under the link's name; ``ancestors`` are the
    # real directories above, so a link back to one of them is a loop.
    children, by_path = index.children, index.by_path
    stack = [(iter(children[""]), "", ("",))]
    with paused_gc():
        while stack:
            names, img_dir, ancestors = stack[-1]
            real_dir = ancestors[-1]
            for name in names:
                real = f"{real_dir}/{name}" if real_dir else name
                img_path = f"{img_dir}/{name}" if img_dir else name
                if exclude is not None and exclude(img_path):
                    continue
                try:
                    sub = visit(by_path[real], img_path)
                except _Refused as err:
                    problems.append((img_path, str(err)))
                    continue
                if sub is not None:
                    if sub in ancestors:
                        out.pop()
                        problems.append((img_path, "symlink leads back to one of its own "
                                                   "parent directories"))
                        continue
                    stack.append((iter(children.get(sub, ())), img_path, ancestors + (sub,)))
                    break
            else:
                stack.pop()
    if problems:
        errors = [InvalidInput(why, path=p, rule=f"entries stay inside {what}")
                  for p, why in problems]
        raise errors[0] if len(errors) == 1 else Problems(errors, what=what)
    # Made as a walk makes its entries (depth first, siblings by name bytes, each path once,
    # parents first): the planners may take the order as it is.
    return SourceTree(OrderedEntries(out), tuple(skipped))


def _hardlink_target(index: _Index, e: EntryInfo) -> str:
    """The file a hard link entry stands for (through links to links), or refuse it."""
    seen = {e.path}
    while True:
        link = "/".join(p for p in (e.link_target or "").split("/") if p not in ("", "."))
        if not link or ".." in link.split("/"):
            raise _Refused(f"hard link to {e.link_target!r} which is not in the archive")
        t = index.by_path.get(link)
        if t is None:
            raise _Refused(f"hard link to {e.link_target!r} which is not in the archive")
        if t.kind == "file":
            return t.path
        if t.kind != "hardlink" or t.path in seen:
            raise _Refused(f"hard link to {e.link_target!r}, which is a {t.kind}")
        seen.add(t.path)
        e = t


