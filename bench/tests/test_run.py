"""The command line: scenario selection, proxy order, and one short real run to files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.run import main, rotated
from bench.scenarios import select


def test_baselines_come_along_in_canonical_order() -> None:
    names = [s.name for s in select(["config-churn", "routers-1000"])]
    assert names == ["keepalive-c50", "routers-1", "routers-1000", "config-churn"]


def test_unknown_scenario_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--scenario", "nope"]) == 2
    assert "unknown scenario(s): nope" in capsys.readouterr().err


def test_proxy_order_rotates_every_round() -> None:
    proxies = ["traefik", "nginx", "proxynow"]
    firsts = [rotated(proxies, r)[0] for r in range(3)]
    assert sorted(firsts) == sorted(proxies)
    assert all(sorted(rotated(proxies, r)) == sorted(proxies) for r in range(3))


def test_a_short_run_writes_markdown_and_json(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--scenario", "keepalive-c10", "--proxy", "nginx", "--rounds", "1"]
    argv += ["--duration", "1", "--warmup", "1", "--output-dir", str(workdir)]
    assert main(argv) == 0
    markdown = capsys.readouterr().out
    assert f"`python bench/run.py {' '.join(argv)}`" in markdown
    assert "| nginx | " in markdown and "failed" not in markdown
    [json_file] = workdir.glob("*.json")
    data = json.loads(json_file.read_text())
    [measurement] = data["measurements"]
    assert measurement["proxy"] == "nginx" and measurement["requests"] > 0
    written = (workdir / json_file.name.replace(".json", ".md")).read_text()
    assert written + "\n" == markdown  # print() adds one newline
