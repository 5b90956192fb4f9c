"""Go templates in file-provider files: proxynow against real Traefik 3.7.

Two checks, each with one Traefik process (file provider on a directory, API on
127.0.0.1:0): the templated files under `templates/` (real-world shapes: `range` over
`until`, `env` with `default`, conditionals, `printf`'d router names, dicts, `define`, a
TOML file) must give the same routers with the same rules, services, middlewares,
entrypoints and priorities as proxynow's loader; and every one-line case of
tests/support/gotemplate_cases.py::AGREED, carried as a router's rule, must render in
Traefik to exactly what proxynow renders.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from proxynow.config.gotemplate import render
from proxynow.config.loader import load_dynamic_file
from tests.e2e.differential.traefik_api import routers, running_traefik
from tests.support.gotemplate_cases import AGREED, ENV

TEMPLATES = Path(__file__).parent / "templates"
FILE_ENV = {
    "PN_DOMAIN": "example.net",
    "PN_STAGE": "prod",
    "PN_HOSTS": "a.example.com,b.example.com,c.example.com",
    "PN_APP_NAME": "My_Cool.App",
    "PN_BLOG": "blog.example.net",
    "PN_COUNT": "5",
    "PN_BACKEND": "10.1.2.3",
}


def _shape(router: dict[str, Any]) -> dict[str, Any]:
    """What both sides must agree on, with Traefik's `@file` suffixes taken off. Traefik
    shows an enabled router's effective priority: the length of its rule unless set."""
    rule = router.get("rule", "")
    return {
        "rule": rule,
        "service": str(router.get("service", "")).removesuffix("@file"),
        "middlewares": [m.removesuffix("@file") for m in router.get("middlewares") or []],
        "entryPoints": router.get("entryPoints") or [],
        "priority": router.get("priority") or len(rule),
        "status": router.get("status", "enabled"),
    }


def _proxynow_routers() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(TEMPLATES.iterdir()):
        config = load_dynamic_file(path, environ=FILE_ENV)
        for name, router in config.http.routers.items():
            found[name] = _shape(
                {
                    "rule": router.rule,
                    "service": router.service,
                    "middlewares": list(router.middlewares),
                    # Traefik lists the default entrypoints of a router that names none.
                    "entryPoints": list(router.entry_points) or ["web"],
                    "priority": router.priority,
                }
            )
    return found


def test_templated_files_give_traefiks_routers(tmp_path: Path) -> None:
    directory = tmp_path / "dynamic"
    shutil.copytree(TEMPLATES, directory)
    ours = _proxynow_routers()
    assert len(ours) >= 40  # the files really expand
    with running_traefik(directory, FILE_ENV, expected=len(ours)) as port:
        theirs = {
            name.removesuffix("@file"): _shape(router)
            for name, router in routers(port).items()
            if name.endswith("@file")
        }
    assert theirs == ours


def test_one_line_cases_render_as_in_traefik(tmp_path: Path) -> None:
    directory = tmp_path / "dynamic"
    directory.mkdir()
    lines = ["http:", "  routers:"]
    for index, (template, _) in enumerate(AGREED):
        # An explicit indentation keeps leading spaces of the output in the rule.
        lines += [
            f"    case{index:03d}:",
            "      service: s",
            "      rule: |2-",
            f"        {template}",
        ]
    (directory / "cases.yml").write_text("\n".join(lines) + "\n")
    with running_traefik(directory, ENV, expected=len(AGREED)) as port:
        theirs = routers(port)
    for index, (template, expected) in enumerate(AGREED):
        rendered = theirs[f"case{index:03d}@file"]["rule"]
        ours = render(template, environ=ENV)
        if "uuidv4" in template:
            assert len(rendered) == len(ours) == len(expected), template
        else:
            assert rendered == ours == expected, template
