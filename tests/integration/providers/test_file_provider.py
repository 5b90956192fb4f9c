"""File provider against real files in tmp_path and the real watcher (watchfiles).

Every test waits for conditions with a deadline (`until`), never for a fixed time.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import pytest

from proxynow.config.dynamic import DynamicConfig
from proxynow.control.aggregator import Aggregator, EntryPoints
from proxynow.providers.base import ProviderUpdate
from proxynow.providers.file import FileProvider, merge_files
from proxynow.snapshot import Snapshot


def yaml_config(routers: Sequence[str] = ("r",), service: str = "svc", port: int = 8080) -> str:
    lines = ["http:", "  routers:"]
    for name in routers:
        lines += [f"    {name}:", f"      rule: Host(`{name}.test`)", f"      service: {service}"]
    lines += [
        "  services:",
        f"    {service}:",
        "      loadBalancer:",
        "        servers:",
        f"          - url: http://127.0.0.1:{port}",
    ]
    return "\n".join(lines) + "\n"


def service_only(*names: str, port: int = 8080) -> str:
    text = "http:\n  services:\n"
    for name in names:
        text += f"    {name}:\n      loadBalancer:\n        servers:\n"
        text += f"          - url: http://127.0.0.1:{port}\n"
    return text


class Recorder:
    """A ConfigSink that remembers what the provider handed over."""

    def __init__(self) -> None:
        self.updates: list[ProviderUpdate] = []
        self.errors: list[str] = []

    def submit(self, update: ProviderUpdate) -> None:
        self.updates.append(update)

    def report_errors(self, provider: str, errors: Sequence[str]) -> None:
        self.errors = list(errors)

    @property
    def config(self) -> DynamicConfig:
        return self.updates[-1].config if self.updates else DynamicConfig()

    def routers(self) -> set[str]:
        return set(self.config.http.routers)

    def services(self) -> set[str]:
        return set(self.config.http.services)


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not reached before the deadline"
        await asyncio.sleep(0.01)


Start = Callable[..., Awaitable[tuple[FileProvider, Recorder]]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    running: list[tuple[FileProvider, asyncio.Task[None]]] = []

    async def _start(**options: object) -> tuple[FileProvider, Recorder]:
        provider = FileProvider(watch_timeout=0.1, **options)  # type: ignore[arg-type]
        sink = Recorder()
        task = asyncio.create_task(provider.run(sink), name="file-provider")
        running.append((provider, task))
        await asyncio.wait_for(provider.watching.wait(), 10)
        return provider, sink

    yield _start
    for provider, task in running:
        provider.stop()
        await asyncio.wait_for(task, 10)


async def test_a_change_is_published(tmp_path: Path, start: Start) -> None:
    path = tmp_path / "dynamic.yml"
    path.write_text(yaml_config(["a"]))
    _, sink = await start(filename=str(path))
    assert sink.routers() == {"a"} and sink.errors == []
    path.write_text(yaml_config(["b"]))
    await until(lambda: sink.routers() == {"b"})


async def test_broken_edit_keeps_last_good_and_fix_recovers(tmp_path: Path, start: Start) -> None:
    path = tmp_path / "dynamic.yml"
    path.write_text(yaml_config(["a"]))
    _, sink = await start(filename=str(path))
    published = len(sink.updates)

    path.write_text("http:\n  routers:\n    a: [\n")  # YAML syntax error
    await until(lambda: bool(sink.errors))
    assert sink.errors[0].startswith(f"{path}:4:"), sink.errors
    assert sink.routers() == {"a"}  # still the last good configuration

    path.write_text(yaml_config(["a"]).replace("rule:", "rulez:"))  # validation error
    await until(lambda: "rulez" in " ".join(sink.errors))
    assert sink.errors[0].startswith(f"{path}:4:7:"), sink.errors
    assert sink.routers() == {"a"}
    assert all(update.config == sink.updates[published - 1].config for update in sink.updates)

    path.write_text(yaml_config(["fixed"]))
    await until(lambda: sink.routers() == {"fixed"} and sink.errors == [])


async def test_atomic_rename_is_picked_up(tmp_path: Path, start: Start) -> None:
    path = tmp_path / "dynamic.toml"
    path.write_text('[http.services.one.loadBalancer]\nservers = [{url = "http://127.0.0.1:1"}]\n')
    _, sink = await start(filename=str(path))
    assert sink.services() == {"one"}
    temporary = tmp_path / ".dynamic.toml.tmp"
    temporary.write_text(
        '[http.services.two.loadBalancer]\nservers = [{url = "http://127.0.0.1:2"}]\n'
    )
    os.replace(temporary, path)
    await until(lambda: sink.services() == {"two"})


async def test_deleted_and_recreated_file(tmp_path: Path, start: Start) -> None:
    path = tmp_path / "dynamic.yml"
    path.write_text(yaml_config(["a"]))
    _, sink = await start(filename=str(path))
    path.unlink()
    await until(lambda: bool(sink.errors))
    assert "cannot read file" in sink.errors[0] and sink.routers() == {"a"}
    path.write_text(yaml_config(["again"]))
    await until(lambda: sink.routers() == {"again"} and sink.errors == [])


async def test_directory_files_added_and_removed(tmp_path: Path, start: Start) -> None:
    (tmp_path / "routers.yml").write_text(yaml_config(["a"]))
    (tmp_path / "notes.txt").write_text("not configuration")
    _, sink = await start(directory=str(tmp_path))
    assert sink.routers() == {"a"} and sink.services() == {"svc"}

    (tmp_path / "extra.yaml").write_text(service_only("extra"))
    await until(lambda: sink.services() == {"svc", "extra"})

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.toml").write_text(
        '[http.services.deep.loadBalancer]\nservers = [{url = "http://127.0.0.1:3"}]\n'
    )
    await until(lambda: sink.services() == {"svc", "extra", "deep"})

    (tmp_path / "routers.yml").unlink()
    await until(lambda: sink.routers() == set() and sink.services() == {"extra", "deep"})
    assert sink.errors == []


async def test_directory_with_one_broken_file_serves_the_others(
    tmp_path: Path, start: Start
) -> None:
    (tmp_path / "good.yml").write_text(yaml_config(["a"]))
    (tmp_path / "bad.yml").write_text("http: [\n")
    _, sink = await start(directory=str(tmp_path))
    assert sink.routers() == {"a"}
    assert len(sink.errors) == 1 and sink.errors[0].startswith(f"{tmp_path / 'bad.yml'}:")
    (tmp_path / "bad.yml").write_text(service_only("late"))
    await until(lambda: "late" in sink.services() and sink.errors == [])


async def test_conflicting_definitions_disable_that_object(tmp_path: Path, start: Start) -> None:
    (tmp_path / "a.yml").write_text(yaml_config(["a"], port=1))
    (tmp_path / "b.yml").write_text(service_only("svc", "same", port=2))
    (tmp_path / "c.yml").write_text(service_only("same", port=2))
    _, sink = await start(directory=str(tmp_path))
    assert sink.updates[-1].object_errors == {
        "http.services.svc": ("defined differently in several files: a.yml, b.yml",)
    }
    published: list[Snapshot] = []
    aggregator = Aggregator(EntryPoints.from_flags({"web": False}), published.append)
    task = asyncio.create_task(aggregator.run(), name="aggregator")
    aggregator.submit(sink.updates[-1])
    await until(lambda: bool(published))
    task.cancel()
    statuses = published[-1].statuses
    assert statuses["http.services.svc@file"].status == "disabled"
    assert statuses["http.routers.a@file"].errors == (
        "service svc@file is disabled: defined differently in several files: a.yml, b.yml",
    )
    assert statuses["http.services.same@file"].status == "enabled"


async def test_without_watch_run_returns_after_the_first_load(tmp_path: Path) -> None:
    path = tmp_path / "dynamic.yml"
    path.write_text(yaml_config(["a"]))
    sink = Recorder()
    await asyncio.wait_for(FileProvider(filename=str(path), watch=False).run(sink), 10)
    assert sink.routers() == {"a"}


async def test_missing_directory_is_reported_then_watched_when_created(tmp_path: Path) -> None:
    directory = tmp_path / "later"
    provider = FileProvider(directory=str(directory), watch_timeout=0.1)
    sink = Recorder()
    task = asyncio.create_task(provider.run(sink), name="file-provider")
    try:
        await until(lambda: bool(sink.errors))
        assert not provider.watching.is_set()
        directory.mkdir()
        (directory / "a.yml").write_text(yaml_config(["a"]))
        await until(lambda: sink.routers() == {"a"} and sink.errors == [])
    finally:
        provider.stop()
        await asyncio.wait_for(task, 10)


def test_merge_files_keeps_identical_definitions() -> None:
    one = DynamicConfig.model_validate(
        {"http": {"middlewares": {"h": {"addPrefix": {"prefix": "/a"}}}}}
    )
    other = DynamicConfig.model_validate({"tls": {"options": {"o": {"sniStrict": True}}}})
    strict = DynamicConfig.model_validate({"tls": {"options": {"o": {}}}})
    merged, object_errors, errors = merge_files(
        {"a.yml": one, "b.yml": one, "c.yml": other, "d.yml": strict}
    )
    assert set(merged.http.middlewares) == {"h"} and object_errors == {}
    assert errors == ["tls.options.o: defined differently in several files: c.yml, d.yml"]
    assert merged.tls.options["o"].sni_strict


async def test_a_file_caught_empty_mid_write_keeps_serving(tmp_path: Path, start: Start) -> None:
    """An in-place save truncates before it writes: the empty moment must not be served."""
    path = tmp_path / "dynamic.yml"
    path.write_text(yaml_config(["a"]))
    provider, sink = await start(filename=str(path), settle=60.0)
    reads = provider.reads
    path.write_text("")
    await until(lambda: provider.reads > reads)  # the provider has seen the empty file
    path.write_text(yaml_config(["b"]))
    await until(lambda: sink.routers() == {"b"})
    assert all(set(update.config.http.routers) <= {"a", "b"} for update in sink.updates)
    assert all(update.config.http.routers for update in sink.updates)


async def test_a_file_that_stays_empty_is_dropped_after_settling(
    tmp_path: Path, start: Start
) -> None:
    path = tmp_path / "dynamic.yml"
    path.write_text(yaml_config(["a"]))
    _, sink = await start(filename=str(path), settle=0.2)
    path.write_text("")
    await until(lambda: sink.routers() == set())
    assert sink.errors == []


def provider_threads(name: str) -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == f"provider-{name}"]


async def test_stop_ends_the_thread(tmp_path: Path) -> None:
    path = tmp_path / "dynamic.yml"
    path.write_text(yaml_config(["a"]))
    provider = FileProvider(filename=str(path), name="stopping", watch_timeout=0.1)
    task = asyncio.create_task(provider.run(Recorder()), name="file-provider")
    await asyncio.wait_for(provider.watching.wait(), 10)
    assert len(provider_threads("stopping")) == 1
    provider.stop()
    await asyncio.wait_for(task, 10)
    assert provider_threads("stopping") == []


async def test_cancelling_run_ends_the_thread(tmp_path: Path) -> None:
    path = tmp_path / "dynamic.yml"
    path.write_text(yaml_config(["a"]))
    provider = FileProvider(filename=str(path), name="cancelled", watch_timeout=0.1)
    task = asyncio.create_task(provider.run(Recorder()), name="file-provider")
    await asyncio.wait_for(provider.watching.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)
    assert provider_threads("cancelled") == []


async def test_an_unexpected_error_in_the_thread_is_raised_by_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "dynamic.yml"
    path.write_text(yaml_config(["a"]))
    provider = FileProvider(filename=str(path), name="failing", watch_timeout=0.1)
    sink = Recorder()
    task = asyncio.create_task(provider.run(sink), name="file-provider")
    await asyncio.wait_for(provider.watching.wait(), 10)

    def broken(path: str, data: bytes | None = None) -> DynamicConfig:
        raise RuntimeError("a bug in the loader")

    monkeypatch.setattr(provider._loader, "load", broken)
    path.write_text(yaml_config(["b"]))
    with pytest.raises(RuntimeError, match="a bug in the loader"):
        await asyncio.wait_for(task, 10)
    assert provider_threads("failing") == [] and sink.routers() == {"a"}


async def test_the_settle_re_read_and_a_change_never_read_at_once(
    tmp_path: Path, start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The settle re-read holds the files until the change's read would have started."""
    path = tmp_path / "dynamic.yml"
    path.write_text(yaml_config(["a"]))
    provider, sink = await start(filename=str(path), settle=0.05)
    settling, change_read = threading.Event(), threading.Event()
    inside: list[bool] = []  # one entry per read in progress
    overlaps: list[int] = []
    load = provider._load

    def observed(settled: bool) -> ProviderUpdate | None:
        inside.append(settled)
        overlaps.append(len(inside))
        try:
            if settled:
                settling.set()
                # Long enough for the change's read to start here if nothing prevents it.
                change_read.wait(0.5)
            elif settling.is_set():  # not the read of the empty file
                change_read.set()
            return load(settled)
        finally:
            inside.remove(settled)

    monkeypatch.setattr(provider, "_load", observed)
    path.write_text("")
    await until(settling.is_set)
    path.write_text(yaml_config(["b"]))
    await until(lambda: sink.routers() == {"b"})
    assert max(overlaps) == 1


async def test_an_unexpected_error_in_the_settle_re_read_is_raised_by_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "dynamic.yml"
    path.write_text(yaml_config(["a"]))
    provider = FileProvider(filename=str(path), name="settling", watch_timeout=0.1, settle=0.05)
    task = asyncio.create_task(provider.run(Recorder()), name="file-provider")
    await asyncio.wait_for(provider.watching.wait(), 10)
    load = provider._load

    def broken(settled: bool) -> ProviderUpdate | None:
        if settled:
            raise RuntimeError("a bug in the settle re-read")
        return load(settled)

    monkeypatch.setattr(provider, "_load", broken)
    path.write_text("")
    with pytest.raises(RuntimeError, match="a bug in the settle re-read"):
        await asyncio.wait_for(task, 10)
    assert provider_threads("settling") == []


async def test_a_settle_re_read_after_a_newer_read_is_skipped(
    tmp_path: Path, start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A settle re-read whose task was cancelled too late must not drop a file again."""
    path = tmp_path / "dynamic.yml"
    path.write_text(yaml_config(["a"]))
    provider, sink = await start(filename=str(path), settle=60.0)
    reads = provider.reads
    path.write_text("")  # caught empty: a settle re-read is planned after this read
    await until(lambda: provider.reads > reads)
    planned_after = provider._generation
    path.write_text(yaml_config(["b"]))
    await until(lambda: sink.routers() == {"b"})
    path.write_text("")  # caught empty again, but too late for that settle re-read
    await until(lambda: provider._generation > planned_after + 1)
    settled: list[bool] = []
    load = provider._load

    def observed(settle: bool) -> ProviderUpdate | None:
        settled.append(settle)
        return load(settle)

    monkeypatch.setattr(provider, "_load", observed)
    await asyncio.to_thread(provider._read, sink, settled=True, after=planned_after)
    await asyncio.to_thread(provider._read, sink, settled=True, after=provider._generation)
    assert settled == [True]
    await until(lambda: sink.routers() == set())  # only the re-read planned last drops it
