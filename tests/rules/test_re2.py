"""RE2 patterns on Python's re: what is translated, what is rejected like RE2 rejects it."""

from __future__ import annotations

import pytest

from proxynow.rules.re2 import RegexpError, compile_re2, translate

TRANSLATIONS = [
    ("^a$", "^a\\Z"),
    ("(?m)^a$", "(?m)^a$"),
    ("(?<n>a)", "(?P<n>a)"),
    ("(?P<n>a)", "(?P<n>a)"),
    ("a\\z", "a\\Z"),
    ("\\Q.*\\E", "\\.\\*"),
    ("[[:alpha:]]", "[A-Za-z]"),
    ("[a[]", "[a\\[]"),
    ("a(?i)b", "a(?i:b)"),
    ("(a(?i)b)c", "(a(?i:b))c"),
    ("(?i)ab", "(?i)ab"),
    ("(?i:a)b", "(?i:a)b"),
    ("\\x{41}", "A"),
    ("[$]", "[$]"),
]


@pytest.mark.parametrize(("pattern", "python"), TRANSLATIONS)
def test_translate(pattern: str, python: str) -> None:
    assert translate(pattern) == python


REJECTED = [
    ("(?=a)", "lookaround"),
    ("(?!a)", "lookaround"),
    ("(?<=a)b", "lookaround"),
    ("(?<!a)b", "lookaround"),
    ("(a)\\1", "backreferences"),
    ("(?P<n>a)(?P=n)", "Perl syntax"),
    ("(?>a)", "Perl syntax"),
    ("a*+", "possessive"),
    ("(?U)a*", "ungreedy"),
    ("\\pL", "Unicode character classes"),
    ("a\\Z", "invalid escape"),
    ("(?#c)a", "Perl syntax"),
    ("(a", "missing closing \\)"),
    ("a)", "unexpected \\)"),
    ("[a", "missing closing ]"),
    ("[[:nope:]]", "character class"),
    ("a{2,1}", "min repeat greater than max repeat"),
]


@pytest.mark.parametrize(("pattern", "message"), REJECTED)
def test_rejected(pattern: str, message: str) -> None:
    with pytest.raises(RegexpError, match=message):
        compile_re2(pattern)


def test_ascii_classes() -> None:
    assert compile_re2("^\\w+$").search("café") is None
    assert compile_re2("^\\w+$").search("cafe") is not None


def test_dollar_does_not_match_before_final_newline() -> None:
    assert compile_re2("^a$").search("a\n") is None
