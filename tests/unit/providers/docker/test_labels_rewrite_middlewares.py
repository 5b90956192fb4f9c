"""The label forms of the path and redirection middlewares give the configuration their
file forms give (the label → configuration conversion, providers/docker/labels.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from proxynow.config.middlewares import Middleware
from proxynow.providers.docker.build import BuildOptions, Container, build_update

APP = Container("id-app", "app", {}, networks={"bridge": "10.0.0.2"}, ports=(80,))
P = "proxynow.http.middlewares.m."

# (labels without the prefix, the same middleware as a file writes it)
CASES: list[tuple[dict[str, str], dict[str, Any]]] = [
    ({"addprefix.prefix": "/pre"}, {"addPrefix": {"prefix": "/pre"}}),
    (
        {"stripprefix.prefixes": "/strip/x,/strip"},
        {"stripPrefix": {"prefixes": ["/strip/x", "/strip"]}},
    ),
    (
        {"stripPrefixRegex.regex": "/srx/[a-z]+, /sr2/[^x]*"},
        {"stripPrefixRegex": {"regex": ["/srx/[a-z]+", "/sr2/[^x]*"]}},
    ),
    ({"replacepath.path": "/new%2Fpath"}, {"replacePath": {"path": "/new%2Fpath"}}),
    (
        {"replacepathregex.regex": "^/rre/(.*)", "replacepathregex.replacement": "/r/$1/${1}x"},
        {"replacePathRegex": {"regex": "^/rre/(.*)", "replacement": "/r/$1/${1}x"}},
    ),
    (
        {
            "redirectregex.regex": "^http://([^/]+)/rdr/(.*)",
            "redirectregex.replacement": "https://$1/to/$2",
            "redirectregex.permanent": "true",
        },
        {
            "redirectRegex": {
                "regex": "^http://([^/]+)/rdr/(.*)",
                "replacement": "https://$1/to/$2",
                "permanent": True,
            }
        },
    ),
    (
        {
            "encodedcharacters.allowencodedslash": "true",
            "encodedCharacters.allowEncodedHash": "TRUE",
        },
        {"encodedCharacters": {"allowEncodedSlash": True, "allowEncodedHash": True}},
    ),
]


@pytest.mark.parametrize(("labels", "file_form"), CASES, ids=[next(iter(c[1])) for c in CASES])
def test_labels_parse_to_the_file_form(labels: dict[str, str], file_form: dict[str, Any]) -> None:
    container = replace(APP, labels={P + key: value for key, value in labels.items()})
    update = build_update([container], BuildOptions())
    assert not update.object_errors
    middlewares = update.config.http.middlewares
    assert middlewares == {"m": Middleware.model_validate(file_form)}


def test_an_invalid_regexp_in_a_label_is_an_error_on_the_middleware() -> None:
    labels = {P + "replacepathregex.regex": "^(a", P + "replacepathregex.replacement": "/"}
    update = build_update([replace(APP, labels=labels)], BuildOptions())
    assert "missing closing )" in str(update.object_errors)
