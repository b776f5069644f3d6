"""Time budgets for symbolic work that can run long (solving, limits, domains): past its budget a
computation is abandoned and the caller falls back to a weaker, still true, statement."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator

from sympy.polys.polyerrors import PolynomialError


class OverBudgetError(Exception):
    """A symbolic computation ran past its time budget."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise OverBudgetError in the block after `seconds` of wall time.

    Uses SIGALRM, so it limits only in the main thread of a POSIX process; elsewhere the block
    runs unlimited (the callers' work is bounded in size as well).
    """
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable or seconds <= 0:
        yield
        return

    def expire(signum, frame):
        raise OverBudgetError(f"over the budget of {seconds} s")

    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, expire)
    outer, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    if outer and outer < seconds:  # an outer budget ends first: keep its deadline
        signal.setitimer(signal.ITIMER_REAL, outer)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:  # give the outer budget what is left of it
            left = outer - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3))


def attempt(compute, seconds: float, default=None):
    """compute(), or `default` when it runs past its budget or SymPy cannot do it."""
    try:
        with time_limit(seconds):
            return compute()
    except (OverBudgetError, NotImplementedError, PolynomialError, ValueError, RecursionError):
        return default  # SymPy could not do it (in time): the caller says less
