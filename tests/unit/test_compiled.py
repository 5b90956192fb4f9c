"""Which build of the hot path runs (proxynow/compiled.py): compiled only when built whole
from the sources on disk, pure Python otherwise, and said by `proxynow version`."""

from __future__ import annotations

import importlib.machinery
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from proxynow import compiled
from proxynow.compiled import GROUP, MANIFEST, MODULES, SourceFinder, decide, source_hash

ROOT = Path(__file__).resolve().parents[2]
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def _tree(root: Path, *, extensions: bool = True) -> Path:
    """A package folder as a build leaves it: sources, extensions, manifest."""
    package = root / "proxynow"
    for module in (*MODULES, GROUP):
        base = package.joinpath(*module.split(".")[1:])
        base.parent.mkdir(parents=True, exist_ok=True)
        if module != GROUP:
            base.with_suffix(".py").write_text(f"NAME = {module!r}\n")
        if extensions:
            Path(str(base) + SUFFIX).write_bytes(b"")
    hashes = {module: source_hash(module, str(package)) for module in MODULES}
    (package / MANIFEST).write_text(json.dumps(hashes))
    return package


def test_a_whole_build_from_these_sources_runs_compiled(tmp_path: Path) -> None:
    build = decide(str(_tree(tmp_path)), {})
    assert build.compiled and build.reason == ""


def test_an_edited_source_runs_every_hot_module_as_python(tmp_path: Path) -> None:
    package = _tree(tmp_path)
    edited = package / "edge" / "proxy" / "dispatch.py"
    edited.write_text(edited.read_text() + "# edited\n")
    build = decide(str(package), {})
    assert not build.compiled and str(edited) in build.reason and "changed" in build.reason


def test_pure_python_is_forced_by_the_environment(tmp_path: Path) -> None:
    package = str(_tree(tmp_path))
    assert not decide(package, {"PROXYNOW_PURE_PYTHON": "1"}).compiled
    assert decide(package, {"PROXYNOW_PURE_PYTHON": "0"}).compiled


def test_no_manifest_a_missing_extension_or_another_set_runs_pure(tmp_path: Path) -> None:
    package = _tree(tmp_path / "a", extensions=False)
    assert "not built" in decide(str(package), {}).reason
    package = _tree(tmp_path / "b")
    (package / MANIFEST).unlink()  # a build that failed half-way writes none
    assert "not built with a C compiler" in decide(str(package), {}).reason
    package = _tree(tmp_path / "c")
    (package / MANIFEST).write_text(json.dumps({MODULES[0]: "x"}))
    assert "compiled set changed" in decide(str(package), {}).reason


def test_the_source_finder_wins_over_an_extension_beside_the_source(tmp_path: Path) -> None:
    package = _tree(tmp_path)
    spec = SourceFinder(MODULES, str(package)).find_spec(MODULES[0], None)
    assert spec is not None and spec.origin is not None and spec.origin.endswith(".py")
    assert SourceFinder(MODULES, str(package)).find_spec("proxynow.cli", None) is None


def test_the_running_hot_modules_are_the_build_it_says() -> None:
    import proxynow.edge.http1.protocol as protocol

    origin = protocol.__file__ or ""
    assert origin.endswith(SUFFIX) == compiled.build().compiled, (origin, compiled.describe())


@pytest.mark.parametrize("pure", ["1", ""])
def test_version_says_which_build_runs(pure: str) -> None:
    env = {**os.environ, "PROXYNOW_PURE_PYTHON": pure, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from proxynow.cli import main; sys.exit(main())",
            "version",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    line = done.stdout.splitlines()[-1]
    if pure:
        assert line == "hot path: pure Python (PROXYNOW_PURE_PYTHON is set)"
    else:
        # What the build on disk decides without the variable: this process may itself run
        # pure because of it (scripts/test.sh's pure pass sets it).
        unset = {k: v for k, v in os.environ.items() if k != "PROXYNOW_PURE_PYTHON"}
        decided = decide(str(ROOT / "proxynow"), unset)
        expected = "compiled (mypyc): " + ", ".join(MODULES)
        assert line == "hot path: " + (
            expected if decided.compiled else f"pure Python ({decided.reason})"
        )


def _compiled_classes() -> tuple[dict[str, set[str]], dict[tuple[str, str], set[str]]]:
    """Per compiled module, its classes that carry allow_interpreted_subclasses=True; and per
    compiled class, the attributes its body declares (slots and annotated class attributes)."""
    import ast

    allowed: dict[str, set[str]] = {}
    declared: dict[tuple[str, str], set[str]] = {}
    for module in MODULES:
        path = ROOT.joinpath(*module.split(".")).with_suffix(".py")
        tree = ast.parse(path.read_text())
        allowed[module] = set()
        for node in tree.body:
            if not isinstance(node, ast.ClassDef):
                continue
            if any(
                "allow_interpreted_subclasses=True" in ast.unparse(d) for d in node.decorator_list
            ):
                allowed[module].add(node.name)
            names: set[str] = set()
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    names.add(item.target.id)
                if isinstance(item, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "__slots__" for t in item.targets
                ):
                    names |= {
                        c.value
                        for c in ast.walk(item.value)
                        if isinstance(c, ast.Constant) and isinstance(c.value, str)
                    }
            declared[(module, node.name)] = names
    return allowed, declared


def test_every_class_subclassed_outside_the_compiled_set_allows_it() -> None:
    """A compiled class without allow_interpreted_subclasses cannot be instantiated through
    an interpreted subclass (upstream/h2.py's H2Stream of UpstreamConnection was the case),
    and a subclass must not declare the base's attributes again."""
    import importlib
    import pkgutil

    import proxynow

    allowed, declared = _compiled_classes()
    missing = []
    shadowed = []
    for info in pkgutil.walk_packages(proxynow.__path__, "proxynow."):
        if info.name in MODULES or info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if not isinstance(value, type) or value.__module__ != info.name:
                continue
            for base in value.__mro__[1:]:
                if getattr(base, "_is_protocol", False):
                    continue  # a typing.Protocol is no native class
                if base.__module__ in allowed and base.__name__ not in allowed[base.__module__]:
                    missing.append(f"{value.__module__}.{value.__name__} < {base.__name__}")
                # A slot the subclass declares again is a second attribute of that name:
                # compiled code reads the base's (H2Stream's `trailers` was lost that way).
                again = set(value.__dict__.get("__slots__", ())) & declared.get(
                    (base.__module__, base.__name__), set()
                )
                shadowed += [f"{value.__name__}.{name} (of {base.__name__})" for name in again]
    assert not missing, "compiled bases without allow_interpreted_subclasses: " + ", ".join(missing)
    assert not shadowed, "attributes of compiled bases declared again: " + ", ".join(shadowed)
