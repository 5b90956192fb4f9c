"""Two differences the label corpus (tests/e2e/differential/test_labels_traefik.py) found."""

from __future__ import annotations

from proxynow.api.dump import dump
from proxynow.api.internal import router_entry_points
from proxynow.config.dynamic import DynamicConfig
from proxynow.config.static import StaticConfig


def test_udp_entrypoints_are_defaults_of_udp_routers_only() -> None:
    static = StaticConfig.model_validate(
        {
            "entryPoints": {
                "traefik": {"address": ":8080"},
                "web": {"address": ":80"},
                "dns": {"address": ":53/udp"},
            }
        }
    )
    entry_points = router_entry_points(static)
    assert entry_points.defaults == ("web",)
    assert entry_points.udp_defaults == ("dns",)


def test_false_is_listed_for_traefik_pointer_booleans() -> None:
    config = DynamicConfig.model_validate(
        {
            "http": {
                "routers": {"r": {"rule": "Path(`/`)", "service": "s",
                                  "observability": {"accessLogs": False}}},
                "services": {"s": {"loadBalancer": {"passHostHeader": False}}},
            }
        }
    )  # fmt: skip
    assert dump(config.http.services["s"])["loadBalancer"]["passHostHeader"] is False
    assert dump(config.http.routers["r"])["observability"]["accessLogs"] is False
    assert "preservePath" not in str(dump(config.http.services["s"]))  # plain bool: omitted
