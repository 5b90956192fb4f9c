"""The proxynow image, built once per session from the Dockerfile (tests/support/image.py:
a debootstrapped bookworm base and wheels, both cached between runs), removed by id at
the end with the base tag it was built on. The Docker fixtures are those of
tests/e2e/docker/conftest.py (a running dockerd, the busybox backend, cleanup by id)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from tests.e2e.docker.conftest import Engine, backend_image, docker_engine, docker_resources
from tests.support.compose import Stack, make_stack
from tests.support.image import BuildTimes, build_all, remove_image_tree
from tests.support.pebble import pebble_factory

__all__ = ["Engine", "backend_image", "docker_engine", "docker_resources", "pebble_factory"]


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


StackFactory = Callable[..., Stack]


@pytest.fixture
def compose_stack(
    docker_engine: Engine, proxynow_image: BuiltImage, backend_image: str, tmp_path: Path
) -> Iterator[StackFactory]:
    """`compose_stack(example, override=..., proxy=..., **variables)`: a Stack of
    compose-examples/<example> on this session's images, its ports on free ports of
    127.0.0.1 unless `variables` say otherwise; `down -v` after the test (again)."""
    made: list[Stack] = []

    def factory(example: str, **options: str) -> Stack:
        variables = {
            "PROXYNOW_IMAGE": proxynow_image.tag,
            "BACKEND_IMAGE": backend_image,
            "PROXYNOW_HTTP": "127.0.0.1:",
            "PROXYNOW_HTTPS": "127.0.0.1:",
            "PROXYNOW_DASHBOARD": "127.0.0.1:",
            **options,
        }
        project = f"{docker_engine.prefix}-{example}"
        folder = tmp_path / f"compose-{example}"
        folder.mkdir()
        stack = make_stack(docker_engine.client, project, example, folder, **variables)
        made.append(stack)
        return stack

    try:
        yield factory
    finally:
        for stack in made:
            stack.down()
