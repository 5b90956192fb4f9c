"""docs/getting-started.md matches the example files its walkthrough blocks use (the e2e
tests tests/e2e/image/test_compose_basic.py and tests/e2e/image/test_compose_tls.py run
those blocks for real)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from tests.support.image import REPO
from tests.support.walkthrough import PAGE, Step, blocks, change_dir, kind

REQUIRED = re.compile(r"\$\{(\w+):\?")
EXCERPT = re.compile(r"<!-- excerpt: (\S+) -->\s*\n```yaml\n(.*?)\n```", re.S)
SH_BLOCK = re.compile(r"```sh\n(.*?)\n```", re.S)


def _folders() -> dict[str, Path]:
    """The folder each block's compose commands run in (cd steps followed in order)."""
    cwd, previous, folders = REPO, REPO, {}
    for name, steps in blocks().items():
        for step in steps:
            if kind(step) == "cd":
                cwd, previous = change_dir(cwd, previous, step), cwd
            elif kind(step) == "compose":
                folders[name] = cwd
    return folders


def _exports(upto: str) -> dict[str, str]:
    names: dict[str, str] = {}
    for name, steps in blocks().items():
        for step in steps:
            if kind(step) == "export":
                names.update(re.findall(r"(?:^|\s)(\w+)=(\S*)", step.command))
        if name == upto:
            return names
    raise AssertionError(upto)


def test_the_walkthroughs_are_there_and_every_step_is_known() -> None:
    found = blocks()
    assert list(found) == ["basic", "tls"]
    for steps in found.values():
        assert all(kind(step) for step in steps)  # fails on a step no test can take
        composed = [step.words[2:] for step in steps if kind(step) == "compose"]
        assert composed[0] == ["up", "-d"] and composed[-1] == ["down", "-v"]
        assert all(step.comment for step in steps if kind(step) == "curl")


def test_each_block_runs_in_its_example_with_every_required_variable() -> None:
    for name, folder in _folders().items():
        assert folder == REPO / "compose-examples" / name
        compose = (folder / "docker-compose.yml").read_text()
        assert set(REQUIRED.findall(compose)) <= set(_exports(name)), name


def test_curl_hosts_are_the_routers_hosts() -> None:
    for name, steps in blocks().items():
        compose = (REPO / "compose-examples" / name / "docker-compose.yml").read_text()
        for variable, value in _exports(name).items():
            compose = re.sub(r"\$\{" + variable + r"(:\?[^}]*)?\}", value, compose)
        for step in steps:
            if kind(step) != "curl":
                continue
            url = next(w for w in step.words if "://" in w)
            host = url.split("://", 1)[1].split("/", 1)[0].split(":")[0]
            assert host == "127.0.0.1" or f"Host(`{host}`)" in compose, (name, host)


def test_excerpts_are_parts_of_their_files() -> None:
    excerpts = EXCERPT.findall(PAGE.read_text())
    assert len(excerpts) >= 2
    for path, body in excerpts:
        assert body in (REPO / path).read_text(), path


def test_build_script_tags_the_images_the_examples_use() -> None:
    script = (REPO / "compose-examples" / "basic" / "build-images.sh").read_text()
    for example in (REPO / "compose-examples").glob("*/docker-compose.yml"):
        images = set(re.findall(r"image: \$\{\w+:-([^}]+)\}", example.read_text()))
        assert images == {"proxynow:local", "proxynow-example-backend:local"}, example
        assert all(image in script for image in images)


def test_the_examples_readmes_give_the_same_commands() -> None:
    for name, steps in blocks().items():
        readme = (REPO / "compose-examples" / name / "README.md").read_text()
        lines = [ln for ln in SH_BLOCK.findall(readme)[0].splitlines() if ln.strip()]
        commands = [Step(*_split(line)).command for line in lines]
        wanted = [s.command for s in steps if kind(s) != "cd"]
        remaining = iter(commands)
        assert all(c in remaining for c in wanted), (name, wanted, commands)


def _split(line: str) -> tuple[str, str]:
    command, _, comment = line.partition("  #")
    shlex.split(command)  # a command the shell can read
    return command.strip(), comment.strip()
