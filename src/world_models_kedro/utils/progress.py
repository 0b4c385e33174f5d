"""Progress for long loops: a tqdm bar in a terminal, plain periodic log lines otherwise.

Set ``WMK_PROGRESS=bar`` or ``WMK_PROGRESS=log`` to force one or the other.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from types import TracebackType
from typing import Any


def _use_bar() -> bool:
    mode = os.environ.get("WMK_PROGRESS", "").lower()
    if mode in {"bar", "log"}:
        return mode == "bar"
    return sys.stderr.isatty()


def format_duration(seconds: float) -> str:
    """``42s``, ``3m07s``, ``1h05m``."""
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class Progress:
    """Counts ``total`` units of work; shows a bar (terminal) or logs a line every ``every`` seconds.

    ``rate_of`` names a quantity (for example ``"frames"``) whose running total, passed to
    :meth:`update`, is reported per second beside the unit count.
    """

    def __init__(
        self,
        total: int,
        desc: str,
        unit: str,
        logger: logging.Logger,
        rate_of: str | None = None,
        every: float = 15.0,
        initial: int = 0,
    ) -> None:
        self.total, self.desc, self.unit, self.logger = total, desc, unit, logger
        self.rate_of, self.every = rate_of, every
        self.done = self.initial = initial  # initial: already done before this run (a resume)
        self.amount = 0.0
        self.start = self._last_log = time.perf_counter()
        self.postfix: dict[str, Any] = {}
        self._bar = None
        if _use_bar():
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True)

    def rate(self) -> float:
        """Units of ``rate_of`` per second since the start."""
        return self.amount / max(time.perf_counter() - self.start, 1e-9)

    def update(self, n: int = 1, amount: float = 0.0, **postfix: Any) -> None:
        """Record ``n`` more units done and ``amount`` more of the rated quantity."""
        self.done += n
        self.amount += amount
        self.postfix.update(postfix)
        now = time.perf_counter()
        if self._bar is not None:
            shown = dict(self.postfix)
            if self.rate_of:
                shown[f"{self.rate_of}/s"] = f"{self.rate():.0f}"
            self._bar.set_postfix(shown, refresh=False)
            self._bar.update(n)
        elif now - self._last_log >= self.every or self.done >= self.total:
            self._last_log = now
            self.logger.info(self.line())

    def line(self) -> str:
        """The plain progress line: counts, rate, extra figures and time left."""
        elapsed = time.perf_counter() - self.start
        pct = 100.0 * self.done / self.total if self.total else 100.0
        parts = [f"{self.desc}: {self.done}/{self.total} {self.unit} ({pct:.0f}%)"]
        if self.rate_of:
            parts.append(f"{self.rate():,.0f} {self.rate_of}/s")
        parts += [f"{k} {v}" for k, v in self.postfix.items()]
        parts.append(f"elapsed {format_duration(elapsed)}")
        done_here = self.done - self.initial  # the time left is judged on this run's pace only
        if done_here > 0 and self.done < self.total:
            parts.append(f"eta {format_duration(elapsed / done_here * (self.total - self.done))}")
        return ", ".join(parts)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            self.logger.info(self.line())

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
