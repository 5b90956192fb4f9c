"""Redirections to HTTPS: the `redirectScheme` middleware and entrypoint redirections.

A middleware chain is compiled once per graph into one callable, `Respond`: it gets the
exchange whose head is complete and returns the whole response to send (a middleware
answered by itself) or None (go on to the service). The HTTP protocol tests one
attribute per request (`target.respond is not None`). redirectScheme is the first
middleware that answers; later ones slot into `compile_chain`.

Traefik semantics kept: the new URL is `scheme://host[:port]<request target>`, where the
request's own port is dropped and `port` is added unless it is the scheme's default; a
request whose URL would not change goes on to the service; GET and HEAD get 301/302,
other methods 308/307 (they keep their method and body). An entrypoint's
`http.redirections.entryPoint` is a catch-all router on that entrypoint with the
redirection as its only middleware and priority MaxInt-1 (edge/graph/build.py adds it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from proxynow.config.middlewares import Middleware, RedirectScheme

if TYPE_CHECKING:
    from proxynow.edge.http.exchange import Exchange

__all__ = ["Respond", "compile_chain", "entrypoint_redirect", "redirect_scheme"]

log = logging.getLogger(__name__)

Respond = Callable[["Exchange"], bytes | None]

_DEFAULT_PORTS = {"http": "80", "https": "443"}
_SAFE_METHODS = frozenset({b"GET", b"HEAD"})


def redirect_scheme(
    scheme: str, port: str, permanent: bool, request_scheme: str = "http"
) -> Respond:
    """The RedirectScheme middleware as a `Respond`; `request_scheme` is what the
    entrypoint's connections speak (the URL of the request, to detect no-ops)."""
    suffix = "" if not port or _DEFAULT_PORTS.get(scheme) == port else f":{port}"
    safe = (b"301 Moved Permanently", b"302 Found")[0 if permanent else 1]
    unsafe = (b"308 Permanent Redirect", b"307 Temporary Redirect")[0 if permanent else 1]
    same_scheme = scheme == request_scheme

    def respond(ex: Exchange) -> bytes | None:
        host = ex.host
        if ":" in host:
            host = f"[{host}]"
        target = ex.target.decode("latin-1")
        if target.startswith(("http://", "https://")):
            target = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/"
        if same_scheme and not suffix:
            return None  # the URL would not change
        location = f"{scheme}://{host}{suffix}{target}".encode("latin-1")
        status = safe if ex.method_b in _SAFE_METHODS else unsafe
        return b"HTTP/1.1 %s\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n" % (status, location)

    return respond


def entrypoint_redirect(scheme: str, port: str, permanent: bool) -> Respond:
    """`entryPoints.<ep>.http.redirections.entryPoint`: always redirects."""
    return redirect_scheme(scheme, port, permanent, request_scheme="")


def compile_chain(
    router: str, names: Sequence[str], middlewares: Mapping[str, Middleware], secure: bool
) -> Respond | None:
    """A router's middlewares as one callable; None when none of them answers requests."""
    steps: list[Respond] = []
    for spec in _flattened(router, names, middlewares, set()):
        redirect: RedirectScheme | None = spec.redirect_scheme
        if redirect is not None:
            request_scheme = "https" if secure else "http"
            steps.append(
                redirect_scheme(redirect.scheme, redirect.port, redirect.permanent, request_scheme)
            )
    if not steps:
        return None
    if len(steps) == 1:
        return steps[0]

    def chain(ex: Exchange) -> bytes | None:
        for step in steps:
            reply = step(ex)
            if reply is not None:
                return reply
        return None

    return chain


def _flattened(
    router: str, names: Sequence[str], middlewares: Mapping[str, Middleware], seen: set[str]
) -> list[Middleware]:
    """The middlewares in order with every `chain` replaced by its members (the aggregator
    has already disabled routers whose chains are missing members or cycle)."""
    found: list[Middleware] = []
    for name in names:
        spec = middlewares.get(name) or middlewares.get(name.split("@", 1)[0])
        if spec is None:
            log.warning("router %s: middleware %s does not exist", router, name)
            continue
        if spec.chain is None:
            found.append(spec)
        elif name not in seen:
            seen.add(name)
            found.extend(_flattened(router, spec.chain.middlewares, middlewares, seen))
    return found
