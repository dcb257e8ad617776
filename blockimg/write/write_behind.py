"""One write in flight on a helper thread while the caller fills the next buffer.

A gathered write of a megabyte is one ``pwrite``, which releases the GIL
for the whole copy into the page cache; done on a helper thread it
overlaps with the caller reading the next files (about a quarter of a
small-file build's time on two cores). Only one write is ever pending, so
the caller needs two buffers and memory stays bounded. (``threading``, ~6 M
instructions of start-up, is imported when the thread starts: the Copier
writes a build's first 16 MiB itself, so a small build never starts it.)
"""
from __future__ import annotations

from _thread import allocate_lock as _Lock     # threading.Lock itself
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Callable, Optional

__all__ = ["WriteBehind"]


class WriteBehind:
    """Runs ``write(offset, data)`` calls one at a time on a helper thread.

    :meth:`submit` waits for the previous write, then starts this one and
    returns; :meth:`wait` waits for the pending one. An error raised by a
    write is raised again by the next :meth:`submit` or :meth:`wait`, in
    the caller's thread. The thread starts with the first write;
    :meth:`close` ends it (the Copier closes it on exit from ``with``, or
    when it is garbage).
    """

    def __init__(self, write: Callable[[int, object], None]) -> None:
        self._write = write
        self._go = _Lock()       # released: a job (or the end) is set
        self._go.acquire()
        self._idle = _Lock()     # held while a write is pending
        self._job: Optional[tuple] = None
        self._error: Optional[BaseException] = None
        self._closed = False
        self._started = False                  # the thread starts with the first write
        self._exited = _Lock()   # held while the thread runs

    @property
    def running(self) -> bool:
        """Whether the helper thread is alive."""
        return self._exited.locked()

    def _run(self) -> None:
        try:
            while True:
                self._go.acquire()
                job = self._job
                if job is None:
                    return
                try:
                    self._write(*job)
                except BaseException as e:      # handed to the caller's thread
                    self._error = e
                self._job = None
                self._idle.release()
        finally:
            self._exited.release()

    def submit(self, offset: int, data) -> None:
        """Start writing ``data`` at ``offset``; ``data`` must stay untouched until the
        next :meth:`submit` or :meth:`wait` returns."""
        self.wait()
        if self._closed:
            raise ValueError("write-behind is closed")
        if not self._started:
            self._started = True
            self._exited.acquire()
            import threading
            threading.Thread(target=self._run, name="blockimg write-behind",
                             daemon=True).start()
        self._idle.acquire()
        self._job = (offset, data)
        self._go.release()

    def wait(self) -> None:
        """Return once no write is pending; raise the error of the last one, if any."""
        self._idle.acquire()
        self._idle.release()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def close(self) -> None:
        """Wait for the pending write (its error is dropped: call :meth:`wait` first to
        see it) and end the thread."""
        if self._closed:
            return
        self._closed = True
        self._idle.acquire()
        self._idle.release()
        self._error = None
        self._job = None
        if self._started:
            self._go.release()
