"""Qualified names: every object `name@provider`, every reference rewritten to one.

An unqualified reference means "in my own provider" (Traefik's rule): a router of the
docker provider naming service `api` means `api@docker`; `api@file` stays as it is. The
functions return the object itself when nothing in it needs rewriting, so that an
unchanged object stays the same object from one build to the next.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from proxynow.config.dynamic import (
    LoadBalancer,
    Router,
    RouterTLS,
    Service,
    TCPLoadBalancer,
    TCPRouter,
    TCPRouterTLS,
    TCPService,
    UDPRouter,
    UDPService,
)
from proxynow.config.middlewares import Middleware

__all__ = ["DEFAULT_TLS", "QUALIFIERS", "qualify", "qualify_tls_options"]

DEFAULT_TLS = "default"  # the one TLS options / store name that is never qualified


def qualify(reference: str, provider: str) -> str:
    """`api` from provider `docker` → `api@docker`; `api@file` stays as it is."""
    return reference if "@" in reference else f"{reference}@{provider}"


def qualify_tls_options(tls: RouterTLS | TCPRouterTLS, provider: str) -> Any:
    if not tls.options or tls.options == DEFAULT_TLS:
        return tls
    return tls.model_copy(update={"options": qualify(tls.options, provider)})


def _qualify_router(router: Router | TCPRouter | UDPRouter, provider: str) -> Any:
    update: dict[str, object] = {}
    if router.service:
        update["service"] = qualify(router.service, provider)
    if not isinstance(router, UDPRouter):
        update["middlewares"] = [qualify(name, provider) for name in router.middlewares]
        if router.tls is not None:
            update["tls"] = qualify_tls_options(router.tls, provider)
    return router.model_copy(update=update)


def _qualify_service(service: Service | TCPService | UDPService, provider: str) -> Any:
    update: dict[str, object] = {}
    balancer = service.load_balancer
    if isinstance(balancer, LoadBalancer | TCPLoadBalancer) and balancer.servers_transport:
        transport = qualify(balancer.servers_transport, provider)
        update["load_balancer"] = balancer.model_copy(update={"servers_transport": transport})
    if service.weighted is not None:
        children = [
            child.model_copy(update={"name": qualify(child.name, provider)})
            for child in service.weighted.services
        ]
        update["weighted"] = service.weighted.model_copy(update={"services": children})
    if isinstance(service, Service) and service.mirroring is not None:
        mirroring = service.mirroring
        mirrors = [
            m.model_copy(update={"name": qualify(m.name, provider)}) for m in mirroring.mirrors
        ]
        update["mirroring"] = mirroring.model_copy(
            update={"service": qualify(mirroring.service, provider), "mirrors": mirrors}
        )
    if isinstance(service, Service) and service.failover is not None:
        failover = service.failover
        update["failover"] = failover.model_copy(
            update={
                "service": qualify(failover.service, provider),
                "fallback": qualify(failover.fallback, provider),
            }
        )
    return service.model_copy(update=update) if update else service


def _qualify_middleware(middleware: Any, provider: str) -> Any:
    if not isinstance(middleware, Middleware):
        return middleware  # TCP middlewares reference nothing
    if middleware.chain is not None:
        names = [qualify(name, provider) for name in middleware.chain.middlewares]
        chain = middleware.chain.model_copy(update={"middlewares": names})
        return middleware.model_copy(update={"chain": chain})
    if middleware.errors is not None and middleware.errors.service:
        errors = middleware.errors.model_copy(
            update={"service": qualify(middleware.errors.service, provider)}
        )
        return middleware.model_copy(update={"errors": errors})
    return middleware


QUALIFIERS: dict[str, Callable[[Any, str], Any]] = {
    "routers": _qualify_router,
    "services": _qualify_service,
    "middlewares": _qualify_middleware,
    "serversTransports": lambda transport, provider: transport,  # references nothing
}
