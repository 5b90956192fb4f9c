"""The proxynow image, built once per session from the Dockerfile (tests/support/image.py:
a debootstrapped bookworm base and wheels, both cached between runs), removed by id at
the end with the base tag it was built on. The Docker fixtures are those of
tests/e2e/docker/conftest.py (a running dockerd, the busybox backend, cleanup by id)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import docker
import pytest

from tests.e2e.docker.conftest import Engine, backend_image, docker_engine, docker_resources
from tests.support.image import BuildTimes, build_all, remove_image_tree

__all__ = ["Engine", "backend_image", "docker_engine", "docker_resources"]


@dataclass(frozen=True, slots=True)
class BuiltImage:
    tag: str
    times: BuildTimes
    size: int  # bytes, as `docker images` reports it


@pytest.fixture(scope="session")
def proxynow_image(docker_engine: Engine) -> Iterator[BuiltImage]:
    base_tag = f"{docker_engine.prefix}-base:bookworm"
    tag = f"{docker_engine.prefix}-proxynow:test"
    client = docker_engine.client
    base_id = ""
    try:
        times = build_all(base_tag, tag)
        base_id = client.images.get(base_tag).id
        image = client.images.get(tag)
        built = BuiltImage(tag, times, image.attrs["Size"])
        print(f"\nproxynow image: {built.size / 1e6:.1f} MB; {times}", file=sys.stderr)
        yield built
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            base_id = base_id or client.images.get(base_tag).id
        if base_id:
            remove_image_tree(client, base_id)
