"""`chain`: a middleware made of other middlewares, run in its members' order.

A chain has no hooks of its own: its step holds its members' steps, which the compiler
flattens into the router's phases (base.py `gather`). Members are resolved through the
build context, so a missing member is logged and skipped, and a chain reaching itself
again is cut there (the aggregator has already disabled the routers of such chains).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxynow.edge.http.middlewares.base import BuildContext, Step

if TYPE_CHECKING:
    from proxynow.config.middlewares import Middleware

__all__ = ["build"]


def build(middleware: Middleware, context: BuildContext) -> Step:
    """The `chain` builder (registry.py)."""
    options = middleware.chain
    assert options is not None
    members = (context.resolve(name) for name in options.middlewares)
    return Step("chain", members=tuple(step for step in members if step is not None))
