"""A small progress bar on stderr, shown only on a terminal and only for long runs."""
from __future__ import annotations

import sys
import time
TYPE_CHECKING = False   # typing is for annotations only: not imported at run time
if TYPE_CHECKING:
    from typing import Optional, TextIO

from ..units import human_size

__all__ = ["ProgressBar", "line"]


class ProgressBar:
    """Call with ``(done, total)`` bytes; draws at most ~10 times a second after ``delay`` s.

    Shown only when ``stream`` is a terminal (unless ``enabled`` says otherwise):
    the bar, the share done, the bytes done of the total, the rate and the time left.
    """

    def __init__(self, label: str, *, stream: Optional[TextIO] = None, delay: float = 0.5,
                 enabled: Optional[bool] = None) -> None:
        self.stream = stream or sys.stderr
        self.label = label
        if enabled is None:
            try:
                enabled = self.stream.isatty()
            except (AttributeError, ValueError):
                enabled = False
        self.enabled = enabled
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
        self.stream.write("\r" + line(self.label, done, total, now - self.start) + "\033[K")
        self.stream.flush()
        self._drawn = True

    def finish(self) -> None:
        if self._drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()


def line(label: str, done: int, total: int, seconds: float, width: int = 30) -> str:
    """``label [#####.....]  42.0% 1.2 GiB of 2.9 GiB, 210 MiB/s, 0:08 left``."""
    frac = min(done / total, 1.0) if total else 1.0
    fill = int(frac * width)
    rate = done / seconds if seconds > 0 else 0.0
    left = ""
    if rate > 0 and total > done:
        s = int((total - done) / rate + 0.5)
        left = f", {s // 3600}:{s // 60 % 60:02d}:{s % 60:02d} left" if s >= 3600 else \
            f", {s // 60}:{s % 60:02d} left"
    return (f"{label} [{'#' * fill}{'.' * (width - fill)}] {frac * 100:5.1f}% "
            f"{human_size(done)} of {human_size(total)}, {human_size(int(rate))}/s{left}")
