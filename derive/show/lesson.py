"""Derivation + runs + their facts → what the lesson template shows, in one language.

The math stages computed every number and measured what every run did (core/facts.py); this
module chooses the sentences: a sentence is printed only when the fact it states holds, and its
words come from the catalogs (templates/<lang>/lesson.toml). Numbers are formatted once, here,
through the problem's resolution: a value that is float noise at the printed precision is 0,
and the same quantity is rounded the same way everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace

import numpy as np
import sympy

from derive.core.derivation import Derivation, Partial
from derive.core.descend import Trace
from derive.core.errors import DeriveError
from derive.core.experiments import BATCH_ROWS, Curvature, Experiments, Run, StartRun
from derive.core.facts import Behaviour, Resolution, Shape
from derive.core.landscape import Kind, Landscape, Minimum, StationaryPoint
from derive.core.optimizers import DEFAULTS, TORCH_CLASSES, Optimizer, Quantity, Where
from derive.core.symbols import N_ROWS
from derive.show.backprop import backprop_view
from derive.show.backprop import render_markdown as render_backprop
from derive.show.book import front_matter
from derive.show.catalog import messages, template
from derive.show.explain import LATEX, operator, partial_lines
from derive.show.printing import hazard_text, number, to_latex, to_unicode
from derive.show.sections import SECTIONS
from derive.show.updates import update_lines

TABLE_HEAD, TABLE_TAIL = 8, 3  # long runs show the first rows, an ellipsis, the last rows
WORKED_STEPS = TABLE_HEAD  # another optimizer's table shows its state for the first steps
MAX_POINTS_SHOWN = 12  # stationary points listed in the landscape section


# -- words and numbers -------------------------------------------------------------------------


class Words:
    """The lesson's catalog in one language: `words("table.fell", first=...)`."""

    def __init__(self, language: str):
        self.language = language
        self.catalog = messages(language)
        self.lesson = self.catalog["lesson"]

    def __call__(self, key: str, **values: object) -> str:
        entry: object = self.lesson
        for part in key.split("."):
            entry = entry[part]
        return str(entry).format(**values)

    def count(self, key: str, count: int, **values: object) -> str:
        """The singular or plural sentence: `key_one` or `key_many`."""
        return self(f"{key}_{'one' if count == 1 else 'many'}", count=count, **values)

    def steps(self, count: int) -> str:
        return self.count("update.step", count)

    def times(self, count: int) -> str:
        return self.count("table.times", count)

    def join(self, items: Sequence[str]) -> str:
        items = list(items)
        if len(items) <= 1:
            return "".join(items)
        return self("list_separator").join(items[:-1]) + self("and") + items[-1]


class Numbers:
    """Every number a lesson prints, through the problem's resolution: values that are float
    noise print as 0; 6 significant digits; typeset for text (−4.8, 3.2×10⁻⁵) or LaTeX."""

    def __init__(self, resolution: Resolution):
        self.resolution = resolution

    def _chop(self, value: float, floor: float) -> float:
        value = float(value)
        return 0.0 if math.isfinite(value) and abs(value) <= floor else value

    def param(self, value: float) -> str:
        return text_number(self._chop(value, self.resolution.params))

    def loss(self, value: float, slope: float = 0.0) -> str:
        """`slope` is ‖∇L‖ there: rounding in the parameters moves the loss by that much."""
        return text_number(self._chop(value, self.resolution.loss_noise(0.0, 0.0, slope)))

    def gradient(self, value: float) -> str:
        return text_number(self._chop(value, self.resolution.gradient))

    def param_tex(self, value: float) -> str:
        return tex_number(self._chop(value, self.resolution.params))

    def loss_tex(self, value: float, slope: float = 0.0) -> str:
        return tex_number(self._chop(value, self.resolution.loss_noise(0.0, 0.0, slope)))

    def gradient_tex(self, value: float) -> str:
        return tex_number(self._chop(value, self.resolution.gradient))


_SUP = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def text_number(value: float) -> str:
    """−4.8, 3.35761×10⁻⁵, 10⁻⁶."""
    text = number(float(value))
    if "×10^" in text:
        mantissa, exponent = text.split("×10^")
        power = f"10{exponent.translate(_SUP)}"
        text = power if mantissa in ("1", "-1") else f"{mantissa}×{power}"
        text = ("-" + text) if mantissa == "-1" else text
    return text.replace("-", "−")


def tex_number(value: float) -> str:
    """A number for LaTeX: 0.6, -4.8, 1.2 \\times 10^{-5}, 10^{-6}, \\infty."""
    value = float(value)
    if math.isinf(value):
        return r"\infty" if value > 0 else r"-\infty"
    text = number(value)
    if "×10^" in text:
        mantissa, exponent = text.split("×10^")
        if mantissa in ("1", "-1"):
            return f"{'-' if mantissa == '-1' else ''}10^{{{exponent}}}"
        return rf"{mantissa} \times 10^{{{exponent}}}"
    return text


# -- the view ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """A value a source prints for a parameter after `step` updates, with the digits it shows."""

    step: int
    param: str
    value: float
    text: str  # as printed: its decimals set how close the true value must be


@dataclass(frozen=True)
class DerivationStep:
    number: str  # 1, 1.1, 1.2, 2
    heading: str  # "Step 1.2. Power rule"
    fact: str  # what the rule says (LaTeX inside $…$), or ""
    latex: str  # the equation this step states


@dataclass(frozen=True)
class PartialView:
    symbol: str
    heading: str
    operator: str
    textbook: str
    steps: tuple[DerivationStep, ...]
    update_rule: str


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Figure:
    path: str
    alt: str


@dataclass(frozen=True)
class LessonView:
    """What the template sees: every sentence chosen and formatted, every number computed."""

    language: str
    front_matter: str
    title: str
    page_title: str  # plain text, for the browser's title bar
    generated: str
    sections: tuple[str, ...]
    headings: Mapping[str, str]
    loss_latex: str
    intuition: tuple[str, ...]
    loss_notes: tuple[str, ...]
    loss_goal: str
    minimum_claim: str
    single: bool
    gradient_meaning: str
    gradient_direction: str
    gradient_operators: str
    partials: tuple[PartialView, ...]
    gradient_vector: str
    gradient_at_start: str
    update_intro: str
    update_with_loss: str
    update_setting: str
    optimizer_intro: str  # a lesson run by another optimizer than plain descent: its rule
    optimizer_lines: tuple[str, ...]
    table: Table
    table_notes: tuple[str, ...]
    claims: Table | None
    claims_intro: str
    figures: Mapping[str, Figure]
    descent_notes: Mapping[str, str]
    rates_intro: str
    rates_bullets: tuple[str, ...]
    rates_notes: tuple[str, ...]
    rates_table: Table
    rates_after: tuple[str, ...]
    batch_intro: str
    batch_table: Table | None
    batch_notes: tuple[str, ...]
    optimizers_intro: str
    optimizer_rules: tuple[tuple[str, str, str], ...]  # (name, settings, rule in LaTeX)
    optimizers_table: Table | None
    optimizers_notes: tuple[str, ...]
    landscape_intro: tuple[str, ...]
    points_table: Table | None
    starts_intro: str
    starts_table: Table | None
    landscape_notes: tuple[str, ...]
    exercises: tuple[str, ...]
    answers: tuple[tuple[str, tuple[str, ...]], ...]  # (sentence, display equations)
    variant_steps: tuple[DerivationStep, ...]
    variant_results: tuple[str, ...]
    summary: Table
    glossary: tuple[str, ...]
    schedule_intro: tuple[str, ...] = ()
    schedule_table: Table | None = None
    schedule_notes: tuple[str, ...] = ()
    newton_notes: tuple[str, ...] = ()
    backprop: str = ""  # the computational graph, forward and backward, as Markdown
    words: Mapping[str, object] = field(default_factory=dict)  # fixed words for the layout


def lesson_view(
    derivation: Derivation,
    trace: Trace,
    experiments: Experiments,
    language: str,
    figure_paths: Mapping[str, str],
    sections: tuple[str, ...],
    claims: tuple[Claim, ...] = (),
) -> LessonView:
    return _Builder(derivation, trace, experiments, language, figure_paths, claims).view(sections)


class _Builder:
    def __init__(self, derivation, trace, experiments, language, figure_paths, claims):
        self.derivation = derivation
        self.loss = derivation.loss
        self.trace = trace
        self.experiments = experiments
        self.words = Words(language)
        self.numbers = Numbers(experiments.problem.resolution)
        self.figure_paths = dict(figure_paths)
        self.claims = claims
        self.symbols = [to_latex(s) for s in self.loss.symbols]
        self.single = len(self.symbols) == 1
        self.rate = float(trace.optimizer.options["lr"])

    # -- small helpers ---------------------------------------------------------------------
    def assignments(self, values, exact=None) -> str:
        shown = [
            to_latex(e) if exact is not None else self.numbers.param_tex(v)
            for v, e in zip(values, exact or [None] * len(values), strict=True)
        ]
        return ", ".join(f"{s} = {v}" for s, v in zip(self.symbols, shown, strict=True))

    def point_of(self, point: StationaryPoint) -> str:
        return self.assignments(point.values, point.exact)

    def vector(self, entries, at=None) -> str:
        where = f"({', '.join(self.numbers.param_tex(v) for v in at)})" if at is not None else ""
        if self.single:
            return rf"L'{where} = {entries[0]}" if at is not None else str(entries[0])
        return rf"\nabla L{where} = \left({', '.join(str(e) for e in entries)}\right)"

    def figure(self, name: str, alt: str) -> Figure | None:
        path = self.figure_paths.get(name)
        return None if path is None else Figure(path, alt)

    # -- the lesson ------------------------------------------------------------------------
    def view(self, sections: tuple[str, ...]) -> LessonView:
        w = self.words
        loss_latex = f"L({', '.join(self.symbols)}) = {to_latex(self.loss.expr, self.loss.params)}"
        headings = {
            name: f"{w.lesson['numerals'][k]}. {self._heading(name)}"
            for k, name in enumerate(sections)
        }
        partials = tuple(self._partial(p, self.derivation) for p in self.derivation.partials)
        table, table_notes = self._step_table()
        rates_intro, rates_bullets, rates_notes, rates_table, rates_after = self._rates()
        batch_table, batch_notes = self._batches()
        opt_rules, opt_table, opt_notes = self._optimizers()
        land_intro, points_table, starts_intro, starts_table, land_notes = self._landscape()
        exercises, answers, variant_steps, variant_results = self._exercises()
        claims_table, claims_intro = self._claims()
        schedule_intro, schedule_table, schedule_notes = self._schedule()
        params_list = w.join([f"${s}$" for s in self.symbols])
        text_title = w("title", loss=f"L = {to_unicode(self.loss.expr, self.loss.params)}")
        return LessonView(
            language=w.language,
            front_matter=front_matter(
                text_title,
                w("description", loss=to_unicode(self.loss.expr, self.loss.params)),
                w.lesson["keywords"],
            ),
            title=w("title", loss=f"${loss_latex}$"),
            page_title=text_title,
            generated=w("generated"),
            sections=sections,
            headings=headings,
            loss_latex=loss_latex,
            intuition=(
                w("intuition.story"),
                w(f"intuition.mapping_{'one' if self.single else 'many'}", params=params_list),
            ),
            loss_notes=self._loss_notes(),
            loss_goal=w(f"loss.goal_{'one' if self.single else 'many'}", params=params_list),
            minimum_claim=self._minimum_claim(),
            single=self.single,
            gradient_meaning=w(
                "gradient.meaning_one" if self.single else "gradient.meaning_many",
                param=self.symbols[0],
            ),
            gradient_direction=w("gradient.direction_many"),
            gradient_operators=", ".join(p.operator for p in partials),
            partials=partials,
            gradient_vector=self.vector([p.textbook for p in partials]),
            gradient_at_start=w(
                f"gradient.at_start_{'one' if self.single else 'many'}",
                value=self.vector(
                    [self.numbers.gradient_tex(v) for v in self.trace.grad[0]],
                    at=self.trace.params[0],
                ),
            ),
            update_intro=w(f"update.intro_{'one' if self.single else 'many'}"),
            update_with_loss=w(f"update.with_this_loss_{'one' if self.single else 'many'}"),
            update_setting=w(
                "update.setting",
                rate=tex_number(self.rate),
                start=self.assignments(self.trace.params[0]),
                steps=w.steps(self.trace.steps),
            ),
            optimizer_intro=""
            if self.experiments.plain
            else w(
                "update.optimizer",
                name=_optimizer_name(self.trace.optimizer),
                torch=TORCH_CLASSES[self.trace.optimizer.name],
                settings=_code_settings(self.trace.optimizer),
            ),
            optimizer_lines=() if self.experiments.plain else update_lines(self.trace.optimizer),
            table=table,
            table_notes=table_notes,
            claims=claims_table,
            claims_intro=claims_intro,
            figures=self._figures(),
            descent_notes=self._descent_notes(),
            rates_intro=rates_intro,
            rates_bullets=rates_bullets,
            rates_notes=rates_notes,
            rates_table=rates_table,
            rates_after=rates_after,
            batch_intro=w("batch.intro", rows=self.experiments.rows),
            batch_table=batch_table,
            batch_notes=batch_notes,
            optimizers_intro=w("optimizers.intro", steps=w.steps(self.experiments.rate_steps)),
            optimizer_rules=opt_rules,
            optimizers_table=opt_table,
            optimizers_notes=opt_notes,
            landscape_intro=land_intro,
            points_table=points_table,
            starts_intro=starts_intro,
            starts_table=starts_table,
            landscape_notes=land_notes,
            exercises=exercises,
            answers=answers,
            variant_steps=variant_steps,
            variant_results=variant_results,
            summary=self._summary(partials),
            glossary=self._glossary(),
            schedule_intro=schedule_intro,
            schedule_table=schedule_table,
            schedule_notes=schedule_notes,
            newton_notes=self._newton(),
            backprop=self._backprop() if "backprop" in sections else "",
            words={
                "answers": w("answers"),
                "result": w("gradient.result"),
                "together": w("gradient.together"),
                "steps_intro": w("gradient.steps_intro"),
                "symbols": w("optimizers.symbols"),
                "glossary_intro": w("glossary.intro"),
            },
        )

    def _heading(self, name: str) -> str:
        if name == "gradient":
            return self.words(f"sections.gradient_{'one' if self.single else 'many'}")
        return self.words(f"sections.{name}")

    # -- the loss and its minimum ----------------------------------------------------------
    def _loss_notes(self) -> tuple[str, ...]:
        if not self.loss.data:
            return ()
        key = "loss.over_data" if _has_mean(self.loss.expr) else "loss.over_data_sum"
        return (self.words(key, rows=self.experiments.rows),)

    def _minimum_claim(self) -> str:
        w = self.words
        shape = self.experiments.landscape
        minima = shape.minima
        if shape.minimum is Minimum.GLOBAL:
            best = [p for p in minima if p.global_minimum]
            proof = w(f"loss.proof_{_proof_key(shape, self.loss, self.single)}")
            if len(best) == 1:
                return w(
                    "loss.global_one",
                    loss=self.numbers.loss_tex(best[0].loss),
                    point=self.point_of(best[0]),
                    proof=proof,
                )
            return w(
                "loss.global_several",
                loss=self.numbers.loss_tex(best[0].loss),
                count=len(best),
                points=w.join([f"${self.point_of(p)}$" for p in best]),
                proof=proof,
            )
        if shape.minimum is Minimum.UNBOUNDED_BELOW:
            where = self._approach(shape, "loss.unbounded_toward", "loss.unbounded_along")
            return w("loss.unbounded", where=where)
        if shape.minimum is Minimum.NOT_ATTAINED:
            return w(
                "loss.not_attained",
                infimum=self.numbers.loss_tex(shape.infimum),
                where=self._approach(shape, "loss.approached_toward", "loss.approached_along"),
            )
        if shape.minimum is Minimum.AT_EDGE:
            return w(
                "loss.at_edge",
                loss=self.numbers.loss_tex(shape.infimum),
                point=self.assignments(shape.approached),
            )
        if shape.minimum is Minimum.FOUND and len(minima) == 1:
            return w(
                "loss.found",
                point=self.point_of(minima[0]),
                loss=self.numbers.loss_tex(minima[0].loss),
            )
        if shape.minimum is Minimum.FOUND:
            return w("loss.found_several", count=len(minima))
        main = self.experiments.main
        if main.infimum_not_attained:
            direction = self.trace.params[-1] / max(_norm(self.trace.params[-1]), 1e-300)
            shown = r"\left(" + ", ".join(tex_number(round(d, 4)) for d in direction) + r"\right)"
            return w(
                "loss.not_attained",
                infimum="0",
                where=w("loss.approached_along", direction=shown),
            )
        if main.minimiser is not None:
            point = self.assignments(main.minimiser)
            return w("loss.found", point=point, loss=self.numbers.loss_tex(main.minimiser_loss))
        return ""

    def _approach(self, shape: Landscape, toward: str, along: str) -> str:
        where = shape.approached
        if where is None:
            return ""
        if len(where) == 1:
            end = tex_number(where[0])
            if math.isfinite(where[0]):
                end += "^{+}" if self.experiments.problem.start[0] > where[0] else "^{-}"
            return self.words(toward, symbol=self.symbols[0], end=end)
        direction = r"\left(" + ", ".join(tex_number(round(d, 4)) for d in where) + r"\right)"
        return self.words(along, direction=direction)

    # -- the derivation --------------------------------------------------------------------
    def _partial(self, partial: Partial, derivation: Derivation, name: str = "L") -> PartialView:
        params = derivation.loss.params
        symbol = to_latex(sympy.Symbol(partial.param))
        textbook = to_latex(partial.textbook, params)
        catalog = self.words.catalog
        counters: list[int] = []
        steps = []
        for line in partial_lines(partial, derivation, LATEX):
            counters = counters[: line.depth + 1]
            while len(counters) <= line.depth:
                counters.append(0)
            counters[line.depth] += 1
            label = ".".join(map(str, counters))
            rule = catalog["rules"][line.rule].format(u=f"${line.inner}$")
            steps.append(
                DerivationStep(
                    number=label,
                    heading=self.words("gradient.step", number=label, rule=rule),
                    fact=catalog["facts"].get(line.rule, ""),
                    latex=line.equation,
                )
            )
        bare = (partial.textbook.is_Atom or partial.textbook.is_Mul) and not (
            partial.textbook.could_extract_minus_sign()
        )
        body = textbook if bare else rf"\left({textbook}\right)"
        return PartialView(
            symbol=symbol,
            heading=self.words("gradient.with_respect_to", param=symbol),
            operator=operator(symbol, len(params) == 1, LATEX, name),
            textbook=textbook,
            steps=tuple(steps),
            update_rule=rf"{symbol} \leftarrow {symbol} - \eta \cdot {body}",
        )

    # -- the worked steps ------------------------------------------------------------------
    def _step_table(self) -> tuple[Table, tuple[str, ...]]:
        if (not self.experiments.plain or self.trace.schedule) and self.trace.worked:
            return self._worked_table(), self._table_notes()
        w, n, trace = self.words, self.numbers, self.trace
        d = "d" if self.single else r"\partial "
        header = [w("table.iteration")]
        header += [w("table.current", p=f"${s}$") for s in self.symbols]
        header += [w("table.loss")]
        header += [w("table.gradient", g=f"${d}L/{d}{s}$") for s in self.symbols]
        header += [w("table.update", p=f"${s}$") for s in self.symbols]
        updates = trace.steps if trace.status != "diverged" else trace.steps - 1
        indices: list[int | None] = list(range(max(updates, 0)))
        if len(indices) > TABLE_HEAD + TABLE_TAIL + 1:
            indices = [*indices[:TABLE_HEAD], None, *indices[-TABLE_TAIL:]]
        rate = number(self.rate)
        rows = []
        for t in indices:
            if t is None:
                rows.append(tuple("…" for _ in header))
                continue
            p, g, new = trace.params[t], trace.grad[t], trace.params[t + 1]
            loss = n.loss(trace.loss[t], _norm(g))
            row = [str(t), *map(n.param, p), loss, *map(n.gradient, g)]
            row += [
                f"{n.param(a)} − {rate}×{_wrapped(n.gradient(gv))} = {n.param(b)}"
                for a, gv, b in zip(p, g, new, strict=True)
            ]
            rows.append(tuple(row))
        return Table(tuple(header), tuple(rows)), self._table_notes()

    def _worked_table(self) -> Table:
        """The first steps of another optimizer: its state after each step (moments, buffers,
        accumulators, in the symbols of torch's pseudocode) and the new parameters."""
        w, n, trace = self.words, self.numbers, self.trace
        d = "d" if self.single else r"\partial "
        shown = [v.quantity for v in trace.worked[0].values if _tabled(v.quantity, trace)]
        header = [w("table.iteration")]
        header += [w("table.current", p=f"${s}$") for s in self.symbols]
        header += [w("table.loss")]
        header += [w("table.gradient", g=f"${d}L/{d}{s}$") for s in self.symbols]
        header += [f"${q.symbol}$" for q in shown]
        header += [w("table.new", p=f"${s}$") for s in self.symbols]
        rows = []
        for step in trace.worked:
            t = step.step - 1
            if t + 1 >= len(trace.params):
                break
            p, g = trace.params[t], trace.grad[t]
            row = [str(t), *map(n.param, p), n.loss(trace.loss[t], _norm(g)), *map(n.gradient, g)]
            row += [", ".join(map(text_number, np.atleast_1d(step[q.name]))) for q in shown]
            row += list(map(n.param, trace.params[t + 1]))
            rows.append(tuple(row))
        return Table(tuple(header), tuple(rows))

    def _table_notes(self) -> tuple[str, ...]:
        """What the main run did, a sentence for each fact that holds."""
        w, n, trace = self.words, self.numbers, self.trace
        facts = self.experiments.main
        notes: list[str] = []
        shown = len(trace.worked)
        if (not self.experiments.plain or trace.schedule) and 0 < shown < trace.steps:
            notes.append(w("table.first_steps", count=shown, steps=w.steps(trace.steps)))
        hazard = trace.hazard
        if trace.status == "diverged" and hazard is not None and hazard.kind != "overflow":
            operation, where = hazard_text(hazard, self.loss.params, w.catalog["words"]["row"])
            notes.append(
                w(
                    "table.hazard",
                    step=trace.steps,
                    operation=operation,
                    reason=w(f"table.hazard_{hazard.kind}"),
                    where=where,
                )
            )
            return tuple(notes)
        if facts.shape is Shape.STATIONARY_START:
            return (self._stationary_start(),)
        last = n.loss_tex(trace.loss[-1], _norm(trace.grad[-1]))
        if facts.unbounded_below:
            notes.append(w("table.unbounded", last=last))
        elif facts.infimum_not_attained:
            notes.append(w("table.not_attained", last=last, infimum=self._infimum_tex()))
        elif (
            facts.minimiser is None
            and facts.loss_increases == 0
            and facts.shape is not Shape.DIVERGES
        ):
            notes.append(w("table.heading_off", last=last))
        elif facts.loss_decreases == trace.steps and trace.steps > 0:
            first = n.loss_tex(trace.loss[0], _norm(trace.grad[0]))
            notes.append(w("table.fell", first=first, last=last))
        elif facts.loss_increases == 0 and facts.loss_decreases and trace.status != "diverged":
            first = n.loss_tex(trace.loss[0], _norm(trace.grad[0]))
            notes.append(w("table.never_rose", first=first, last=last))
            if facts.steps_shrink and trace.steps > 1 and facts.shape is Shape.MONOTONE:
                notes.append(w("table.shrinking"))
        if facts.loss_increases:
            notes.append(w("table.rose", count=facts.loss_increases, steps=w.steps(trace.steps)))
        point = None if facts.minimiser is None else self.assignments(facts.minimiser)
        if facts.crossings and point is not None:
            notes.append(w("table.crossed", point=point, count=w.times(facts.crossings)))
        if facts.shape is Shape.CYCLE:
            notes.append(self._cycle_note(facts))
        elif facts.shape is Shape.OVERSHOOTS and facts.crossings:
            notes.append(w("table.swings_shrink"))
        elif facts.shape is Shape.OSCILLATING:
            notes.append(w("table.oscillating"))
        if facts.shape is Shape.DIVERGES and facts.minimiser is not None:
            if trace.status == "diverged":
                notes.append(w("table.diverged_overflow", step=trace.steps))
            else:
                notes.append(
                    w(
                        "table.diverged_growing",
                        start_distance=n.param_tex(facts.start_distance),
                        distance=n.param_tex(facts.final_distance),
                    )
                )
            curvature = self.experiments.curvature
            if curvature is not None and curvature.exact and self.rate > 2 / curvature.largest:
                notes.append(
                    w(
                        "table.above_threshold",
                        rate=tex_number(self.rate),
                        limit=tex_number(2 / curvature.largest),
                    )
                )
        elif trace.status == "diverged":
            notes.append(w("table.diverged_overflow", step=trace.steps))
        if point is not None and facts.shape in (Shape.MONOTONE, Shape.OVERSHOOTS):
            if facts.converged:
                notes.append(
                    w(
                        "table.converged",
                        step=facts.converged_at,
                        tolerance="$10^{-6}$",
                        point=point,
                    )
                )
            else:
                notes.append(
                    w(
                        "table.not_converged",
                        steps=w.steps(trace.steps),
                        distance=n.param_tex(facts.final_distance),
                        start_distance=n.param_tex(facts.start_distance),
                        point=point,
                    )
                )
        if hazard is not None and hazard.kind == "abs":
            operation, where = hazard_text(hazard, self.loss.params, w.catalog["words"]["row"])
            notes.append(w("table.kink", operation=operation, where=where))
        return tuple(notes)

    def _stationary_start(self) -> str:
        start = self.trace.params[0]
        kind = "point"
        for p in self.experiments.landscape.points:
            if np.allclose(
                p.values, start, rtol=0, atol=self.experiments.problem.resolution.params
            ):
                kind = {
                    Kind.SADDLE: "saddle",
                    Kind.MAXIMUM: "maximum",
                    Kind.MINIMUM: "minimum",
                }.get(p.kind, "point")
        return self.words(
            "table.stationary_start",
            start=self.assignments(start),
            kind=self.words(f"table.stationary_kind_{kind}"),
        )

    def _cycle_note(self, facts: Behaviour) -> str:
        """The step from which the parameters repeat, and the values they repeat."""
        period, params = facts.period, self.trace.params
        floor = self.experiments.problem.resolution.params
        first = len(params) - 1 - period
        while first >= 0 and np.linalg.norm(params[first] - params[first + period]) <= floor:
            first -= 1
        first += 1
        values = ", \\; ".join(f"({self.assignments(p)})" for p in params[first : first + period])
        return self.words("table.cycle", from_step=first, period=period, values=values)

    def _infimum_tex(self) -> str:
        shape = self.experiments.landscape
        if shape.minimum is Minimum.NOT_ATTAINED and shape.infimum is not None:
            return self.numbers.loss_tex(shape.infimum)
        return "0"

    # -- a source's claims ----------------------------------------------------------------------
    def _claims(self) -> tuple[Table | None, str]:
        if not self.claims:
            return None, ""
        w = self.words
        rows = []
        for claim in self.claims:
            if claim.step >= len(self.trace.params):
                raise DeriveError(
                    f"a claim is about step {claim.step}, but the run has {self.trace.steps} steps"
                )
            true = self.trace.params[claim.step][self.trace.param_names.index(claim.param)]
            verdict = w("claims.holds" if claim_holds(claim, self.trace) else "claims.corrected")
            symbol = to_latex(sympy.Symbol(claim.param))
            rows.append(
                (
                    str(claim.step),
                    f"${symbol}$",
                    claim.text.replace("-", "−"),
                    self.numbers.param(true),
                    verdict,
                )
            )
        wrong = sum(not claim_holds(c, self.trace) for c in self.claims)
        intro = (
            w("claims.intro")
            + " "
            + (w("claims.some_wrong", count=wrong) if wrong else w("claims.all_right"))
        )
        header = tuple(w(f"claims.{k}") for k in ("step", "parameter", "source", "true", "check"))
        return Table(header, tuple(rows)), intro

    # -- the descent drawn -----------------------------------------------------------------
    def _figures(self) -> dict[str, Figure]:
        w = self.words
        alts = {
            "graph": w("loss.curve"),
            "descent": w("descent.path_alt"),
            "loss": w("descent.loss_alt"),
            "params": w("descent.params_alt"),
            "fit": w("descent.fit_alt"),
            "rates": w("rates.panels_alt"),
            "batch": w("batch.alt"),
            "optimizers": w("optimizers.alt"),
            "starts": w("landscape.alt"),
            "schedule": w("schedule.alt"),
        }
        return {
            name: figure
            for name, alt in alts.items()
            if (figure := self.figure(name, alt)) is not None
        }

    def _descent_notes(self) -> dict[str, str]:
        w, n, trace = self.words, self.numbers, self.trace
        notes = {
            "path": w("descent.path_caption"),
            "loss": w(
                "descent.loss_caption",
                first=n.loss_tex(trace.loss[0]),
                steps=w.steps(trace.steps),
                last=n.loss_tex(trace.loss[-1], _norm(trace.grad[-1])),
                point=self.assignments(trace.params[-1]),
            )
            if np.all(np.isfinite(trace.params[-1]))
            else "",
            "contour": w("loss.contour"),
            "fit": "",
        }
        model = self.experiments.model
        if model is not None and "fit" in self.figure_paths:
            fitted = _fitted(model.output, trace, n)
            notes["fit"] = w(
                f"descent.fit_{model.kind}", model=to_latex(fitted), target=model.target
            )
        return notes

    # -- learning rates --------------------------------------------------------------------
    def _rates(self):
        w = self.words
        curvature = self.experiments.curvature
        bullets: list[str] = []
        notes: list[str] = []
        if not self.experiments.plain:
            intro = w(
                "rates.other_optimizer",
                name=_optimizer_name(self.trace.optimizer),
                rate=tex_number(self.rate),
            )
        elif curvature is None:
            intro = w("rates.none", reason=self._no_curvature_reason(), rate=tex_number(self.rate))
        else:
            intro, bullets, notes = self._thresholds(curvature)
        steps = self.experiments.rate_steps
        runs = (
            w("rates.runs", steps=w.steps(steps))
            if steps == self.trace.steps
            else w("rates.runs_longer", steps=w.steps(steps), main=w.steps(self.trace.steps))
        )
        notes.append(runs)
        rows = []
        closest = _closest(self.experiments.rates)
        for run in self.experiments.rates:
            rate = float(run.trace.optimizer.options["lr"])
            rows.append(
                (
                    text_number(rate),
                    w(f"names.{_rate_name(run.behaviour, run is closest)}"),
                    self.happened(run.behaviour),
                    self.numbers.loss(run.trace.loss[-1], _norm(run.trace.grad[-1])),
                )
            )
        after = ()
        if closest is not None and len(self.experiments.rates) > 1:
            rate = tex_number(float(closest.trace.optimizer.options["lr"]))
            facts = closest.behaviour
            after = (
                w("rates.first", rate=rate, step=facts.converged_at)
                if facts.converged
                else w("rates.fastest", rate=rate),
            )
        header = tuple(w(f"rates.{k}") for k in ("rate", "name", "happened", "final_loss"))
        return intro, tuple(bullets), tuple(notes), Table(header, tuple(rows)), after

    def _no_curvature_reason(self) -> str:
        shape = self.experiments.landscape
        if shape.minimum in (Minimum.UNBOUNDED_BELOW, Minimum.NOT_ATTAINED) or (
            self.experiments.main.infimum_not_attained
        ):
            return self.words("rates.none_no_minimum")
        main = self.experiments.main
        if main.minimiser is not None and any(
            p.kink and p.values == main.minimiser for p in shape.points
        ):
            return self.words("rates.none_kink")
        return self.words("rates.none_unknown")

    def _thresholds(self, curvature: Curvature):
        w = self.words
        one = len(curvature.eigenvalues) == 1
        low, high = 1 / curvature.largest, 2 / curvature.largest
        lam = "L''" if one else r"\lambda_{\max}"
        values = {
            "curvature": tex_number(curvature.largest),
            "smallest": tex_number(curvature.smallest),
            "largest": tex_number(curvature.largest),
            "condition": tex_number(curvature.condition),
            "point": self.assignments(curvature.at),
        }
        kind = "exact" if curvature.exact else "local"
        intro = w(f"rates.{kind}_{'one' if one else 'many'}", **values)
        bullets = [
            w("rates.monotone_below", lam=lam, limit=tex_number(low)),
            w("rates.overshoot_between", low=tex_number(low), high=tex_number(high)),
            w("rates.cycle_at", high=tex_number(high)),
            w("rates.diverge_above", lam=lam, high=tex_number(high)),
        ]
        notes = []
        factor = curvature.contraction(curvature.best_step)
        if one:
            notes.append(w("rates.best_one", best=tex_number(low)))
        else:
            notes.append(
                w(
                    "rates.best_many",
                    best=tex_number(curvature.best_step),
                    factor=tex_number(factor),
                )
            )
        notes.append(
            self._your_rate(curvature, lam, low, high, "" if curvature.exact else "_local")
        )
        if not curvature.exact:
            notes.append(w("rates.local_caveat"))
        return intro, bullets, notes

    def _your_rate(self, curvature: Curvature, lam: str, low: float, high: float, near: str) -> str:
        """Where the lesson's η lies; `near` is "_local" when the thresholds hold only near
        the minimum."""
        rate = self.rate

        def w(key: str, **values) -> str:
            return self.words(key + near, **values)

        same = lambda a, b: abs(a - b) <= 1e-12 * max(abs(a), abs(b))  # noqa: E731
        factor = tex_number(curvature.contraction(rate))
        values = {"rate": tex_number(rate), "lam": lam, "limit": tex_number(low)}
        if len(curvature.eigenvalues) == 1 and same(rate, low):
            return w("rates.yours_at_best", **values)
        if same(rate, high):
            return w("rates.yours_at_cycle", **values)
        if rate < low or same(rate, low):
            return w("rates.yours_below", factor=factor, **values)
        if rate < high:
            return w(
                "rates.yours_between",
                low=tex_number(low),
                high=tex_number(high),
                factor=factor,
                **values,
            )
        return w("rates.yours_above", high=tex_number(high), **values)

    def happened(self, facts: Behaviour) -> str:
        """A run's facts in a few words: shape, then the measured details that hold."""
        w = self.words
        parts = []
        if facts.shape is Shape.CYCLE:
            parts.append(w("happened.cycle", period=facts.period))
        else:
            parts.append(w(f"happened.{facts.shape.value}"))
        if facts.unbounded_below:
            parts.append(w("happened.unbounded"))
        elif facts.infimum_not_attained:
            parts.append(w("happened.not_attained", infimum=self.numbers.loss(0.0)))
        if facts.escaped_saddle:
            parts.append(w("happened.escapes"))
        if facts.crossings and facts.shape is not Shape.CYCLE:
            parts.append(w("happened.crossings", count=w.times(facts.crossings)))
        if facts.loss_increases and facts.shape is not Shape.DIVERGES:
            parts.append(w("happened.rises", count=w.steps(facts.loss_increases)))
        if facts.shape in (Shape.MONOTONE, Shape.OVERSHOOTS) and facts.minimiser is not None:
            if facts.converged:
                parts.append(w("happened.converged_at", step=facts.converged_at))
            else:
                parts.append(w("happened.slow", steps=w.steps(facts.steps)))
        return w("happened.separator").join(parts)

    # -- backpropagation -----------------------------------------------------------------------
    def _backprop(self) -> str:
        """The loss as a computational graph at the start: the backprop document's parts, one
        heading level down, without its title and exercises."""
        graph = self.experiments.graph
        path = self.figure_paths.get("backprop")
        if graph is None or path is None:
            return ""
        view = backprop_view(graph, None, self.words.language, path)
        return render_backprop(replace(view, embedded=True, level="###")).strip() + "\n"

    # -- a learning-rate schedule ------------------------------------------------------------
    def _schedule(self):
        schedule = self.trace.schedule
        constant = self.experiments.constant
        if schedule is None or constant is None:
            return (), None, ()
        w, n = self.words, self.numbers
        interval = w(f"schedule.per_{self.trace.schedule_interval}")
        arguments = ", ".join(f"{k}={v!r}" for k, v in _schedule_arguments(schedule).items())
        intro = (
            w(
                "schedule.intro",
                name=schedule.name,
                torch=schedule.torch_class,
                arguments=arguments,
                interval=interval,
            ),
        )
        updates = self.trace.steps  # lr[t] is the rate of the update from step t to t + 1
        shown = sorted({*range(min(6, updates)), updates - 1}) if updates else []
        rows = tuple((str(t), text_number(float(self.trace.lr[t]))) for t in shown)
        table = Table((w("schedule.step"), w("schedule.rate")), rows)
        main, steady = self.experiments.main, constant.behaviour
        last = n.loss_tex(self.trace.loss[-1], _norm(self.trace.grad[-1]))
        steady_last = n.loss_tex(constant.trace.loss[-1], _norm(constant.trace.grad[-1]))
        notes = (
            w("schedule.scheduled", happened=self.happened(main), loss=last),
            w(
                "schedule.constant",
                rate=tex_number(float(self.trace.optimizer.options["lr"])),
                happened=self.happened(steady),
                loss=steady_last,
            ),
        )
        return intro, table, notes

    def _newton(self) -> tuple[str, ...]:
        """Newton's method from the same start: what using the curvature itself does."""
        stepped, facts = self.experiments.newton, self.experiments.newton_behaviour
        if stepped is None or facts is None:
            return ()
        w = self.words
        notes = [w("newton.intro")]
        if stepped.status == "singular":
            notes.append(w("newton.singular", step=stepped.steps))
        elif facts.converged and facts.converged_at == 1 and self.experiments.landscape.quadratic:
            notes.append(w("newton.one_step"))
        else:
            notes.append(
                w("newton.run", steps=w.steps(stepped.steps), happened=self.happened(facts))
            )
        kinds = {k for k in stepped.kinds[:-1] if k is not None}
        if any(k.value != "positive_definite" for k in kinds):
            notes.append(w("newton.not_descent"))
        return tuple(notes)

    # -- batches ---------------------------------------------------------------------------
    def _batches(self):
        runs = self.experiments.batches
        if not runs:
            return None, ()
        w, rows_total = self.words, self.experiments.batch_rows
        rows = []
        for run in runs:
            size = run.trace.batch_size or rows_total
            per_epoch = -(-rows_total // size)
            rows.append(
                (
                    w(f"batch_names.{run.label}"),
                    str(size),
                    str(per_epoch),
                    str(run.trace.steps // per_epoch),
                    str(run.trace.steps),
                    str(run.behaviour.loss_increases),
                    self.numbers.loss(run.trace.loss[-1], _norm(run.trace.grad[-1])),
                )
            )
        header = tuple(
            w(f"batch.{k}")
            for k in ("method", "size", "per_epoch", "epochs", "updates", "rises", "final_loss")
        )
        notes = [w("batch.seeded")]
        if rows_total < self.experiments.rows:
            notes.insert(0, w("batch.sampled", sample=rows_total, rows=self.experiments.rows))
        stochastic = next((r for r in runs if r.label == "stochastic"), None)
        full = next((r for r in runs if r.label == "batch"), None)
        if stochastic is not None and stochastic.behaviour.loss_increases:
            notes.append(w("batch.noisy"))
        if full is not None and full.behaviour.loss_increases == 0:
            notes.append(w("batch.batch_smooth"))
        return Table(header, tuple(rows)), tuple(notes)

    # -- optimizers ------------------------------------------------------------------------
    def _optimizers(self):
        runs = {run.label: run for run in self.experiments.optimizers}
        if not runs:
            return (), None, ()
        w = self.words
        rules = []
        rows = []
        for run in self.experiments.optimizers:
            name = (
                TORCH_CLASSES[run.trace.optimizer.name]
                if run.label == "own"
                else w(f"optimizer_names.{run.label}")
            )
            settings = _settings(run)
            rules.append((name, settings, r" \qquad ".join(update_lines(run.trace.optimizer))))
            rows.append(
                (
                    name,
                    f"`{settings}`",
                    self.happened(run.behaviour),
                    self.numbers.loss(run.trace.loss[-1], _norm(run.trace.grad[-1])),
                )
            )
        header = tuple(
            w(f"optimizers.{k}") for k in ("optimizer", "settings", "happened", "final_loss")
        )
        notes = []
        momentum, nesterov, adam = runs.get("momentum"), runs.get("nesterov"), runs.get("adam")
        if momentum is not None:
            facts = momentum.behaviour
            if facts.shape is Shape.DIVERGES:
                notes.append(
                    w("optimizers.diverged", name=w("optimizer_names.momentum").capitalize())
                )
            elif facts.crossings:
                notes.append(
                    w(
                        "optimizers.momentum_overshoots",
                        crossings=w.times(facts.crossings),
                        rises=facts.loss_increases,
                    )
                )
            elif facts.loss_increases:
                notes.append(w("optimizers.momentum_rises", rises=facts.loss_increases))
            else:
                notes.append(w("optimizers.momentum_no_overshoot"))
        if momentum is not None and nesterov is not None:
            m, k = momentum.behaviour, nesterov.behaviour
            if k.shape is Shape.DIVERGES and m.shape is not Shape.DIVERGES:
                notes.append(
                    w("optimizers.diverged", name=w("optimizer_names.nesterov").capitalize())
                )
            elif m.loss_increases or k.loss_increases:
                key = (
                    "nesterov_less" if k.loss_increases < m.loss_increases else "nesterov_not_less"
                )
                notes.append(
                    w(f"optimizers.{key}", nesterov=k.loss_increases, momentum=m.loss_increases)
                )
        if adam is not None and adam.trace.steps >= 3:
            moves = np.linalg.norm(np.diff(adam.trace.params[:4], axis=0), axis=1)
            rate = float(adam.trace.optimizer.options["lr"])
            if np.all(np.abs(moves / rate - 1) <= 0.5):
                shown = ", ".join(self.numbers.param(v) for v in moves)
                notes.append(w("optimizers.adam_steps", moves=shown))
        return tuple(rules), Table(header, tuple(rows)), tuple(notes)

    # -- minima and saddles ----------------------------------------------------------------
    def _landscape(self):
        w = self.words
        shape = self.experiments.landscape
        starts = self.experiments.starts
        if not starts:
            return (), None, "", None, ()
        intro = [w("landscape.intro" if self.single else "landscape.intro_many")]
        if not shape.complete and shape.search_bound is not None:
            intro.append(
                w(
                    "landscape.incomplete",
                    low=tex_number(-shape.search_bound),
                    high=tex_number(shape.search_bound),
                )
            )
        points = sorted(
            shape.points,
            key=lambda p: float(np.linalg.norm(np.array(p.values) - self.trace.params[0])),
        )[:MAX_POINTS_SHOWN]
        points.sort(key=lambda p: p.values)
        point_rows = tuple(
            (f"${self.point_of(p)}$", self._kind_word(p), f"${self.numbers.loss_tex(p.loss)}$")
            for p in points
        )
        points_table = Table(
            tuple(w(f"landscape.{k}") for k in ("point", "kind", "loss")), point_rows
        )
        steps = starts[0].trace.steps
        starts_intro = w("landscape.starts_intro", rate=tex_number(self.rate), steps=w.steps(steps))
        start_rows = tuple(self._start_row(run) for run in starts)
        starts_table = Table(
            tuple(w(f"landscape.{k}") for k in ("start", "end", "outcome")), start_rows
        )
        return tuple(intro), points_table, starts_intro, starts_table, self._landscape_notes(starts)

    def _kind_word(self, point: StationaryPoint) -> str:
        w = self.words
        if point.kink and point.kind in (Kind.MINIMUM, Kind.MAXIMUM):
            return w(f"kinds.kink_{point.kind.value}")
        if point.kind is not Kind.MINIMUM:
            return w(f"kinds.{point.kind.value}")
        if point.global_minimum:
            return w("kinds.global_minimum")
        others = [p for p in self.experiments.landscape.minima if p.loss < point.loss]
        return w("kinds.local_minimum") if others else w("kinds.minimum")

    def _start_row(self, run: StartRun) -> tuple[str, str, str]:
        w = self.words
        end = run.trace.params[-1]
        start = f"${self.assignments(run.start)}$"
        if run.trace.status == "diverged":
            return start, w("landscape.diverged"), self.happened(run.behaviour)
        if not np.all(np.abs(end) < 1e6):
            return start, w("landscape.infinity"), self.happened(run.behaviour)
        where = f"${self.assignments(end)}$"
        if run.reached is not None:
            outcome = w(
                "landscape.reached",
                kind=self._kind_word(run.reached),
                point=self.point_of(run.reached),
            )
        else:
            outcome = self.happened(run.behaviour)
        return start, where, outcome

    def _landscape_notes(self, starts: tuple[StartRun, ...]) -> tuple[str, ...]:
        w = self.words
        notes = []
        in_basins = [run for run in starts if run.basin is not None]
        if in_basins:
            strays = [run for run in in_basins if run.reached is not run.basin]
            if not strays and all(run.reached is not None for run in in_basins):
                notes.append(w("landscape.own_valley"))
            for run in strays:
                if run.reached is None:
                    continue
                notes.append(
                    w(
                        "landscape.other_valley",
                        start=self.assignments(run.start),
                        basin=self.point_of(run.basin),
                        reached=self.point_of(run.reached),
                    )
                )
        saddles = [p for p in self.experiments.landscape.points if p.kind is Kind.SADDLE]
        if saddles and len(starts) == 2 and not self.single:
            on, beside = starts
            if on.reached is not None and on.reached.kind is Kind.SADDLE:
                notes.append(w("landscape.saddle_stops", start=self.assignments(on.start)))
            else:
                notes.append(w("landscape.saddle_escapes", start=self.assignments(on.start)))
            if beside.behaviour.escaped_saddle:
                notes.append(w("landscape.saddle_leaves", start=self.assignments(beside.start)))
        return tuple(notes)

    # -- exercises -------------------------------------------------------------------------
    def _exercises(self):
        w, n, trace = self.words, self.numbers, self.trace
        last, slope = trace.params[-1], trace.grad[-1]
        exercises, answers = [], []
        finite = bool(np.all(np.isfinite(last)) and np.all(np.isfinite(slope)))
        if finite:
            following = last - self.rate * slope
            exercises.append(
                w(
                    "exercises.next",
                    steps=w.steps(trace.steps),
                    at=self.assignments(last),
                    rate=tex_number(self.rate),
                    next=trace.steps + 1,
                )
            )
            answers.append(
                (
                    w(
                        f"exercises.answer_next_{'one' if self.single else 'many'}",
                        gradient=self.vector([n.gradient_tex(v) for v in slope], at=last),
                    ),
                    tuple(
                        f"{s} = {n.param_tex(a)} - {tex_number(self.rate)} \\times "
                        f"{_paren(n.gradient_tex(g))} = {n.param_tex(b)}"
                        for s, a, g, b in zip(self.symbols, last, slope, following, strict=True)
                    ),
                )
            )
        slower = min(
            self.experiments.rates, key=lambda r: r.trace.optimizer.options["lr"], default=None
        )
        if slower is not None and len(slower.trace.params) > 2:
            other = tex_number(float(slower.trace.optimizer.options["lr"]))
            exercises.append(
                w("exercises.other_rate", start=self.assignments(trace.params[0]), rate=other)
            )
            answers.append(
                (
                    w(
                        "exercises.answer_other",
                        rate=other,
                        first=self.assignments(slower.trace.params[1]),
                        second=self.assignments(slower.trace.params[2]),
                    ),
                    (),
                )
            )
        variant = self.experiments.variant
        penalised = (
            rf"\tilde{{L}}({', '.join(self.symbols)}) = "
            + to_latex(self.loss.expr, self.loss.params)
            + rf" + \frac{{1}}{{10}} {self.symbols[0]}^{{2}}"
        )
        exercises.append(
            w(f"exercises.variant_{'one' if self.single else 'many'}", variant=penalised)
        )
        answers.append((w("exercises.answer_variant"), ()))
        views = [self._partial(p, variant, r"\tilde{L}") for p in variant.partials]
        steps = tuple(
            DerivationStep(
                number=f"{k}.{s.number}" if len(views) > 1 else s.number,
                heading=s.heading,
                fact="",
                latex=s.latex,
            )
            for k, v in enumerate(views, 1)
            for s in v.steps
        )
        results = tuple(f"{v.operator} = {v.textbook}" for v in views)
        return tuple(exercises), tuple(answers), steps, results

    # -- summary and glossary --------------------------------------------------------------
    def _summary(self, partials: tuple[PartialView, ...]) -> Table:
        w, n, trace = self.words, self.numbers, self.trace
        rows = [(w("summary.loss"), f"${to_latex(self.loss.expr, self.loss.params)}$")]
        derivative = w("summary.derivative" if self.single else "summary.partial")
        rows += [(derivative, f"${p.operator} = {p.textbook}$") for p in partials]
        rows += [(w("summary.update"), f"${p.update_rule}$") for p in partials]
        rows.append((w("summary.rate"), w("summary.rate_meaning", rate=tex_number(self.rate))))
        if np.all(np.isfinite(trace.params[-1])):
            rows.append(
                (
                    w("summary.result"),
                    w(
                        "summary.result_value",
                        steps=w.steps(trace.steps),
                        point=self.assignments(trace.params[-1]),
                        loss=n.loss_tex(trace.loss[-1], _norm(trace.grad[-1])),
                    ),
                )
            )
        rows.append((w("summary.behaviour"), self.happened(self.experiments.main)))
        return Table((w("summary.concept"), w("summary.example")), tuple(rows))

    def _glossary(self) -> tuple[str, ...]:
        """The definition of every behaviour word this lesson uses, in the vocabulary's order."""
        used: set[str] = set()
        runs = [self.experiments.main]
        runs += [r.behaviour for r in (*self.experiments.rates, *self.experiments.optimizers)]
        runs += [r.behaviour for r in self.experiments.batches]
        runs += [r.behaviour for r in self.experiments.starts]
        for facts in runs:
            used.add(facts.shape.value)
            if facts.shape in (Shape.MONOTONE, Shape.OVERSHOOTS) and facts.minimiser is not None:
                used.add("converged" if facts.converged else "slow")
            if facts.unbounded_below:
                used.add("unbounded")
            if facts.infimum_not_attained:
                used.add("not_attained")
            if facts.escaped_saddle:
                used.add("escapes")
        order = (
            "monotone",
            "overshoots",
            "oscillating",
            "cycle",
            "diverges",
            "stationary_start",
            "converged",
            "slow",
            "unbounded",
            "not_attained",
            "escapes",
        )
        return (
            *(self.words(f"glossary.{key}") for key in order if key in used),
            self.words("glossary.noise"),
        )


# -- helpers -----------------------------------------------------------------------------------


def _settings(run: Run) -> str:
    """The optimizer's settings as written in torch code: lr=0.1, momentum=0.9."""
    return _code_settings(run.trace.optimizer)


def _code_settings(optimizer: Optimizer) -> str:
    """lr=0.1, momentum=0.9: the options that differ from torch's defaults, and the rate, and
    Adam's betas and eps (the values its rule shows)."""
    defaults = DEFAULTS[optimizer.name]
    options = optimizer.options
    shown = {"lr": options["lr"]}
    for key, value in options.items():
        keep = key in ("betas", "eps") and optimizer.name in ("adam", "adamw")
        if key != "lr" and (value != defaults[key] or keep):
            shown[key] = tuple(value) if isinstance(value, list) else value
    return ", ".join(f"{k}={v!r}" for k, v in shown.items())


def _optimizer_name(optimizer: Optimizer) -> str:
    """torch's class name, with its variant: SGD with momentum=0.9, Adam."""
    return f"torch.optim.{TORCH_CLASSES[optimizer.name]}"


def _tabled(quantity: Quantity, trace: Trace) -> bool:
    """A step table shows what torch keeps between steps and what its documentation names;
    the rate only when a schedule changes it."""
    if quantity.name == "lr":
        return trace.schedule is not None
    return quantity.where in (Where.STATE, Where.DOCUMENTED)


def _schedule_arguments(schedule) -> dict[str, object]:
    return {f.name: getattr(schedule, f.name) for f in fields(schedule)}


def _rate_name(facts: Behaviour, fastest: bool) -> str:
    """A rate named by what it did; without a minimum to reach, no rate is too small or too
    large, and none is named."""
    if facts.minimiser is None or facts.shape is Shape.STATIONARY_START:
        return "none"
    if facts.shape in (Shape.DIVERGES, Shape.OSCILLATING, Shape.CYCLE):
        return "too_large"
    if facts.shape is Shape.OVERSHOOTS:
        return "large"
    if facts.minimiser is None:
        return "none"
    if not facts.converged:
        return "too_small"
    return "fast" if fastest else "good"


def _closest(runs: tuple[Run, ...]) -> Run | None:
    """The run that did best: the first to get within tolerance, or, when none did, the one
    that ended nearest its minimiser."""
    converged = [r for r in runs if r.behaviour.converged]
    if converged:
        return min(converged, key=lambda r: r.behaviour.converged_at)
    measured = [
        r
        for r in runs
        if r.behaviour.final_distance is not None and r.behaviour.shape is not Shape.DIVERGES
    ]
    if not measured:
        return None
    return min(measured, key=lambda r: r.behaviour.final_distance)


def _has_mean(expr: sympy.Expr) -> bool:
    """A mean over the data: some product holds 1/n."""
    return any(
        isinstance(term, sympy.Mul) and (1 / N_ROWS) in term.args
        for term in sympy.preorder_traversal(expr)
    )


def _proof_key(shape: Landscape, loss, single: bool) -> str:
    if shape.quadratic:
        return "quadratic_one" if single else "quadratic"
    if single:
        return "ends"
    pieces = [term for term in sympy.Add.make_args(loss.expr)]
    separable = all(len([s for s in loss.symbols if t.has(s)]) <= 1 for t in pieces)
    return "separable" if separable else "bound"


def _fitted(output: sympy.Expr, trace: Trace, numbers: Numbers) -> sympy.Expr:
    """The model with the final parameters, each rounded as the tables print it."""
    floor = numbers.resolution.params
    values = {
        sympy.Symbol(name, real=True): sympy.Float(
            number(numbers._chop(v, floor)).replace("×10^", "e")
        )
        for name, v in zip(trace.param_names, trace.params[-1], strict=True)
    }
    return output.xreplace(values)


def _norm(vector) -> float:
    with np.errstate(over="ignore"):  # a diverged run's gradient: inf, told apart below
        value = float(np.linalg.norm(vector))
    return value if math.isfinite(value) else 0.0


def _wrapped(text: str) -> str:
    return f"({text})" if text.startswith("−") else text


def _paren(text: str) -> str:
    return f"({text})" if text.startswith("-") else text


def claim_holds(claim: Claim, trace: Trace) -> bool:
    """True when the printed value is the true one rounded to the digits it shows."""
    decimals = len(claim.text.split(".")[1]) if "." in claim.text else 0
    true = float(trace.params[claim.step][trace.param_names.index(claim.param)])
    return abs(true - claim.value) <= 0.5 * 10**-decimals * (1 + 1e-9)


# -- rendering ---------------------------------------------------------------------------------


def render_markdown(view: LessonView) -> str:
    return template("lesson.md.j2").render(lesson=view)


def applicable_sections(
    experiments: Experiments, over_data: bool, chosen: tuple[str, ...] | None, claims: bool = False
) -> tuple[str, ...]:
    """The sections that apply to this loss, in order, narrowed to `chosen` when given."""
    applies = {
        "batch": over_data and bool(experiments.batches),
        "landscape": bool(experiments.starts),
        "claims": claims,
        "schedule": experiments.constant is not None,
        "backprop": experiments.graph is not None,
    }
    wanted = chosen or SECTIONS
    return tuple(s for s in SECTIONS if s in wanted and applies.get(s, True))


def figure_words(language: str, experiments: Experiments, trace: Trace) -> dict[str, object]:
    """The words figures carry, titles chosen from facts: "the loss falls at every step" only
    when it did, "the parameters settle" only when they converged."""
    w = Words(language)
    main = experiments.main
    falls = main.loss_increases == 0 and trace.status != "diverged" and trace.steps > 0
    words = dict(w.lesson["figures"])
    words["main_loss_title"] = w("figures.loss_falls_title" if falls else "figures.loss_title")
    words["main_params_title"] = w(
        "figures.params_settle_title" if main.converged else "figures.params_title"
    )
    words["rate_labels"] = [behaviour_label(w, r.behaviour) for r in experiments.rates]
    words["batch_labels"] = [w(f"batch_names.{r.label}") for r in experiments.batches]
    if experiments.rows > BATCH_ROWS:  # the fitted-model figure shows the batch sample's points
        words["data"] = w("figures.data_sample", sample=BATCH_ROWS, rows=experiments.rows)
    words["optimizer_labels"] = [
        TORCH_CLASSES[r.trace.optimizer.name]
        if r.label == "own"
        else w(f"optimizer_names.{r.label}")
        for r in experiments.optimizers
    ]
    return words


def behaviour_label(words: Words, facts: Behaviour) -> str:
    """The short behaviour word of a run (figure panels)."""
    if facts.shape is Shape.CYCLE:
        return words("behaviour.cycle")
    label = words(f"behaviour.{facts.shape.value}")
    if facts.unbounded_below:
        label += ", " + words("behaviour.unbounded")
    elif facts.shape in (Shape.MONOTONE, Shape.OVERSHOOTS) and facts.minimiser is not None:
        label += ", " + words("behaviour.converged" if facts.converged else "behaviour.slow")
    return label
