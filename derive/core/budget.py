"""Time budgets for symbolic work that can run long (solving, limits, domains): past its budget a
computation is abandoned and the caller falls back to a weaker, still true, statement."""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
import time
from collections.abc import Iterator

import sympy

REPEAT = 0.05  # seconds between alarms once a budget is spent


class OverBudgetError(BaseException):
    """A symbolic computation ran past its time budget. A BaseException, like
    KeyboardInterrupt: SymPy's own `except Exception` clauses must not swallow it."""


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

    _prepare_lambdify()
    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, expire)
    # past the deadline the alarm repeats every REPEAT seconds until the block is left, so
    # that code which catches the first one (a bare except) is stopped by the next
    outer, _ = signal.setitimer(signal.ITIMER_REAL, seconds, REPEAT)
    if outer and outer < seconds:  # an outer budget ends first: keep its deadline
        signal.setitimer(signal.ITIMER_REAL, outer, REPEAT)
    try:
        yield
    finally:
        # An alarm can arrive while this block is being left, before the timer is off: it
        # must not leave this budget's handler installed (it would fire later, anywhere).
        while True:
            try:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
                break
            except OverBudgetError:
                continue
        if outer:  # give the outer budget what is left of it
            left = outer - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3), REPEAT)


@functools.cache
def _prepare_lambdify() -> None:
    """SymPy builds lambdify's namespace of a module named by a string ("mpmath", "math") on
    first use; an alarm in the middle of that leaves it half built for the rest of the process
    (NameError). Build them once, outside any budget. (NumPy's comes from core/numeric.py.)"""
    for module in ("mpmath", "math"):
        sympy.lambdify([], sympy.Integer(0), modules=module)


def attempt(compute, seconds: float, default=None):
    """compute(), or `default` when it runs past its budget or SymPy cannot do it."""
    try:
        with time_limit(seconds):
            return compute()
    except (OverBudgetError, RecursionError, Exception):
        # raise what they like (ValueError from a series, TypeError from a float of a symbol,
        # PolynomialError, PoleError…): whichever, nothing was proven and the caller says less
        return default
