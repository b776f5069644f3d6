"""The `derive` command. Files, the console and exit codes live here, nowhere else.

Exit codes: 0 success, 2 bad input (one line on stderr, plus a caret line for text input).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from derive.derivation import derive
from derive.descend import Optimizer, descend
from derive.errors import DeriveError
from derive.lesson import build_lesson, slug
from derive.parse import parse_expression, parse_loss

LANGUAGE_CHOICES = {"zh": ("zh",), "en": ("en",), "all": ("zh", "en")}
MAX_STEPS = 1_000_000


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line and exit code 2, like every bad input."""

    def error(self, message: str):
        raise DeriveError(f"{message} (see derive {self.prog.split()[-1]} --help)")


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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="derive", description="From a loss expression to a gradient-descent lesson."
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    lesson = commands.add_parser("lesson", help="write a lesson (Markdown and HTML, zh and en)")
    lesson.add_argument("--loss", required=True, help='the loss, e.g. "(w-3)**2"')
    lesson.add_argument("--params", type=_names, help="parameters, e.g. w,b (default: free names)")
    lesson.add_argument("--init", default="", help='start, e.g. "w=0,b=0" (default: all 0)')
    lesson.add_argument("--lr", type=_positive_float, default=0.1, help="learning rate η (0.1)")
    lesson.add_argument("--steps", type=_step_count, default=20, help="iterations (20)")
    lesson.add_argument("--lang", choices=tuple(LANGUAGE_CHOICES), default="all")
    lesson.add_argument("--out", type=Path, help="folder to write (default: output/<slug>)")
    return parser


def parse_start(text: str, params: tuple[str, ...]) -> dict[str, float]:
    """--init "w=0,b=-1.5": each value goes through the safe parser and must be a number."""
    start = dict.fromkeys(params, 0.0)
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, equals, value = item.partition("=")
        name = name.strip()
        if not equals or not name:
            raise DeriveError(f"--init expects name=value pairs, got {item!r}")
        if name not in start:
            raise DeriveError(
                f"--init sets {name!r}, which is not a parameter ({', '.join(params)})"
            )
        number = parse_expression(value.strip())
        if not number.is_number or not number.is_real:
            raise DeriveError(f"--init {name}: {value.strip()!r} is not a real number")
        start[name] = float(number)
        if not math.isfinite(start[name]):
            raise DeriveError(f"--init {name}: {value.strip()!r} is not finite")
    return start


def run_lesson(args: argparse.Namespace) -> int:
    loss = parse_loss(args.loss, params=args.params)
    start = parse_start(args.init, loss.params)
    derivation = derive(loss)
    trace = descend(derivation, start, Optimizer.make("sgd", lr=args.lr), args.steps)
    out = args.out or Path("output") / slug(args.loss)
    written = build_lesson(derivation, trace, out, LANGUAGE_CHOICES[args.lang])
    for path in written:
        print(out.parent / path)
    return 0


COMMANDS = {"lesson": run_lesson}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except DeriveError as error:
        print(f"derive: error: {error}", file=sys.stderr)
        for line in error.caret_lines():
            print(line, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("derive: interrupted", file=sys.stderr)
        return 130


def main_exit() -> None:
    """Console-script entry point."""
    raise SystemExit(main())
