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

A `SnapshotDelta` is what goes to a worker that already serves an earlier version: only the
objects that were added, changed or removed since that version, so that a worker does not
unpickle a thousand unchanged routers to learn about one new one. `apply` rebuilds the
configuration on top of the base, handing unchanged objects (and unchanged tables) over as
the very same objects, which lets the graph build reuse what it compiled for them. The
worker's copy carries no statuses: they are the control plane's, for the API.

A delta that carries many objects (20,000 new routers) is pickled in chunks of `_PACK`
objects, each a pickle of its own: unpickling the delta then costs nothing, and the worker
unpickles the chunks one per slice of its event loop (`SnapshotDelta.unpack`) instead of
holding the loop for the whole delta at once (0.7 s for 20,000 routers).
"""

from __future__ import annotations

import pickle
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from proxynow.config.dynamic import DynamicConfig, TLSConfig

__all__ = ["ObjectStatus", "Snapshot", "SnapshotDelta", "Status", "status_key"]

# The named-object tables of a DynamicConfig, by protocol (attribute names).
_TABLES: dict[str, tuple[str, ...]] = {
    "http": ("routers", "services", "middlewares", "servers_transports"),
    "tcp": ("routers", "services", "middlewares", "servers_transports"),
    "udp": ("routers", "services"),
}

_PACK = 200  # objects per separately pickled chunk of a large delta (~7 ms to unpickle)

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


_NOTHING = DynamicConfig()  # frozen, so one instance serves every snapshot


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One version of the merged dynamic configuration.

    `version` increases by one for every snapshot that differs from the previous one;
    version 0 is the empty configuration the control plane starts with.
    """

    version: int
    config: DynamicConfig
    statuses: Mapping[str, ObjectStatus] = field(default_factory=dict)
    # Shared, not built per snapshot: a worker makes one per change and never reads it.
    disabled: DynamicConfig = field(default_factory=lambda: _NOTHING)
    # What the aggregator changed, when it knows (a build that changed routers only):
    # the configuration it started from and the tables it changed. `SnapshotDelta.between`
    # that very configuration and this one is then these tables, with nothing compared.
    # Control-plane only: not pickled, not compared.
    changes: tuple[DynamicConfig, dict[tuple[str, str], TableChange]] | None = field(
        default=None, compare=False, repr=False
    )

    @classmethod
    def empty(cls) -> Snapshot:
        return cls(version=0, config=DynamicConfig())

    def status(self, protocol: str, section: str, qualified_name: str) -> ObjectStatus | None:
        """The status of one object, e.g. `status("http", "routers", "api@file")`."""
        return self.statuses.get(status_key(protocol, section, qualified_name))

    def __reduce__(self) -> tuple[Any, ...]:
        return (Snapshot, (self.version, self.config, self.statuses, self.disabled))

    def same_content(self, other: Snapshot) -> bool:
        """True when both carry the same configuration and statuses (versions aside)."""
        return (
            self.config == other.config
            and self.disabled == other.disabled
            and self.statuses == other.statuses
        )


@dataclass(frozen=True, slots=True)
class TableChange:
    """What changed in one table: objects added or replaced, names removed."""

    upserts: dict[str, Any]
    removed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SnapshotDelta:
    """Snapshot `version` as changes to snapshot `base` (the one the worker serves)."""

    version: int
    base: int
    # (protocol, table attribute) → its changes; tables that did not change are absent.
    tables: dict[tuple[str, str], TableChange]
    tls: TLSConfig | None  # the whole TLS section when it changed, else None
    # Upserts still pickled, in chunks: (table, how many objects, pickled dict). Only an
    # unpickled large delta has them, until `unpack` (which `apply` does if need be).
    packed: tuple[tuple[tuple[str, str], int, bytes], ...] = ()

    @classmethod
    def between(cls, old: Snapshot, new: Snapshot) -> SnapshotDelta:
        if new.changes is not None and new.changes[0] is old.config:
            return cls(new.version, old.version, dict(new.changes[1]), None)
        tables: dict[tuple[str, str], TableChange] = {}
        for protocol, names in _TABLES.items():
            before, after = getattr(old.config, protocol), getattr(new.config, protocol)
            for attribute in names:
                change = _table_change(getattr(before, attribute), getattr(after, attribute))
                if change is not None:
                    tables[protocol, attribute] = change
        tls = None if old.config.tls == new.config.tls else new.config.tls
        return cls(new.version, old.version, tables, tls)

    @property
    def size(self) -> int:
        """How many objects the delta carries (added, changed or removed)."""
        carried = sum(len(c.upserts) + len(c.removed) for c in self.tables.values())
        return carried + sum(count for _, count, _ in self.packed)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled with every table of more than `_PACK` upserts in separate chunks."""
        tables: dict[tuple[str, str], TableChange] = {}
        packed = list(self.packed)
        for key, change in self.tables.items():
            if len(change.upserts) <= _PACK:
                tables[key] = change
                continue
            tables[key] = TableChange({}, change.removed)
            items = list(change.upserts.items())
            for start in range(0, len(items), _PACK):
                chunk = dict(items[start : start + _PACK])
                packed.append((key, len(chunk), pickle.dumps(chunk, pickle.HIGHEST_PROTOCOL)))
        return (SnapshotDelta, (self.version, self.base, tables, self.tls, tuple(packed)))

    def unpack(self) -> Generator[None, None, None]:
        """Unpickle the chunks still packed into their tables' upserts, yielding after
        each (the worker lets requests run in between); a no-op once done."""
        while self.packed:
            (key, _, blob), rest = self.packed[0], self.packed[1:]
            change = self.tables.get(key)
            if change is None:
                change = self.tables[key] = TableChange({}, ())
            change.upserts.update(pickle.loads(blob))
            object.__setattr__(self, "packed", rest)  # frozen: only unpacking changes it
            yield

    def apply(self, base: Snapshot) -> Snapshot:
        """The new snapshot, from `base` (which must be version `self.base`)."""
        if base.version != self.base:
            raise ValueError(f"delta {self.version} is based on {self.base}, not {base.version}")
        for _ in self.unpack():
            pass
        config = base.config
        update: dict[str, Any] = {}
        for protocol in _TABLES:
            section = getattr(config, protocol)
            tables = {
                attribute: _patched(getattr(section, attribute), change)
                for (proto, attribute), change in self.tables.items()
                if proto == protocol
            }
            if tables:
                update[protocol] = section.model_copy(update=tables)
        if self.tls is not None:
            update["tls"] = self.tls
        return Snapshot(self.version, config.model_copy(update=update) if update else config)


def _table_change(before: Mapping[str, Any], after: Mapping[str, Any]) -> TableChange | None:
    if before is after:
        return None
    # `is` first: the aggregator reuses an unchanged object, and then nothing is compared.
    upserts = {
        name: obj
        for name, obj in after.items()
        if (old := before.get(name)) is not obj and old != obj
    }
    removed = tuple(name for name in before if name not in after)
    return TableChange(upserts, removed) if upserts or removed else None


def _patched(table: Mapping[str, Any], change: TableChange) -> dict[str, Any]:
    patched = dict(table)
    for name in change.removed:
        patched.pop(name, None)
    patched.update(change.upserts)
    return patched


def status_key(protocol: str, section: str, qualified_name: str) -> str:
    """`("http", "routers", "api@file")` → `"http.routers.api@file"`."""
    return f"{protocol}.{section}.{qualified_name}"
