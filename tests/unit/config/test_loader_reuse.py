"""DynamicFileLoader: the same answers as load_dynamic_file, reusing unchanged objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from proxynow.config.errors import ConfigError
from proxynow.config.loader import DynamicFileLoader, load_dynamic_file


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def config(routers: dict[str, str], port: int = 80) -> dict[str, Any]:
    return {
        "http": {
            "routers": {name: {"rule": rule, "service": "app"} for name, rule in routers.items()},
            "services": {"app": {"loadBalancer": {"servers": [{"url": f"http://h:{port}"}]}}},
            "middlewares": {"strip": {"stripPrefix": {"prefixes": ["/x"]}}},
        },
        "tls": {"options": {"modern": {"minVersion": "VersionTLS13"}}},
    }


def test_unchanged_objects_are_reused_changed_ones_are_new(tmp_path: Path) -> None:
    path = tmp_path / "dynamic.yml"
    loader = DynamicFileLoader()
    first = loader.load(write(path, config({"a": "Host(`a`)", "b": "Host(`b`)"})))
    second = loader.load(
        write(path, config({"a": "Host(`a`)", "b": "Host(`b2`)", "c": "Host(`c`)"}))
    )
    assert second == load_dynamic_file(path)
    assert second.http.routers["a"] is first.http.routers["a"]
    assert second.http.routers["b"] is not first.http.routers["b"]
    assert second.http.routers["b"].rule == "Host(`b2`)"
    assert second.http.services["app"] is first.http.services["app"]
    assert second.http.middlewares["strip"] is first.http.middlewares["strip"]
    third = loader.load(write(path, config({"a": "Host(`a`)"}, port=81)))
    assert third == load_dynamic_file(path)
    assert set(third.http.routers) == {"a"}
    assert third.http.services["app"] is not second.http.services["app"]


def test_an_error_is_reported_as_load_dynamic_file_reports_it(tmp_path: Path) -> None:
    path = tmp_path / "dynamic.yml"
    loader = DynamicFileLoader()
    good = config({"a": "Host(`a`)"})
    loader.load(write(path, good))
    good["http"]["routers"]["a"]["priority"] = "high"
    good["http"]["routers"]["b@x"] = {"rule": "Host(`b`)", "service": "app"}
    write(path, good)
    with pytest.raises(ConfigError) as reused:
        loader.load(path)
    with pytest.raises(ConfigError) as plain:
        load_dynamic_file(path)
    assert reused.value.issues == plain.value.issues
    assert any(issue.line is not None for issue in reused.value.issues)


@pytest.mark.parametrize(
    "data",
    [
        {"HTTP": {"Routers": {"a": {"Rule": "Host(`a`)", "Service": "app"}}}},
        {"http": {"routers": {"a": {"rule": "Host(`a`)", "service": "app", "EntryPoints": ["w"]}}}},
        {"http": {"routers": {1: {"rule": "Host(`a`)", "service": "app"}}}},
        {"tcp": {"routers": {}}, "udp": {"services": {}}},
        {"tls": {"certificates": [{"certFile": "c", "keyFile": "k"}]}},
    ],
)
def test_unusual_files_load_as_load_dynamic_file_loads_them(
    tmp_path: Path, data: dict[Any, Any]
) -> None:
    path = write(tmp_path / "dynamic.yml", data)
    loader = DynamicFileLoader()
    assert loader.load(path) == load_dynamic_file(path)
    assert loader.load(path) == load_dynamic_file(path)  # now with known objects
