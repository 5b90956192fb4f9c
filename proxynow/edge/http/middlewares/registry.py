"""The middleware types the data plane implements: Traefik type name → builder.

Its keys are the list of what is implemented: `proxynow check` and the aggregator read it
(control/middleware_support.py `APPLIED`), so they cannot say a type works that the data plane
skips, or the reverse. A new type is one module with a `build` and one line here.
"""

from __future__ import annotations

from proxynow.edge.http.middlewares import (
    basic_auth,
    chain,
    digest_auth,
    in_flight_req,
    ip_allow_list,
    rate_limit,
    redirect_scheme,
)
from proxynow.edge.http.middlewares.base import Builder

__all__ = ["BUILDERS"]

BUILDERS: dict[str, Builder] = {
    "basicAuth": basic_auth.build,
    "chain": chain.build,
    "digestAuth": digest_auth.build,
    "inFlightReq": in_flight_req.build,
    "ipAllowList": ip_allow_list.build,
    "rateLimit": rate_limit.build,
    "redirectScheme": redirect_scheme.build,
}
