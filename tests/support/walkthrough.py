"""The shell steps of docs/getting-started.md, read from the page and run by the tests.

A step block is the ```sh block that follows a `<!-- walkthrough: NAME -->` line. Its
lines are commands, one a line; a comment after a `curl` command (two spaces, `#`) is
what its output contains. The runner knows five kinds of command and refuses any other,
so that the page cannot gain a step its test does not take:

- `cd DIR`: the folder of the commands that follow (relative to the last one; the first
  block starts at the repository's root), `cd -` the one before;
- `export NAME=VALUE ...`: evaluated by bash, added to the environment;
- `./build-images.sh`: the images it builds are this session's (built from the same
  Dockerfile on a local base; tests/support/image.py), passed by the variables the
  examples read (`PROXYNOW_IMAGE`, `BACKEND_IMAGE`);
- `docker compose ...`: run as it stands (or with `docker-compose`), in the folder, with
  the stack's project name and override file in `COMPOSE_PROJECT_NAME` / `COMPOSE_FILE`;
- `curl ...`: run as it stands, with `--connect-to` sending ports 80, 443 and 8080 to the
  ports the stack published on 127.0.0.1 and, for HTTPS, `--cacert` of the test's CA
  (Pebble's root), repeated until its output has the expected text (the first
  request can come before the route or the certificate exists).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.compose import Stack
from tests.support.image import REPO

PAGE = REPO / "docs" / "getting-started.md"
MARKER = re.compile(r"<!-- walkthrough: ([\w-]+) -->\s*\n```sh\n(.*?)\n```", re.S)
EXPECTATION = re.compile(r"^(?P<command>.*?\S)\s{2,}#\s?(?P<comment>.*)$")
PUBLISHED_PORTS = (80, 443, 8080)
CURL_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class Step:
    command: str  # without its comment
    comment: str  # "" when none

    @property
    def words(self) -> list[str]:
        return shlex.split(self.command)


def blocks(page: Path = PAGE) -> dict[str, list[Step]]:
    """Every walkthrough block of the page, by name, in the page's order."""
    found: dict[str, list[Step]] = {}
    for name, body in MARKER.findall(page.read_text()):
        assert name not in found, f"two walkthrough blocks named {name!r}"
        found[name] = [_step(line) for line in body.splitlines() if line.strip()]
    return found


def _step(line: str) -> Step:
    matched = EXPECTATION.match(line)
    if matched is None:
        return Step(line.strip(), "")
    return Step(matched["command"].strip(), matched["comment"].strip())


def kind(step: Step) -> str:
    """cd, export, build, compose or curl; anything else fails."""
    words = step.words
    if words[0] in ("cd", "export", "curl"):
        return words[0]
    if words == ["./build-images.sh"]:
        return "build"
    if words[:2] == ["docker", "compose"]:
        return "compose"
    raise AssertionError(f"the walkthrough has a step its test cannot take: {step.command}")


def change_dir(cwd: Path, previous: Path, step: Step) -> Path:
    """Where `cd DIR` (or `cd -`) goes from `cwd`."""
    target = step.words[1]
    return previous if target == "-" else (cwd / target).resolve()


@dataclass
class Walkthrough:
    """Runs blocks of the page against one stack; `ca_file` is trusted by HTTPS steps."""

    stack: Stack
    cwd: Path = REPO
    previous: Path = REPO  # for `cd -`
    ca_file: Path | None = None
    ran: list[str] = field(default_factory=list)  # every command, as the page says it

    def prelude(self, name: str) -> None:
        """Only the `cd` and `export` steps of block `name`: the shell a reader who
        followed that block has when the next block starts."""
        for step in blocks()[name]:
            if kind(step) in ("cd", "export"):
                self._take(step)

    def run(self, name: str, after: Callable[[Step], None] | None = None) -> None:
        """Every step of block `name`; `after(step)` is called after each one."""
        for step in blocks()[name]:
            self._take(step)
            self.ran.append(step.command)
            if after is not None:
                after(step)

    def _take(self, step: Step) -> None:
        action = kind(step)
        if action == "cd":
            self.cwd, self.previous = change_dir(self.cwd, self.previous, step), self.cwd
            assert self.cwd.is_dir(), self.cwd
        elif action == "export":
            self._export(step.command)
        elif action == "build":
            assert (self.cwd / "build-images.sh").stat().st_mode & 0o111, "not executable"
            assert {"PROXYNOW_IMAGE", "BACKEND_IMAGE"} <= set(self.stack.env)
        elif action == "compose":
            assert self.cwd == self.stack.directory, (self.cwd, self.stack.directory)
            self.stack.compose(*step.words[2:])
        else:
            self._curl(step)

    def _export(self, command: str) -> None:
        script = f"{command}\nenv -0"
        result = subprocess.run(
            ["bash", "-c", script], cwd=self.cwd, env=self.stack.env,
            capture_output=True, check=True, timeout=10,
        )  # fmt: skip
        entries = (e.split(b"=", 1) for e in result.stdout.split(b"\0") if b"=" in e)
        exported = {k.decode(): v.decode() for k, v in entries}
        exported.pop("_", None)
        exported.pop("SHLVL", None)
        exported.pop("PWD", None)
        self.stack.env.update(exported)

    def curl_argv(self, step: Step) -> list[str]:
        """The step's curl with connections sent to the stack's published ports."""
        words = step.words
        published = self.stack.published()
        extra = ["-sS", "--max-time", "5"]
        for port in PUBLISHED_PORTS:
            if port in published:
                extra += ["--connect-to", f":{port}:127.0.0.1:{published[port]}"]
        if self.ca_file is not None and any(w.startswith("https://") for w in words):
            extra += ["--cacert", str(self.ca_file)]
        return [words[0], *extra, *words[1:]]

    def _curl(self, step: Step) -> None:
        argv = self.curl_argv(step)
        deadline = time.monotonic() + CURL_TIMEOUT
        while True:
            result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=10)
            if result.returncode == 0 and step.comment in result.stdout:
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"`{step.command}` never printed {step.comment!r}: "
                    f"exit {result.returncode}\n{result.stdout}\n{result.stderr}\n"
                    f"{self.stack.logs()}"
                )
            time.sleep(0.2)
