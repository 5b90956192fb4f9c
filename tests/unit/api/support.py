"""Views of real configurations for the API's pure tests: YAML in, `View` out.

The steps are the control plane's: `build_snapshot` over one file provider's
configuration, the internal routers and services added (`Internals`), then `View.build`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from proxynow.api.internal import (
    Internals,
    effective_static,
    internal_services,
    router_entry_points,
)
from proxynow.api.shapes import View
from proxynow.config.dynamic import DynamicConfig
from proxynow.config.static import StaticConfig
from proxynow.control.aggregator import build_snapshot
from proxynow.edge.upstream.health import HealthSet
from proxynow.providers.base import ProviderUpdate

STARTED = datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)
ORIGIN = "http://127.0.0.1:1/secret-token"

BASE_STATIC: dict[str, Any] = {
    "entryPoints": {"web": {"address": ":80"}, "websecure": {"address": ":443"}},
    "api": {"insecure": True},
    "ping": {},
    "providers": {"file": {"filename": "dynamic.yml"}},
}


def make_view(
    dynamic: dict[str, Any],
    static: dict[str, Any] | None = None,
    down: dict[str, frozenset[str]] | None = None,
) -> View:
    config = effective_static(StaticConfig.model_validate(static or BASE_STATIC))
    update = ProviderUpdate("file", DynamicConfig.model_validate(dynamic))
    snapshot = build_snapshot(1, [update], router_entry_points(config), internal_services(config))
    snapshot = Internals.build(config, ORIGIN).apply(snapshot)
    health = HealthSet(down) if down is not None else None
    return View.build(config, snapshot, health, STARTED)
