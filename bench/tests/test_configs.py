"""Generated configuration: nginx accepts its files; Traefik and proxynow get the same YAML."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from bench.configs import (
    Setup,
    dynamic_config,
    write_backend,
    write_nginx_proxy,
    write_traefik_files,
    write_yaml_atomic,
)


def nginx_accepts(conf: Path) -> None:
    done = subprocess.run(
        ["nginx", "-t", "-c", str(conf), "-e", str(conf.parent / "test.log")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_backend_config_is_valid(workdir: Path) -> None:
    nginx_accepts(write_backend(workdir, 18000))
    assert (workdir / "www" / "1m").stat().st_size == 1024 * 1024


@pytest.mark.parametrize("setup", [Setup(), Setup(routers=1000), Setup(workers=2)])
def test_nginx_proxy_config_is_valid(workdir: Path, setup: Setup) -> None:
    conf = write_nginx_proxy(workdir, 18001, 18000, setup)
    nginx_accepts(conf)
    text = conf.read_text()
    assert f"worker_processes {setup.workers};" in text
    assert "keepalive 256;" in text
    assert ("h0999.bench" in text) == (setup.routers == 1000)


def test_traefik_files_share_one_dynamic_file(tmp_path: Path) -> None:
    files = write_traefik_files(tmp_path, 18001, 18000, Setup(workers=2, routers=3))
    static = yaml.safe_load(files.static.read_text())
    assert static["providers"]["file"] == {"filename": str(files.dynamic), "watch": True}
    assert static["entryPoints"]["web"]["address"] == "127.0.0.1:18001"
    assert static["global"] == {"checkNewVersion": False, "sendAnonymousUsage": False}
    assert static["workers"] == 2
    routers = yaml.safe_load(files.dynamic.read_text())["http"]["routers"]
    assert routers == {
        f"r000{i}": {"rule": f"Host(`h000{i}.bench`)", "service": "backend", "entryPoints": ["web"]}
        for i in range(3)
    }


def test_catch_all_and_churn_routers() -> None:
    config = dynamic_config(18000, Setup(), ("churn-000001.bench",))
    routers = config["http"]["routers"]
    assert routers["bench"]["rule"] == "PathPrefix(`/`)"
    assert routers["churn-000001-bench"]["rule"] == "Host(`churn-000001.bench`)"
    servers = config["http"]["services"]["backend"]["loadBalancer"]["servers"]
    assert servers == [{"url": "http://127.0.0.1:18000"}]


def test_atomic_write_replaces_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "dynamic.yml"
    write_yaml_atomic(target, {"a": 1})
    write_yaml_atomic(target, {"a": 2})
    assert yaml.safe_load(target.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["dynamic.yml"]
