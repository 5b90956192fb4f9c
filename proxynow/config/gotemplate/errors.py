"""The one error type of the template engine, and where in the template it happened."""

from __future__ import annotations

__all__ = ["TemplateError", "position"]


class TemplateError(Exception):
    """A template that cannot be parsed or executed; `pos` is an offset in its text."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


def position(source: str, pos: int) -> tuple[int, int]:
    """1-based (line, column) of offset `pos` in `source` (the column counts characters)."""
    line = source.count("\n", 0, pos) + 1
    column = pos - (source.rfind("\n", 0, pos) + 1) + 1
    return line, column
