"""The `derive` command. Files, the console and exit codes live here, nowhere else.

Exit codes: 0 success, 2 bad input (one line on stderr, plus a caret line for text input).
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import difflib
import gc
import itertools
import json
import math
import os
import signal
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

# Only what builds the parser is imported here: each command imports its own stages when it
# runs, so `derive --help` and a refused input do not pay for matplotlib, Jinja or the course.
from derive.core.errors import DeriveError
from derive.core.schedules import SCHEDULES
from derive.show.sections import SECTIONS

if TYPE_CHECKING:
    from derive.core.descend import Trace
    from derive.core.optimizers import Optimizer

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
# Copies of the stages' names, so that the parser loads neither Jinja, nor NumPy, nor the grader
# (tests/test_cli_start.py holds each equal to its source).
LANGUAGES = ("zh", "en")  # derive.show.catalog.LANGUAGES
OPTIMIZERS = (  # derive.core.optimizers.DEFAULTS, torch.optim's order
    "sgd",
    "adagrad",
    "rmsprop",
    "adam",
    "adamw",
    "adadelta",
    "adamax",
    "nadam",
    "radam",
    "rprop",
    "asgd",
)
LANGUAGE_CHOICES = {"zh": ("zh",), "en": ("en",), "all": ("zh", "en")}
TIME_LIMIT = 10.0  # derive.app.grading.TIME_LIMIT
MAX_STEPS = 1_000_000


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line and exit code 2, like every bad input."""

    def error(self, message: str):
        raise DeriveError(f"{message} (see {self.prog} --help)")

    def parse_known_args(self, args=None, namespace=None):
        """An option this command does not have is refused with the nearest one it has, before
        argparse would complain of a missing one (`--lsos w` is a typo, not a missing --loss)."""
        if self._subparsers is None and args is not None:  # a command's own parser
            for token in itertools.takewhile(lambda t: t != "--", args):
                self._refuse_unknown(token)
        namespace, extras = super().parse_known_args(args, namespace)
        for extra in extras:
            self._refuse_unknown(extra)
        return namespace, extras

    def _check_value(self, action: argparse.Action, value) -> None:
        """`--optimizer adm`: argparse's refusal, with the nearest choice first."""
        if action.choices is not None and value not in action.choices:
            hint = _did_you_mean(value, action.choices)
            known = ", ".join(map(str, action.choices))
            raise argparse.ArgumentError(
                action, f"invalid choice: {value!r}{hint} (choose from {known})"
            )

    def _refuse_unknown(self, token: str) -> None:
        flag = token.partition("=")[0]
        known = self._option_string_actions
        if flag.startswith("--") and not any(option.startswith(flag) for option in known):
            self.error(f"unknown option {flag}{_did_you_mean(flag, known)}")


def _did_you_mean(word: str, known) -> str:
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, not {text!r}")
    return value


def _step_count(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= MAX_STEPS:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to {MAX_STEPS}")
    return int(text)


def _names(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise argparse.ArgumentTypeError("give at least one name, e.g. --params w,b")
    return names


def _nonnegative_float(text: str) -> float:
    value = _finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, not {text!r}")
    return value


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, not {text!r}")
    return value


def _pair(example: str):
    def pair(text: str) -> tuple[float, float]:
        parts = text.split(",")
        if len(parts) != 2:
            raise argparse.ArgumentTypeError(f"expected two numbers like {example}, not {text!r}")
        return (_nonnegative_float(parts[0]), _nonnegative_float(parts[1]))

    return pair


def _batch_size(text: str) -> int | None:
    if text == "full":
        return None
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number or 'full', not {text!r}")
    return int(text)


def _sections(text: str) -> tuple[str, ...]:
    chosen = _names(text)
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown section {', '.join(unknown)} (known: {', '.join(SECTIONS)})"
        )
    return chosen


def _seed(text: str) -> int:
    if not text.isdigit() or int(text) >= 2**63:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to 2^63-1, not {text!r}")
    return int(text)


def _add_loss_arguments(command: argparse.ArgumentParser, init: bool = True) -> None:
    command.add_argument("--loss", required=True, help='the loss, e.g. "(w-3)**2"')
    command.add_argument("--data", help='a CSV file with a header row, or "x=1,2,3; y=2,3,4"')
    command.add_argument("--params", type=_names, help="parameters, e.g. w,b (default: free names)")
    command.add_argument(
        "--const",
        action="append",
        default=[],
        help="named constants, e.g. lam=0.1 (repeat, or lam=0.1,delta=2); "
        "with --params, every other name is a constant",
    )
    if init:
        command.add_argument("--init", default="", help='start, e.g. "w=0,b=0" (default: all 0)')


OPTIMIZER_FLAGS = {
    # flag: (option name, type, help)
    "--momentum": ("momentum", _nonnegative_float, "sgd, rmsprop: momentum factor"),
    "--dampening": ("dampening", _nonnegative_float, "sgd: dampening for momentum"),
    "--weight-decay": (
        "weight_decay",
        _nonnegative_float,
        "all but rprop: L2 penalty (adamw, or --decoupled-weight-decay: decoupled)",
    ),
    "--lr-decay": ("lr_decay", _nonnegative_float, "adagrad: learning-rate decay"),
    "--initial-accumulator-value": (
        "initial_accumulator_value",
        _nonnegative_float,
        "adagrad: starting sum of squares",
    ),
    "--eps": ("eps", _nonnegative_float, "all but sgd, rprop, asgd: term added for stability"),
    "--alpha": ("alpha", _nonnegative_float, "rmsprop: smoothing constant; asgd: power of η"),
    "--betas": ("betas", _pair("0.9,0.999"), "adam, adamw, adamax, nadam, radam: β₁,β₂"),
    "--rho": ("rho", _nonnegative_float, "adadelta: decay of the running averages"),
    "--momentum-decay": ("momentum_decay", _nonnegative_float, "nadam: momentum decay ψ"),
    "--etas": ("etas", _pair("0.5,1.2"), "rprop: etaminus,etaplus"),
    "--step-sizes": ("step_sizes", _pair("1e-6,50"), "rprop: smallest,largest step"),
    "--lambd": ("lambd", _nonnegative_float, "asgd: decay term"),
    "--t0": ("t0", _nonnegative_float, "asgd: the step at which averaging starts"),
}
OPTIMIZER_SWITCHES = {
    "--nesterov": ("nesterov", "sgd: Nesterov momentum"),
    "--centered": ("centered", "rmsprop: centered variant"),
    "--amsgrad": ("amsgrad", "adam, adamw: AMSGrad variant"),
    "--decoupled-weight-decay": (
        "decoupled_weight_decay",
        "adam, nadam, radam: decay the weights, not the gradient",
    ),
    "--maximize": ("maximize", "every optimizer: climb the loss instead"),
}


def _add_optimizer_arguments(command: argparse.ArgumentParser) -> None:
    """The optimizer, its options with torch's names, and a learning-rate schedule."""
    command.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd")
    command.add_argument("--lr", type=_positive_float, help="learning rate (sgd 0.1; else torch's)")
    for flag, (dest, kind, text) in OPTIMIZER_FLAGS.items():
        command.add_argument(flag, dest=dest, type=kind, help=text)
    for flag, (dest, text) in OPTIMIZER_SWITCHES.items():
        command.add_argument(flag, dest=dest, action="store_true", default=None, help=text)
    command.add_argument(
        "--schedule",
        metavar="NAME[:ARG=VALUE,...]",
        help=f"learning-rate schedule ({', '.join(SCHEDULES)}), e.g. cosine:T_max=50",
    )


def _optimizer_of(args: argparse.Namespace) -> tuple[Optimizer, object]:
    """The optimizer and the schedule the flags ask for."""
    from derive.core.optimizers import Optimizer
    from derive.core.schedules import parse_schedule

    options = {dest: getattr(args, dest) for dest, *_ in OPTIMIZER_FLAGS.values()}
    options |= {dest: getattr(args, dest) for dest, _ in OPTIMIZER_SWITCHES.values()}
    optimizer = Optimizer.make(args.optimizer, lr=args.lr, **options)
    schedule = parse_schedule(args.schedule) if args.schedule is not None else None
    return optimizer, schedule


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="derive", description="From a loss expression to a gradient-descent lesson."
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="print the version and exit")
    parser.add_argument(
        "--print-completion",
        action=_Completion,
        choices=COMPLETION_SHELLS,
        metavar="SHELL",
        help='a tab-completion script for bash, zsh or tcsh: eval "$(derive --print-completion '
        'bash)"',
    )
    # Not required: a bare `derive` shows this help (main), rather than a usage error.
    commands = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    lesson = commands.add_parser("lesson", help="write a lesson (Markdown and HTML, zh and en)")
    _add_loss_arguments(lesson)
    _add_optimizer_arguments(lesson)
    lesson.add_argument("--steps", type=_step_count, default=20, help="iterations (20)")
    lesson.add_argument("--lang", choices=tuple(LANGUAGE_CHOICES), default="all")
    lesson.add_argument("--out", type=Path, help="folder to write (default: output/<slug>)")
    lesson.add_argument(
        "--force",
        action="store_true",
        help="write into a folder derive did not make (its files are kept)",
    )
    lesson.add_argument(
        "--sections", type=_sections, help=f"only these, e.g. table,rates ({', '.join(SECTIONS)})"
    )
    lesson.add_argument("--svg", action="store_true", help="also write the figures as SVG")
    lesson.add_argument("--format", choices=("ipynb",), help="also write a Jupyter notebook")
    lesson.add_argument(
        "--open",
        action="store_true",
        help="open the HTML lesson in the browser (the first language's); print only the pages",
    )
    lesson.add_argument(
        "--interactive",
        action="store_true",
        help="add a panel to the HTML page that re-runs the descent as η, momentum, start change",
    )

    diff = commands.add_parser("diff", help="print every partial derivative, step by step")
    _add_loss_arguments(diff, init=False)
    diff.add_argument("--wrt", type=_names, help="only these parameters, e.g. w (default: all)")
    diff.add_argument("--lang", choices=LANGUAGES, default="en")
    diff.add_argument("--format", choices=("text", "latex", "json"), default="text")

    check = commands.add_parser("check", help="check a hand-derived gradient (or a class's)")
    _add_loss_arguments(check, init=False)
    check.add_argument("--wrt", required=True, help="the parameter the answer differentiates by")
    answers = check.add_mutually_exclusive_group(required=True)
    answers.add_argument("--answer", help='the answer, e.g. "2*mean((w*x+b-y)*x)"')
    answers.add_argument("--answers", type=Path, help="a CSV file with columns student,answer")
    check.add_argument(
        "--lang",
        choices=(*LANGUAGES, "all"),
        default=None,
        help="words of the verdict (en) or of the report (all)",
    )
    check.add_argument("--json", action="store_true", help="print the verdict as JSON")
    check.add_argument("--jobs", type=_jobs, default=None, help="processes for --answers (cores)")
    check.add_argument("--out", type=Path, help="report folder for --answers")
    check.add_argument(
        "--time-limit",
        type=_positive_float,
        default=TIME_LIMIT,
        help=f"seconds per distinct answer; past it the answer is invalid ({TIME_LIMIT:g})",
    )
    check.add_argument(
        "--force",
        action="store_true",
        help="write into a folder derive did not make (its files are kept)",
    )

    course = commands.add_parser("course", help="build every lesson of a course spec (TOML)")
    course.add_argument("spec", type=Path, help="the course spec, e.g. examples/seeds/course.toml")
    course.add_argument("--jobs", type=_jobs, default=None, help="lessons built at once (cores)")
    course.add_argument("--out", type=Path, help="folder to write (default: output/<spec name>)")
    course.add_argument(
        "--force",
        action="store_true",
        help="write into a folder derive did not make (its files are kept)",
    )
    course.add_argument("--format", choices=("ipynb",), help="also write every lesson's notebook")

    descend_ = commands.add_parser("descend", help="run gradient descent; print or --json")
    _add_loss_arguments(descend_)
    length = descend_.add_mutually_exclusive_group()
    length.add_argument("--steps", type=_step_count, help="updates (default 20)")
    length.add_argument("--epochs", type=_step_count, help="passes over the data")
    descend_.add_argument("--batch-size", type=_batch_size, help="N or full (default full)")
    descend_.add_argument("--seed", type=_seed, help="seed of the mini-batch order (default 0)")
    _add_optimizer_arguments(descend_)
    descend_.add_argument("--tol", type=_nonnegative_float, help="stop when |gradient| ≤ tol")
    descend_.add_argument("--json", action="store_true", help="print the JSON trace")

    backprop_ = commands.add_parser(
        "backprop", help="the computational graph: forward and backward passes, checked"
    )
    _add_loss_arguments(backprop_, init=False)
    backprop_.add_argument("--at", default="", help='the point, e.g. "w=0.5,b=0" (default: all 0)')
    batch = backprop_.add_mutually_exclusive_group()
    batch.add_argument("--row", type=_row, help="one row of the data, 1-based")
    batch.add_argument("--rows", type=_rows, help="a small batch, e.g. 1-3 or 2,5 (default: all)")
    backprop_.add_argument("--lang", choices=tuple(LANGUAGE_CHOICES), default=None)
    shown = backprop_.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="print the graph as JSON")
    shown.add_argument("--out", type=Path, help="write the lesson (Markdown, HTML, figure) here")
    backprop_.add_argument(
        "--force",
        action="store_true",
        help="write into a folder derive did not make (its files are kept)",
    )
    backprop_.add_argument("--format", choices=("ipynb",), help="with --out: also a notebook")
    return parser


def _row(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a row number from 1, not {text!r}")
    return int(text)


def _rows(text: str) -> tuple[int, ...]:
    """1-3 or 1,4,5: the rows of a batch."""
    first, dash, last = text.partition("-")
    if dash:
        start, end = _row(first.strip()), _row(last.strip())
        if end < start or end - start > 100:
            raise argparse.ArgumentTypeError(f"not a range of rows: {text!r}")
        return tuple(range(start, end + 1))
    return tuple(_row(part.strip()) for part in text.split(","))


def _pairs(texts: list[str], flag: str) -> list[tuple[str, str]]:
    """["w=0,b=-1.5", "c=2"] → [("w", "0"), ("b", "-1.5"), ("c", "2")]."""
    pairs = []
    for text in texts:
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, equals, value = item.partition("=")
            if not equals or not name.strip() or not value.strip():
                raise DeriveError(f"{flag} expects name=value pairs, got {item!r}")
            pairs.append((name.strip(), value.strip()))
    return pairs


def parse_start(text: str, params: tuple[str, ...], flag: str = "--init") -> dict[str, float]:
    """--init "w=0,b=-1.5": each value goes through the safe parser, within its limits (degree,
    digits: exp(exp(20)) is refused, not evaluated), and must be a finite real number."""
    from derive.core.parse import parse_number, to_float

    start = dict.fromkeys(params, 0.0)
    for name, value in _pairs([text], flag):
        if name not in start:
            raise DeriveError(
                f"{flag} sets {name!r}, which is not a parameter ({', '.join(params)})"
            )
        start[name] = to_float(parse_number(value, f"{flag} {name}"), f"{flag} {name}")
    return start


def parse_constants(texts: list[str]) -> dict:
    """--const lam=0.1: exact values (0.1 is 1/10), through the same parser and limits."""
    from derive.core.parse import parse_number, to_float

    constants = {}
    for name, value in _pairs(texts, "--const"):
        if name in constants:
            raise DeriveError(f"--const {name} is given twice")
        number = parse_number(value, f"--const {name}")
        to_float(number, f"--const {name}")
        constants[name] = number
    return constants


def _problem(args: argparse.Namespace, values_needed: bool = True):
    """The loss, its data and its start, from the arguments every command shares. Commands
    that compute (`values_needed`) refuse constants without a value."""
    from derive.core.parse import one_hot_targets, parse_loss

    data = {}
    if args.data:  # the CSV reader loads the report's machinery: only when there is data
        from derive.app.data import load_data

        data = load_data(args.data)
    if args.params:
        clashing = [name for name in args.params if name in data]
        if clashing:
            raise DeriveError(f"{', '.join(clashing)} is both a data column and a parameter")
    constants = parse_constants(args.const)
    loss = parse_loss(args.loss, params=args.params, data=tuple(data), constants=constants)
    if values_needed and loss.missing_values:
        name = loss.missing_values[0]
        raise DeriveError(
            f"{name} is a constant of the loss (not in --params): give its value with "
            f"--const {name}=..."
        )
    if data:
        loss = one_hot_targets(loss, data)
    for name, reason in loss.flagged if values_needed else ():  # diff prints them itself
        print(f"derive: note: {_FLAGGED[reason].format(name=name)}", file=sys.stderr)
    start = parse_start(getattr(args, "init", ""), loss.params)
    return loss, {name: data[name] for name in loss.data}, start


_FLAGGED = {
    "hyperparameter": "{name} looks like a constant but is descended on; if it is one, "
    "give --const {name}=...",
    "row_count": "{name} divides the sum over the data like a row count but is descended on; "
    "write n for the number of rows, or give --const {name}=...",
}


def _defined_at_start(trace: Trace) -> None:
    """A loss that is undefined where the descent starts is a bad --init, not a divergence."""
    from derive.show.printing import hazard_text

    hazard = trace.hazard
    if trace.steps == 0 and trace.status == "diverged" and hazard and hazard.kind != "overflow":
        advice = "check that row of the data" if hazard.row else "choose another --init"
        operation, where = hazard_text(hazard, trace.param_names, "row {row}")
        raise DeriveError(f"the loss is undefined at the start: {operation} at {where}; {advice}")


def run_lesson(args: argparse.Namespace) -> int:
    loss, data, start = _problem(args)
    languages = LANGUAGE_CHOICES[args.lang]
    _phase("deriving the gradient")
    from derive.core.derivation import differentiate
    from derive.core.descend import descend
    from derive.show.lesson import WORKED_STEPS

    derivation = differentiate(loss)
    optimizer, schedule = _optimizer_of(args)
    _phase(f"descending ({args.steps} steps)")
    trace = descend(
        derivation,
        start,
        optimizer,
        args.steps,
        data=data,
        schedule=schedule,
        worked_steps=WORKED_STEPS,
    )
    _defined_at_start(trace)
    _phase(f"writing the lesson in {', '.join(languages)}: figures, Markdown, HTML")
    from derive.app.build import build_lesson, slug

    out = args.out or Path("output") / slug(args.loss)
    formats = ("png", "svg") if args.svg else ("png",)
    written = build_lesson(
        derivation,
        trace,
        out,
        languages,
        formats,
        data,
        start,
        args.sections,
        interactive=args.interactive,
        with_notebook=args.format == "ipynb",
        force=args.force,
    )
    pages = [(out / f"lesson.{language}.html").resolve() for language in languages]
    if args.open:
        import webbrowser

        for page in pages:
            print(out / page.name)
        webbrowser.open(pages[0].as_uri())
    else:
        for path in written:
            print(out.parent / path)
    if sys.stderr.isatty():  # the line a terminal lets the reader click; a log has stdout's
        for page in pages:
            print(f"derive: lesson written: {page.as_uri()}", file=sys.stderr)
    return 0


def _phase(text: str) -> None:
    """What a lesson is doing, for a reader at a terminal (a log or a pipe stays quiet)."""
    if sys.stderr.isatty():
        print(f"derive: {text}…", file=sys.stderr, flush=True)


def run_diff(args: argparse.Namespace) -> int:
    loss, _, _ = _problem(args, values_needed=False)
    # Imported once the loss is read: a refused loss does not wait for them.
    from derive.core.derivation import differentiate
    from derive.core.landscape import landscape
    from derive.show.explain import render_diff

    unknown = [name for name in args.wrt or () if name not in loss.params]
    if unknown:
        raise DeriveError(f"--wrt {', '.join(unknown)}: not a parameter ({', '.join(loss.params)})")
    derivation = differentiate(loss)
    solvable = not loss.data and not loss.missing_values
    shape = landscape(derivation) if solvable else None
    print(render_diff(derivation, shape, args.lang, args.format, args.wrt))
    return 0


def run_check(args: argparse.Namespace) -> int:
    loss, data, _ = _problem(args, values_needed=False)
    from derive.core.check import parse_answer
    from derive.core.derivation import differentiate

    if args.wrt not in loss.params:
        raise DeriveError(f"--wrt {args.wrt}: not a parameter ({', '.join(loss.params)})")
    derivation = differentiate(loss)
    if args.answer is not None:
        if args.lang == "all":
            raise DeriveError("--lang all is for --answers reports: choose zh or en")
        from derive.app.grading import grade_one
        from derive.show.report import verdict_json, verdict_text

        language = args.lang or "en"
        answer = parse_answer(args.answer, derivation)
        verdict = grade_one(derivation, args.wrt, answer, data, args.time_limit)
        if args.json:
            print(json.dumps(verdict_json(verdict, language, args.wrt), ensure_ascii=False))
        else:
            print(verdict_text(verdict, language, args.wrt))
        return 0 if verdict.correct else 1
    from derive.app.build import slug, write_report
    from derive.app.files import read_submissions
    from derive.app.grading import grade_many
    from derive.app.output import refuse_early
    from derive.show.report import ClassReport, accounted

    out = args.out or Path("output") / f"check-{slug(args.loss)}-{args.wrt}"
    refuse_early(out, args.force)
    lines, submissions = read_submissions(args.answers)
    texts = [s.answer for s in submissions if s.answer is not None]
    jobs = args.jobs or os.cpu_count() or 1
    print(
        f"derive: {lines:,} lines: {len(submissions):,} rows, {len(set(texts)):,} distinct answers",
        file=sys.stderr,
    )
    graded = grade_many(
        derivation, args.wrt, texts, jobs, _progress("graded"), data, args.time_limit
    )
    report = ClassReport(lines, submissions, graded)
    languages = LANGUAGE_CHOICES[args.lang or "all"]
    for path in write_report(report, derivation, args.wrt, out, languages, args.force):
        print(path)
    counts = collections.Counter(report.status(s) for s in submissions)
    print(
        f"derive: {lines:,} lines read, {accounted(report):,} rows reported: "
        + ", ".join(f"{counts[s]:,} {s}" for s in ("right", "wrong", "invalid")),
        file=sys.stderr,
    )
    return 0


def _jobs(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 256:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 256, not {text!r}")
    return int(text)


def _progress(verb: str):
    """A progress line on stderr: redrawn in place on a terminal, every 10% in a log."""
    shown = {"last": -1}

    def report(done: int, total: int, result: object = None) -> None:
        percent = 100 * done // total
        if sys.stderr.isatty():
            print(f"\rderive: {verb} {done}/{total} ({percent}%)", end="", file=sys.stderr)
            if done == total:
                print(file=sys.stderr)
        elif percent // 10 > shown["last"] // 10 or done == total:
            shown["last"] = percent
            print(f"derive: {verb} {done}/{total} ({percent}%)", file=sys.stderr)

    return report


def run_course(args: argparse.Namespace) -> int:
    from derive.app.course import build_course, read_course

    course = read_course(args.spec, extra_formats=(args.format,) if args.format else ())
    out = args.out or Path("output") / args.spec.stem
    jobs = args.jobs or os.cpu_count() or 1
    started = time.perf_counter()
    total = len(course.lessons) + len(course.problems)
    print(f"derive: {total} lessons, {jobs} at a time, into {out}", file=sys.stderr)
    outcomes = build_course(course, out, jobs, _outcome_line, force=args.force)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("built", "skipped", "failed")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items())
    print(
        f"derive: {total} lessons: {summary} in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    for language in course.languages:
        print(out / f"index.{language}.html")
    return 1 if counts["failed"] else 0


def _outcome_line(outcome) -> None:  # a derive.app.course.Outcome
    name = outcome.slug or "-"
    detail = f"  {outcome.where}: {outcome.message}" if outcome.status == "failed" else ""
    line = f"derive: {outcome.status:7s} {name} ({outcome.seconds:.1f} s){detail}"
    print(line, file=sys.stderr, flush=True)


def run_descend(args: argparse.Namespace) -> int:
    from derive.core.derivation import differentiate
    from derive.core.descend import descend
    from derive.core.facts import measure
    from derive.core.symbols import to_text
    from derive.show.contracts import behaviour_json, trace_json

    loss, data, start = _problem(args)
    optimizer, schedule = _optimizer_of(args)
    if args.epochs is not None and not data:
        raise DeriveError("--epochs counts passes over data: give --data, or use --steps")
    steps = args.steps if args.steps is not None or args.epochs is not None else 20
    derivation = differentiate(loss)
    trace = descend(
        derivation,
        start,
        optimizer,
        steps,
        epochs=args.epochs,
        data=data,
        batch_size=args.batch_size,
        seed=args.seed,
        tol=args.tol,
        schedule=schedule,
    )
    _defined_at_start(trace)
    if args.json:
        document = trace_json(trace, to_text(loss.expr))
        facts = measure(derivation, trace, data)
        document["behaviour"] = behaviour_json(facts, trace.param_names)
        print(json.dumps(document, ensure_ascii=False))
    else:
        print(trace_table(trace))
    return 0


def trace_table(trace: Trace, head: int = 10, tail: int = 3) -> str:
    """A run for the terminal: the first and last steps, then how it ended. With a schedule,
    the rate of the next update (and a cycled momentum) in columns of their own."""
    import numpy as np

    from derive.show.catalog import messages
    from derive.show.printing import hazard_text, number, unicode_name

    names = [unicode_name(n) for n in trace.param_names]
    header = ["t", *names, "L", "|∇L|"]
    columns = []
    if trace.schedule is not None:
        columns.append(("lr", trace.lr))
    if trace.momentum is not None:
        columns.append(
            ("β₁" if trace.optimizer.momentum_option == "betas" else "momentum", trace.momentum)
        )
    header += [label for label, _ in columns]
    shown = list(range(len(trace.loss)))
    if len(shown) > head + tail + 1:
        shown = [*shown[:head], None, *shown[-tail:]]
    rows = [header]
    for t in shown:
        if t is None:
            rows.append(["…"] * len(header))
            continue
        norm = float(np.linalg.norm(trace.grad[t]))
        row = [str(t), *map(number, trace.params[t]), number(trace.loss[t]), number(norm)]
        rows.append(row + [number(values[t]) for _, values in columns])
    widths = [max(len(row[k]) for row in rows) for k in range(len(header))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    ending = {
        "max_steps": "ran {} steps",
        "converged": "converged after {} steps",
        "diverged": "diverged at step {}",
    }[trace.status].format(trace.steps)
    run = _call(trace.optimizer.name, trace.optimizer.options)
    if trace.schedule is not None:
        schedule = _call(trace.schedule.name, trace.schedule.arguments())
        run += f", {schedule} per {trace.schedule_interval}"
    lines.append(f"{run}: {ending}")
    hazard = trace.hazard
    if hazard is not None and hazard.kind != "overflow":
        operation, where = hazard_text(hazard, trace.param_names, "row {row}")
        if trace.status == "diverged":
            lines.append(f"{operation} is not defined there: {where}")
        else:  # a kink met: which derivative was used there, as PyTorch does
            convention = messages("en")["conventions"][hazard.convention]
            lines.append(
                f"{operation} is not differentiable at {where} (step {hazard.step}): {convention}"
            )
    return "\n".join(lines)


def _call(name: str, arguments: dict) -> str:
    """`cosine(T_max=50, eta_min=0.0)`; milestones as written on the command line (10/20)."""
    shown = (
        f"{key}={'/'.join(map(str, value)) if key == 'milestones' else value}"
        for key, value in arguments.items()
    )
    return f"{name}({', '.join(shown)})"


def run_backprop(args: argparse.Namespace) -> int:
    from derive.app.output import write_folder
    from derive.app.parallel import in_parallel
    from derive.core.backprop import another_point, backprop
    from derive.core.derivation import differentiate
    from derive.show.backprop import backprop_json, backprop_text, write_backprop

    loss, data, _ = _problem(args)
    point = parse_start(args.at, loss.params, "--at")
    graph = backprop(differentiate(loss), point, data, rows=args.rows, row=args.row)
    if args.format and args.out is None:
        raise DeriveError("--format ipynb writes a file: give --out DIR")
    if args.json:
        print(json.dumps(backprop_json(graph), ensure_ascii=False))
        return 0
    if args.out is None:
        if args.lang == "all":
            raise DeriveError("--lang all is for --out: choose zh or en")
        print(backprop_text(graph, args.lang or "en"))
        return 0
    languages = LANGUAGE_CHOICES[args.lang or "all"]
    exercise = another_point(graph, data)
    notebook = args.format == "ipynb"

    def write(staging: Path) -> None:  # one forked process a language, as a lesson's
        in_parallel(
            lambda language: write_backprop(
                graph, exercise, staging, (language,), notebook=notebook
            ),
            languages,
        )

    write_folder(args.out, write, args.force)
    for path in sorted(p for p in args.out.rglob("*") if p.is_file()):
        print(path)
    return 0


COMMANDS = {
    "lesson": run_lesson,
    "diff": run_diff,
    "check": run_check,
    "course": run_course,
    "descend": run_descend,
    "backprop": run_backprop,
}


def keep_freed_memory() -> None:
    """Ask glibc to keep freed blocks instead of unmapping them.

    NumPy temporaries of a large data set are each mmapped and unmapped by default: the
    page faults made descent on 10⁵ rows 4× slower than necessary (see benchmarks/). The
    setting is process-wide, so only the command sets it, not the library.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(M_MMAP_THRESHOLD, 1 << 30)
    libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)


class _Version(argparse.Action):
    """--version, read from the package metadata only when asked (reading it costs 50 ms)."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"derive {_version()}")
        parser.exit()


COMPLETION_SHELLS = ("bash", "zsh", "tcsh")
# what the shell offers for an option's value: folders for --out, files for the rest
PATH_OPTIONS = {"out": "DIRECTORY", "answers": "FILE", "data": "FILE", "spec": "FILE"}


class _Completion(argparse.Action):
    """--print-completion SHELL: the shell's completion script, made by shtab from this
    parser, so that it offers every command, option and choice derive has (imported only
    when asked)."""

    def __call__(self, parser, namespace, values, option_string=None):
        import shtab

        for command in parser._subparsers._group_actions[0].choices.values():
            for action in command._actions:
                if action.dest in PATH_OPTIONS:
                    action.complete = getattr(shtab, PATH_OPTIONS[action.dest])
        print(shtab.complete(parser, shell=values), end="")
        parser.exit()


def _version() -> str:
    """The installed distribution's version (what pip, pipx and uv report)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("derive")
    except PackageNotFoundError:  # run from a source tree that was never installed
        from derive import __version__

        return __version__


# Options whose value may start with a minus that is not a number: `--answer "-2*(3-w)"`.
SIGNED_VALUES = ("--loss", "--answer", "--init", "--at")


def _attach_signed_values(argv: Sequence[str]) -> list[str]:
    """argparse reads `-2*(3-w)` after --answer as an option of its own (it only takes values
    that look like plain negative numbers); written `--answer=-2*(3-w)` it is the value."""
    attached: list[str] = []
    tokens = iter(argv)
    for token in tokens:
        if token == "--":  # everything after it is positional, as argparse reads it
            attached += [token, *tokens]
            break
        attached.append(token)
        if token in SIGNED_VALUES:
            value = next(tokens, None)
            # `-` is stdin and `--w...` an option: both are left to argparse
            if value is not None and value.startswith("-") and value[1:2] not in ("", "-"):
                attached[-1] = f"{token}={value}"
            elif value is not None:
                attached.append(value)
    return attached


def _unknown_command(argv: Sequence[str]) -> None:
    """`derive lesosn`: refused with the nearest command, before argparse lists them all."""
    if argv and not argv[0].startswith("-") and argv[0] not in COMMANDS:
        raise DeriveError(
            f"unknown command {argv[0]!r}{_did_you_mean(argv[0], COMMANDS)} "
            f"(commands: {', '.join(COMMANDS)}; see derive --help)"
        )


def _read_stdin_values(args: argparse.Namespace) -> None:
    """`--loss -` or `--answer -`: the value is what arrives on stdin (one of them only)."""
    dashed = [name for name in ("loss", "answer", "answers") if str(getattr(args, name, "")) == "-"]
    if len(dashed) > 1:
        flags = " and ".join(f"--{name} -" for name in dashed)
        raise DeriveError(f"{flags}: only one option can read stdin")
    if dashed and dashed[0] != "answers":  # a class file is read as a file, from stdin
        setattr(args, dashed[0], sys.stdin.read().strip())


def main(argv: Sequence[str] | None = None) -> int:
    keep_freed_memory()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser()
        if not argv:
            parser.print_help()
            return 0
        _unknown_command(argv)
        args = parser.parse_args(_attach_signed_values(argv))
        if args.command is None:
            raise DeriveError(f"give a command: {', '.join(COMMANDS)} (see derive --help)")
        _read_stdin_values(args)
        code = COMMANDS[args.command](args)
        sys.stdout.flush()  # a closed pipe is met here, inside the handler, not at exit
        return code
    except DeriveError as error:
        print(f"derive: error: {error}", file=sys.stderr)
        for line in error.caret_lines():
            print(line, file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `derive ... | head`: the reader has gone. Python would print a traceback when it
        # flushes stdout at exit; point stdout at /dev/null and end as a tool killed by SIGPIPE.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print("derive: interrupted", file=sys.stderr)
        return 130


def main_exit() -> None:
    """Console-script entry point. A warning (no font for Chinese, say) is one line on stderr;
    SIGTERM ends the command as Ctrl-C would not: unwinding, so that a build's staging folder is
    removed on the way out (exit 143, as a tool killed by SIGTERM)."""
    warnings.showwarning = _one_line_warning
    signal.signal(signal.SIGTERM, _terminated)
    code = main()
    # Python's teardown collects every object of SymPy, NumPy and matplotlib to free none of
    # them: frozen, they go with the process (0.6 CPU-s of a lesson). atexit still runs.
    gc.freeze()
    raise SystemExit(code)


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"derive: warning: {message}", file=sys.stderr)


def _terminated(signum, frame) -> None:
    raise SystemExit(128 + signum)
