"""Where the words live: Jinja templates and the per-language message catalogs in templates/."""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
LANGUAGES = ("zh", "en")

environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=False,
)


@functools.cache
def messages(language: str) -> dict:
    with open(TEMPLATES / language / "messages.toml", "rb") as handle:
        return tomllib.load(handle)
