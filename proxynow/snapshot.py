"""What the control plane hands the data plane: one immutable, versioned configuration.

A `Snapshot` is produced by the aggregator and pickled to every worker. Its `config` holds
only objects that can serve: every name is qualified `name@provider`, every reference is
qualified and points at an object that exists in the same `config` (or at an internal
service the control plane enabled), so the worker never has to check anything. Objects the
aggregator disabled are kept apart in `disabled`, for the API and dashboard, and every
object (enabled or not) has an `ObjectStatus` in `statuses`, keyed like Traefik's runtime
API: `"http.routers.api@file"`.

Mappings are plain dicts (not `MappingProxyType`, which does not pickle); nothing mutates
them after the aggregator built them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from proxynow.config.dynamic import DynamicConfig

__all__ = ["ObjectStatus", "Snapshot", "Status", "status_key"]

Status = Literal["enabled", "warning", "disabled"]
"""Traefik's runtime statuses: `warning` serves (with errors), `disabled` does not."""


@dataclass(frozen=True, slots=True)
class ObjectStatus:
    """The state of one router, service or middleware after validation."""

    status: Status
    errors: tuple[str, ...] = ()
    provider: str = ""

    @property
    def serves(self) -> bool:
        return self.status != "disabled"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One version of the merged dynamic configuration.

    `version` increases by one for every snapshot that differs from the previous one;
    version 0 is the empty configuration the control plane starts with.
    """

    version: int
    config: DynamicConfig
    statuses: Mapping[str, ObjectStatus] = field(default_factory=dict)
    disabled: DynamicConfig = field(default_factory=DynamicConfig)

    @classmethod
    def empty(cls) -> Snapshot:
        return cls(version=0, config=DynamicConfig())

    def status(self, protocol: str, section: str, qualified_name: str) -> ObjectStatus | None:
        """The status of one object, e.g. `status("http", "routers", "api@file")`."""
        return self.statuses.get(status_key(protocol, section, qualified_name))

    def same_content(self, other: Snapshot) -> bool:
        """True when both carry the same configuration and statuses (versions aside)."""
        return (
            self.config == other.config
            and self.disabled == other.disabled
            and self.statuses == other.statuses
        )


def status_key(protocol: str, section: str, qualified_name: str) -> str:
    """`("http", "routers", "api@file")` → `"http.routers.api@file"`."""
    return f"{protocol}.{section}.{qualified_name}"
