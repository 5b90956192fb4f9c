"""`redirectScheme`, and entrypoint redirections (`entryPoints.<ep>.http.redirections`).

Traefik semantics kept: the new URL is `scheme://host[:port]<request target>`, where the
request's own port is dropped and `port` is added unless it is the scheme's default; a
request whose URL would not change goes on to the service; GET and HEAD get 301/302,
other methods 308/307 (they keep their method and body). An entrypoint's
`http.redirections.entryPoint` is a catch-all router on that entrypoint with the
redirection as its only middleware and priority MaxInt-1 (edge/graph/build.py adds it).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING

from proxynow.edge.http.middlewares.base import BuildContext, Chain, Reply, RequestHook, Step

if TYPE_CHECKING:
    from proxynow.config.middlewares import Middleware
    from proxynow.edge.http.exchange import Exchange

__all__ = ["build", "entrypoint_redirect", "redirect"]

_DEFAULT_PORTS = {"http": "80", "https": "443"}
_SAFE_METHODS = frozenset({b"GET", b"HEAD"})
_STATUS_TEXT = {code: HTTPStatus(code).phrase.encode() for code in (301, 302, 307, 308)}


def redirect(scheme: str, port: str, permanent: bool, request_scheme: str = "http") -> RequestHook:
    """The redirection as a request hook; `request_scheme` is what the entrypoint's
    connections speak (the URL of the request, to detect no-ops)."""
    suffix = "" if not port or _DEFAULT_PORTS.get(scheme) == port else f":{port}"
    safe = 301 if permanent else 302
    unsafe = 308 if permanent else 307
    same_scheme = scheme == request_scheme

    def request(exchange: Exchange) -> Reply | None:
        host = exchange.host
        if ":" in host:
            host = f"[{host}]"
        target = exchange.target.decode("latin-1")
        if target.startswith(("http://", "https://")):
            target = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/"
        if same_scheme and not suffix:
            return None  # the URL would not change
        location = f"{scheme}://{host}{suffix}{target}".encode("latin-1")
        status = safe if exchange.method_b in _SAFE_METHODS else unsafe
        # Traefik writes the status text as the body, without a Content-Type: v3 sniffs
        # none unless contentType is used (tests/e2e/differential/test_middlewares_all.py).
        return Reply(status, ((b"Location", location),), _STATUS_TEXT[status])

    return request


def build(middleware: Middleware, context: BuildContext) -> Step:
    """The `redirectScheme` builder (registry.py)."""
    options = middleware.redirect_scheme
    assert options is not None
    request_scheme = "https" if context.secure else "http"
    hook = redirect(options.scheme, options.port, options.permanent, request_scheme)
    return Step("redirectScheme", request=hook)


def entrypoint_redirect(scheme: str, port: str, permanent: bool) -> Chain:
    """`entryPoints.<ep>.http.redirections.entryPoint`: always redirects."""
    return Chain(request=(redirect(scheme, port, permanent, request_scheme=""),))
