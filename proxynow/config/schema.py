"""JSON Schema of the static and dynamic configuration, for editors.

The schemas use the file spelling (camelCase aliases) and say what validation says:
unknown keys are not allowed, a middleware or a service has exactly one type. Key case is
stricter than proxynow itself (which also accepts `entrypoints`): editors can only suggest
one spelling, and Traefik's camelCase is the one to suggest.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from proxynow.config.dynamic import DynamicConfig, Service, TCPService, UDPService
from proxynow.config.middlewares import Middleware, TCPMiddleware
from proxynow.config.static import StaticConfig

__all__ = ["DRAFT", "dynamic_schema", "schema_for", "static_schema"]

DRAFT = "https://json-schema.org/draft/2020-12/schema"
_ONE_OF_MODELS: tuple[type[BaseModel], ...] = (
    Middleware,
    TCPMiddleware,
    Service,
    TCPService,
    UDPService,
)


def schema_for(model: type[BaseModel], title: str) -> dict[str, Any]:
    """The JSON Schema of `model` by alias, with "exactly one type" objects constrained."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    definitions = schema.get("$defs", {})
    for one_of in _ONE_OF_MODELS:
        definition = definitions.get(one_of.__name__)
        if definition is not None:
            definition["minProperties"] = 1
            definition["maxProperties"] = 1
    return {"$schema": DRAFT, **schema, "title": title}


def static_schema() -> dict[str, Any]:
    return schema_for(StaticConfig, "proxynow static configuration")


def dynamic_schema() -> dict[str, Any]:
    return schema_for(DynamicConfig, "proxynow dynamic configuration")
