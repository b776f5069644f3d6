"""Running work in forked processes: the work's closures and data reach the workers through the
fork itself, so nothing is pickled, and a failure comes back as an error with its message."""

from __future__ import annotations

import contextlib
import multiprocessing
import resource
from collections.abc import Callable
from typing import TypeVar

from derive.core.errors import DeriveError

T = TypeVar("T")


def in_parallel(work: Callable[[str], T], items: tuple[str, ...]) -> dict[str, T]:
    """work(item) for each item, each in a forked process when there are several: the results
    by item (pickled back to this process, so keep them small).

    Drawing figures is CPU-bound and each language's are independent: on two cores, both
    languages take the time of one. A fork shares the runs already computed, with no pickling.
    A failure in a child is raised here with its message.
    """
    if len(items) < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return {item: work(item) for item in items}
    context = multiprocessing.get_context("fork")
    reports = []
    for item in items:
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=_report, args=(work, item, send), daemon=True)
        process.start()
        send.close()
        reports.append((item, process, receive))
    failures, bad_input, results = [], [], {}
    for item, process, receive in reports:
        kind, message, result = receive.recv() if receive.poll(None) else ("", "", None)
        process.join()
        results[item] = result
        if kind == "DeriveError":
            bad_input.append(message)
        elif kind or process.exitcode:
            failures.append(
                f"{item}: {kind}: {message}" if kind else f"{item}: exit code {process.exitcode}"
            )
    if failures:
        raise RuntimeError("; ".join(failures))
    if bad_input:
        raise DeriveError(bad_input[0])
    return results


def _report(work: Callable[[str], object], item: str, send) -> None:
    try:
        send.send(("", "", work(item)))
    except BaseException as error:  # reported to the parent, which raises it
        send.send((type(error).__name__, str(error), None))
        raise SystemExit(1) from None


def map_forked(
    function: Callable,
    items: list,
    jobs: int,
    progress: Callable[[int, int, object], None] | None = None,
    memory_mib: int | None = None,
) -> list:
    """function over items, in forked worker processes when jobs > 1; progress(done, total,
    result) is called here, in this process, as each result arrives. `memory_mib` caps what
    each worker may add to its memory (past it, a MemoryError in that item), so that --jobs
    does not multiply a runaway item's memory."""
    done: list = []
    if jobs > 1 and len(items) > 1 and "fork" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("fork")  # the closure reaches workers unpickled
        chunk = max(1, len(items) // (jobs * 8))
        with context.Pool(jobs, initializer=_install, initargs=(function, memory_mib)) as pool:
            for result in pool.imap(_call_work, items, chunksize=chunk):
                done.append(result)
                if progress:
                    progress(len(done), len(items), result)
        return done
    for item in items:
        done.append(function(item))
        if progress:
            progress(len(done), len(items), done[-1])
    return done


_WORK: Callable | None = None  # set in each worker process by _install


def _install(function: Callable, memory_mib: int | None = None) -> None:
    global _WORK
    _WORK = function
    if memory_mib is not None:
        cap_memory(memory_mib)


def cap_memory(mib: int) -> None:
    """Limit this process's data segment to what it uses now plus `mib` MiB (Linux; elsewhere
    nothing is limited)."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/self/status", encoding="ascii") as handle:
            status = handle.read()
        used_kib = next(
            int(line.split()[1]) for line in status.splitlines() if line.startswith("VmData:")
        )
        limit = used_kib * 1024 + mib * 2**20
        resource.setrlimit(resource.RLIMIT_DATA, (limit, resource.RLIM_INFINITY))


def _call_work(item):
    return _WORK(item)
