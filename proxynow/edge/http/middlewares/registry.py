"""The middleware types the data plane implements: Traefik type name → builder.

Its keys are the list of what is implemented: `proxynow check` and the aggregator read it
(control/middleware_support.py `APPLIED`), so they cannot say a type works that the data plane
skips, or the reverse. A new type is one module with a `build` and one line here.
"""

from __future__ import annotations

from collections.abc import Callable

from proxynow.config.middlewares import Middleware
from proxynow.edge.http.middlewares import (
    add_prefix,
    basic_auth,
    buffering,
    chain,
    circuit_breaker,
    compress,
    content_type,
    digest_auth,
    encoded_characters,
    errors,
    forward_auth,
    grpc_web,
    headers,
    in_flight_req,
    ip_allow_list,
    pass_tls_client_cert,
    rate_limit,
    redirect_regex,
    redirect_scheme,
    replace_path,
    replace_path_regex,
    retry,
    strip_prefix,
    strip_prefix_regex,
)
from proxynow.edge.http.middlewares.base import Builder

__all__ = ["BUILDERS", "PROBLEMS"]

BUILDERS: dict[str, Builder] = {
    "basicAuth": basic_auth.build,
    "buffering": buffering.build,
    "chain": chain.build,
    "circuitBreaker": circuit_breaker.build,
    "compress": compress.build,
    "contentType": content_type.build,
    "errors": errors.build,
    "forwardAuth": forward_auth.build,
    "grpcWeb": grpc_web.build,
    "headers": headers.build,
    "digestAuth": digest_auth.build,
    "inFlightReq": in_flight_req.build,
    "ipAllowList": ip_allow_list.build,
    "rateLimit": rate_limit.build,
    "redirectScheme": redirect_scheme.build,
    "retry": retry.build,
    "addPrefix": add_prefix.build,
    "stripPrefix": strip_prefix.build,
    "stripPrefixRegex": strip_prefix_regex.build,
    "replacePath": replace_path.build,
    "replacePathRegex": replace_path_regex.build,
    "redirectRegex": redirect_regex.build,
    "encodedCharacters": encoded_characters.build,
    "passTLSClientCert": pass_tls_client_cert.build,
}

# Type name → why a middleware of that type cannot be built (None: it can), for what the
# configuration models cannot check (an expression to parse): the aggregator disables such
# a middleware with that error (control/checks.py), so a builder never sees it.
PROBLEMS: dict[str, Callable[[Middleware], str | None]] = {
    "buffering": buffering.problem,
    "circuitBreaker": circuit_breaker.problem,
    "compress": compress.problem,
    "retry": retry.problem,
}
