"""derive: from a loss expression to a correct gradient-descent lesson.

The command line is `derive` (see `derive --help`); from Python, the same stages:

    import derive
    d = derive.differentiate("(w - 3)**2")
    run = derive.descend(d, start={"w": 0}, lr=0.1, steps=20)
    derive.behaviour(d, run).shape

The functions live in derive.api and are loaded on first use, so that `import derive` and the
command's start stay quick.
"""

from __future__ import annotations

from importlib import import_module

from derive.core.errors import DeriveError

__version__ = "0.2.0"
__all__ = [
    "DeriveError",
    "backprop",
    "behaviour",
    "check",
    "descend",
    "differentiate",
    "lesson",
    "plot_loss",
    "plot_path",
    "stationary_points",
]


def __getattr__(name: str):
    if name in __all__:
        return getattr(import_module("derive.api"), name)
    raise AttributeError(f"module 'derive' has no attribute {name!r}")
