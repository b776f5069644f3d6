"""A class at once: each distinct answer graded once, in forked worker processes."""

from __future__ import annotations

from collections.abc import Callable

import sympy

from derive.app.parallel import map_forked
from derive.core.check import Graded, Verdict, check, parse_answer
from derive.core.derivation import Derivation
from derive.core.errors import DeriveError
from derive.core.symbols import to_text


def grade_many(
    derivation: Derivation,
    wrt: str,
    texts: list[str],
    jobs: int = 1,
    progress: Callable[[int, int, object], None] | None = None,
) -> dict[str, Graded]:
    """Grade each distinct text once: texts that parse to the same expression share a verdict,
    and distinct expressions are graded in `jobs` forked processes."""
    parsed: dict[str, sympy.Expr] = {}
    results: dict[str, Graded] = {}
    for text in dict.fromkeys(texts):
        try:
            parsed[text] = parse_answer(text, derivation)
        except DeriveError as error:
            results[text] = Graded(None, str(error))
    canonical = {text: to_text(expr) for text, expr in parsed.items()}
    distinct = list(dict.fromkeys(canonical.values()))
    expressions = {canonical[text]: parsed[text] for text in parsed}

    def grade(key: str) -> Verdict:
        return check(derivation, wrt, expressions[key])

    verdicts = dict(zip(distinct, map_forked(grade, distinct, jobs, progress), strict=True))
    results.update({text: Graded(verdicts[canonical[text]]) for text in parsed})
    return results
