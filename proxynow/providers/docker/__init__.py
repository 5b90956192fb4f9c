"""The Docker provider: container labels to live routes (see docs/providers-docker.md)."""

from proxynow.providers.docker.build import BuildOptions, Container, build_update
from proxynow.providers.docker.provider import DockerProvider

__all__ = ["BuildOptions", "Container", "DockerProvider", "build_update"]
