"""The one error type of the rule language: a message and the 1-based column it points at."""

from __future__ import annotations


class RuleError(ValueError):
    """A rule that cannot be parsed or validated.

    ``str(err)`` is ``"<message> at column <n>"`` so that the aggregator can show it next to
    the router as is; ``message`` and ``column`` are kept apart for callers that format it
    differently (the dashboard underlines the column).
    """

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"{message} at column {column}")
        self.message = message
        self.column = column
