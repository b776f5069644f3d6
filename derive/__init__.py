"""derive: from a loss expression to a correct gradient-descent lesson."""

from derive.errors import DeriveError

__all__ = ["DeriveError"]
