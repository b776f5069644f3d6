"""The one error type derive reports to users: what is wrong and where."""

from __future__ import annotations


class DeriveError(Exception):
    """Bad input. The CLI prints it as one line (plus a caret line for text) and exits 2."""

    def __init__(self, message: str, text: str | None = None, column: int | None = None):
        super().__init__(message)
        self.message = message
        self.text = text
        self.column = column

    def __str__(self) -> str:
        if self.column is None:
            return self.message
        return f"{self.message} (column {self.column})"

    def caret_lines(self) -> list[str]:
        """The input and a caret under the offending column, when both are known."""
        if self.text is None or self.column is None:
            return []
        shown = self.text if len(self.text) <= 120 else self.text[:120] + "…"
        shown = "".join(ch if ch.isprintable() else "?" for ch in shown)
        if self.column > 121:
            return [f"  {shown}"]
        return [f"  {shown}", "  " + " " * (self.column - 1) + "^"]
