"""encodedCharacters (v3.7): every encoding refused by default, each option allowing one
(expected values: Traefik 3.7.15 on the same requests)."""

from __future__ import annotations

import pytest

from proxynow.edge.http.middlewares.base import Reply
from tests.unit.edge.http.middlewares.support import run

CODES = {
    "allowEncodedSlash": b"%2F",
    "allowEncodedBackSlash": b"%5c",
    "allowEncodedNullCharacter": b"%00",
    "allowEncodedSemicolon": b"%3B",
    "allowEncodedPercent": b"%25",
    "allowEncodedQuestionMark": b"%3f",
    "allowEncodedHash": b"%23",
}


@pytest.mark.parametrize(("option", "code"), CODES.items())
def test_each_refused_by_default_allowed_by_its_option(option: str, code: bytes) -> None:
    assert run({"encodedCharacters": {}}, b"/a" + code + b"b")[0] == Reply(400)
    assert run({"encodedCharacters": {option: True}}, b"/a" + code + b"b")[0] is None
    others = {name: True for name in CODES if name != option}
    assert run({"encodedCharacters": others}, b"/a" + code)[0] == Reply(400)


def test_other_encodings_and_the_query_pass() -> None:
    spec = {"encodedCharacters": {}}
    assert run(spec, b"/a%20b%C3%A9?x=%2F")[0] is None
    assert run(spec, b"/a%2fb%3B")[0] == Reply(400)


def test_everything_allowed_is_no_hook() -> None:
    from proxynow.config.middlewares import Middleware
    from proxynow.edge.http.middlewares import encoded_characters
    from proxynow.edge.http.middlewares.base import BuildContext

    spec = Middleware.model_validate({"encodedCharacters": dict.fromkeys(CODES, True)})
    step = encoded_characters.build(spec, BuildContext("r", False, lambda name: None))
    assert step.request is None
