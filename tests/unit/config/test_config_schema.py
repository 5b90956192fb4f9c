"""JSON Schema: valid schemas that accept the realistic examples and reject mistakes."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

from proxynow.config.schema import dynamic_schema, static_schema

EXAMPLES = Path(__file__).parent / "examples"


def load(name: str) -> Any:
    text = (EXAMPLES / name).read_text()
    return tomllib.loads(text) if name.endswith(".toml") else yaml.safe_load(text)


def validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("name", ["static.yml", "static.toml"])
def test_static_examples_validate(name: str) -> None:
    errors = list(validator(static_schema()).iter_errors(load(name)))
    assert errors == []


@pytest.mark.parametrize("name", ["dynamic.yml", "dynamic.toml"])
def test_dynamic_examples_validate(name: str) -> None:
    errors = list(validator(dynamic_schema()).iter_errors(load(name)))
    assert errors == []


def test_schema_uses_traefik_spelling_and_says_what_is_required() -> None:
    static = static_schema()
    assert static["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert {"entryPoints", "certificatesResolvers", "accessLog", "workers"} <= set(
        static["properties"]
    )
    dynamic = dynamic_schema()
    server = dynamic["$defs"]["Server"]
    assert server["required"] == ["url"]
    assert "preservePath" in server["properties"]


@pytest.mark.parametrize(
    "document",
    [
        {"http": {"routers": {"r": {"rulee": "Host(`a`)"}}}},
        {"http": {"middlewares": {"m": {"stripPrefix": {}, "addPrefix": {"prefix": "/a"}}}}},
        {"http": {"middlewares": {"m": {}}}},
        {"http": {"services": {"s": {"loadBalancer": {"servers": [{"weight": 1}]}}}}},
        {
            "http": {
                "services": {
                    "s": {"loadBalancer": {"healthCheck": {"path": "/", "interval": "soon"}}}
                }
            }
        },
    ],
)
def test_dynamic_schema_rejects_mistakes(document: dict[str, Any]) -> None:
    assert list(validator(dynamic_schema()).iter_errors(document)) != []


def test_durations_accept_go_strings_and_numbers() -> None:
    check = validator(static_schema())
    for value in ("10s", "1m30s", "500ms", 42, 1.5):
        document = {"providers": {"providersThrottleDuration": value}}
        assert list(check.iter_errors(document)) == []
