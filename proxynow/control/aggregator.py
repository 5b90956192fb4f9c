"""Merge the providers' configurations into versioned snapshots, isolating errors per object.

Two layers:

- `build_snapshot` is pure: it takes the latest `ProviderUpdate` of every provider and
  returns a `Snapshot`. It qualifies every name `name@provider`, rewrites every reference
  to a qualified name (an unqualified reference means "in my own provider"), and checks
  each router, service and middleware. An object whose own definition or reference is
  wrong is disabled with its errors; an object that depends on a disabled one is disabled
  too, with an error naming the cause. Everything else serves. The merge itself is
  proxynow/snapshot/merge.py, the checks proxynow/control/checks.py (listed in
  docs/providers-file.md,
  "What the aggregator checks"). A build whose only changes, compared with the last one,
  are routers (added, changed or removed: nothing depends on a router) starts from the
  last build's merge and snapshot and checks the changed routers only, so a one-router
  edit costs one router, not 20,000 (`_build_routers_only`); it also tells the snapshot
  what it changed, which makes the workers' delta free.
- `Aggregator` is the asyncio shell: providers `submit` complete configurations, it keeps
  only the latest per provider, drops unchanged ones, and publishes at most one snapshot
  per throttle window (the first change after a quiet period is published at once; what
  arrives during the window is coalesced into one snapshot at its end). Nothing queues:
  the state is one update per provider and one "dirty" flag.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from proxynow.background import lower_this_thread, normal_while
from proxynow.config.dynamic import DynamicConfig, TLSConfig
from proxynow.control.checks import check_all, check_router
from proxynow.heap import collecting_later
from proxynow.providers.base import SECTIONS, ProviderUpdate
from proxynow.snapshot import ObjectStatus, Snapshot, TableChange, status_key
from proxynow.snapshot.merge import (
    CONFIG_TYPES,
    DEFAULT_TRANSPORT,
    INTERNAL_PROVIDER,
    INTERNAL_SERVICES,
    PROTOCOLS,
    BuildCache,
    EntryPoints,
    Merge,
    collect,
    collect_object,
    collect_tls,
)
from proxynow.snapshot.qualify import qualify

__all__ = [
    "DEFAULT_THROTTLE",
    "DEFAULT_TRANSPORT",
    "INTERNAL_PROVIDER",
    "INTERNAL_SERVICES",
    "Aggregator",
    "BuildCache",
    "EntryPoints",
    "build_snapshot",
    "qualify",
]

log = logging.getLogger(__name__)

DEFAULT_THROTTLE = 0.1
"""Seconds between two published snapshots (`providers.providersThrottleDuration`)."""


# ---------------------------------------------------------------- assembling the snapshot


def _status(merge: Merge, key: str) -> ObjectStatus:
    problems = merge.problems.get(key, [])
    if any(critical for critical, _ in problems):
        status = "disabled"
    else:
        status = "warning" if problems else "enabled"
    errors = tuple(message for _, message in problems)
    return ObjectStatus(status, errors, merge.owners[key])  # type: ignore[arg-type]


def _statuses(merge: Merge) -> dict[str, ObjectStatus]:
    statuses: dict[str, ObjectStatus] = {}
    for key in sorted(merge.owners):
        statuses[key] = _status(merge, key)
    for key, message in sorted(merge.tls_conflicts.items()):
        statuses[key] = ObjectStatus("disabled", (message,), "")
    return statuses


def _split(merge: Merge, protocol: str) -> tuple[Any, Any]:
    """The protocol's config of serving objects, and that of disabled ones."""
    serving: dict[str, dict[str, Any]] = {}
    disabled: dict[str, dict[str, Any]] = {}
    for proto, section, attribute in SECTIONS:
        if proto != protocol:
            continue
        serving[attribute], disabled[attribute] = {}, {}
        for name, obj in sorted(merge.table(protocol, section).items()):
            off = merge.disabled(status_key(protocol, section, name))
            (disabled if off else serving)[attribute][name] = obj
    config_type = CONFIG_TYPES[protocol]
    return config_type(**serving), config_type(**disabled)


def build_snapshot(
    version: int,
    updates: Iterable[ProviderUpdate],
    entry_points: EntryPoints,
    internal_services: frozenset[str] = frozenset(),
    cache: BuildCache | None = None,
) -> Snapshot:
    """Merge the latest configuration of every provider into snapshot `version`; `cache`
    carries reusable work from one call to the next (one caller at a time)."""
    ordered = sorted(updates, key=lambda update: update.provider)
    cache = cache or BuildCache()
    last: _LastBuild | None = cache.last
    inputs = (entry_points, internal_services, [update.provider for update in ordered])
    if last is not None and last.inputs == inputs:
        snapshot = _build_routers_only(version, ordered, last, cache)
        if snapshot is not None:
            return snapshot
    cache.last = None
    merge = Merge(entry_points, internal_services, cache)
    for update in ordered:
        collect(merge, update)
    certificates = collect_tls(merge, ordered)
    check_all(merge)
    parts = {protocol: _split(merge, protocol) for protocol in PROTOCOLS}
    tls = TLSConfig(
        certificates=certificates,
        options=dict(sorted(merge.tls["options"].items())),
        stores=dict(sorted(merge.tls["stores"].items())),
    )
    config = DynamicConfig(**{protocol: served for protocol, (served, _) in parts.items()}, tls=tls)
    disabled = DynamicConfig(**{protocol: off for protocol, (_, off) in parts.items()})
    merge.cache.rotate()
    snapshot = Snapshot(version, config, _statuses(merge), disabled)
    cache.last = _LastBuild(inputs, ordered, merge, snapshot, cache.size)
    return snapshot


@dataclass(frozen=True, slots=True)
class _LastBuild:
    """What a build hands the next one that changes routers only."""

    inputs: tuple[EntryPoints, frozenset[str], list[str]]  # and the providers, in order
    updates: list[ProviderUpdate]
    merge: Merge
    snapshot: Snapshot
    # The cache's size after the last full build: what removed objects leave in it is
    # dropped by a full build once it has doubled.
    cache_size: int


_ROUTERS = {(protocol, "routers") for protocol in PROTOCOLS}
_SPARE = 64  # changes and cached objects allowed beyond the proportions below


def _changed_routers(
    old: ProviderUpdate, new: ProviderUpdate
) -> dict[tuple[str, str], tuple[list[str], list[str]]] | None:
    """Per router table, (names added or changed, names removed) from `old` to `new`;
    None when anything else changed. Objects are compared by identity first (the file
    and Docker providers hand unchanged objects over as the same objects)."""
    if old.object_errors != new.object_errors or old.config.tls != new.config.tls:
        return None
    changes: dict[tuple[str, str], tuple[list[str], list[str]]] = {}
    for protocol, section, attribute in SECTIONS:
        before = getattr(getattr(old.config, protocol), attribute)
        after = getattr(getattr(new.config, protocol), attribute)
        if before is after:
            continue
        changed = [
            name for name, obj in after.items() if (b := before.get(name)) is not obj and b != obj
        ]
        removed = [name for name in before if name not in after]
        if not changed and not removed:
            continue
        if (protocol, section) not in _ROUTERS:
            return None
        changes[protocol, section] = (changed, removed)
    return changes


def _build_routers_only(
    version: int, updates: list[ProviderUpdate], last: _LastBuild, cache: BuildCache
) -> Snapshot | None:
    """The snapshot when only routers changed since `last`: the last merge with the
    changed routers collected and checked again; None when a full build is needed
    (something else changed, more than half the routers did, or the cache has grown)."""
    per_update = []
    count = 0
    for old, new in zip(last.updates, updates, strict=True):
        changes = _changed_routers(old, new)
        if changes is None:
            return None
        per_update.append((new, changes))
        count += sum(len(changed) + len(removed) for changed, removed in changes.values())
    before = last.merge
    routers = sum(len(before.table(protocol, "routers")) for protocol in PROTOCOLS)
    if count * 2 > routers + _SPARE or cache.size > 2 * last.cache_size + _SPARE:
        return None
    merge = Merge(
        before.entry_points,
        before.internal_services,
        cache,
        tables={
            key: dict(table) if key[1] == "routers" else table
            for key, table in before.tables.items()
        },
        owners=dict(before.owners),
        problems=dict(before.problems),
        tls=before.tls,
        tls_conflicts=before.tls_conflicts,
    )
    touched: dict[str, list[str]] = {protocol: [] for protocol in PROTOCOLS}
    for update, changes in per_update:
        provider = update.provider
        for (protocol, section), (changed, removed) in changes.items():
            table = merge.table(protocol, section)
            for name in [*changed, *removed]:
                qualified = f"{name}@{provider}"
                key = status_key(protocol, section, qualified)
                table.pop(qualified, None)
                merge.owners.pop(key, None)
                merge.problems.pop(key, None)
                touched[protocol].append(qualified)
            objects = getattr(update.config, protocol).routers
            for name in changed:
                collect_object(merge, update, protocol, section, name, objects[name])
    for protocol, names in touched.items():
        table = merge.table(protocol, "routers")
        for name in names:
            if name in table:
                check_router(merge, protocol, name, table[name])
    snapshot = _patched_snapshot(version, last.snapshot, merge, touched)
    cache.absorb()
    cache.last = _LastBuild(last.inputs, updates, merge, snapshot, last.cache_size)
    return snapshot


def _patched_snapshot(
    version: int, base: Snapshot, merge: Merge, touched: Mapping[str, list[str]]
) -> Snapshot:
    """`base` with the `touched` routers (qualified names, per protocol) as `merge` has
    them now: serving, disabled or gone, and their statuses."""
    statuses = dict(base.statuses)
    serving_update: dict[str, Any] = {}
    disabled_update: dict[str, Any] = {}
    changes: dict[tuple[str, str], TableChange] = {}
    for protocol, names in touched.items():
        if not names:
            continue
        table = merge.table(protocol, "routers")
        serving = dict(getattr(base.config, protocol).routers)
        disabled = dict(getattr(base.disabled, protocol).routers)
        upserts: dict[str, Any] = {}
        removed: list[str] = []
        for name in names:
            key = status_key(protocol, "routers", name)
            was_serving = serving.pop(name, None)
            disabled.pop(name, None)
            statuses.pop(key, None)
            if name not in table:
                if was_serving is not None:
                    removed.append(name)
                continue
            statuses[key] = _status(merge, key)
            if merge.disabled(key):
                disabled[name] = table[name]
                if was_serving is not None:
                    removed.append(name)
            elif was_serving is not None and was_serving == table[name]:
                serving[name] = was_serving  # the same object: nothing for the workers
            else:
                serving[name] = upserts[name] = table[name]
        serving_update[protocol] = getattr(base.config, protocol).model_copy(
            update={"routers": serving}
        )
        disabled_update[protocol] = getattr(base.disabled, protocol).model_copy(
            update={"routers": disabled}
        )
        if upserts or removed:
            changes[protocol, "routers"] = TableChange(upserts, tuple(removed))
    config = base.config.model_copy(update=serving_update)
    off = base.disabled.model_copy(update=disabled_update)
    return Snapshot(version, config, statuses, off, (base.config, changes))


# ---------------------------------------------------------------- the asyncio shell


Sleep = Callable[[float], Awaitable[None]]


class Aggregator:
    """Keeps the latest configuration per provider and publishes throttled snapshots.

    `throttle` is the minimum time between two published snapshots: a change that
    arrives after a quiet period is published immediately, changes that arrive within
    `throttle` of the last publication are coalesced and published together when it
    ends. `sleep` is injectable so tests can drive the throttle without a clock.
    """

    def __init__(
        self,
        entry_points: EntryPoints,
        publish: Callable[[Snapshot], None],
        *,
        throttle: float = DEFAULT_THROTTLE,
        internal_services: frozenset[str] = frozenset(),
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._entry_points = entry_points
        self._publish = publish
        self._throttle = throttle
        self._internal_services = internal_services
        self._sleep = sleep
        self._latest: dict[str, ProviderUpdate] = {}
        self._provider_errors: dict[str, tuple[str, ...]] = {}
        self._dirty = asyncio.Event()
        self._current = Snapshot.empty()
        self._cache = BuildCache()
        # Builds run in a thread of their own under SCHED_IDLE (proxynow/background.py),
        # not in the loop's default executor, whose threads others use at their priority.
        self._builder: ThreadPoolExecutor | None = None

    @property
    def current(self) -> Snapshot:
        """The last published snapshot (version 0, empty, before the first)."""
        return self._current

    @property
    def provider_errors(self) -> Mapping[str, tuple[str, ...]]:
        """Current provider-level errors, by provider (for the API)."""
        return dict(self._provider_errors)

    def submit(self, update: ProviderUpdate) -> None:
        """Take a provider's complete configuration; equal to the last one → ignored."""
        if update.provider == INTERNAL_PROVIDER or "@" in update.provider:
            raise ValueError(f"provider name {update.provider!r} is reserved or invalid")
        if self._latest.get(update.provider) == update:
            return
        self._latest[update.provider] = update
        self._dirty.set()

    def report_errors(self, provider: str, errors: Sequence[str]) -> None:
        """Record a provider's current errors; each new distinct error is logged once."""
        current = tuple(errors)
        previous = set(self._provider_errors.get(provider, ()))
        for error in current:
            if error not in previous:
                log.error("provider %s: %s", provider, error)
        if previous and not current:
            log.info("provider %s: errors cleared", provider)
        if current:
            self._provider_errors[provider] = current
        else:
            self._provider_errors.pop(provider, None)

    async def run(self) -> None:
        """Publish snapshots until cancelled."""
        self._builder = ThreadPoolExecutor(
            1, thread_name_prefix="snapshot-build", initializer=lower_this_thread
        )
        try:
            while True:
                await self._dirty.wait()
                self._dirty.clear()
                await self._publish_latest()
                await self._sleep(self._throttle)
        finally:
            self._builder.shutdown(wait=False, cancel_futures=True)
            self._builder = None

    async def _publish_latest(self) -> None:
        updates = list(self._latest.values())
        version = self._current.version + 1
        try:
            # Rule parsing for thousands of routers must not stall the control loop.
            snapshot = await asyncio.get_running_loop().run_in_executor(
                self._builder,
                _build_collecting_later,
                version,
                updates,
                self._entry_points,
                self._internal_services,
                self._cache,
            )
        except Exception:
            log.exception("building snapshot %d failed; keeping version %d", version, version - 1)
            return
        if snapshot.same_content(self._current):
            return
        _log_changes(self._current.statuses, snapshot.statuses)
        self._current = snapshot
        self._publish(snapshot)


_LARGE = 5000  # objects above which a build keeps the cyclic collector off (heap.py)


def _build_collecting_later(
    version: int,
    updates: list[ProviderUpdate],
    entry_points: EntryPoints,
    internal_services: frozenset[str],
    cache: BuildCache,
) -> Snapshot:
    """`build_snapshot`; a large one without cyclic collections (proxynow/heap.py: a full
    build of 20,000 routers triggered ten, 1.4-2.1 s of its 1.6-2.7 s)."""
    objects = sum(
        len(getattr(getattr(update.config, protocol), attribute))
        for update in updates
        for protocol, _, attribute in SECTIONS
    )
    # A large build is not left to SCHED_IDLE either: a busy worker would starve it.
    with collecting_later(objects >= _LARGE), normal_while(objects >= _LARGE):
        return build_snapshot(version, updates, entry_points, internal_services, cache)


def _log_changes(before: Mapping[str, ObjectStatus], after: Mapping[str, ObjectStatus]) -> None:
    """Log each object's errors once: when they appear or change, not on every snapshot."""
    for key, status in after.items():
        previous = before.get(key)
        if status.errors and (previous is None or previous.errors != status.errors):
            log.warning("%s is %s: %s", key, status.status, "; ".join(status.errors))
        elif not status.errors and previous is not None and previous.errors:
            log.info("%s is enabled again", key)
