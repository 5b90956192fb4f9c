"""One snapshot build's merge: the providers' objects qualified `name@provider` into
tables, with the problems found per object, and what one build hands the next.

`Merge` is the scratch state of one `aggregator.build_snapshot` call; `collect` and
`collect_tls` fill it from the providers' updates; `checks.check_all` then judges every
object; `BuildCache` outlives the call so that unchanged objects cost nothing next time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from proxynow.config.dynamic import HTTPConfig, TCPConfig, TLSOptions, UDPConfig
from proxynow.providers.base import SECTIONS, ProviderUpdate
from proxynow.rules import RuleError, parse_rule
from proxynow.snapshot import status_key
from proxynow.snapshot.qualify import DEFAULT_TLS, QUALIFIERS

__all__ = [
    "CONFIG_TYPES",
    "DEFAULT_TRANSPORT",
    "INTERNAL_PROVIDER",
    "INTERNAL_SERVICES",
    "PROTOCOLS",
    "BuildCache",
    "EntryPoints",
    "Merge",
    "collect",
    "collect_object",
    "collect_tls",
]

INTERNAL_PROVIDER = "internal"
INTERNAL_SERVICES = frozenset({"api", "dashboard", "ping", "prometheus", "noop"})
"""Reserved `name@internal` services; the control plane enables those it implements."""

DEFAULT_TRANSPORT = "default@internal"

PROTOCOLS = ("http", "tcp", "udp")
CONFIG_TYPES = {"http": HTTPConfig, "tcp": TCPConfig, "udp": UDPConfig}


@dataclass(frozen=True, slots=True)
class EntryPoints:
    """The static entrypoints a router may name, and those it gets when it names none."""

    names: frozenset[str]
    defaults: tuple[str, ...]
    udp_defaults: tuple[str, ...] = ()  # UDP routers' (empty: `defaults`)
    # (entrypoint, its `http.middlewares`) for the entrypoints that have some: prepended to
    # every HTTP router on the entrypoint, as Traefik does.
    http_middlewares: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def middlewares_of(self, entry_point: str) -> tuple[str, ...]:
        """The `http.middlewares` of `entry_point` (none for most)."""
        for name, middlewares in self.http_middlewares:
            if name == entry_point:
                return middlewares
        return ()

    @classmethod
    def from_flags(cls, as_default: Mapping[str, bool]) -> EntryPoints:
        """From `{name: asDefault}`: defaults are the `asDefault` ones, else all of them."""
        names = sorted(as_default)
        marked = [name for name in names if as_default[name]]
        return cls(frozenset(names), tuple(marked or names))


class BuildCache:
    """What one `build_snapshot` can hand the next, for the objects still in use: rule
    checks by rule text, and objects derived from a provider's object (qualified, given
    default entrypoints) by that object's identity. A provider that hands over unchanged
    objects as the same objects (`DynamicFileLoader`, the Docker provider's cache) then
    gets the same derived objects back, so a change of one router of a thousand parses
    one rule and copies one router, and every later comparison is an identity check."""

    __slots__ = ("_known", "_objects", "_used", "_used_objects", "last")

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], str | None] = {}
        self._used: dict[tuple[str, str], str | None] = {}
        self._objects: dict[tuple[str, ...], tuple[Any, Any]] = {}
        self._used_objects: dict[tuple[str, ...], tuple[Any, Any]] = {}
        # The last build's inputs, merge and snapshot (control/aggregator.py: a build that only
        # changes routers starts from them).
        self.last: Any = None

    def rule_error(self, rule: str, kind: str) -> str | None:
        """Why `rule` does not parse as a `kind` rule; None when it does."""
        key = (kind, rule)
        if key in self._used:
            return self._used[key]
        if key in self._known:
            error = self._known[key]
        else:
            try:
                parse_rule(rule, "tcp" if kind == "tcp" else "http")
                error = None
            except RuleError as exc:
                error = str(exc)
        self._used[key] = error
        return error

    def derived(self, key: tuple[str, ...], source: Any, make: Callable[[], Any]) -> Any:
        """`make()`, or what it gave the last build for this very `source` object."""
        known = self._used_objects.get(key) or self._objects.get(key)
        result = known[1] if known is not None and known[0] is source else make()
        self._used_objects[key] = (source, result)
        return result

    def rotate(self) -> None:
        """End of a build: forget what it did not use."""
        self._known, self._used = self._used, {}
        self._objects, self._used_objects = self._used_objects, {}

    def absorb(self) -> None:
        """End of a build that looked at the changed objects only: keep everything (what
        the removed objects left is dropped by the next full build; see `size`)."""
        self._known.update(self._used)
        self._objects.update(self._used_objects)
        self._used, self._used_objects = {}, {}

    @property
    def size(self) -> int:
        """How many rule checks and derived objects are kept."""
        return len(self._known) + len(self._objects)


@dataclass
class Merge:
    """Scratch state of one `build_snapshot` call; never escapes it."""

    entry_points: EntryPoints
    internal_services: frozenset[str]
    cache: BuildCache = field(default_factory=BuildCache)
    tables: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)  # status key -> provider
    problems: dict[str, list[tuple[bool, str]]] = field(default_factory=dict)
    tls: dict[str, dict[str, Any]] = field(default_factory=dict)  # options / stores
    tls_conflicts: dict[str, str] = field(default_factory=dict)  # "tls.options.default" -> why

    def add(self, key: str, message: str, *, critical: bool = True) -> None:
        entries = self.problems.setdefault(key, [])
        if (critical, message) not in entries:
            entries.append((critical, message))

    def disabled(self, key: str) -> bool:
        return any(critical for critical, _ in self.problems.get(key, ()))

    def first_error(self, key: str) -> str:
        return next(message for critical, message in self.problems[key] if critical)

    def table(self, protocol: str, section: str) -> dict[str, Any]:
        return self.tables.setdefault((protocol, section), {})


def collect(merge: Merge, update: ProviderUpdate) -> None:
    for protocol, section, attribute in SECTIONS:
        objects: Mapping[str, Any] = getattr(getattr(update.config, protocol), attribute)
        for name, obj in objects.items():
            collect_object(merge, update, protocol, section, name, obj)


def collect_object(
    merge: Merge, update: ProviderUpdate, protocol: str, section: str, name: str, obj: Any
) -> str:
    """Qualify one object of `update` into the merge; its status key."""
    provider = update.provider
    qualified = f"{name}@{provider}"
    key = status_key(protocol, section, qualified)
    merge.owners[key] = provider
    merge.table(protocol, section)[qualified] = merge.cache.derived(
        ("qualified", key), obj, functools.partial(QUALIFIERS[section], obj, provider)
    )
    if "@" in name:
        merge.add(key, f"name {name!r} must not contain '@' (it is reserved for references)")
    for message in update.object_errors.get(f"{protocol}.{section}.{name}", ()):
        merge.add(key, message)
    return key


def collect_tls(merge: Merge, updates: Sequence[ProviderUpdate]) -> list[Any]:
    """Qualify TLS options and stores; `default` may come from one provider only."""
    certificates: list[Any] = []
    for kind in ("options", "stores"):
        table = merge.tls.setdefault(kind, {})
        default_from: list[str] = []
        for update in updates:
            for name, value in getattr(update.config.tls, kind).items():
                if name == DEFAULT_TLS:
                    default_from.append(update.provider)
                    table[name] = value
                else:
                    table[f"{name}@{update.provider}"] = value  # definitions always qualified
        if len(default_from) > 1:
            # As Traefik: no default at all, so whatever relies on it fails visibly.
            del table[DEFAULT_TLS]
            providers = ", ".join(default_from)
            merge.tls_conflicts[f"tls.{kind}.{DEFAULT_TLS}"] = (
                f"TLS {kind} {DEFAULT_TLS!r} are defined by several providers ({providers})"
            )
        elif not default_from and kind == "options":
            table[DEFAULT_TLS] = TLSOptions()
    for update in updates:
        certificates.extend(update.config.tls.certificates)
    return certificates
