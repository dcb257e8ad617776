"""Splitting the per-file work of a build or an extraction over forked processes.

Creating, opening and reading thousands of small files costs mostly system
time, and a second core halves it; Python threads do not (every system call
gives up the GIL and takes it back, and two threads doing that in turn were
measured slower than one). So the work is split into contiguous parts of
about equal weight and each part but the first runs in a forked child; the
caller's process runs the first. Results (and errors, typed) come back
through a pipe, progress through a shared counter.

Only where ``os.fork`` exists, and only when asked (``jobs`` > 1): forking a
process that runs other threads is unsafe, so the library's default is one
process and the ``blockimg`` program chooses (:func:`auto_jobs`).
"""
from __future__ import annotations

import os
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Callable, Iterable, List, Optional, Sequence, Tuple, TypeVar

from ..errors import BlockImgError

__all__ = ["usable_cpus", "idle_cpus", "cpu_quota", "auto_jobs", "split", "split_files", "fork_map", "Tick",
           "MIN_FILES_PER_JOB", "FILE_WEIGHT"]

if TYPE_CHECKING:
    T = TypeVar("T")
#: ``tick(done)``: a part reports how many bytes it has moved so far.
if TYPE_CHECKING:
    Tick = Callable[[int], None]
else:   # (a name for annotations; typing not imported)
    Tick = 'Callable[[int], None]'
#: Fewer files than this per process are not worth a fork (one costs a few ms).
MIN_FILES_PER_JOB = 1000
#: At most this many processes by default. Each child copies, page by page, the part of
#: the parent's memory it touches (the entries it walks: ~10 MiB on 20,000 files), so two
#: processes stay within the 40 MiB budget of a small board (measured: 38 MiB in all, as
#: proportional set size, for a FAT build of 20,000 files) where four would not.
MAX_AUTO_JOBS = 2
#: A file costs about as much as moving this many bytes more (open, read or create, close).
FILE_WEIGHT = 32 * 1024
#: Bytes of a part's counter (a signed little-endian count of bytes moved).
_SLOT = 8


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, where the host tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def idle_cpus() -> Optional[int]:
    """CPUs with nothing to run at this instant: the CPUs, less the tasks the kernel
    counts as runnable (``/proc/loadavg``'s fourth field, this process included); the
    machine's, not a container's. None where the kernel does not tell."""
    try:
        with open("/proc/loadavg", "rb") as f:
            runnable = int(f.read().split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(0, (os.cpu_count() or 1) - runnable)


def cpu_quota() -> Optional[float]:
    """The CPUs' worth of time a cgroup v2 limit (``cpu.max``) allows this process, or None."""
    try:
        with open("/proc/self/cgroup", "rb") as f:
            path = next((ln[3:].strip() for ln in f if ln.startswith(b"0::")), None)
        if path is None:
            return None
        with open(b"/sys/fs/cgroup" + path + b"/cpu.max", "rb") as f:
            quota, period = f.read().split()[:2]
        return None if quota == b"max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def auto_jobs(files: int) -> int:
    """How many processes ``blockimg`` uses for ``files`` files: one per usable CPU, at
    most :data:`MAX_AUTO_JOBS`, and one per :data:`MIN_FILES_PER_JOB` files -- and one
    whenever a second would not have a CPU to itself.

    A second process only pays on an idle CPU: sharing one with another busy
    process, the split work finishes later than one process doing it all
    (docs/PERFORMANCE.rst). So one process unless, at this instant, the kernel
    counts an idle CPU (:func:`idle_cpus`) and a cgroup allows two CPUs' time.
    The machine's count is what a process sees; in a container whose CPUs are
    busy with work outside it, this picks one, and ``-j 2`` is for when the
    CPUs are known to be free.
    """
    if not hasattr(os, "fork"):
        return 1
    jobs = max(1, min(usable_cpus(), MAX_AUTO_JOBS, files // MIN_FILES_PER_JOB))
    if jobs > 1:
        idle = idle_cpus()
        if idle is not None and idle < 1:
            return 1
        quota = cpu_quota()
        if quota is not None:
            jobs = max(1, min(jobs, int(quota)))
    return jobs


def split(weights: Sequence[int], parts: int) -> List[Tuple[int, int]]:
    """``parts`` contiguous ``(start, stop)`` index ranges of about equal total weight
    (fewer when there are fewer items; none empty, except one for no items)."""
    n = len(weights)
    parts = max(1, min(parts, n))
    total = sum(weights)
    out = []
    start = 0
    acc = 0
    for k in range(1, parts):
        goal = total * k / parts
        stop = start
        while stop < n - (parts - k) and (stop == start or acc + weights[stop] <= goal):
            acc += weights[stop]
            stop += 1
        out.append((start, stop))
        start = stop
    out.append((start, n))
    return out


def split_files(sizes: Iterable[int], parts: int) -> List[Tuple[int, int]]:
    """:func:`split` of files in image order, each weighed by its size plus
    :data:`FILE_WEIGHT`."""
    return split([FILE_WEIGHT + size for size in sizes], parts)


def fork_map(work: Callable[[int, Optional[Tick]], T], parts: int, *,
             progress: Optional[Callable[[int], None]] = None,
             redo_killed: bool = False) -> List[T]:
    """``[work(i, tick) for i in range(parts)]``, part 0 here and the others in children.

    ``tick`` is None for a single part without ``progress`` (nothing to report). A
    part whose child cannot be started (``fork`` fails: no memory or no process
    slot) runs here after part 0 instead. With ``redo_killed``, so does the part
    of a child killed by a signal without an answer (the out-of-memory killer, on
    a small board): for work that may be done twice, like writing the same bytes
    at the same offsets.

    Returns the results in part order once every child has ended. If any part
    raised, the error of the first such part (in part order) is raised again
    here, with its type and fields; an error that is neither a blockimg error nor an
    ``OSError`` (a bug) comes with its child's traceback as its ``__cause__``. ``progress(done)`` is given the bytes all
    parts have moved, as the parent's part moves and while it waits.
    A child that dies without an answer (killed, out of memory) is an error too.
    """
    if parts <= 1:
        return [work(0, progress)]
    run = _Run(work, parts, progress)
    try:
        run.fork()
        forked = {i for i, _, _ in run.children}
        for i in range(parts):
            if i not in forked:
                run.outcome[i] = run.here(i)
        run.collect(redo_killed)
    finally:
        run.stop()
    results = [run.outcome[i] for i in range(parts)]
    for kind, value in results:
        if kind == "bug":
            raise value[0] from WorkerTraceback(value[1])
        if kind == "err":
            raise value
    return [value for _, value in results]


class _Run:
    """One :func:`fork_map`: its children, their counters and the parts' outcomes."""

    def __init__(self, work, parts: int, progress: Optional[Callable[[int], None]]) -> None:
        import mmap
        import pickle  # noqa: F401  (imported here, before the fork, once for all)
        self.work, self.parts, self.progress = work, parts, progress
        self.counters = mmap.mmap(-1, _SLOT * parts)   # shared with the children
        self.children: list = []   # (part, pid, read end of its pipe), until reaped
        self.outcome: dict = {}    # part -> ("ok", result), ("err", error) or ("bug", ...)

    def tick_of(self, i: int, here: bool) -> Tick:
        """Part ``i``'s tick: its count in its slot (and, in this process, the sum shown)."""
        counters, parts, progress = self.counters, self.parts, self.progress

        def tick(done: int) -> None:
            counters[i * _SLOT:(i + 1) * _SLOT] = done.to_bytes(_SLOT, "little", signed=True)
            if here and progress is not None:
                progress(_total(counters, parts))
        return tick

    def here(self, i: int) -> tuple:
        """Run part ``i`` in this process: ``("ok", result)`` or ``("err", error)``."""
        try:
            return "ok", self.work(i, self.tick_of(i, True))
        except BlockImgError as e:
            return "err", e

    def fork(self) -> None:
        """A child for each part but the first (none for a part whose fork fails)."""
        for i in range(1, self.parts):
            r, w = os.pipe()
            try:
                pid = os.fork()
            except OSError:  # no memory or no process slot left: this part runs here
                os.close(r)
                os.close(w)
                continue
            if pid == 0:     # the child: never returns into the caller's code
                os.close(r)
                _child(self.work, i, self.tick_of(i, False), w)
            os.close(w)
            self.children.append((i, pid, r))

    def collect(self, redo_killed: bool) -> None:
        """Every child's answer, then its exit status; a killed child's part redone here
        when ``redo_killed``."""
        progress = self.progress
        answers = _read_all([r for _, _, r in self.children],
                            lambda: progress and progress(_total(self.counters, self.parts)))
        while self.children:
            i, pid, r = self.children.pop(0)
            os.close(r)
            status = os.waitpid(pid, 0)[1]
            self.outcome[i] = _answer(i, answers[r], status)
            if redo_killed and self.outcome[i][0] == "err" and \
                    os.waitstatus_to_exitcode(status) < 0:
                self.outcome[i] = self.here(i)

    def stop(self) -> None:
        """Stop and reap the children still running (only when this process was
        interrupted). They ignore SIGTERM if this process was started with it ignored."""
        import signal   # (here: a command that stays one process does not import it)
        stop = signal.SIGKILL if signal.getsignal(signal.SIGTERM) == signal.SIG_IGN \
            else signal.SIGTERM
        for _, pid, _ in self.children:
            try:
                os.kill(pid, stop)
            except OSError:
                pass
        for _, pid, r in self.children:
            os.close(r)
            os.waitpid(pid, 0)
        self.counters.close()


def _total(counters, parts: int) -> int:
    return sum(int.from_bytes(counters[i * _SLOT:(i + 1) * _SLOT], "little", signed=True)
               for i in range(parts))


def _child(work, i: int, tick: Tick, w: int) -> None:
    """Run part ``i``, write its pickled outcome to ``w`` and leave (``os._exit``):
    the parent's ``finally`` blocks, buffers and exit handlers are not ours to run."""
    import pickle
    code = 0
    try:
        try:
            answer = ("ok", work(i, tick))
        except (BlockImgError, OSError) as e:
            answer = ("err", e)
        except Exception as e:           # a bug: it crosses as itself, with its traceback
            answer = _bug(e, i)
        except BaseException as e:       # an interrupt: still an answer
            answer = ("err", BlockImgError(f"worker process {i}: {type(e).__name__}: {e}"))
        try:
            data = pickle.dumps(answer)
        except Exception as e:           # a bug too (an unpicklable result or error)
            data = pickle.dumps(_bug(RuntimeError(
                f"result of worker process {i} not transferable: {e!r}"), i))
        view = memoryview(data)
        while view:
            view = view[os.write(w, view):]
    except BaseException:
        code = 70
    finally:
        os._exit(code)


class WorkerTraceback(Exception):
    """The traceback of an error raised in a worker process, as text: the
    ``__cause__`` of that error when it is raised again in the parent."""

    def __str__(self) -> str:
        return self.args[0]


def _bug(e: Exception, i: int) -> tuple:
    """``("bug", (error, traceback text))`` for ``e``, a programming error in part ``i``
    (a RuntimeError naming it stands in when it cannot be pickled)."""
    import pickle
    import traceback
    text = f"\n\nin worker process {i}:\n" + "".join(
        traceback.format_exception(type(e), e, e.__traceback__))
    try:
        pickle.dumps(e)
    except Exception:
        e = RuntimeError(f"{type(e).__name__}: {e}")
    return "bug", (e, text)


def _read_all(fds: List[int], poll: Callable[[], None]) -> dict:
    """Everything written to each pipe until it closes, reading all together (a child
    blocks while its answer does not fit its pipe); ``poll()`` ten times a second."""
    import select
    chunks = {r: [] for r in fds}
    open_fds = set(fds)
    while open_fds:
        ready, _, _ = select.select(list(open_fds), [], [], 0.1)
        poll()
        for r in ready:
            data = os.read(r, 1 << 16)
            if data:
                chunks[r].append(data)
            else:
                open_fds.discard(r)
    return {r: b"".join(c) for r, c in chunks.items()}


def _answer(k: int, data: bytes, status: int) -> tuple:
    """Child ``k``'s ``("ok", result)`` or ``("err", error)`` from its pipe and exit status."""
    import pickle
    code = os.waitstatus_to_exitcode(status)
    answer = None
    if data and code == 0:
        try:
            answer = pickle.loads(data)
        except Exception as e:    # a bug: an error (or result) that does not unpickle
            import traceback
            text = f"\n\nreading the answer of worker process {k}:\n" + "".join(
                traceback.format_exception(type(e), e, e.__traceback__))
            return "bug", (RuntimeError(f"the answer of worker process {k} cannot be read "
                                        f"back: {e!r}"), text)
    if answer is None:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        answer = ("err", BlockImgError(f"worker process {k} {how} without finishing its part"))
    return answer
