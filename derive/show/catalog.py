"""Where the words live: the Jinja templates and the per-language message catalogs, package
data of derive.show (read through importlib.resources, so any install finds them)."""

from __future__ import annotations

import functools
import tomllib
from importlib.resources import files

from jinja2 import Environment, PackageLoader, StrictUndefined

LANGUAGES = ("zh", "en")
TEMPLATES = files("derive.show") / "templates"

environment = Environment(
    loader=PackageLoader("derive.show", "templates"),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=False,
)


@functools.cache
def messages(language: str) -> dict:
    return tomllib.loads((TEMPLATES / language / "messages.toml").read_text(encoding="utf-8"))
