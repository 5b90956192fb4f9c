"""The documentation: the site builds, every link resolves, every YAML example is valid.

- `mkdocs build --strict` must pass (mkdocs is in the test extras: missing, the test fails).
- Every relative link of docs/**/*.md and README.md names a file that exists, and its
  `#anchor` a heading (or an `id=`) of that page, slugged as the site slugs it.
- Every fenced ```yaml block of the docs is a static or a dynamic configuration and passes
  `proxynow check` (the command's own code, `proxynow.cli.main`), unless the line before it
  is `<!-- not-checked: reason -->` (a compose file, a fragment) or `<!-- excerpt: PATH -->`
  (a piece of a repository file, checked against it elsewhere). A dynamic example is
  checked under a static configuration that defines the entrypoints it names, the API,
  ping and metrics; a failure names the page and the line of the example
  (docs/contributing-docs.md).
- The configuration references are what `python -m proxynow.config.reference` makes of
  the models.
"""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from markdown.extensions.toc import slugify
from markdown_it import MarkdownIt
from markdown_it.token import Token

from proxynow.cli import main as proxynow
from proxynow.config import reference
from proxynow.config.objects import validate_dynamic_objects
from proxynow.providers.docker.labels import (
    SERVER_KEY,
    decode_labels,
    provider_label_errors,
    provider_labels,
)

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = [*sorted(DOCS.rglob("*.md")), ROOT / "README.md"]
# An excerpt of a repository file (`<!-- excerpt: PATH -->`) is not a configuration of its
# own: tests/unit/test_getting_started.py checks it against that file.
NOT_CHECKED = re.compile(r"^<!--\s*(not-checked|excerpt):\s*\S.*-->\s*$")
DYNAMIC_KEYS = frozenset({"http", "tcp", "udp", "tls"})
COMPOSE_KEYS = frozenset({"services", "volumes", "networks", "secrets", "configs", "name"})
_ID = re.compile(r"""\bid=["']([^"']+)["']""")
_PARSER = MarkdownIt("commonmark").enable("table")


@dataclass(frozen=True, slots=True)
class Example:
    page: Path
    line: int  # 1-based line of the first line of YAML (after the fence)
    text: str

    def where(self, line: int = 1) -> str:
        return f"{_shown(self.page)}:{self.line + line - 1}"


def _shown(page: Path) -> str:
    return str(page.relative_to(ROOT)) if page.is_relative_to(ROOT) else str(page)


def _tokens(page: Path) -> list[Token]:
    return _PARSER.parse(page.read_text(encoding="utf-8"))


def _walk(tokens: list[Token]) -> Iterator[Token]:
    for token in tokens:
        yield token
        if token.children:
            yield from _walk(token.children)


# ---------------------------------------------------------------- the site


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "index.html").is_file()
    assert (tmp_path / "reference-static" / "index.html").is_file()


def test_every_page_is_in_the_navigation() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    listed = set(_nav_files(config["nav"]))
    pages = {str(page.relative_to(DOCS)) for page in DOCS.rglob("*.md")}
    assert pages - listed == set(), "pages missing from mkdocs.yml's nav"


def _nav_files(nav: Any) -> Iterator[str]:
    if isinstance(nav, str):
        yield nav
    elif isinstance(nav, list):
        for item in nav:
            yield from _nav_files(item)
    elif isinstance(nav, dict):
        for value in nav.values():
            yield from _nav_files(value)


# ---------------------------------------------------------------- links


def _anchors(page: Path) -> set[str]:
    tokens = _tokens(page)
    found: set[str] = set()
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            found.add(slugify(_plain(tokens[index + 1]), "-"))
        if token.type in ("html_block", "html_inline"):
            found.update(_ID.findall(token.content))
    for token in _walk(tokens):
        if token.type == "html_inline":
            found.update(_ID.findall(token.content))
    return found


def _plain(inline: Token) -> str:
    """A heading's text as the site's table of contents reads it (code spans included)."""
    return "".join(child.content for child in inline.children or [] if child.content)


def _links(page: Path) -> Iterator[tuple[int, str]]:
    for block in _tokens(page):
        for token in _walk([block]):
            if token.type == "link_open":
                yield (block.map[0] + 1 if block.map else 0), str(token.attrs["href"])


def _broken(page: Path, line: int, href: str) -> str | None:
    if re.match(r"^[a-z][a-z0-9+.-]*:", href):
        return None  # https:, mailto:: not ours to check offline
    path, _, anchor = href.partition("#")
    target = (page.parent / path).resolve() if path else page
    if not target.exists():
        return f"{_shown(page)}:{line}: {href}: no such file"
    if anchor and target.suffix == ".md" and anchor not in _anchors(target):
        return f"{_shown(page)}:{line}: {href}: no heading #{anchor} in {target.name}"
    return None


def test_every_relative_link_and_anchor_resolves() -> None:
    broken = [
        problem
        for page in PAGES
        for line, href in _links(page)
        if (problem := _broken(page, line, href)) is not None
    ]
    assert broken == []


def test_a_broken_link_and_anchor_are_found(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Top `here`\n\n[a](missing.md) [b](#nowhere) [c](#top-here)\n")
    found = [_broken(page, line, href) for line, href in _links(page)]
    assert [problem is not None for problem in found] == [True, True, False]


# ---------------------------------------------------------------- YAML examples


def _examples(page: Path) -> Iterator[Example]:
    tokens = _tokens(page)
    for index, token in enumerate(tokens):
        if token.type != "fence" or token.info.strip().lower() not in ("yaml", "yml"):
            continue
        before = tokens[index - 1] if index else None
        if before is not None and before.type == "html_block" and _marked(before):
            continue
        assert token.map is not None
        yield Example(page, token.map[0] + 2, token.content)


def _marked(html: Token) -> bool:
    return NOT_CHECKED.match(html.content.strip().splitlines()[-1]) is not None


EXAMPLES = [example for page in PAGES for example in _examples(page)]


@pytest.mark.parametrize("example", EXAMPLES, ids=[example.where() for example in EXAMPLES])
def test_every_yaml_example_passes_proxynow_check(example: Example, tmp_path: Path) -> None:
    problems = check_example(example, tmp_path)
    assert problems == [], "\n".join(problems)


def check_example(example: Example, folder: Path) -> list[str]:
    """The errors of `proxynow check` on one example, at the example's page and line."""
    if "{{" in example.text:  # a Go template: only dynamic files are templates
        data: Any = {"http": {}}
    else:
        data = None
    try:
        data = data or yaml.safe_load(example.text)
    except yaml.YAMLError as exc:
        return [f"{example.where()}: not YAML: {exc}"]
    if not isinstance(data, dict) or not data:
        return [f"{example.where()}: not a configuration (mark it <!-- not-checked: why -->)"]
    keys = set(data)
    if keys == {"labels"}:
        return _label_problems(example, data["labels"])
    if "services" in keys and keys <= COMPOSE_KEYS:  # a compose file: its labels
        services = data["services"] if isinstance(data["services"], dict) else {}
        return [
            problem
            for service in services.values()
            if isinstance(service, dict) and "labels" in service
            for problem in _label_problems(example, service["labels"])
        ]
    if keys & DYNAMIC_KEYS and keys - DYNAMIC_KEYS:
        return [
            f"{example.where()}: mixes static keys {sorted(keys - DYNAMIC_KEYS)} with dynamic"
            f" ones {sorted(keys & DYNAMIC_KEYS)}: split it, or mark it not-checked"
        ]
    written = folder / "example.yml"
    written.write_text(example.text, encoding="utf-8")
    static = written
    if keys <= DYNAMIC_KEYS:
        static = folder / "static.yml"
        static.write_text(yaml.safe_dump(_static_for(data, written)), encoding="utf-8")
    status, output = _run_check(static)
    errors = [line for line in output.splitlines() if _is_error(line)]
    if status != 0 and not errors:
        errors = output.splitlines()
    return [_at_example(line, written, example) for line in errors]


def _label_problems(example: Example, labels: Any) -> list[str]:
    """A compose `labels:` list or map, decoded as the Docker provider decodes it (the
    objects' shapes; what the builder adds, such as servers from ports, is not there)."""
    if isinstance(labels, list):
        labels = dict(str(item).partition("=")[::2] for item in labels)
    if not isinstance(labels, dict):
        return [f"{example.where()}: labels must be a list or a map"]
    # compose turns `$$` into `$` before the label reaches the provider
    read = {str(key): str(value).replace("$$", "$") for key, value in labels.items()}
    stripped = provider_labels(read, ("proxynow",))
    decoded = decode_labels(stripped)
    objects = validate_dynamic_objects(_without_servers(decoded.raw))
    found = [
        *provider_label_errors(stripped),
        *decoded.container_errors,
        *(message for messages in decoded.errors.values() for message in messages),
        *(str(issue) for issue in objects.issues),
    ]
    return [f"{example.where()}: {message}" for message in found]


def _without_servers(raw: dict[str, Any]) -> dict[str, Any]:
    """The raw labels without `loadbalancer.server.*`, which the builder turns into the
    container's server (providers/docker/labels.py, SERVER_KEY)."""
    for protocol in raw.values():
        for service in (protocol.get("services") or {}).values():
            balancer = service.get("loadBalancer") if isinstance(service, dict) else None
            if isinstance(balancer, dict):
                balancer.pop(SERVER_KEY, None)
    return raw


def _static_for(dynamic: dict[str, Any], file: Path) -> dict[str, Any]:
    """A static configuration under which a dynamic example's references exist."""
    names = {"web", "websecure", *_entry_points(dynamic)}
    entry_points = {name: {"address": f":{9000 + index}"} for index, name in enumerate(names)}
    entry_points["traefik"] = {"address": ":8080"}
    resolvers = {
        name: {"acme": {"httpChallenge": {"entryPoint": "web"}}}
        for name in _values_of(dynamic, "certResolver")
    }
    return {
        "entryPoints": entry_points,
        "certificatesResolvers": resolvers,
        "api": {},
        "ping": {},
        "metrics": {"prometheus": {}},
        "providers": {"file": {"filename": str(file)}},
    }


def _values_of(data: Any, key: str) -> Iterator[str]:
    if isinstance(data, dict):
        for name, value in data.items():
            if name == key and isinstance(value, str):
                yield value
            yield from _values_of(value, key)
    elif isinstance(data, list):
        for item in data:
            yield from _values_of(item, key)


def _entry_points(dynamic: dict[str, Any]) -> Iterator[str]:
    for protocol in ("http", "tcp", "udp"):
        section = dynamic.get(protocol)
        routers = section.get("routers") if isinstance(section, dict) else None
        for router in routers.values() if isinstance(routers, dict) else ():
            if isinstance(router, dict):
                listed = router.get("entryPoints") or []
                yield from (listed.split(",") if isinstance(listed, str) else map(str, listed))


def _run_check(static: Path) -> tuple[int, str]:
    """`proxynow check`'s status and what it printed on stderr (its findings)."""
    said, ok = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(said), contextlib.redirect_stdout(ok):
        status = proxynow(["check", "--config", str(static)])
    return status, said.getvalue()


def _is_error(line: str) -> bool:
    return re.search(r"\d+ errors?, \d+ warnings?$", line) is None


def _at_example(line: str, written: Path, example: Example) -> str:
    """`/tmp/.../example.yml:3:5: msg` → `docs/acme.md:42:5: msg`."""
    match = re.match(rf"^{re.escape(str(written))}:(\d+)(.*)$", line)
    if match is None:
        return f"{example.where()}: {line}"
    return f"{example.where(int(match[1]))}{match[2]}"


def test_a_bad_example_is_reported_at_its_line(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n```yaml\nhttp:\n  routers:\n    app:\n      rule: Host(`a`\n"
        "      service: app\n```\n\n<!-- not-checked: a fragment -->\n```yaml\nrule: x\n```\n"
    )
    examples = [
        Example(ROOT / "docs" / "x.md", example.line, example.text) for example in _examples(page)
    ]
    assert len(examples) == 1  # the second is marked
    problems = check_example(examples[0], tmp_path)
    assert problems, "an unterminated Host( must be an error"
    assert any(problem.startswith("docs/x.md:7:") for problem in problems), problems


def test_labels_are_decoded_as_the_docker_provider_does(tmp_path: Path) -> None:
    good = 'labels:\n  - "proxynow.http.routers.a.rule=Host(`a`)"\n'
    assert check_example(Example(ROOT / "docs" / "x.md", 3, good), tmp_path) == []
    bad = 'services:\n  a:\n    labels:\n      proxynow.http.routers.a.rulez: "Host(`a`)"\n'
    assert check_example(Example(ROOT / "docs" / "x.md", 3, bad), tmp_path) != []


def test_a_static_example_is_checked(tmp_path: Path) -> None:
    bad = Example(ROOT / "docs" / "x.md", 10, "entryPoints:\n  web:\n    address: nowhere\n")
    assert check_example(bad, tmp_path)[0].startswith("docs/x.md:12:")
    good = Example(ROOT / "docs" / "x.md", 10, "entryPoints:\n  web:\n    address: ':80'\n")
    assert check_example(good, tmp_path) == []


# ---------------------------------------------------------------- generated references


def test_the_configuration_references_match_the_models(tmp_path: Path) -> None:
    assert reference.main(["--check"]) == 0, "run: python -m proxynow.config.reference"
    # and --check does see a stale page
    for page in reference.PAGES:
        (tmp_path / page.file).write_text("stale\n")
    assert reference.main(["--check", "--docs", str(tmp_path)]) == 1


def test_the_static_reference_lists_every_option() -> None:
    text = (DOCS / "reference-static.md").read_text(encoding="utf-8")
    for row in reference.rows(reference.PAGES[0].model):
        assert f"| `{row.path}` |" in text
    assert "`entryPoints.<name>.transport.lifeCycle.graceTimeOut` | duration | `10s`" in text
