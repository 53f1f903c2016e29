"""Wall-time phases of one command: where the seconds of ``driftloop train`` go.

A :class:`Phases` recorder is made current for a block (``with recorder.active():``); code at
any layer marks its work with ``with phase("name"):`` (a no-op when no recorder is current, so
library calls outside ``train`` pay nothing). Names are dotted: ``"data_check"`` is a top-level
phase, ``"data_check.leakage_aucs"`` one of its parts. The top-level phases plus ``"other"``
(the time no phase covered) sum to ``"total"``; parts are inside their parent, not added.

The module imports nothing from driftloop, so that every layer may use it.

Examples
--------
>>> ticks = iter([0.0, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0])
>>> recorder = Phases(clock=lambda: next(ticks))
>>> with recorder.active():
...     with phase("check"):
...         with phase("check.aucs"):
...             pass
...     with phase("epochs"):
...         pass
>>> recorder.to_json()
{'check.aucs': 0.5, 'check': 2.0, 'epochs': 1.0, 'other': 4.0, 'total': 7.0}
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_CURRENT: ContextVar[Phases | None] = ContextVar("driftloop_phases", default=None)


class Phases:
    """Seconds per named phase since this recorder was made (``clock``: ``perf_counter``)."""

    def __init__(
        self, clock: Callable[[], float] = time.perf_counter, *, started_ago: float | None = None
    ) -> None:
        self._clock = clock
        self._start = clock()
        self.seconds: dict[str, float] = {}
        if started_ago is not None:  # the process began earlier: interpreter start and imports
            self._start -= started_ago
            self.add("start", started_ago)

    def add(self, name: str, seconds: float) -> None:
        """Add ``seconds`` to phase ``name`` (a phase entered twice sums)."""
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    @contextmanager
    def active(self) -> Iterator[Phases]:
        """Make this recorder the one :func:`phase` records into, for the block."""
        token = _CURRENT.set(self)
        try:
            yield self
        finally:
            _CURRENT.reset(token)

    def to_json(self) -> dict[str, float]:
        """Each phase's seconds, ``other`` (uncovered) and ``total``, rounded to 1 ms."""
        total = self._clock() - self._start
        top = sum(v for k, v in self.seconds.items() if "." not in k)
        out = {k: round(v, 3) for k, v in self.seconds.items()}
        out["other"] = round(max(0.0, total - top), 3)
        out["total"] = round(total, 3)
        return out


def current() -> Phases | None:
    """The recorder :func:`phase` records into now (None: none is active)."""
    return _CURRENT.get()


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Time the block as phase ``name`` of the current recorder (nothing when none is).

    >>> with phase("anything"):   # no recorder current: just runs the block
    ...     1 + 1
    2
    """
    recorder = _CURRENT.get()
    if recorder is None:
        yield
        return
    started = recorder._clock()
    try:
        yield
    finally:
        recorder.add(name, recorder._clock() - started)


def record(name: str, started: float) -> None:
    """Add the seconds since ``started`` (a ``perf_counter`` reading) to phase ``name`` of the
    current recorder: for a phase that spans code a ``with`` block would re-indent.

    >>> import time
    >>> recorder = Phases()
    >>> with recorder.active():
    ...     record("setup", time.perf_counter() - 0.25)
    >>> recorder.seconds["setup"] >= 0.25
    True
    """
    recorder = _CURRENT.get()
    if recorder is not None:
        recorder.add(name, recorder._clock() - started)


def since_process_start() -> float | None:
    """Seconds since this process started (interpreter start-up and imports before the
    command ran), from ``/proc``; None where there is no ``/proc`` (macOS, Windows)."""
    import os

    try:
        with open("/proc/self/stat", encoding="ascii") as handle:
            fields = handle.read().rpartition(")")[2].split()
        with open("/proc/uptime", encoding="ascii") as handle:
            uptime = float(handle.read().split()[0])
    except OSError:
        return None
    started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime, in ticks
    return max(0.0, uptime - started)


__all__ = ["Phases", "current", "phase", "record", "since_process_start"]
