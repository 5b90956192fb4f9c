"""Every repository path that a comment, a docstring or a page of the docs cites exists.

A reader who follows `config/loader.py`, `docs/metrics.md` or `bench/run.py` must find
that file: when modules move, this test lists every citation left pointing at the old
place (as `file:line: path`), so that comments and docs cite only what exists.

What counts as a citation, so that ordinary words are never taken for one:
- a path whose first part is a top-level entry of the repository (`proxynow/`, `tests/`,
  `bench/`, `docs/`, ...), a file or a lower-case directory (`bench/results/`);
- a file path whose first part is a package of proxynow/ (`rules/compiler.py`,
  `config/loader.py`), resolved under proxynow/;
- a bare module or page name (`README.md`), resolved next to the citing file, at
  the root or under proxynow/ (a sibling module; a Markdown link from one page of docs/
  to another);
- the shared design documents next to the repository, each cited by its own name as
  ../shared/DESIGN.md is; any other path that climbs out of the repository is an error.
A Python file cited with a name (`config/loader.py::DynamicFileLoader`) must define that
name (a function, class or assignment anywhere in it), so that code moved to another
module leaves no pointer behind. URLs are left out, and so is anything glued to a `/`, `.`, `$`
or `~` before it (`/api/...`, `.venv/bin/python`, `$HOME/.config/`): those are routes,
examples and other machines' paths.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"  # absent in a bare checkout (CI): then only the form is checked
SOURCES = ("proxynow", "tests", "bench")
FILE_SUFFIXES = (".py", ".md", ".toml", ".yml", ".yaml", ".json")

_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+")
_TOKEN = re.compile(
    r"(?<![\w./~$@:<-])((?:\.\./)+[\w.-]+(?:/[\w.-]+)*|[\w.-]+(?:/[\w.-]+)*/?)(?:::(\w+))?"
)
_BARE = re.compile(r"[A-Za-z0-9_-]+\.(?:py|md)")
_DIRECTORY_PART = re.compile(r"[a-z0-9_-]+")


def _top_level() -> frozenset[str]:
    return frozenset(p.name for p in ROOT.iterdir() if not p.name.startswith("."))


def _packages() -> frozenset[str]:
    return frozenset(p.name for p in (ROOT / "proxynow").iterdir() if p.is_dir())


def cited(text: str) -> Iterator[tuple[int, str]]:
    """(offset, path) of every repository path cited in `text`; a name cited with a
    Python file comes as `path::name`."""
    top, packages = _top_level(), _packages()
    text = _URL.sub(lambda m: " " * len(m.group(0)), text)
    for match in _TOKEN.finditer(text):
        token = match.group(1).rstrip(".")
        if "..." in token.replace("../", "") or not token:
            continue
        if match.group(2) and token.endswith(".py"):
            yield match.start(), f"{token}::{match.group(2)}"
            continue
        parts = token.split("/")
        if parts[0] == "..":
            yield match.start(), token
        elif len(parts) == 1:
            if _BARE.fullmatch(token):
                yield match.start(), token
        elif token.endswith(FILE_SUFFIXES):
            if parts[0] in top or parts[0] in packages:
                yield match.start(), token
        elif parts[0] in top and all(_DIRECTORY_PART.fullmatch(p) for p in parts if p):
            yield match.start(), token


def exists(path: str, citing: Path) -> bool:
    """Whether `path`, cited in `citing`, names a file or directory of the repository
    (and, for a module cited with `::` and a name, whether the module defines it)."""
    path, _, name = path.partition("::")
    if name:
        files = [base / path for base in (ROOT, ROOT / "proxynow", citing.parent)]
        return any(f.is_file() and name in _defined(f) for f in files)
    if path.startswith("../"):
        name = path.removeprefix("../shared/")
        if name in (path, "") or "/" in name:
            return False  # outside the repository, only the shared documents themselves
        return not SHARED.is_dir() or (SHARED / name).exists()
    return any((base / path).exists() for base in (ROOT, ROOT / "proxynow", citing.parent))


def _defined(module: Path) -> set[str]:
    """Every function, class and assigned name of a module, at any depth."""
    names = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def _comments_and_docstrings(source: str) -> Iterator[tuple[int, str]]:
    """(first line, text) of every comment and docstring of a Python file."""
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            value = first.value if isinstance(first, ast.Expr) else None
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                yield value.lineno, value.value


def _texts(path: Path) -> Iterator[tuple[int, str]]:
    source = path.read_text(encoding="utf-8")
    if path.suffix == ".md":
        yield 1, source
    else:
        yield from _comments_and_docstrings(source)


def _documents() -> list[Path]:
    python = [p for d in SOURCES for p in sorted((ROOT / d).rglob("*.py"))]
    return [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md", *python]


def missing_citations() -> list[str]:
    missing = []
    for document in _documents():
        for line, text in _texts(document):
            for offset, path in cited(text):
                if not exists(path, document):
                    where = line + text.count("\n", 0, offset)
                    missing.append(f"{document.relative_to(ROOT)}:{where}: {path}")
    return missing


def test_every_cited_path_exists() -> None:
    missing = missing_citations()
    assert not missing, "cited paths that do not exist:\n" + "\n".join(missing)


def test_what_counts_as_a_citation() -> None:
    text = (
        "see proxynow/edge/graph/build.py::_Builder, edge/tcp/proxy.py, docs/metrics.md"
        " and tests/acme/;"
        " DESIGN.md, ../shared/STYLE.md, `http1.py`, (limits.md), bench/results/."
        " Not: HTTP/1.1, proxynow/Traefik, I/O, pkg/tcp/proxy.go, h11/_connection.py,"
        " /api/http/routers, .venv/bin/python, $HOME/.config/, tcp/, 10.0.0.0/8, tests/...py,"
        " https://github.com/traefik/traefik/blob/master/docs/README.md"
    )
    assert [path for _, path in cited(text)] == [
        "proxynow/edge/graph/build.py::_Builder",
        "edge/tcp/proxy.py",
        "docs/metrics.md",
        "tests/acme/",
        "DESIGN.md",
        "../shared/STYLE.md",
        "http1.py",
        "limits.md",
        "bench/results/",
    ]


def test_where_a_citation_resolves() -> None:
    here = ROOT / "docs" / "api.md"
    # Files that the data-plane layout does not move, so the test outlives it.
    assert exists("config/loader.py", here) and exists("proxynow/config/loader.py", here)
    assert exists("limits.md", here)  # next to the citing page
    assert not exists("DESIGN.md", here)  # the shared documents: ../shared/DESIGN.md
    assert not exists("config/no_such_module.py", here)
    assert exists("config/loader.py::DynamicFileLoader", here)
    assert exists("rules/compiler.py::compile_table", here)
    assert not exists("rules/compiler.py::DynamicFileLoader", here)  # moved or removed code
    assert not exists("../proxynow/config/loader.py", here) and not exists("../shared/a/b.md", here)
    assert exists("../shared/DESIGN.md", here) == (
        not SHARED.is_dir() or (SHARED / "DESIGN.md").is_file()
    )
