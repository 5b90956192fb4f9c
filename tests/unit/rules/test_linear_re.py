"""The static check that lets a Go pattern run on Python's re: each rule of the subset, the
Python spelling it yields, and the patterns it must leave to RE2."""

from __future__ import annotations

import pytest

from proxynow.rules.linear_re import python_pattern

# (Go pattern, its re spelling) for patterns proven linear.
PROVEN = [
    ("^/api/v[0-9]+/", "^/api/v[0-9]++/"),
    ("^[a-z]+\\.example\\.com$", "^[a-z]++\\.example\\.com\\Z"),
    ("\\A/a\\z", "^/a\\Z"),
    ("^application/(json|xml)$", "^application/(?:json|xml)\\Z"),
    ("^/(?:en|fr)/", "^/(?:en|fr)/"),
    ("^\\s+$", "^[\\t\\n\\f\\r ]++\\Z"),  # Go's \s has no \v, Python's has
    ("^\\S", "^[^\\t\\n\\f\\r ]"),
    ("^[\\s\\d-]+x", "^[\\t\\n\\f\\r \\d\\-]++x"),
    ("^[-a]", "^[\\-a]"),
    ("^[a.$*(]", "^[a\\.\\$\\*\\(]"),  # plain characters inside a class
    ("^[^/]+/", "^[^/]++/"),
    ("^\\w+@\\w+$", "^\\w++@\\w++\\Z"),
    ("^a{2}a", "^a{2}a"),  # a fixed count is no choice: not possessive, not ambiguous
    ("^[0-9]{1,3}\\.", "^[0-9]{1,3}+\\."),
    ("^a{2,}b", "^a{2,}+b"),
    ("^a*b?c?d", "^a*+b?+c?+d"),
    ("^a*b?c?d?e?f", "^a*+b?+c?+d?+e?+f"),
    ("^\\t\\n", "^\\\t\\\n"),
    ("^.*", "^.*+"),
    ("^", "^"),
    ("Mobile", "Mobile"),  # a literal: re scans for it in linear time
    ("\\.php$", "\\.php\\Z"),
    ("a b", "a\\ b"),
    ("", ""),
]


@pytest.mark.parametrize(("pattern", "python"), PROVEN)
def test_proven_linear(pattern: str, python: str) -> None:
    assert python_pattern(pattern) == python


UNPROVEN = [
    # Issue 15's list: nested or repeated ambiguous quantifiers.
    "(a+)+",
    "(a|a)*",
    "(a*)*b",
    "(.*a){20}",
    "(\\w+\\s?)+$",
    "^(([a-z])+.)+[A-Z]([a-z])+$",
    "^/p/(a+)+$",
    # Adjacent quantifiers that can trade characters.
    "^a*a*b",
    "^[a-z]+[a-z0-9]+$",
    "^.*/.*$",
    "^.*a",
    "^\\w+\\d",
    "^a?a",
    "^a*b?a",  # a* can be followed by a (b? may be empty)
    "^a{1,3}a",
    "^a*b?c?d?a",
    # Not anchored: every start position is tried again.
    "[a-z]+\\.com",
    "\\d+",
    "a.b",
    "(json|xml)",
    "a$b",
    # Groups beyond literal alternatives with distinct first characters.
    "^(a|ab)",
    "^(ab|ac)",
    "^(a|)",
    "^()",
    "^(a.)",
    "^(a)+",
    "^(a|b)*",
    "^(?i:a)",
    "^(?P<n>a)",
    "^((a))",
    "^a|b",
    # Lazy, possessive, nested or empty repetition.
    "^a*?b",
    "^a+?",
    "^a??",
    "^a{0}",
    "^a{0,0}",
    "^a{3,2}",
    "^a{,3}",
    "^a{",
    # Everything whose meaning or cost this subset does not model.
    "(?i)^a",
    "(?s)^.",
    "(?m)^a$",
    "(?U)^a+",
    "^a\\b",
    "^\\Bb",
    "^\\pL",
    "^\\x41",
    "^\\Q.\\E",
    "^\\141",
    "^[[:alpha:]]",
    "^[]a]",
    "^[]",
    "^[a-z-9]",
    "^[+--]",
    "^[\\S]",
    "^[\\pL]",
    "^é",
    "^\u00a0",
    "^a\tb",  # a literal tab in the pattern
    "^$a",
    "^a$$",
    "^^a",
]


@pytest.mark.parametrize("pattern", UNPROVEN)
def test_left_to_re2(pattern: str) -> None:
    assert python_pattern(pattern) is None
