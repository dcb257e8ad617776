"""A small progress bar on stderr, shown only on a terminal and only for long runs."""
from __future__ import annotations

import sys
import time
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Optional, TextIO

__all__ = ["ProgressBar"]


class ProgressBar:
    """Call with ``(done, total)``; draws at most ~10 times a second after ``delay`` s."""

    def __init__(self, label: str, *, stream: Optional[TextIO] = None, delay: float = 0.5,
                 enabled: Optional[bool] = None) -> None:
        self.stream = stream or sys.stderr
        self.label = label
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.start = time.monotonic()
        self.delay = delay
        self._last = 0.0
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.start < self.delay or now - self._last < 0.1:
            return
        self._last = now
        frac = done / total if total else 1.0
        width = 30
        fill = int(frac * width)
        rate = done / (now - self.start) / 1e6
        self.stream.write(f"\r{self.label} [{'#' * fill}{'.' * (width - fill)}] "
                          f"{frac * 100:5.1f}% {rate:7.1f} MB/s")
        self.stream.flush()
        self._drawn = True

    def finish(self) -> None:
        if self._drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()
