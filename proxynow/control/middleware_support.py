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

from proxynow.config.middlewares import Middleware, TCPMiddleware
from proxynow.edge.http.middlewares.base import BuildContext
from proxynow.edge.http.middlewares.registry import BUILDERS, PROBLEMS
from proxynow.edge.tcp.middlewares import BUILDERS as TCP_BUILDERS

__all__ = ["APPLIED", "build_problem", "unsupported_middleware"]

# (protocol, type) pairs the data plane applies: the types with a builder in the HTTP
# registry (edge/http/middlewares/registry.py) and the TCP one (edge/tcp/middlewares.py),
# so that this answer cannot drift from them.
APPLIED = frozenset(("http", kind) for kind in BUILDERS) | frozenset(
    ("tcp", kind) for kind in TCP_BUILDERS
)

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


# The applied types whose options are checked by running the data plane's own builder
# (what the models cannot check: a users file, an address range); the others have no
# side effect-free builder to run here (subrequest pools, thread pools).
_BUILT_TO_CHECK = frozenset({"basicAuth", "digestAuth", "ipAllowList", "inFlightReq", "rateLimit"})


def build_problem(middleware: Middleware | TCPMiddleware) -> str | None:
    """Why an applied middleware cannot be built from its configuration, or None: its
    type's check in the registry (an expression that does not parse), or, for the access
    types, the data plane's own builder (an empty sourceRange, a malformed users entry, an
    unreadable usersFile), so that both agree; the router is then disabled, as in Traefik."""
    try:
        if isinstance(middleware, TCPMiddleware):
            tcp_builder = TCP_BUILDERS.get(middleware.kind)
            if tcp_builder is not None:
                tcp_builder(middleware)
            return None
        check = PROBLEMS.get(middleware.kind)
        if check is not None:
            return check(middleware)
        builder = BUILDERS.get(middleware.kind)
        if builder is not None and middleware.kind in _BUILT_TO_CHECK:
            builder(middleware, BuildContext("", False, lambda name: None))
    except (ValueError, OSError) as exc:
        return f"{middleware.kind}: {exc}"
    return None
