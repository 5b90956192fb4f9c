"""Go's ReplaceAllString and template expansion on RE2 (rules/goreplace.py); the expected
values are what Go's regexp package returns for the same calls."""

from __future__ import annotations

import time

import pytest

from proxynow.rules.goregexp import RegexpError
from proxynow.rules.goreplace import MAX_MATCHES, compile_capturing


@pytest.mark.parametrize(
    ("pattern", "text", "template", "expected"),
    [
        ("a(b)", "xabyab", "[$1]", "x[b]y[b]"),
        ("(?P<n>b)", "abc", "${n}${n}", "abbc"),
        ("(b)", "abc", "$1x", "ac"),  # `$1x` names group "1x": none, so empty
        ("(b)", "abc", "${1}x", "abxc"),
        ("b", "abc", "$$", "a$c"),
        ("b", "abc", "$", "a$c"),  # a dollar that names nothing stays
        ("b", "abc", "${", "a${c"),
        ("(b)", "abc", "$2", "ac"),  # no such group: empty
        ("(b)?c", "ac", "[$1]", "a[]"),  # a group that did not take part: empty
        ("x*", "abc", "-", "-a-b-c-"),  # empty matches between every byte
        ("a*", "baaac", "-", "-b-c-"),  # no empty match right after a match
        ("^", "abc", "-", "-abc"),
        ("b", "abc", "$0$0", "abbc"),
    ],
)
def test_replace_all_as_go(pattern: str, text: str, template: str, expected: str) -> None:
    found = compile_capturing(pattern).replace_all(text.encode(), template.encode(), 1 << 16)
    assert found == expected.encode()


def test_find_reads_a_bad_byte_as_one_rune() -> None:
    pattern = compile_capturing("^/.{3}")
    assert pattern.find(b"/\xff\xc3\xa9ab") == b"/\xff\xc3\xa9a"
    assert compile_capturing("z").find(b"abc") is None


def test_the_output_is_bounded() -> None:
    pattern = compile_capturing("")
    assert pattern.replace_all(b"a" * 1000, b"${0}" + b"x" * 100, 1 << 16) is None
    assert pattern.replace_all(b"a" * 10, b"x", 21) == b"xaxaxaxaxaxaxaxaxaxax"
    assert pattern.replace_all(b"a" * 10, b"x", 20) is None


def test_the_number_of_matches_is_bounded() -> None:
    # Each match is a call into RE2: 64 Ki empty matches would hold the loop for 0.1 s.
    pattern = compile_capturing("(x*)")
    started = time.perf_counter()
    assert pattern.replace_all(b"a" * 60000, b"", 1 << 20) is None
    assert time.perf_counter() - started < 0.05
    assert pattern.replace_all(b"a" * (MAX_MATCHES - 1), b"", 1 << 20) == b"a" * 4095


def test_no_backtracking() -> None:
    pattern = compile_capturing("^(a+)+$")
    started = time.perf_counter()
    assert pattern.replace_all(b"a" * 50000 + b"!", b"x", 1 << 20) == b"a" * 50000 + b"!"
    assert time.perf_counter() - started < 1.0


def test_go_errors() -> None:
    with pytest.raises(RegexpError, match="missing closing \\)"):
        compile_capturing("(a")
    with pytest.raises(RegexpError, match="lookaround"):
        compile_capturing("(?=a)")
