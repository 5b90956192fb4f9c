"""TCP middlewares compiled into guards: ipAllowList, inFlightConn, and failing closed."""

from __future__ import annotations

import ipaddress

from proxynow.config.middlewares import TCPMiddleware
from proxynow.edge.tcp.middlewares import compile_guards

LOCAL = ipaddress.ip_address("127.0.0.1")
OTHER = ipaddress.ip_address("10.0.0.1")


def guards(**specs: dict[str, object]) -> dict[str, TCPMiddleware]:
    return {name: TCPMiddleware.model_validate(spec) for name, spec in specs.items()}


def test_allow_list_and_in_flight_conn() -> None:
    table = guards(
        allow={"ipAllowList": {"sourceRange": ["127.0.0.0/8"]}}, few={"inFlightConn": {"amount": 2}}
    )
    allow, few = compile_guards("t", ["allow@file", "few"], table)
    assert allow.admit(LOCAL) and not allow.admit(OTHER) and not allow.admit(None)
    assert allow.admit(ipaddress.ip_address("::ffff:127.0.0.9"))
    assert few.admit(LOCAL) and few.admit(LOCAL) and not few.admit(LOCAL)
    assert few.admit(OTHER)  # per client IP
    few.release(LOCAL)
    assert few.admit(LOCAL)
    for _ in range(5):
        few.release(OTHER)
    assert OTHER not in few.counts  # the table keeps only addresses with connections


def test_missing_or_broken_middlewares_refuse_every_connection() -> None:
    table = guards(empty={"ipAllowList": {"sourceRange": []}})
    (broken,) = compile_guards("t", ["empty"], table)
    (missing,) = compile_guards("t", ["nowhere"], table)
    assert not broken.admit(LOCAL) and not missing.admit(LOCAL)
