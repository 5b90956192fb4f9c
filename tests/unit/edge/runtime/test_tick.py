"""The worker's tick runs often enough for the configured timeouts to fire on time."""

from __future__ import annotations

from typing import Any

import pytest

from proxynow.config.dynamic import DynamicConfig
from proxynow.config.static import StaticConfig
from proxynow.edge.graph.state import WorkerState, tick_interval
from proxynow.snapshot import Snapshot


def static(**transport: Any) -> StaticConfig:
    web: dict[str, Any] = {"address": ":80"}
    if transport:
        web["transport"] = transport
    return StaticConfig.model_validate({"entryPoints": {"web": web}})


def snapshot(transports: dict[str, Any] | None = None) -> Snapshot:
    http = {"serversTransports": transports or {}}
    return Snapshot(1, DynamicConfig.model_validate({"http": http}))


@pytest.mark.parametrize(
    ("config", "transports", "expected"),
    [
        ({}, None, 1.0),  # Traefik's defaults: 60 s read, 180 s idle
        ({"respondingTimeouts": {"readTimeout": "2s"}}, None, 0.2),
        ({"respondingTimeouts": {"writeTimeout": "5s"}}, None, 0.5),
        ({"keepAliveMaxTime": "3s"}, None, 0.3),
        ({}, {"t@file": {"forwardingTimeouts": {"responseHeaderTimeout": "800ms"}}}, 0.08),
        ({}, {"t@file": {"forwardingTimeouts": {"responseHeaderTimeout": "100ms"}}}, 0.05),
        ({"respondingTimeouts": {"readTimeout": "0s", "idleTimeout": "0s"}}, None, 1.0),
        # HTTP/2 health pings: only where readIdleTimeout turns them on.
        ({}, {"t@file": {"forwardingTimeouts": {"readIdleTimeout": "2s"}}}, 0.2),
        (
            {},
            {"t@file": {"forwardingTimeouts": {"readIdleTimeout": "9s", "pingTimeout": "4s"}}},
            0.4,
        ),
        ({}, {"t@file": {"forwardingTimeouts": {"pingTimeout": "1s"}}}, 1.0),
    ],
)
def test_tick_is_a_tenth_of_the_smallest_timeout(
    config: dict[str, Any], transports: dict[str, Any] | None, expected: float
) -> None:
    assert tick_interval(static(**config), snapshot(transports)) == pytest.approx(expected)


def test_loading_a_snapshot_sets_the_tick() -> None:
    state = WorkerState()
    fast = {"t@file": {"forwardingTimeouts": {"responseHeaderTimeout": "500ms"}}}
    state.load(snapshot(fast), static())
    assert state.tick_interval == pytest.approx(0.05)
    state.load(snapshot(), static())
    assert state.tick_interval == pytest.approx(1.0)
