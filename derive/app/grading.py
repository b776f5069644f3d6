"""A class at once: each distinct answer graded once, in forked workers, each answer within a
time and memory budget. An answer past its budget is invalid, with the reason; the class goes on.

The budget is enforced from outside: the parent waits on each worker with a deadline and kills
it when the deadline passes (SymPy cannot be interrupted from within, and a C routine may be
running), then starts a fresh worker for the answers left. Each worker also caps its own data
segment, so an answer whose expansion explodes fails with MemoryError instead of taking the
machine.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import wait

import sympy

from derive.app.parallel import cap_memory
from derive.core.check import (
    BeyondLimitsError,
    Task,
    UndecidedError,
    grade,
    parse_answer,
    prepare,
)
from derive.core.derivation import Derivation
from derive.core.errors import DeriveError
from derive.core.symbols import to_text
from derive.show.report import Graded, Problem, ProblemCode

TIME_LIMIT = 10.0  # seconds per distinct answer, the default of --time-limit
MEMORY_LIMIT_MIB = 1024  # memory an answer may add to a worker


def grade_many(
    derivation: Derivation,
    wrt: str,
    texts: list[str],
    jobs: int = 1,
    progress: Callable[[int, int, object], None] | None = None,
    data: Mapping[str, Sequence[float]] | None = None,
    time_limit: float = TIME_LIMIT,
) -> dict[str, Graded]:
    """Grade each distinct text once: texts that parse to the same expression share a verdict,
    and distinct expressions are graded in `jobs` forked processes, each within the budget."""
    parsed: dict[str, sympy.Expr] = {}
    results: dict[str, Graded] = {}
    for text in dict.fromkeys(texts):
        try:
            parsed[text] = parse_answer(text, derivation)
        except DeriveError as error:
            results[text] = Graded(
                None, Problem(ProblemCode.UNREADABLE, (("message", str(error)),))
            )
    canonical = {text: to_text(expr) for text, expr in parsed.items()}
    distinct = list(dict.fromkeys(canonical.values()))
    expressions = {canonical[text]: parsed[text] for text in parsed}
    if distinct:
        # computed here, before the fork, so every worker shares the points and values
        task = prepare(derivation, wrt, data)
        outcomes = graded_within_budget(
            task, [expressions[k] for k in distinct], jobs, time_limit, progress
        )
        verdicts = dict(zip(distinct, outcomes, strict=True))
        results.update({text: verdicts[canonical[text]] for text in parsed})
    return results


def grade_one(
    derivation: Derivation,
    wrt: str,
    answer: sympy.Expr,
    data: Mapping[str, Sequence[float]] | None = None,
    time_limit: float = TIME_LIMIT,
):
    """One answer's Verdict, within the budget; past it, or beyond derive's limits, DeriveError."""
    (graded,) = graded_within_budget(prepare(derivation, wrt, data), [answer], 1, time_limit)
    if graded.verdict is None:
        sentence = graded.problem.sentence("en").rstrip(".")
        raise DeriveError(sentence[0].lower() + sentence[1:])
    return graded.verdict


def _graded(task: Task, answer: sympy.Expr) -> Graded:
    """One answer, in a worker: a verdict, or why there is none (never an exception)."""
    try:
        return Graded(grade(task, answer))
    except BeyondLimitsError as error:
        return Graded(None, Problem(ProblemCode.BEYOND_LIMITS, (("point", error.point),)))
    except UndecidedError:
        return Graded(None, Problem(ProblemCode.UNDECIDED))
    except MemoryError:
        return Graded(None, Problem(ProblemCode.MEMORY_LIMIT, (("mib", MEMORY_LIMIT_MIB),)))
    except Exception as error:  # a bug in derive on one answer must not cost the class its grades
        return Graded(None, Problem(ProblemCode.FAILED, (("error", type(error).__name__),)))


def graded_within_budget(
    task: Task,
    answers: list[sympy.Expr],
    jobs: int,
    seconds: float,
    progress: Callable[[int, int, object], None] | None = None,
) -> list[Graded]:
    """_graded(task, a) for each answer, in up to `jobs` forked workers; an answer still
    running after `seconds` has its worker killed and is graded invalid (time limit)."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return [_graded(task, a) for a in answers]  # no budget without fork (not Linux)
    context = multiprocessing.get_context("fork")
    results: list[Graded | None] = [None] * len(answers)
    pending = list(range(len(answers)))[::-1]
    workers: dict = {}  # connection → [process, index or None, deadline]
    done = 0

    def start() -> None:
        parent, child = context.Pipe()
        process = context.Process(target=_work, args=(task, answers, child), daemon=True)
        process.start()
        child.close()
        workers[parent] = [process, None, 0.0]
        give(parent)

    def give(connection) -> None:
        if pending:
            index = pending.pop()
            connection.send(index)
            workers[connection][1:] = [index, time.monotonic() + seconds]
        else:
            connection.send(None)
            workers.pop(connection)[0].join()

    def finish(index: int, graded: Graded) -> None:
        nonlocal done
        results[index] = graded
        done += 1
        if progress:
            progress(done, len(answers), graded)

    late = Graded(None, Problem(ProblemCode.TIME_LIMIT, (("seconds", _seconds(seconds)),)))
    for _ in range(min(jobs, len(answers))):
        start()
    while workers:
        soonest = min(deadline for _, _, deadline in workers.values())
        ready = wait(list(workers), timeout=max(0.0, soonest - time.monotonic()))
        now = time.monotonic()
        for connection, (process, index, deadline) in list(workers.items()):
            if connection in ready:
                try:
                    graded = connection.recv()
                except (EOFError, OSError):  # the worker died (a crash, the OS's OOM killer)
                    graded = None
                if graded is not None:
                    finish(index, graded if now <= deadline else late)
                    give(connection)
                    continue
                process.join()
                died = f"the grading process ended with exit code {process.exitcode}"
                finish(index, Graded(None, Problem(ProblemCode.FAILED, (("error", died),))))
            elif now < deadline:
                continue
            else:
                finish(index, late)
            # a worker stuck past its deadline, or dead: replaced by a fresh one
            process.kill()
            process.join()
            connection.close()
            workers.pop(connection)
            if pending:
                start()
    return results


def _seconds(seconds: float) -> int | float:
    return int(seconds) if float(seconds).is_integer() else seconds


def _work(task: Task, answers: list[sympy.Expr], connection) -> None:
    """A worker: grade the answers the parent names, one at a time, until it sends None (or
    is gone)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    cap_memory(MEMORY_LIMIT_MIB)
    with contextlib.suppress(EOFError, BrokenPipeError):
        while (index := connection.recv()) is not None:
            connection.send(_graded(task, answers[index]))
