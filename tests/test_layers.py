"""The layout holds the pipeline: core (the math) imports neither show (words and pages) nor app
(files, processes, the command line); show does not import app."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "derive"


def imports(layer: str) -> list[tuple[str, str]]:
    found = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for line in path.read_text(encoding="utf-8").splitlines():
            match = re.match(r"\s*(?:from|import)\s+derive\.(\w+)", line)
            if match:
                found.append((path.name, match.group(1)))
    return found


@pytest.mark.parametrize(("layer", "forbidden"), [("core", {"show", "app"}), ("show", {"app"})])
def test_layers_import_only_the_layers_below(layer, forbidden):
    assert [(name, target) for name, target in imports(layer) if target in forbidden] == []
