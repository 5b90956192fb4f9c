"""The middleware types the data plane implements: Traefik type name → builder.

Its keys are the list of what is implemented: `proxynow check` and the aggregator read it
(control/middleware_support.py `APPLIED`), so they cannot say a type works that the data plane
skips, or the reverse. A new type is one module with a `build` and one line here.
"""

from __future__ import annotations

from proxynow.edge.http.middlewares import chain, errors, forward_auth, headers, redirect_scheme
from proxynow.edge.http.middlewares.base import Builder

__all__ = ["BUILDERS"]

BUILDERS: dict[str, Builder] = {
    "chain": chain.build,
    "errors": errors.build,
    "forwardAuth": forward_auth.build,
    "headers": headers.build,
    "redirectScheme": redirect_scheme.build,
}
