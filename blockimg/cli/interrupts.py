"""SIGTERM and SIGHUP as an exception while a command runs, so that its clean-up code runs
(a half-built image is removed, nothing is left half in place)."""
from __future__ import annotations

__all__ = ["Terminated", "interrupts_as_exceptions"]


class Terminated(BaseException):
    """SIGTERM/SIGHUP turned into an exception, so clean-up code runs."""


class interrupts_as_exceptions:
    """Within the ``with`` block, SIGTERM and SIGHUP raise :class:`Terminated`.

    A signal the process was started with ignored stays ignored (``nohup``
    ignores SIGHUP; a shell starts background jobs with SIGINT ignored, and
    Python then leaves SIGINT alone too). (A class: contextlib costs ~13 M
    instructions of start-up with the functools and collections it imports.)
    """

    def __enter__(self) -> None:
        try:    # the calls of signal without its enum wrappers (import enum: ~5 ms)
            import _signal as signal
        except ImportError:     # not CPython
            import signal
        self._signal, self._old = signal, {}
        for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is None or signal.getsignal(sig) == signal.SIG_IGN:
                continue
            try:
                self._old[sig] = signal.signal(sig, _raise_terminated)
            except ValueError:  # not the main thread
                pass

    def __exit__(self, *exc) -> None:
        for sig, h in self._old.items():
            self._signal.signal(sig, h)


def _raise_terminated(signum, frame):
    raise Terminated(signum)
