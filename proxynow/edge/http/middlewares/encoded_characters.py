"""`encodedCharacters` (Traefik v3.7): a 400 for a path holding a percent-encoded
character the router does not allow.

Every option defaults to false, so the middleware with no option refuses the seven
encodings it knows: `%2F` (`allowEncodedSlash`), `%5C` (`allowEncodedBackSlash`), `%00`
(`allowEncodedNullCharacter`), `%3B` (`allowEncodedSemicolon`), `%25`
(`allowEncodedPercent`), `%3F` (`allowEncodedQuestionMark`) and `%23` (`allowEncodedHash`),
in either case. The path tested is the escaped one after the entrypoint's normalisation,
as in Traefik; the answer is an empty 400. With everything allowed the step has no hook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxynow.edge.http.middlewares.base import BuildContext, Reply, Step
from proxynow.edge.http.middlewares.gourl import BAD_PATH, from_target

if TYPE_CHECKING:
    from proxynow.config.middlewares import EncodedCharacters, Middleware
    from proxynow.edge.http.exchange import Exchange

__all__ = ["build", "denied"]

_REFUSED = Reply(400)


def denied(options: EncodedCharacters) -> frozenset[bytes]:
    """The encodings refused (upper case; the path is matched upper-cased)."""
    table = (
        (options.allow_encoded_slash, b"%2F"),
        (options.allow_encoded_back_slash, b"%5C"),
        (options.allow_encoded_null_character, b"%00"),
        (options.allow_encoded_semicolon, b"%3B"),
        (options.allow_encoded_percent, b"%25"),
        (options.allow_encoded_question_mark, b"%3F"),
        (options.allow_encoded_hash, b"%23"),
    )
    return frozenset(code for allowed, code in table if not allowed)


def build(middleware: Middleware, context: BuildContext) -> Step:
    """The `encodedCharacters` builder (registry.py)."""
    options = middleware.encoded_characters
    assert options is not None
    refused = denied(options)
    if not refused:
        return Step("encodedCharacters")

    def request(exchange: Exchange) -> Reply | None:
        if b"%" not in exchange.target:
            return None  # nothing encoded: the usual case costs one scan
        go = from_target(exchange.target)
        if go is None:
            return BAD_PATH
        path = go.escaped()
        at = path.find(b"%")
        while at >= 0:
            if at + 2 >= len(path) or path[at : at + 3].upper() in refused:
                return _REFUSED
            at = path.find(b"%", at + 3)
        return None

    return Step("encodedCharacters", request=request)
