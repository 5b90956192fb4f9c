"""ipAllowList, and the ipStrategy / sourceCriterion extraction it shares
(edge/http/middlewares/source.py)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from proxynow.config.middlewares import SourceCriterion
from proxynow.edge.core.ipcheck import peer_address
from proxynow.edge.http.middlewares.base import Reply
from proxynow.edge.http.middlewares.source import ip_strategy, source_criterion

from .support_access import exchange, step

XFF = b"X-Forwarded-For"


def allow(**options: Any) -> Any:
    hook = step({"ipAllowList": options}).request
    assert hook is not None
    return hook


def test_the_peer_is_checked_by_default() -> None:
    hook = allow(sourceRange=["127.0.0.1/32", "::1"])
    assert hook(exchange("127.0.0.1")) is None
    assert hook(exchange("::1")) is None
    assert hook(exchange("::ffff:127.0.0.1")) is None
    refused = hook(exchange("10.0.0.1"))
    assert refused == Reply(403, (), b"Forbidden")
    assert hook(exchange(None)) is refused


def test_reject_status_code() -> None:
    refused = allow(sourceRange=["10.0.0.0/8"], rejectStatusCode=404)(exchange())
    assert refused.status == 404 and refused.body == b"Not Found"


@pytest.mark.parametrize(
    ("options", "xff", "expected"),
    [
        ({"depth": 1}, b"1.1.1.1, 2.2.2.2", "2.2.2.2"),
        ({"depth": 2}, b"1.1.1.1, 2.2.2.2", "1.1.1.1"),
        ({"depth": 3}, b"1.1.1.1, 2.2.2.2", ""),
        ({"excludedIPs": ["2.2.2.0/24"]}, b"1.1.1.1, 2.2.2.2", "1.1.1.1"),
        ({"excludedIPs": ["0.0.0.0/0"]}, b"1.1.1.1, 2.2.2.2", ""),
        ({"depth": 1, "ipv6Subnet": 64}, b"2001:db8:1:2:3::9", "2001:db8:1:2::"),
        ({}, b"1.1.1.1", "127.0.0.1"),
    ],
)
def test_strategies(options: dict[str, Any], xff: bytes, expected: str) -> None:
    criterion = SourceCriterion.model_validate({"ipStrategy": options})
    extract = ip_strategy(criterion.ip_strategy)
    assert extract(exchange(headers=((XFF, xff),))) == expected


def test_only_the_first_xff_header_is_read_and_an_untrusted_one_not_at_all() -> None:
    criterion = SourceCriterion.model_validate({"ipStrategy": {"depth": 1}})
    extract = ip_strategy(criterion.ip_strategy)
    two = exchange(headers=((XFF, b"1.1.1.1"), (XFF, b"2.2.2.2")))
    assert extract(two) == "1.1.1.1"
    assert extract(exchange(headers=((XFF, b"1.1.1.1"),), trusted=False)) == ""


def test_depth_refuses_a_request_without_the_header() -> None:
    hook = allow(sourceRange=["0.0.0.0/0"], ipStrategy={"depth": 1})
    assert hook(exchange()) is not None
    assert hook(exchange(headers=((XFF, b"9.9.9.9"),))) is None


def test_ipv6_subnet_of_the_peer() -> None:
    hook = allow(sourceRange=["2001:db8::/64"], ipStrategy={"ipv6Subnet": 64})
    assert hook(exchange("2001:db8::5")) is None
    assert hook(exchange("2001:db8:0:1::5")) is not None


@pytest.mark.parametrize(
    "options",
    [
        {"sourceRange": []},
        {"sourceRange": ["nope"]},
        {"sourceRange": ["10.0.0.0/8"], "rejectStatusCode": 999},
        {"sourceRange": ["10.0.0.0/8"], "ipStrategy": {"ipv6Subnet": 129}},
        {"sourceRange": ["10.0.0.0/8"], "ipStrategy": {"depth": -1}},
    ],
)
def test_bad_options_do_not_build(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        allow(**options)


def test_source_criteria() -> None:
    def of(spec: dict[str, Any], default_host: bool = False) -> str:
        criterion = SourceCriterion.model_validate(spec)
        found = exchange(headers=((b"X-User", b"alice"),))
        return source_criterion(criterion, default_host)(found)

    assert of({"requestHeaderName": "X-User"}) == "alice"
    assert of({"requestHeaderName": "X-Absent"}) == ""
    assert of({"requestHost": True}) == "app.test"
    assert of({}) == "127.0.0.1" and of({}, default_host=True) == "app.test"
    with pytest.raises(ValueError):
        of({"requestHost": True, "requestHeaderName": "X-User"})


def test_excluded_ips_read_a_bounded_tail_of_the_header() -> None:
    criterion = SourceCriterion.model_validate({"ipStrategy": {"excludedIPs": ["10.0.0.0/8"]}})
    extract = ip_strategy(criterion.ip_strategy)
    endless = b"9.9.9.9, " + b", ".join([b"10.0.0.1"] * 200_000)
    assert extract(exchange(headers=((XFF, endless),))) == ""  # 9.9.9.9 is past the bound
    near = b"9.9.9.9, " + b", ".join([b"10.0.0.1"] * 10)
    assert extract(exchange(headers=((XFF, near),))) == "9.9.9.9"


def test_answers_remembered_per_peer_address_follow_each_peer() -> None:
    # The connections' peer addresses (edge/http/peers.py): one object per peer, whose
    # answer the step remembers; clients taking turns each keep theirs.
    hook = allow(sourceRange=["127.0.0.1/32"])
    inside, outside = exchange("127.0.0.1"), exchange("10.0.0.1")
    inside.client_ip = peer_address(ipaddress.ip_address("127.0.0.1"))
    outside.client_ip = peer_address(ipaddress.ip_address("10.0.0.1"))
    for _ in range(3):
        assert hook(inside) is None
        assert hook(outside) is not None
        assert hook(exchange("::ffff:127.0.0.1")) is None  # a new object each time
        assert hook(exchange("::ffff:10.0.0.1")) is not None
        assert hook(exchange(None)) is not None
    for index in range(5000):  # more peers than it remembers: each answer still its own
        assert (hook(exchange(f"10.1.{index // 256}.{index % 256}")) is None) is False
    assert hook(inside) is None and hook(outside) is not None
