"""The file provider: dynamic configuration from one YAML/TOML file or a directory of them.

`filename` names one file; `directory` names a directory whose `*.yml`, `*.yaml` and
`*.toml` files are read, subdirectories included (as Traefik does), hidden entries
excluded (so the `..data` trees of Kubernetes ConfigMap mounts are not read twice). With
`watch` (the default) the file's directory or the whole tree is watched with watchfiles,
so in-place writes, atomic renames, deleted and re-created files and new files are seen.
The watching and the reading happen in one thread of the provider's own (watchfiles'
synchronous `watch`); only the finished update crosses to the event loop. The control
plane shares its core with a worker, so a change costs one hand-over, not the thread
round trips and task groups per batch of watchfiles' `awatch` plus one for the read.

Every reload reads every file again and merges them (`merge_files`). A file that fails to
parse or validate keeps its last good content serving and its errors, with
`file:line:column`, are reported to the sink as provider errors; once the file is fixed,
the next change recovers without a restart. A name defined differently in two files is a
conflict reported on that object (which the aggregator then disables). Every file is
rendered as a Go template first, as Traefik does (`config/loader.py::read_dynamic_file`).

A file that had content and is read empty is most often caught between an editor's
truncate and its write: its last content keeps serving, and it is read again after
`settle` seconds (default 1 s); only if it is still empty then is its configuration
dropped, with a warning (once) when that removes routers. Without this, saving a file in
place could remove its routers for a moment.

What one file may cost is bounded (docs/configuration.md, "Limits"):

- a file larger than `max_bytes` (`providers.file.maxFileBytes`, default 10 MiB) is not
  parsed: one error says so and its last good configuration keeps serving;
- YAML aliases that would expand to more than `_MAX_EXPANDED` nodes (a "billion laughs"
  alias bomb is a few hundred bytes) refuse the file the same way, before anything walks
  the expansion; libyaml itself refuses nesting deeper than 1,000 levels;
- a file's errors are reported (and so logged) at most `_ISSUES_SHOWN` at a time, plus
  one summary line with their number, whatever the validator found;
- while files of more than 1 MiB in all are read, Python's cyclic collector is off, and
  what they made is frozen afterwards (proxynow/heap.py): its full collections were 1 to
  2.5 s of the 2 to 4 s a one-router edit of a 20,000-router file cost;
- a file nested deeply enough to exhaust Python's recursion (TOML has no depth limit;
  900 levels of YAML are within libyaml's) is that file's error, not the end of the
  provider.

A file whose content did not change since it was last read (same size and digest) is not
parsed again: its last outcome, configuration or errors, is reused. In a directory, a
change to one file then costs that file, not the whole directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from watchfiles import DefaultFilter, watch

from proxynow.background import lower_this_thread, normal_while
from proxynow.config.dynamic import DynamicConfig, HTTPConfig, TCPConfig, TLSConfig, UDPConfig
from proxynow.config.errors import ConfigError
from proxynow.config.loader import DynamicFileLoader
from proxynow.config.static import FileProvider as FileProviderConfig
from proxynow.heap import collecting_later
from proxynow.providers.base import SECTIONS, ConfigSink, ProviderUpdate, object_key

__all__ = ["DEFAULT_MAX_BYTES", "SUFFIXES", "FileProvider", "merge_files"]

log = logging.getLogger(__name__)

SUFFIXES = (".yml", ".yaml", ".toml")
_CONFIG_TYPES = {"http": HTTPConfig, "tcp": TCPConfig, "udp": UDPConfig}
_MAX_BACKOFF = 30.0
_SETTLE = 1.0
# watchfiles' own defaults (what `awatch` used here): a burst of changes is handed over
# once nothing changed for `_STEP_MS`, or after `_DEBOUNCE_MS` at the latest.
_DEBOUNCE_MS = 1600
_STEP_MS = 50
_EMPTY = DynamicConfig()
DEFAULT_MAX_BYTES = 10 * 1024 * 1024  # `providers.file.maxFileBytes`
_LARGE = 1024 * 1024  # bytes of files above which a read keeps the collector off (heap.py)
_ISSUES_SHOWN = 10  # errors of one file reported (and logged) at a time, plus a summary
# Nodes YAML aliases may expand a file to (or twice its own nodes, if more): beyond it,
# the positions walk and the validation cost the expansion, exponential in an alias bomb.
_MAX_EXPANDED = 1_000_000
# Where a YAML alias (`*name`) can start a node: a file without one has no alias to expand.
_ALIAS = re.compile(rb"(?:^|[\s\[{,])\*[^\s\[\]{},]", re.MULTILINE)
_EVENTS_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Refused(Exception):
    """A file that cannot be used; `errors` are the (bounded) messages to report."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(errors)
        self.errors = errors


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What the last read of one file gave, and for which content."""

    size: int
    digest: bytes
    config: DynamicConfig | None
    errors: list[str]


def merge_files(
    configs: Mapping[str, DynamicConfig],
) -> tuple[DynamicConfig, dict[str, tuple[str, ...]], list[str]]:
    """Merge per-file configurations (in the mapping's order).

    Returns the merged configuration, the per-object errors for names defined differently
    in several files (the first definition is kept, the aggregator disables it), and
    provider-level errors for conflicting TLS options and stores, which have no status
    of their own. Identical definitions in several files are not a conflict. One file is
    its own merge (the same object: nothing to walk, and unchanged tables stay the same).
    """
    if len(configs) == 1:
        return next(iter(configs.values())), {}, []
    parts: dict[str, dict[str, dict[str, Any]]] = {protocol: {} for protocol in _CONFIG_TYPES}
    object_errors: dict[str, tuple[str, ...]] = {}
    for protocol, section, attribute in SECTIONS:
        merged, conflicts = _merge_named(configs, protocol, attribute)
        parts[protocol][attribute] = merged
        for name, files in conflicts.items():
            object_errors[object_key(protocol, section, name)] = (_conflict(files),)
    tls_errors: list[str] = []
    tls: dict[str, Any] = {"certificates": []}
    for kind in ("options", "stores"):
        merged, conflicts = _merge_named(configs, "tls", kind)
        tls[kind] = merged
        tls_errors.extend(
            f"tls.{kind}.{name}: {_conflict(files)}" for name, files in conflicts.items()
        )
    for config in configs.values():
        tls["certificates"].extend(config.tls.certificates)
    merged_config = DynamicConfig(
        **{protocol: _CONFIG_TYPES[protocol](**part) for protocol, part in parts.items()},
        tls=TLSConfig(**tls),
    )
    return merged_config, object_errors, tls_errors


def _merge_named(
    configs: Mapping[str, DynamicConfig], part: str, attribute: str
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Merge `config.<part>.<attribute>` of every file; names defined differently conflict."""
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    conflicts: dict[str, list[str]] = {}
    for path, config in configs.items():
        for name, obj in getattr(getattr(config, part), attribute).items():
            if name not in merged:
                merged[name], origin[name] = obj, path
            elif merged[name] != obj:
                conflicts.setdefault(name, [origin[name]]).append(path)
    return merged, conflicts


def _conflict(files: Sequence[str]) -> str:
    return "defined differently in several files: " + ", ".join(files)


def _finish(done: asyncio.Future[None] | None, error: Exception | None) -> None:
    """In the loop: the provider is done (its thread ended, or a read failed with `error`)."""
    if done is None or done.done():
        return  # `run` was cancelled, or has already failed
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)


def _config_files(directory: str) -> list[str]:
    """Configuration files under `directory`, recursively, hidden entries skipped, sorted."""
    found: list[str] = []
    for root, dirs, files in os.walk(directory, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(
            os.path.join(root, name)
            for name in files
            if not name.startswith(".") and name.lower().endswith(SUFFIXES)
        )
    return sorted(found)


class FileProvider:
    """Reads `filename` or `directory`, submits the merged configuration, then watches.

    `watching` is set once the file watcher is running (the configuration is re-read at
    that moment, so nothing written before it is missed). `watch_timeout` is how often,
    in seconds, the watcher thread wakes up while nothing changes.

    One thread of its own does the reading and the watching: the configuration is read
    there, at start and on every relevant change, and only the finished update crosses
    to the event loop (`call_soon_threadsafe`), where the sink is called. The settle
    re-read runs in the loop's default executor; `_loading` keeps it and a watched
    change from ever reading at the same time.
    """

    def __init__(
        self,
        *,
        filename: str = "",
        directory: str = "",
        watch: bool = True,
        name: str = "file",
        watch_timeout: float = 1.0,
        settle: float = _SETTLE,
        log_template: bool = False,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if bool(filename) == bool(directory):
            raise ValueError("set exactly one of filename and directory")
        self._name = name
        self._filename = os.path.abspath(filename) if filename else ""
        self._directory = os.path.abspath(directory) if directory else ""
        self._watch = watch
        self._watch_timeout = watch_timeout
        self._settle = settle
        self._max_bytes = max_bytes
        self._outcomes: dict[str, _Outcome] = {}  # by path: the last read's, for its content
        self._settle_task: asyncio.Task[None] | None = None
        self._emptied: set[str] = set()
        self._generation = 0  # reads made, settle re-reads not counted
        self._loading = threading.Lock()  # held while reading and handing the result over
        # Unchanged objects of a re-read file are reused.
        self._loader = DynamicFileLoader(log_template=log_template)
        self._filter = DefaultFilter()
        self.reads = 0
        self._last_good: dict[str, DynamicConfig] = {}
        self._file_errors: list[str] = []
        self._watch_errors: list[str] = []
        self._stopping = threading.Event()  # watchfiles polls it every step
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Future[None] | None = None  # `run` ends when this is done
        self.watching = asyncio.Event()

    @classmethod
    def from_config(cls, config: FileProviderConfig) -> FileProvider:
        return cls(
            filename=config.filename,
            directory=config.directory,
            watch=config.watch,
            log_template=config.debug_log_generated_template,
            max_bytes=config.max_file_bytes,
        )

    @property
    def name(self) -> str:
        return self._name

    def stop(self) -> None:
        """Make `run` return (within the watcher's step, about 50 ms)."""
        self._stopping.set()

    async def run(self, sink: ConfigSink) -> None:
        """Read, then watch until stopped or cancelled; the thread has ended on return.

        An unexpected exception in a read or in the watcher is raised here (the control
        plane logs it).
        """
        self._loop = asyncio.get_running_loop()
        self._done = done = self._loop.create_future()
        thread = threading.Thread(
            target=self._thread, args=(sink,), name=f"provider-{self._name}", daemon=True
        )
        thread.start()
        try:
            await done
        finally:
            self._stopping.set()  # when cancelled: the thread notices within one step
            thread.join()
            if self._settle_task is not None:
                self._settle_task.cancel()

    def _thread(self, sink: ConfigSink) -> None:
        # SCHED_IDLE: reading a change must not delay the requests of a worker on our core
        # (proxynow/background.py; watchfiles' thread, started from here, inherits it).
        lower_this_thread()
        error: Exception | None = None
        try:
            self._read(sink, settled=not self._watch)
            if self._watch:
                self._watch_with_backoff(sink)
        except Exception as exc:  # handed to `run`, which raises it
            error = exc
        finally:
            self._post(_finish, self._done, error)

    def _watch_with_backoff(self, sink: ConfigSink) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            try:
                self._watch_changes(sink)
            except OSError as error:  # the watched directory is missing or unreadable
                with self._loading:
                    self._watch_errors = [f"cannot watch {self._watch_root()}: {error}"]
                    self._post(sink.report_errors, self._name, self._errors())
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)

    def _watch_root(self) -> str:
        return self._directory or os.path.dirname(self._filename)

    def _watch_changes(self, sink: ConfigSink) -> None:
        root = self._watch_root()
        changes_seen = watch(
            root,
            watch_filter=self._filter,
            debounce=_DEBOUNCE_MS,
            step=_STEP_MS,
            stop_event=self._stopping,
            rust_timeout=max(1, int(self._watch_timeout * 1000)),
            yield_on_timeout=True,
            raise_interrupt=False,
            recursive=bool(self._directory),
        )
        started = False
        for changes in changes_seen:
            if not started:
                # The watcher runs now: read again what may have changed before it did.
                started = True
                self._read(sink, settled=False, watching=True)
            elif any(self._relevant(path) for _, path in changes):
                self._read(sink, settled=False)
            elif not changes and not os.path.isdir(root):
                raise FileNotFoundError(root)  # deleted: watch again once it is back

    def _relevant(self, path: str) -> bool:
        if self._directory:
            return True  # a new or removed subdirectory matters too; a re-read is cheap
        name = os.path.basename(path)
        # `..data` is how Kubernetes swaps a mounted ConfigMap's files atomically.
        return name == os.path.basename(self._filename) or name.startswith("..")

    def _read(
        self, sink: ConfigSink, *, settled: bool, watching: bool = False, after: int = 0
    ) -> None:
        """Read every file (in a thread) and hand the result to the loop.

        Under `_loading`, so that the loop receives the results in the order they were
        read. `watching` (the watcher's first read) also clears the watch errors and
        sets the `watching` event once the result has been handed over. A settle re-read,
        planned after the read numbered `after`, is skipped when another read came since
        (its task may be cancelled too late to stop the thread): that read is newer and
        planned its own settle re-read if it needed one.
        """
        with self._loading:
            if settled and after != self._generation:
                return
            if not settled:
                self._generation += 1
            if watching:
                self._watch_errors = []
            update = self._load(settled)
            emptied = bool(self._emptied)
            result = (update, self._errors(), emptied, settled, self._generation)
            self._post(self._deliver, sink, *result)
            if watching:
                self._post(self.watching.set)

    def _post(self, callback: Callable[..., object], *args: Any) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening
            self._loop.call_soon_threadsafe(callback, *args)

    def _errors(self) -> list[str]:
        return [*self._watch_errors, *self._file_errors]

    def _deliver(
        self,
        sink: ConfigSink,
        update: ProviderUpdate | None,
        errors: list[str],
        emptied: bool,
        settled: bool,
        generation: int,
    ) -> None:
        """In the loop: what one read found goes to the sink; a settle re-read is planned."""
        if not settled and self._settle_task is not None:
            self._settle_task.cancel()  # this read is newer; it plans its own if needed
            self._settle_task = None
        self.reads += 1
        log.debug("provider %s: configuration read, %d errors", self._name, len(errors))
        sink.report_errors(self._name, errors)
        if update is not None:
            sink.submit(update)
        if emptied and not settled and not self._stopping.is_set():
            self._settle_task = asyncio.create_task(
                self._settle_reload(sink, generation), name="file-settle"
            )

    async def _settle_reload(self, sink: ConfigSink, after: int) -> None:
        await asyncio.sleep(self._settle)
        if not self._stopping.is_set():
            try:
                await asyncio.to_thread(self._read, sink, settled=True, after=after)
            except Exception as error:  # as in the provider's thread: `run` raises it
                _finish(self._done, error)
        if self._settle_task is asyncio.current_task():
            self._settle_task = None

    def _load(self, settled: bool) -> ProviderUpdate | None:
        """Read every file (in a thread); None when the directory cannot be listed.

        Unless `settled`, a file read empty that had content keeps its last content and
        is remembered in `_emptied` for the re-read after the settle time.
        """
        if self._filename:
            paths = [self._filename]
        elif not Path(self._directory).is_dir():
            self._file_errors = [
                f"{self._directory}: not a directory (keeping the last good files)"
            ]
            return None
        else:
            paths = _config_files(self._directory)
        # Large files: no cyclic collection while they are parsed (proxynow/heap.py), and
        # not under SCHED_IDLE, which a saturated worker would starve (background.py).
        large = _total_size(paths) >= _LARGE
        with collecting_later(large), normal_while(large):
            return self._load_paths(paths, settled)

    def _load_paths(self, paths: list[str], settled: bool) -> ProviderUpdate:
        errors: list[str] = []
        current: dict[str, DynamicConfig] = {}
        self._emptied = set()
        emptied: list[tuple[str, int]] = []  # files read empty that had routers
        for path in paths:
            if not settled and self._just_emptied(path):
                self._emptied.add(path)
                current[path] = self._last_good[path]
                continue
            try:
                current[path] = config = self._read_file(path)
            except _Refused as refused:
                errors.extend(refused.errors)
                if path in self._last_good:
                    current[path] = self._last_good[path]
                continue
            before = self._last_good.get(path)
            if before is not None and config == _EMPTY and _routers(before):
                emptied.append((path, _routers(before)))
        self._last_good = current
        self._loader.retain(paths)
        for path in [known for known in self._outcomes if known not in current]:
            del self._outcomes[path]
        config, object_errors, tls_errors = merge_files(
            {self._display(path): config for path, config in current.items()}
        )
        self._file_errors = errors + tls_errors
        for path, routers in emptied:
            left = "" if _routers(config) else "; the provider has no router left"
            log.warning(
                "provider %s: %s is empty now: its %d routers are removed%s",
                self._name,
                path,
                routers,
                left,
            )
        return ProviderUpdate(self._name, config, object_errors)

    def _read_file(self, path: str) -> DynamicConfig:
        """One file's configuration, or `_Refused` with its errors (bounded): refused
        when over the size limit or an alias bomb, reused when its content is unchanged."""
        try:
            data = _read_at_most(path, self._max_bytes)
        except _TooLarge as large:
            raise _Refused(
                [
                    f"{path}: {large.size} bytes, over the limit of {self._max_bytes} "
                    "(providers.file.maxFileBytes): not read; its last good configuration "
                    "keeps serving"
                ]
            ) from None
        except OSError:
            data = None  # the loader says why, as it always has
        digest = hashlib.blake2b(data, digest_size=16).digest() if data is not None else b""
        known = self._outcomes.get(path)
        if (
            data is not None
            and known is not None
            and (known.size, known.digest) == (len(data), digest)
        ):
            if known.config is None:
                raise _Refused(known.errors)
            return known.config
        config: DynamicConfig | None = None
        errors: list[str] = []
        try:
            problem = _alias_problem(data) if data is not None and _is_yaml(path) else None
            if problem is not None:
                errors = [f"{path}: {problem}; its last good configuration keeps serving"]
            else:
                # The bytes just read and hashed, not the file read again: the outcome
                # remembered is that of exactly this content.
                config = self._loader.load(path, data)
        except ConfigError as error:
            errors = _bounded(path, error.issues)
        except (RecursionError, MemoryError) as error:  # what a file's content can cause
            errors = [f"{path}: cannot be loaded ({type(error).__name__}: nested too deep?)"]
        if data is not None:
            self._outcomes[path] = _Outcome(len(data), digest, config, errors)
        else:
            self._outcomes.pop(path, None)
        if config is None:
            raise _Refused(errors)
        return config

    def _just_emptied(self, path: str) -> bool:
        last = self._last_good.get(path)
        if last is None or last == _EMPTY:
            return False
        try:
            return os.stat(path).st_size == 0
        except OSError:
            return False

    def _display(self, path: str) -> str:
        """How a file is named in conflict messages: relative to the directory."""
        return os.path.relpath(path, self._directory) if self._directory else path


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


def _read_at_most(path: str, limit: int) -> bytes:
    """The file's bytes; `_TooLarge` when it has more than `limit` (never read whole)."""
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size > limit:
            raise _TooLarge(size)
        data = file.read(limit + 1)
    if len(data) > limit:  # it grew since the fstat
        raise _TooLarge(len(data))
    return data


def _is_yaml(path: str) -> bool:
    return not path.lower().endswith(".toml")


def _alias_problem(data: bytes) -> str | None:
    """Why the YAML `data` is refused for what its aliases expand to; None when it has
    no alias (the usual case: one regular expression search) or they expand modestly.

    The expansion is counted on libyaml's events (0.15 s per MB, only for files with an
    alias): a collection counts its nodes, an alias the nodes of what it names.
    """
    if not _ALIAS.search(data):
        return None
    sizes: dict[str, int] = {}
    stack: list[list[Any]] = []  # [anchor, nodes so far] of each open collection
    own = expanded = 0
    loader = _EVENTS_LOADER(data.decode("utf-8", errors="replace"))
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.CollectionStartEvent):
                stack.append([event.anchor, 1])
                own += 1
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                anchor, nodes = stack.pop()
            elif isinstance(event, yaml.ScalarEvent):
                anchor, nodes = event.anchor, 1
                own += 1
            elif isinstance(event, yaml.AliasEvent):
                anchor, nodes = None, sizes.get(event.anchor or "", 1)
            else:
                continue
            if anchor:
                sizes[anchor] = nodes
            if stack:
                stack[-1][1] += nodes
            else:
                expanded += nodes
            if max(nodes, expanded) > max(_MAX_EXPANDED, 2 * own):
                return (
                    f"YAML aliases expand it to more than {max(_MAX_EXPANDED, 2 * own):,} "
                    "nodes (an alias bomb?): not loaded"
                )
    except yaml.YAMLError:
        return None  # the loader reports the syntax error, with its position
    finally:
        loader.dispose()
    return None


def _bounded(path: str, issues: Sequence[object]) -> list[str]:
    """The first `_ISSUES_SHOWN` issues, and one line saying how many there are in all."""
    shown = [str(issue) for issue in issues[:_ISSUES_SHOWN]]
    if len(issues) > _ISSUES_SHOWN:
        shown.append(
            f"{path}: {len(issues):,} errors in all, only the first {_ISSUES_SHOWN} are "
            "shown; its last good configuration keeps serving"
        )
    return shown


def _total_size(paths: list[str]) -> int:
    total = 0
    for path in paths:
        with contextlib.suppress(OSError):
            total += os.stat(path).st_size
    return total


def _routers(config: DynamicConfig) -> int:
    return len(config.http.routers) + len(config.tcp.routers) + len(config.udp.routers)
