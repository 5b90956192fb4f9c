"""What one file may cost the file provider: a size limit, aliases, nesting, the number of
errors reported, content not parsed twice, and the warning when a file is emptied.

Real files in tmp_path, the provider's own thread and watcher; every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from pathlib import Path

import pytest

from proxynow.config.dynamic import DynamicConfig
from proxynow.config.static import StaticConfig
from proxynow.providers.file import DEFAULT_MAX_BYTES, FileProvider
from tests.integration.providers.test_file_provider import Start, start, until, yaml_config

__all__ = ["start"]  # the fixture, shared with test_file_provider.py


def junk(keys: int) -> str:
    """`keys` routers with an unknown key each: one validation error each (unknown keys
    at the root of a file are only warnings, as Traefik ignores them)."""
    routers = "".join(f"    r{i:06d}: {{junk{i}: value{i}}}\n" for i in range(keys))
    return "http:\n  routers:\n" + routers


def alias_bomb(levels: int = 9) -> str:
    """The YAML "billion laughs": 9**levels strings from a few hundred bytes."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\nhttp:\n  routers: *a8\n"


def test_the_limit_is_a_static_option_with_a_default() -> None:
    static = StaticConfig.model_validate(
        {"providers": {"file": {"filename": "dynamic.yml", "maxFileBytes": 1000}}}
    )
    assert static.providers.file is not None
    assert FileProvider.from_config(static.providers.file)._max_bytes == 1000
    default = StaticConfig.model_validate({"providers": {"file": {"filename": "dynamic.yml"}}})
    assert default.providers.file is not None
    assert default.providers.file.max_file_bytes == DEFAULT_MAX_BYTES == 10 * 1024 * 1024


async def test_a_file_over_the_limit_is_refused_and_the_last_good_serves(
    tmp_path: Path, start: Start
) -> None:
    path = tmp_path / "dynamic.yml"
    path.write_text(yaml_config(["a"]))
    provider, sink = await start(filename=str(path), max_bytes=4096)
    assert sink.routers() == {"a"}
    parsed: list[str] = []
    load = provider._loader.load
    provider._loader.load = lambda p, data=None: parsed.append(str(p)) or load(p, data)  # type: ignore[method-assign]
    path.write_text(yaml_config(["a"]) + "# padding\n" * 1000)
    await until(lambda: bool(sink.errors))
    assert sink.errors == [
        f"{path}: {path.stat().st_size} bytes, over the limit of 4096 "
        "(providers.file.maxFileBytes): not read; its last good configuration keeps serving"
    ]
    assert parsed == [] and sink.routers() == {"a"}
    path.write_text(yaml_config(["b"]))
    await until(lambda: sink.routers() == {"b"} and sink.errors == [])


async def test_a_junk_file_reports_ten_errors_and_a_summary(tmp_path: Path, start: Start) -> None:
    path = tmp_path / "dynamic.yml"
    path.write_text(yaml_config(["a"]))
    _, sink = await start(filename=str(path))
    path.write_text(junk(5000))
    await until(lambda: bool(sink.errors), 30)
    assert len(sink.errors) == 11
    assert all("unknown key 'junk" in error for error in sink.errors[:10]), sink.errors
    assert sink.errors[10] == (
        f"{path}: 5,000 errors in all, only the first 10 are shown; "
        "its last good configuration keeps serving"
    )
    assert sink.routers() == {"a"}


async def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path: Path, start: Start) -> None:
    path = tmp_path / "dynamic.yml"
    path.write_text(yaml_config(["a"]))
    _, sink = await start(filename=str(path))
    started = time.monotonic()
    path.write_text(alias_bomb())
    await until(lambda: bool(sink.errors))
    assert time.monotonic() - started < 5  # the watcher's debounce, not the expansion
    assert sink.errors == [
        f"{path}: YAML aliases expand it to more than 1,000,000 nodes (an alias bomb?): "
        "not loaded; its last good configuration keeps serving"
    ]
    assert sink.routers() == {"a"}


async def test_modest_aliases_and_rules_with_stars_still_load(tmp_path: Path) -> None:
    path = tmp_path / "dynamic.yml"
    path.write_text(
        "x-entrypoints: &eps [web, websecure]\n"
        "http:\n  routers:\n"
        "    a:\n      rule: Host(`a.test`) && PathRegexp(`^/.*`)\n      service: s\n"
        "      entryPoints: *eps\n"
        "    b:\n      rule: Host(`b.test`)\n      service: s\n      entryPoints: *eps\n"
    )
    provider = FileProvider(filename=str(path), watch=False)
    # A stray top-level key holding an anchor (a compose habit) is only a warning, as
    # Traefik ignores it; the point is that the aliases are not refused as a bomb.
    config = provider._read_file(str(path))
    assert config.http.routers["a"].entry_points == ["web", "websecure"]
    path.write_text(
        "http:\n  routers:\n"
        "    a:\n      rule: Host(`a.test`)\n      service: s\n"
        "      entryPoints: &eps [web, websecure]\n"
        "    b:\n      rule: Host(`b.test`) || Path(`/*`)\n      service: s\n"
        "      entryPoints: *eps\n"
    )
    config = provider._read_file(str(path))
    assert config.http.routers["b"].entry_points == ["web", "websecure"]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("deep.toml", "[http.routers.x]\nrule = " + "[" * 5000 + "]" * 5000 + "\n"),
        ("deep.yml", "http:\n  routers:\n    x:\n      rule: " + "[" * 990 + "]" * 990 + "\n"),
        ("deeper.yml", "http: " + "[" * 100_000 + "]" * 100_000 + "\n"),
    ],
)
async def test_deep_nesting_is_an_error_of_that_file(
    tmp_path: Path, start: Start, name: str, text: str
) -> None:
    path = tmp_path / name
    path.write_text(yaml_config(["a"]) if name.endswith(".yml") else "")
    _, sink = await start(filename=str(path))
    path.write_text(text)
    await until(lambda: bool(sink.errors))
    assert len(sink.errors) == 1 and sink.errors[0].startswith(str(path)), sink.errors
    assert "nested too deep" in sink.errors[0] or "nesting depth" in sink.errors[0]
    # The provider still runs: a fix is picked up.
    path.write_text(yaml_config(["b"]) if name.endswith(".yml") else "")
    await until(lambda: sink.errors == [])


async def test_content_that_did_not_change_is_not_parsed_again(
    tmp_path: Path, start: Start
) -> None:
    (tmp_path / "one.yml").write_text(yaml_config(["one"], service="s1"))
    (tmp_path / "two.yml").write_text(yaml_config(["two"], service="s2"))
    provider, sink = await start(directory=str(tmp_path))
    assert sink.routers() == {"one", "two"}
    parsed: list[str] = []
    load = provider._loader.load
    provider._loader.load = lambda p, data=None: parsed.append(str(p)) or load(p, data)  # type: ignore[method-assign]
    (tmp_path / "two.yml").write_text(yaml_config(["three"], service="s2"))
    await until(lambda: sink.routers() == {"one", "three"})
    assert parsed == [str(tmp_path / "two.yml")]
    # Touched, same content: nothing is parsed, nothing new is submitted.
    updates = len(sink.updates)
    (tmp_path / "two.yml").write_text(yaml_config(["three"], service="s2"))
    (tmp_path / "three.yml").write_text(junk(3))
    await until(lambda: len(sink.errors) == 3)
    assert parsed == [str(tmp_path / "two.yml"), str(tmp_path / "three.yml")]
    assert sink.updates[-1].config == sink.updates[updates - 1].config


async def test_emptying_a_file_warns_once_that_its_routers_are_removed(
    tmp_path: Path, start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="proxynow.providers.file")
    path = tmp_path / "dynamic.yml"
    path.write_text(yaml_config(["a", "b"]))
    provider, sink = await start(filename=str(path), settle=0.05)
    path.write_text("")
    await until(lambda: sink.config == DynamicConfig())
    # More reads of the still empty file: no more warnings.
    path.write_text("")
    path.write_text("# nothing\n")
    await until(lambda: provider.reads >= 4)
    await asyncio.sleep(0.2)  # a settle re-read (0.05 s) would come within this
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"provider file: {path} is empty now: its 2 routers are removed; "
        "the provider has no router left"
    ]


async def test_a_file_rewritten_while_it_is_parsed_ends_at_its_newest_content(
    tmp_path: Path, start: Start
) -> None:
    """The provider parses the bytes it read and hashed (the file is read once per
    change): a rewrite that lands meanwhile is its own change, and the newest wins."""
    path = tmp_path / "dynamic.yml"
    path.write_text(yaml_config(["a"]))
    provider, sink = await start(filename=str(path))
    assert sink.routers() == {"a"}
    load = provider._loader.load
    seen: list[bytes | None] = []

    def rewritten_meanwhile(p: str, data: bytes | None = None) -> DynamicConfig:
        seen.append(data)
        if len(seen) == 1:
            replacement = tmp_path / "dynamic.tmp"
            replacement.write_text(yaml_config(["c"]))
            replacement.replace(path)  # atomically, as editors and the bench's writer do
        return load(p, data)

    provider._loader.load = rewritten_meanwhile  # type: ignore[method-assign]
    path.write_text(yaml_config(["b"]))
    await until(lambda: sink.routers() == {"c"} and sink.errors == [])
    assert seen[0] == yaml_config(["b"]).encode()  # what was hashed is what was parsed
    remembered = provider._outcomes[str(path)]  # for c's bytes, not b's
    assert remembered.digest == hashlib.blake2b(path.read_bytes(), digest_size=16).digest()
