"""Extraction with the index itself built in parts, one per process.

For a format whose image offers a split walk (``image.split_plan``: FAT), each
process indexes and checks its own part of the tree, then (once every part
is known to be sound) writes that part's files. In order:

1. every part walks its directories and sorts out its entries (the checks of
   :func:`blockimg.read.extract.sort_out`); children send the parent what the
   parent needs: their chains, warnings, directories, links and refusals;
2. the parent checks all chains together (cross-links) and, only if every
   part is sound, makes every directory and tells the children to go on;
3. each process writes its own files; the parent then makes the links and
   sets the directories' modes and times, as a single process would.

Nothing is written before step 2 decides. If any part failed (a corrupt
entry, a child that could not be forked or died), :func:`extract_in_parts`
returns None and the caller extracts the whole tree in one pass, which
raises the same error a one-process extraction would, or goes on.
"""
from __future__ import annotations

import os
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import List, Optional

from ..errors import BlockImgError
from .extract import (ExtractReport, TreeWriter, finish, make_links, order, order_key, sort_out,
                      write_some)

__all__ = ["extract_in_parts", "extract_split"]

_GO = b"go"


def extract_in_parts(image: "Image", split, real_dest: str, *,
                     overwrite: bool = False) -> Optional[ExtractReport]:
    """The whole tree of ``image`` (a :class:`~blockimg.read.image.Image`) below
    ``real_dest``, indexed and written in the parts of ``split`` (both from
    :func:`~blockimg.read.extract.plan_parts`); None when a part failed: nothing
    written, extract it in one pass."""
    report = ExtractReport()
    return report if extract_split(image, split, real_dest, overwrite, report) else None


def extract_split(image: "Image", split, real_dest: str, overwrite: bool,
                  report: ExtractReport) -> bool:
    """Extract the whole tree of ``image`` into ``real_dest`` in ``split.parts``
    processes, outcomes into ``report``; False (nothing written) to do it in one."""
    import pickle   # (here, before the fork: an image that is not split does not need it)
    from ..write.parallel import fork_map
    n = split.parts
    up = [os.pipe() for _ in range(n)]       # child -> parent: its part, walked
    down = [os.pipe() for _ in range(n)]     # parent -> child: go, or (closed) stop
    open_fds = {fd for pair in up + down for fd in pair}
    parent = os.getpid()
    done = {}                                # what the parent's part leaves for the end

    def close(*fds: int) -> None:
        for fd in fds:
            if fd in open_fds:
                open_fds.discard(fd)
                os.close(fd)

    def lead() -> None:
        """Part 0, in this process: walk, judge every part, make the dirs, write."""
        for i in range(1, n):
            close(up[i][1], down[i][0])
        try:
            if _judge():
                for i in range(1, n):
                    try:
                        _send(down[i][1], _GO)
                    except OSError:          # it has died: fork_map reports it
                        pass
                done["files_at"] = len(report.written)
        finally:
            for i in range(1, n):
                close(down[i][1])             # (closed without a word: stop)
        if "files_at" in done:
            write_some(image, done.pop("files"), done["writer"])

    def _judge() -> bool:
        """Walk part 0, gather the others; if all are sound, make every directory."""
        try:
            mine = _walk(image, split, 0, real_dest)
        except (BlockImgError, OSError):     # done again in one process, which reports it
            mine = None
        answers = []
        for i in range(1, n):
            data = _receive(up[i][0])
            close(up[i][0])
            answers.append(pickle.loads(data) if data else None)
        parts = [mine] + answers
        if any(p is None for p in parts) or not split.merge([p["walk"] for p in parts]):
            return False
        report.refused.extend(image.skipped)
        report.refused.extend(sorted((r for p in parts for r in p["refused"]),
                                     key=lambda r: order_key(r[0])))
        writer = done["writer"] = TreeWriter(real_dest, overwrite, report)
        dirs = sorted((d for p in parts for d in p["dirs"]), key=order)
        done["dirs"] = [info for info in dirs if writer.make_dir(info.path)]
        done["links"] = sorted((x for p in parts for x in p["links"]), key=order)
        done["files"] = mine["files"]
        return True

    def follow(i: int):
        """Part ``i``, in its child: walk, tell the parent, wait for its word, write."""
        keep = (up[i][1], down[i][0])
        close(*[fd for fd in list(open_fds) if fd not in keep])
        try:
            mine = _walk(image, split, i, real_dest)
        except (BlockImgError, OSError):
            mine = None
        answer = None if mine is None else {k: v for k, v in mine.items() if k != "files"}
        _send(up[i][1], pickle.dumps(answer) if answer is not None else b"")
        close(up[i][1])
        word = _receive(down[i][0])
        close(down[i][0])
        if word != _GO:
            return None
        own = TreeWriter(real_dest, overwrite, ExtractReport())
        try:
            write_some(image, mine["files"], own)
        finally:
            own.close()
        return own.report.written, own.report.refused, own.report.existing

    def part(i: int, tick):
        if i == 0:
            return lead()
        if os.getpid() == parent:     # its child could not be forked: part 0 saw no answer
            return None
        return follow(i)

    try:
        try:
            results = fork_map(part, n)
        except (BlockImgError, OSError):
            if "writer" in done:
                raise
            results = None           # a worker died before anything was written
        writer = done.get("writer")
        if "files_at" not in done:
            split.reset()
            return False
        cut = [done["files_at"]]
        for got in results[1:]:
            cut.append(len(report.written))
            report.written += got[0]
            report.refused += got[1]
            report.existing += got[2]
        _keep_image_order(report.written, cut)
        made = make_links(writer, done["links"])
    finally:
        if "writer" in done:
            done["writer"].close()
        close(*list(open_fds))
    split.reset()
    finish(report, real_dest, made, done["dirs"])
    return True


def _walk(image: "Image", split, i: int, real_dest: str) -> dict:
    """Part ``i`` walked and sorted out, in this process."""
    refused: List = []
    walked = split.walk(i)
    dirs, files, links = sort_out(image, image.index, None, real_dest, refused)
    return {"walk": walked, "dirs": dirs, "links": links, "refused": refused,
            "files": files}


def _keep_image_order(written: List[str], cut: List[int]) -> None:
    """The files, written part after part from ``cut[0]`` on, in image order: as they
    are when the parts follow each other in it (checked where they meet), else sorted."""
    for a in cut[1:]:
        if cut[0] < a < len(written) and order_key(written[a - 1]) > order_key(written[a]):
            written[cut[0]:] = sorted(written[cut[0]:], key=order_key)
            return


def _send(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _receive(fd: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
