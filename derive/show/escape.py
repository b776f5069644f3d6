"""Users' text (titles, names, messages quoting their input) placed in derive's Markdown: each
mark that could start a link, an image, emphasis, code, math, markup, an entity or an autolink
is backslash-escaped (CommonMark allows the escape before any ASCII punctuation), so that none
can come of it in any renderer; line breaks and control characters become spaces."""

from __future__ import annotations

import re

_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#!|$~&:.])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def markdown_text(text: str) -> str:
    return _SPECIAL.sub(r"\\\1", _CONTROL.sub(" ", text))
