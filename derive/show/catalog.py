"""Where the words live: the Jinja templates and the per-language message catalogs, package
data of derive.show (read through importlib.resources, so any install finds them)."""

from __future__ import annotations

import functools
import tomllib
from importlib.resources import files

LANGUAGES = ("zh", "en")
TEMPLATES = files("derive.show") / "templates"


def template(name: str):
    """A Jinja template by its file name under templates/. Jinja is imported on first use:
    a command that only looks up a catalog's sentences (`derive check`) does not pay for it."""
    return _environment().get_template(name)


@functools.cache
def _environment():
    from jinja2 import Environment, PackageLoader, StrictUndefined

    return Environment(
        loader=PackageLoader("derive.show", "templates"),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


@functools.cache
def messages(language: str) -> dict:
    """Every catalog file of the language (messages.toml, lesson.toml, ...), merged; a table
    given in two files is an error."""
    merged: dict = {}
    for entry in sorted((TEMPLATES / language).iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        table = tomllib.loads(entry.read_text(encoding="utf-8"))
        clash = set(table) & set(merged)
        if clash:
            raise RuntimeError(f"{language}/{entry.name}: {sorted(clash)} given twice")
        merged.update(table)
    return merged
