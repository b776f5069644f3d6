"""derive: from a loss expression to a correct gradient-descent lesson."""

from derive.core.errors import DeriveError

__all__ = ["DeriveError"]
