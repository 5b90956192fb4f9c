"""The churn writer: complete, parseable files, one router in and one out per tick."""

from __future__ import annotations

from pathlib import Path

import yaml

from bench import procs
from bench.churn import Churner
from bench.configs import Setup, dynamic_config, write_yaml_atomic


def test_churner_rewrites_the_file_with_a_sliding_window(tmp_path: Path) -> None:
    dynamic = tmp_path / "dynamic.yml"
    write_yaml_atomic(dynamic, dynamic_config(18000, Setup()))
    churner = Churner(dynamic, 18000, Setup(), period=0.01, live=3)
    churner.start()
    try:
        procs.wait_until(lambda: churner.writes >= 6, 10, "six rewrites")
    finally:
        churner.stop()
    routers = yaml.safe_load(dynamic.read_text())["http"]["routers"]
    assert "bench" in routers  # the serving router is never touched
    churned = sorted(name for name in routers if name.startswith("churn-"))
    assert len(churned) == 3
    newest = churner.newest_host
    assert newest is not None and churned[-1] == newest.replace(".", "-")
    assert churned[-1] == f"churn-{churner.writes - 1:06d}-bench"
    assert [p.name for p in tmp_path.iterdir()] == ["dynamic.yml"]
