"""Filtering, sorting and paging of API lists, as Traefik's criterion.go and sort.go."""

from __future__ import annotations

from typing import Any

import pytest

from proxynow.api.query import ApiError, Page, keep, page, sort_items

ROUTERS: list[dict[str, Any]] = [
    {
        "name": "b@file",
        "provider": "file",
        "status": "enabled",
        "rule": "Host(`shop.example.com`)",
        "service": "shop@file",
        "middlewares": ["auth@file"],
        "priority": 30,
        "entryPoints": ["web"],
    },
    {
        "name": "a@docker",
        "provider": "docker",
        "status": "disabled",
        "rule": "Path(`/a`)",
        "service": "api@internal",
        "priority": 30,
        "entryPoints": ["web", "websecure"],
    },
    {
        "name": "c@file",
        "provider": "file",
        "status": "warning",
        "rule": "Path(`/c`)",
        "service": "shop@docker",
        "priority": 5,
        "entryPoints": [],
    },
]


def names(items: list[dict[str, Any]]) -> list[str]:
    return [item["name"] for item in items]


@pytest.mark.parametrize(
    ("query", "kept"),
    [
        ({}, ["b@file", "a@docker", "c@file"]),
        ({"status": "DISABLED"}, ["a@docker"]),  # case-insensitive
        ({"search": "SHOP"}, ["b@file"]),  # in the rule
        ({"search": "@docker"}, ["a@docker"]),  # in the name
        ({"serviceName": "shop@file"}, ["b@file"]),
        ({"serviceName": "shop"}, ["b@file", "c@file"]),  # no provider: any provider
        ({"middlewareName": "auth@file"}, ["b@file"]),
        ({"middlewareName": "auth@docker"}, []),
        ({"status": "enabled", "search": "nothing"}, []),
    ],
)
def test_keep_routers(query: dict[str, str], kept: list[str]) -> None:
    assert names([r for r in ROUTERS if keep("routers", r, query)]) == kept


def test_search_of_services_is_the_name_only() -> None:
    service = {"name": "app@file", "status": "enabled", "rule": "Host(`x`)"}
    assert keep("services", service, {"search": "APP"})
    assert not keep("services", service, {"search": "host"})
    assert keep("services", service, {"serviceName": "other"})  # a router-only filter


@pytest.mark.parametrize(
    ("query", "order"),
    [
        ({}, ["a@docker", "b@file", "c@file"]),
        ({"direction": "desc"}, ["c@file", "b@file", "a@docker"]),
        ({"sortBy": "priority"}, ["c@file", "a@docker", "b@file"]),  # ties by name
        ({"sortBy": "priority", "direction": "desc"}, ["b@file", "a@docker", "c@file"]),
        ({"sortBy": "provider"}, ["a@docker", "b@file", "c@file"]),
        ({"sortBy": "status"}, ["a@docker", "b@file", "c@file"]),
        ({"sortBy": "entryPoints"}, ["c@file", "b@file", "a@docker"]),
        ({"sortBy": "service"}, ["a@docker", "c@file", "b@file"]),
        ({"sortBy": "nonsense"}, ["a@docker", "b@file", "c@file"]),  # by name
    ],
)
def test_sort_routers(query: dict[str, str], order: list[str]) -> None:
    assert names(sort_items("routers", ROUTERS, query)) == order


def test_sort_services_by_servers() -> None:
    services = [
        {"name": "two@f", "loadBalancer": {"servers": [{}, {}]}},
        {"name": "none@f", "weighted": {}},
        {"name": "one@f", "loadBalancer": {"servers": [{}]}},
    ]
    assert names(sort_items("services", services, {"sortBy": "servers"})) == [
        "none@f",
        "one@f",
        "two@f",
    ]


@pytest.mark.parametrize(
    ("count", "query", "expected"),
    [
        (0, {}, Page(0, 0, 1)),
        (5, {}, Page(0, 5, 1)),
        (250, {}, Page(0, 100, 2)),
        (250, {"page": "3"}, Page(200, 250, 1)),
        (5, {"per_page": "2"}, Page(0, 2, 2)),
        (5, {"per_page": "2", "page": "2"}, Page(2, 4, 3)),
        (4, {"per_page": "2", "page": "2"}, Page(2, 4, 1)),
    ],
)
def test_page(count: int, query: dict[str, str], expected: Page) -> None:
    assert page(count, query) == expected


@pytest.mark.parametrize(
    ("count", "query", "message"),
    [
        (5, {"page": "2"}, "invalid request: page: 2, per_page: 100"),
        (5, {"page": "0"}, "invalid request: page: 0"),
        (5, {"per_page": "x"}, "invalid request: per_page: 0"),
        (5, {"per_page": "-3"}, "invalid request: per_page: -3"),
        (5, {"page": "1_0"}, "invalid request: page: 10"),
    ],
)
def test_page_errors_are_400(count: int, query: dict[str, str], message: str) -> None:
    with pytest.raises(ApiError) as raised:
        page(count, query)
    assert (raised.value.status, raised.value.message) == (400, message)
