"""Build proxynow's image from the Dockerfile with no registry: a local base, local wheels.

- The base: Debian bookworm made by `debootstrap --variant=minbase` with the packages the
  Dockerfile needs (`python3`, `python3-venv`, and `libnghttp2-14` for the HTTP/2 codec,
  which the air-gapped build cannot fetch), packed as a tarball in the cache directory
  (`$PROXYNOW_TEST_CACHE`, else `~/.cache/proxynow-test`) under a name keyed by the suite,
  the mirror and the package list, then `docker import`ed under a tag of the caller's.
- The wheels: `pip wheel` of the project and its dependencies (from PyPI, the one registry
  reachable), cached under a key hashing pyproject.toml, README.md and every file of the
  `proxynow` package.
- The image: `docker build --build-arg BASE_IMAGE=<base> --build-arg WHEELS=wheels` of a
  context holding the Dockerfile, .dockerignore, the sources and the wheels (a copy in a
  temporary folder, so that the worktree gets no `build/` or wheels folder).

A file lock serialises two sessions that fill the same cache entry; entries are written
to a temporary name and renamed, so a crash never leaves a half entry behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker

REPO = Path(__file__).resolve().parents[2]
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates", "libnghttp2-14")
SOURCES = ("pyproject.toml", "setup.py", "README.md", "Dockerfile", ".dockerignore")


@dataclass(frozen=True, slots=True)
class BuildTimes:
    """Seconds spent on each step of one build (0 for a step served from the cache)."""

    base: float
    wheels: float
    image: float


def cache_dir() -> Path:
    configured = os.environ.get("PROXYNOW_TEST_CACHE")
    path = Path(configured) if configured else Path.home() / ".cache" / "proxynow-test"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _key(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.with_suffix(".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def base_tarball() -> tuple[Path, float]:
    """The cached bookworm rootfs tarball (made on a miss); its path and the seconds spent."""
    key = _key(SUITE.encode(), MIRROR.encode(), ",".join(BASE_PACKAGES).encode())
    tarball = cache_dir() / f"base-{SUITE}-{key}.tar"
    with _locked(tarball):
        if tarball.exists():
            return tarball, 0.0
        started = time.monotonic()
        _debootstrap(tarball)
        return tarball, time.monotonic() - started


def _debootstrap(tarball: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="pn-base-", dir=tarball.parent) as workdir:
        root = Path(workdir) / "rootfs"
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
             SUITE, str(root), MIRROR],
            check=True, capture_output=True,
        )  # fmt: skip
        # What an image does not need: the package cache and lists, logs, docs.
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc",
                     "usr/share/man", "usr/share/locale", "var/log"):  # fmt: skip
            shutil.rmtree(root / junk, ignore_errors=True)
        partial = tarball.with_suffix(".partial")
        subprocess.run(
            ["tar", "-C", str(root), "--numeric-owner", "--xattrs", "-cf", str(partial), "."],
            check=True,
        )
        os.replace(partial, tarball)


def import_base(tarball: Path, tag: str) -> None:
    subprocess.run(
        ["docker", "import", "-c", 'CMD ["/bin/bash"]', str(tarball), tag],
        check=True, capture_output=True,
    )  # fmt: skip


def _built(path: Path) -> bool:
    """What a compiled editable install leaves beside the sources (docs/compiled.md)."""
    return path.suffix == ".so" or path.name == "compiled.json"


def _source_files() -> list[Path]:
    package = sorted(
        p
        for p in (REPO / "proxynow").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not _built(p)
    )
    return [*(REPO / name for name in SOURCES), *package]


def wheels_dir() -> tuple[Path, float]:
    """The cached wheels of proxynow and its dependencies; the folder and seconds spent."""
    files = _source_files()
    parts = [str(p.relative_to(REPO)).encode() + b"\0" + p.read_bytes() for p in files]
    folder = cache_dir() / f"wheels-{_key(sys.version.encode(), *parts)}"
    with _locked(folder):
        if folder.exists():
            return folder, 0.0
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="pn-wheels-", dir=folder.parent) as workdir:
            source = Path(workdir) / "src"
            _copy_sources(source)
            out = Path(workdir) / "wheels"
            subprocess.run(
                [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check",
                 "-w", str(out), str(source)],
                check=True, capture_output=True,
            )  # fmt: skip
            os.replace(out, folder)
        return folder, time.monotonic() - started


def _copy_sources(target: Path) -> None:
    for path in _source_files():
        destination = target / path.relative_to(REPO)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)


def build_image(base_tag: str, wheels: Path, tag: str) -> float:
    """`docker build` the Dockerfile on `base_tag` with `wheels`; the seconds it took."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pn-context-") as workdir:
        context = Path(workdir)
        _copy_sources(context)
        shutil.copytree(wheels, context / "wheels")
        result = subprocess.run(
            ["docker", "build", "-q", "--build-arg", f"BASE_IMAGE={base_tag}",
             "--build-arg", "WHEELS=wheels", "-t", tag, str(context)],
            capture_output=True, text=True, check=False,
            env={**os.environ, "DOCKER_BUILDKIT": "0"},
        )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"docker build failed:\n{result.stdout}\n{result.stderr}")
    return time.monotonic() - started


def remove_image_tree(client: Any, base_id: str) -> None:
    """Remove the image `base_id` and every image built on it (the legacy builder keeps
    each stage's layers as untagged images): children first. The base is imported once
    per session, so everything below it was made by that session."""
    parents = {image.id: image.attrs.get("Parent") or "" for image in client.images.list(all=True)}

    def depth(image_id: str) -> int | None:
        steps = 0
        while image_id and image_id != base_id:
            image_id, steps = parents.get(image_id, ""), steps + 1
        return steps if image_id == base_id else None

    ours = [(found, image_id) for image_id in parents if (found := depth(image_id)) is not None]
    for _, image_id in sorted(ours, reverse=True):
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(image_id, force=True, noprune=False)


def build_all(base_tag: str, tag: str) -> BuildTimes:
    """Base (cached), wheels (cached), import and build: the image `tag` and its times.
    The caller removes both tags."""
    tarball, base_seconds = base_tarball()
    started = time.monotonic()
    import_base(tarball, base_tag)
    base_seconds += time.monotonic() - started
    wheels, wheel_seconds = wheels_dir()
    return BuildTimes(base_seconds, wheel_seconds, build_image(base_tag, wheels, tag))
