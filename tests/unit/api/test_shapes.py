"""The state as Traefik's API items, each case written out whole (pure, no sockets)."""

from __future__ import annotations

from typing import Any

from proxynow.api.internal import API_PRIORITY, PING_PRIORITY, Internals, effective_static
from proxynow.api.shapes import View
from proxynow.config.static import StaticConfig
from proxynow.snapshot import Snapshot
from tests.unit.api.support import ORIGIN, STARTED, make_view

OBSERVABILITY = {"accessLogs": True, "metrics": True, "tracing": True, "traceVerbosity": "minimal"}

DYNAMIC: dict[str, Any] = {
    "http": {
        "routers": {
            "app": {
                "rule": "Host(`app.example.com`)",
                "service": "app",
                "middlewares": ["to-https"],
                "tls": {},
            },
            "broken": {"rule": "Host(`x`", "service": "app"},
            "partial": {"rule": "Path(`/p`)", "service": "app", "entryPoints": ["web", "nope"]},
            "dash": {"rule": "Host(`api.example.com`)", "service": "api@internal", "priority": 5},
        },
        "services": {
            "app": {
                "loadBalancer": {
                    "servers": [{"url": "http://10.0.0.1:80"}, {"url": "http://10.0.0.2:80"}],
                    "healthCheck": {"path": "/health", "interval": "2s"},
                }
            },
            "split": {"weighted": {"services": [{"name": "app", "weight": 3}]}},
        },
        "middlewares": {"to-https": {"redirectScheme": {"scheme": "https", "permanent": True}}},
    },
    "tcp": {
        "routers": {"any": {"rule": "HostSNI(`*`)", "service": "db", "entryPoints": ["web"]}},
        "services": {"db": {"loadBalancer": {"servers": [{"address": "10.0.0.3:5432"}]}}},
    },
}


def test_router_item_is_traefiks() -> None:
    view = make_view(DYNAMIC)
    assert view.items["http", "routers"]["app@file"] == {
        "entryPoints": ["web", "websecure"],  # no entryPoints: every one but `traefik`
        "middlewares": ["to-https@file"],
        "service": "app@file",
        "rule": "Host(`app.example.com`)",
        "priority": 23,  # the rule's length, as Traefik computes it
        "tls": {"options": "default"},
        "observability": OBSERVABILITY,
        "status": "enabled",
        "using": ["web", "websecure"],
        "name": "app@file",
        "provider": "file",
        "priorityStr": "23",
    }


def test_router_errors_and_warnings() -> None:
    routers = make_view(DYNAMIC).items["http", "routers"]
    broken, partial = routers["broken@file"], routers["partial@file"]
    assert broken["status"] == "disabled"
    assert len(broken["error"]) == 1 and broken["error"][0].startswith("rule: ")
    assert broken["using"] == ["web", "websecure"]
    assert partial["status"] == "warning"
    assert partial["error"] == ["entryPoint 'nope' does not exist"]
    assert partial["using"] == ["web"]
    assert "error" not in routers["app@file"]


def test_service_item_with_server_status_from_health_checks() -> None:
    view = make_view(DYNAMIC, down={"app@file": frozenset({"http://10.0.0.2:80"})})
    assert view.items["http", "services"]["app@file"] == {
        "loadBalancer": {
            "servers": [
                {"url": "http://10.0.0.1:80", "weight": 1},
                {"url": "http://10.0.0.2:80", "weight": 1},
            ],
            "strategy": "wrr",
            "passHostHeader": True,
            "healthCheck": {
                "path": "/health",
                "mode": "http",
                "interval": "2s",
                "timeout": "5s",
                "followRedirects": True,
                "method": "GET",
            },
            "responseForwarding": {"flushInterval": "100ms"},
        },
        "status": "enabled",
        "type": "loadbalancer",
        "serverStatus": {"http://10.0.0.1:80": "UP", "http://10.0.0.2:80": "DOWN"},
        "usedBy": ["app@file", "broken@file", "partial@file"],  # disabled routers too
        "name": "app@file",
        "provider": "file",
    }
    split = view.items["http", "services"]["split@file"]
    assert split["type"] == "weighted" and "serverStatus" not in split and "usedBy" not in split


def test_middleware_item() -> None:
    assert make_view(DYNAMIC).items["http", "middlewares"]["to-https@file"] == {
        "redirectScheme": {"scheme": "https", "permanent": True},
        "status": "enabled",
        "type": "redirectscheme",
        "usedBy": ["app@file"],
        "name": "to-https@file",
        "provider": "file",
    }


def test_internal_router_and_service_show_no_private_address() -> None:
    view = make_view(DYNAMIC)
    assert view.items["http", "routers"]["api@internal"] == {
        "entryPoints": ["traefik"],
        "service": "api@internal",
        "rule": "PathPrefix(`/api`)",
        "priority": API_PRIORITY,
        "observability": OBSERVABILITY,
        "status": "enabled",
        "using": ["traefik"],
        "name": "api@internal",
        "provider": "internal",
        "priorityStr": str(API_PRIORITY),
    }
    assert view.items["http", "routers"]["ping@internal"]["priority"] == PING_PRIORITY
    assert view.items["http", "services"]["api@internal"] == {
        "status": "enabled",
        "usedBy": ["api@internal", "dash@file"],
        "name": "api@internal",
        "provider": "internal",
    }
    assert "secret-token" not in repr(view)


def test_tcp_items() -> None:
    view = make_view(DYNAMIC)
    router = view.items["tcp", "routers"]["any@file"]
    assert router["priority"] == -1 and router["priorityStr"] == "-1"  # the catch-all
    assert router["using"] == ["web"] and "observability" not in router
    assert view.items["tcp", "services"]["db@file"]["serverStatus"] == {"10.0.0.3:5432": "UP"}


def test_overview_counts_disabled_as_errors_and_includes_internals() -> None:
    overview = make_view(DYNAMIC).overview
    assert overview["http"] == {
        # 4 from the file, api, dashboard, ping
        "routers": {"total": 7, "warnings": 1, "errors": 1},
        "services": {"total": 5, "warnings": 0, "errors": 0},
        "middlewares": {"total": 1, "warnings": 0, "errors": 0},
    }
    assert overview["udp"] == {
        "routers": {"total": 0, "warnings": 0, "errors": 0},
        "services": {"total": 0, "warnings": 0, "errors": 0},
    }
    assert overview["features"] == {"tracing": "", "metrics": "", "accessLog": False}
    assert overview["providers"] == ["File"]


def test_rawdata_is_keyed_by_name_without_list_fields() -> None:
    raw = make_view(DYNAMIC).rawdata()
    assert sorted(raw) == ["middlewares", "routers", "services", "tcpRouters", "tcpServices"]
    entry = raw["routers"]["app@file"]
    assert entry["status"] == "enabled" and entry["using"] == ["web", "websecure"]
    assert not {"name", "provider", "priorityStr", "type"} & set(entry)
    assert raw["services"]["app@file"]["serverStatus"]["http://10.0.0.1:80"] == "UP"


def test_version_and_entrypoints() -> None:
    view = make_view(DYNAMIC)
    assert view.version["startDate"] == "2026-01-02T03:04:05.600000Z"
    assert list(view.entry_points) == ["traefik", "web", "websecure"]
    assert view.entry_points["traefik"]["address"] == ":8080"  # created, as Traefik does
    assert view.entry_points["web"]["name"] == "web"


def test_internals_follow_the_static_configuration() -> None:
    static = effective_static(
        StaticConfig.model_validate(
            {
                "entryPoints": {"web": {"address": ":80"}},
                "api": {"basePath": "/proxy/"},
                "ping": {"entryPoint": "web"},
            }
        )
    )
    assert "traefik" not in static.entry_points  # neither api.insecure nor ping on it
    snapshot = Internals.build(static, ORIGIN).apply(Snapshot.empty())
    view = View.build(static, snapshot, None, STARTED)
    routers = view.items["http", "routers"]
    assert sorted(routers) == ["ping@internal"]  # no api router without api.insecure
    assert routers["ping@internal"]["using"] == ["web"]
    # The dashboard's service (api.dashboard is on by default), its router only with insecure.
    assert sorted(view.items["http", "services"]) == [
        "api@internal",
        "dashboard@internal",
        "ping@internal",
    ]
    assert static.api is not None
    api_insecure = static.api.model_copy(update={"insecure": True})
    insecure = effective_static(static.model_copy(update={"api": api_insecure}))
    api = Internals.build(insecure, ORIGIN).routers["api@internal"]
    assert api.rule == "PathPrefix(`/proxy/api`)"
    dashboard = Internals.build(insecure, ORIGIN).routers["dashboard@internal"]
    assert (dashboard.rule, dashboard.priority) == ("PathPrefix(`/proxy`)", 2**63 - 3)
    assert dashboard.entry_points == ["traefik"]
    no_dashboard = insecure.api.model_copy(update={"dashboard": False}) if insecure.api else None
    without = Internals.build(insecure.model_copy(update={"api": no_dashboard}), ORIGIN)
    assert "dashboard@internal" not in without.routers | without.services
    assert sorted(insecure.entry_points) == ["traefik", "web"]
