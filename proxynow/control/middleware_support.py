"""Which middleware types the data plane applies today, and what happens to the others.

The configuration accepts all of Traefik's middleware types (config/middlewares.py), but
the data plane applies only some of them so far. A type it does not apply must never be
silently dropped, and the way it is reported depends on what dropping it would do:

- a middleware that *restricts* access (authentication, allow lists, rate and
  concurrency limits) is disabled, and with it every router that uses it: serving that
  router without it would open to everyone what the user meant to protect (fail closed);
- any other type (headers, path rewrites, compression, ...) is a warning on the
  middleware: its routers serve, the middleware is skipped, and the status says so.

The aggregator asks `unsupported_middleware` for every middleware it checks, so the
answer shows in the logs, `proxynow check` and the statuses next to the object.
"""

from __future__ import annotations

from proxynow.config.middlewares import Middleware
from proxynow.edge.http.middlewares.registry import BUILDERS, PROBLEMS

__all__ = ["APPLIED", "build_problem", "unsupported_middleware"]

# (protocol, type) pairs the data plane applies: the HTTP types with a builder in the
# registry (edge/http/middlewares/registry.py), so that this answer cannot drift from it.
APPLIED = frozenset(("http", kind) for kind in BUILDERS)

_RESTRICTING = frozenset(
    {
        ("http", "basicAuth"),
        ("http", "digestAuth"),
        ("http", "forwardAuth"),
        ("http", "ipAllowList"),
        ("http", "inFlightReq"),
        ("http", "rateLimit"),
        ("tcp", "ipAllowList"),
        ("tcp", "inFlightConn"),
    }
)


def unsupported_middleware(protocol: str, kind: str) -> tuple[str, bool] | None:
    """None when `kind` is applied; else (the status message, whether it disables)."""
    if (protocol, kind) in APPLIED:
        return None
    if (protocol, kind) in _RESTRICTING:
        return (
            f"middleware type {kind} is not implemented yet; the routers that use it are "
            "disabled rather than served without it",
            True,
        )
    return (
        f"middleware type {kind} is not implemented yet; routers that use it are served without it",
        False,
    )


def build_problem(middleware: Middleware) -> str | None:
    """Why an applied HTTP middleware cannot be built from its configuration (its type's
    check in the registry: an expression that does not parse), or None."""
    check = PROBLEMS.get(middleware.kind)
    return check(middleware) if check is not None else None
