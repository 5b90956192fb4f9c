"""A router's middleware references → its compiled `Chain`, once per graph build.

Each reference is looked up as written, then without its `@provider` (the aggregator
qualifies names, configuration written by hand may not); its type's builder (registry.py)
makes the step. A reference to a middleware that does not exist is logged and skipped; a
type without a builder is skipped (the aggregator has reported it, failing closed for the
types that restrict access); a middleware whose builder refuses its options answers 500;
a chain that reaches a chain being expanded is cut there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

from proxynow.config.middlewares import Middleware
from proxynow.edge.http.middlewares.base import BuildContext, Chain, Reply, Step, gather
from proxynow.edge.http.middlewares.registry import BUILDERS
from proxynow.edge.upstream.pool import PoolRegistry
from proxynow.edge.upstream.server import Pick

__all__ = ["compile_chain"]

log = logging.getLogger(__name__)

_REFUSING = Step("refused", request=lambda exchange: Reply(500, (), b"Internal Server Error"))


def compile_chain(
    router: str,
    names: Sequence[str],
    middlewares: Mapping[str, Middleware],
    secure: bool,
    pools: PoolRegistry | None = None,
    service: Callable[[str], Pick | None] | None = None,
) -> Chain | None:
    """A router's middlewares compiled into per-phase hooks; None when no step has any
    (then the router's requests pay one test for middlewares)."""
    if not names:
        return None
    resolver = _Resolver(router, middlewares, secure, pools, service)
    steps = (resolver.resolve(name) for name in names)
    return gather(step for step in steps if step is not None)


class _Resolver:
    """Middleware references → steps for one router, with the chains being expanded."""

    __slots__ = ("context", "expanding", "middlewares", "router")

    def __init__(
        self,
        router: str,
        middlewares: Mapping[str, Middleware],
        secure: bool,
        pools: PoolRegistry | None,
        service: Callable[[str], Pick | None] | None,
    ) -> None:
        self.router = router
        self.middlewares = middlewares
        self.expanding: set[str] = set()  # the chains whose members are being resolved
        self.context = BuildContext(router, secure, self.resolve, pools, service)

    def resolve(self, name: str) -> Step | None:
        spec = self.middlewares.get(name) or self.middlewares.get(name.split("@", 1)[0])
        if spec is None:
            log.warning("router %s: middleware %s does not exist", self.router, name)
            return None
        builder = BUILDERS.get(spec.kind)
        if builder is None or name in self.expanding:
            return None
        self.expanding.add(name)
        try:
            return builder(spec, self.context)
        except (ValueError, OSError) as exc:
            # The aggregator disabled its routers already (control/checks.py); one built
            # anyway (a usersFile changed since) refuses every request: fail closed.
            log.error("router %s: middleware %s cannot be built: %s", self.router, name, exc)
            return _REFUSING
        finally:
            self.expanding.discard(name)
