"""Access-log lines: Traefik's common, genericCLF and json formats, field and header modes,
filters (edge/http/access.py). The expected lines are Traefik v3.7's, as its docs describe
them and as `traefik` 3.7 wrote them for the same requests; a running Traefik is compared
in tests/e2e/differential/test_access_log_traefik.py."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from proxynow.config.dynamic import Router
from proxynow.config.static import AccessLog as AccessLogConfig
from proxynow.edge.core.errors import error_response
from proxynow.edge.core.metrics import WorkerMetrics
from proxynow.edge.http.access import (
    AccessLog,
    FieldRules,
    Filters,
    canonical_header,
    format_common,
    format_generic_clf,
    format_json,
    go_quote,
    go_stamp,
    parse_status_ranges,
    second_of,
)
from proxynow.edge.http.exchange import EntryPointRuntime, Exchange
from proxynow.edge.message.headers import RequestHead, ResponseHead
from proxynow.edge.upstream.server import Server

START = second_of(int(datetime(2026, 12, 2, 9, 39, 10, tzinfo=UTC).timestamp()))
NOW = second_of(START.epoch + 2)


def clf_fields(**extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "ClientHost": "127.0.0.1",
        "ClientUsername": "-",
        "StartUTC": "2026-12-02T09:39:10.509413166Z",
        "RequestMethod": "GET",
        "RequestPath": "/",
        "RequestProtocol": "HTTP/1.1",
        "DownstreamStatus": 200,
        "DownstreamContentSize": 12,
        "RequestCount": 1,
        "RouterName": "r1@file",
        "ServiceURL": "http://127.0.0.1:18431",
        "Duration": 1_143_442,
    }
    fields.update(extra)
    return fields


# ------------------------------------------------------------------ formats


def test_common_line_is_traefiks() -> None:
    assert format_common(clf_fields(), START, NOW) == (
        '127.0.0.1 - - [02/Dec/2026:09:39:10 +0000] "GET / HTTP/1.1" 200 12 "-" "-" 1 '
        '"r1@file" "http://127.0.0.1:18431" 1ms\n'
    )


def test_common_line_without_router_shows_dashes() -> None:
    fields = clf_fields(RequestPath="/missing", DownstreamStatus=404, DownstreamContentSize=19)
    del fields["RouterName"], fields["ServiceURL"]
    fields["Duration"] = 79_594
    assert format_common(fields, START, NOW) == (
        '127.0.0.1 - - [02/Dec/2026:09:39:10 +0000] "GET /missing HTTP/1.1" 404 19 "-" "-" 1 '
        '"-" "-" 0ms\n'
    )


def test_generic_clf_is_the_combined_format_with_quoted_headers() -> None:
    fields = clf_fields(
        RequestPath='/p/a%20b?x=1&y="z"',
        **{"request_Referer": "http://ref/x", "request_User-Agent": 'UA/1 "q"'},
    )
    assert format_generic_clf(fields, START, NOW) == (
        '127.0.0.1 - - [02/Dec/2026:09:39:10 +0000] "GET /p/a%20b?x=1&y="z" HTTP/1.1" 200 12 '
        '"http://ref/x" "UA/1 \\"q\\""\n'
    )


def test_clf_uses_start_local_when_start_utc_is_dropped() -> None:
    fields = clf_fields()
    del fields["StartUTC"], fields["ClientHost"]
    assert format_common(fields, START, NOW).startswith("- - - [-] ")
    fields["StartLocal"] = "2026-12-02T09:39:10Z"
    assert format_common(fields, START, NOW).startswith(f"- - - [{START.clf_local}] ")


def test_go_quote_escapes_like_strconv_quote() -> None:
    assert go_quote('a"b\\c') == '"a\\"b\\\\c"'
    assert go_quote("é\x01\n\u2028") == '"é\\x01\\n\\u2028"'


def test_json_sorts_keys_escapes_like_go_and_adds_level_msg_time() -> None:
    fields: dict[str, Any] = {"RequestPath": "/?a=1&b=<x>", "GzipRatio": 0, "Duration": 5}
    fields["StartUTC"] = go_stamp(START.utc, 509413166, "Z")
    line = format_json(fields, START, NOW)
    assert line == (
        '{"Duration":5,"GzipRatio":0,"RequestPath":"/?a=1\\u0026b=\\u003cx\\u003e",'
        '"StartUTC":"2026-12-02T09:39:10.509413166Z","level":"info","msg":"",'
        f'"time":"{NOW.local}{NOW.zone}"}}\n'
    )
    assert NOW.utc == "2026-12-02T09:39:12"


def test_times_trim_trailing_zeros_of_the_fraction_and_write_the_zone() -> None:
    assert go_stamp(START.utc, 843387800, "Z") == "2026-12-02T09:39:10.8433878Z"
    assert go_stamp(START.utc, 0, "Z") == "2026-12-02T09:39:10Z"
    assert go_stamp(START.local, 5, "+01:00").endswith(".000000005+01:00")
    assert START.clf_utc == "02/Dec/2026:09:39:10 +0000"


# ------------------------------------------------------------------ rules


def test_status_ranges() -> None:
    assert parse_status_ranges(["200", "300-302"]) == ((200, 200), (300, 302))
    for bad in (["abc"], ["302-300"], ["20"], ["200-"]):
        with pytest.raises(ValueError):
            parse_status_ranges(bad)


def test_filters_keep_a_line_when_any_filter_matches() -> None:
    assert Filters().keep(200, 0, 0.0)
    only = Filters(status=((500, 599),), retry_attempts=True, min_duration=0.1)
    assert only.keep(503, 0, 0.0)
    assert only.keep(200, 1, 0.0)
    assert only.keep(200, 0, 0.2)
    assert not only.keep(200, 0, 0.1)  # longer than minDuration, not equal


def test_field_modes_are_case_insensitive_and_redact_is_the_default() -> None:
    rules = FieldRules("drop", {"clienthost": "keep", "startutc": "redact"})
    assert rules.keep("ClientHost")
    assert not rules.keep("StartUTC")
    assert not rules.keep("Duration")
    assert FieldRules().keep("Duration")


def test_canonical_header_names() -> None:
    assert canonical_header("x-real-ip") == "X-Real-Ip"
    assert canonical_header("USER-AGENT") == "User-Agent"
    assert canonical_header("bad name") == "bad name"


# ------------------------------------------------------------------ record


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.dropped = 0
        self.error = ""

    def submit(self, lines: list[str], size: int) -> None:
        self.lines += lines

    def reopen(self) -> None: ...
    def close(self) -> None: ...


class Transport:
    def __init__(self, peer: tuple[str, int]) -> None:
        self.peer = peer

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.peer if name == "peername" else default


class Client:
    def __init__(self, peer: tuple[str, int] = ("127.0.0.1", 37542)) -> None:
        self.entrypoint = EntryPointRuntime("web")
        self.transport = Transport(peer)
        self.access_peer: Any = None


def exchange(host: bytes = b"a.test", status: int = 200, **headers: bytes) -> Exchange:
    head = RequestHead(trusted=False)
    head.add(b"Host", host)
    head.add(b"user-agent", b"curl/7.88.1")
    for name, value in headers.items():
        head.add(name.replace("_", "-").encode(), value)
    ex = Exchange(head, 10.0, None)
    ex.method_b, ex.target, ex.status, ex.bytes_out = b"GET", b"/", status, 12
    return ex


def logged(
    config: dict[str, Any],
    ex: Exchange,
    origin: ResponseHead | None,
    routed: bool = True,
    now: float = 10.001,
    **record: Any,
) -> list[str]:
    metrics = WorkerMetrics()
    if routed:
        ex.stats = metrics.target("web", "r1@file", "s1@file")
        ex.server = Server(
            "http://127.0.0.1:18431", "s1@file", cast(Any, None), b"", True, b"", 0.0
        )
    sink = Lines()
    log = AccessLog(AccessLogConfig.model_validate(config), sink, metrics)
    log.record(cast(Any, Client()), ex, now, origin, **record)
    return sink.lines


def origin_head() -> ResponseHead:
    head = ResponseHead()
    head.add(b"Content-Length", b"12")
    head.add(b"x-up", b"yes")
    return head


def test_record_common_line() -> None:
    [line] = logged({}, exchange(), origin_head())
    pattern = (
        r'127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "GET / HTTP/1\.1" 200 12 '
        r'"-" "-" 1 "r1@file" "http://127\.0\.0\.1:18431" 1ms\n'
    )
    assert re.fullmatch(pattern, line)


def test_record_json_has_traefiks_fields_and_no_headers_by_default() -> None:
    [line] = logged({"format": "json"}, exchange(b"a.test:8080"), origin_head())
    data = json.loads(line)
    assert set(data) == {
        "ClientAddr", "ClientHost", "ClientPort", "ClientUsername", "DownstreamContentSize",
        "DownstreamStatus", "Duration", "OriginContentSize", "OriginDuration", "OriginStatus",
        "Overhead", "RequestAddr", "RequestContentSize", "RequestCount", "RequestHost",
        "RequestMethod", "RequestPath", "RequestPort", "RequestProtocol", "RequestScheme",
        "RetryAttempts", "RouterName", "ServiceAddr", "ServiceName", "ServiceURL",
        "StartLocal", "StartUTC", "entryPointName", "level", "msg", "time",
    }  # fmt: skip
    assert data["ClientAddr"] == "127.0.0.1:37542" and data["ClientPort"] == "37542"
    assert (data["RequestHost"], data["RequestPort"]) == ("a.test", "8080")
    assert data["ServiceAddr"] == "127.0.0.1:18431" and data["ServiceName"] == "s1@file"
    assert data["Duration"] == 1_000_000 and data["Overhead"] == 0
    assert data["OriginStatus"] == data["DownstreamStatus"] == 200
    assert data["entryPointName"] == "web" and data["RequestScheme"] == "http"


def test_record_of_a_local_404_has_no_router_and_an_origin_of_zero() -> None:
    ex = exchange(status=404)
    sent = error_response(404, False)
    ex.bytes_out = len(sent.partition(b"\r\n\r\n")[2])  # as the front end counts it
    [line] = logged({"format": "json"}, ex, None, routed=False)
    data = json.loads(line)
    assert "RouterName" not in data and "ServiceURL" not in data
    assert data["OriginStatus"] == data["OriginContentSize"] == data["OriginDuration"] == 0
    assert data["DownstreamContentSize"] == ex.bytes_out > 0
    assert data["GzipRatio"] == 0 and data["RequestPort"] == "-"


def test_fields_default_drop_keeps_only_the_named_ones() -> None:
    config = {
        "format": "json",
        "fields": {"defaultMode": "drop", "names": {"ClientHost": "keep", "duration": "keep"}},
    }
    data = json.loads(logged(config, exchange(), origin_head())[0])
    assert set(data) == {"ClientHost", "Duration", "level", "msg", "time"}


def test_headers_kept_redacted_and_dropped() -> None:
    config = {
        "format": "json",
        "fields": {
            "headers": {"defaultMode": "redact", "names": {"user-agent": "keep", "X-Up": "drop"}}
        },
    }
    ex = exchange(accept=b"*/*", cookie=b"secret")
    data = json.loads(logged(config, ex, origin_head())[0])
    headers = {key: value for key, value in data.items() if "_" in key}
    assert headers == {
        "request_User-Agent": "curl/7.88.1",
        "request_Accept": "REDACTED",
        "request_Cookie": "REDACTED",
        "origin_Content-Length": "REDACTED",
        "downstream_Content-Length": "REDACTED",
    }


def test_kept_headers_appear_in_clf_and_multiple_values_are_joined() -> None:
    config = {"format": "genericCLF", "fields": {"headers": {"defaultMode": "keep"}}}
    ex = exchange(referer=b"http://ref/x", x_a=b"1")
    ex.head.add(b"X-A", b"2")
    [line] = logged(config, ex, origin_head())
    assert line.endswith(' 200 12 "http://ref/x" "curl/7.88.1"\n')
    data = json.loads(logged({**config, "format": "json"}, ex, origin_head())[0])
    assert data["request_X-A"] == "1,2" and data["origin_X-Up"] == "yes"


def test_filters_drop_lines_and_count_every_request() -> None:
    config = {"filters": {"statusCodes": ["500-599"], "minDuration": "10ms"}}
    assert logged(config, exchange(), origin_head()) == []
    assert len(logged(config, exchange(status=502), None)) == 1
    assert len(logged(config, exchange(), origin_head(), now=10.5)) == 1
    ex = exchange()
    ex.retried = True
    retry = {"filters": {"retryAttempts": True}}
    assert '"RetryAttempts":1' in logged({**retry, "format": "json"}, ex, origin_head())[0]
    assert logged(retry, exchange(), origin_head()) == []


def test_abandoned_before_any_response_is_499() -> None:
    data = json.loads(logged({"format": "json"}, exchange(status=0), None, abandoned=True)[0])
    assert data["DownstreamStatus"] == 499


def test_internal_routers_are_left_out_unless_add_internals() -> None:
    metrics = WorkerMetrics()
    for add_internals, expected in ((False, 0), (True, 1)):
        sink = Lines()
        config = AccessLogConfig(add_internals=add_internals)
        log = AccessLog(config, sink, metrics)
        ex = exchange()
        ex.stats = metrics.target("traefik", "ping@internal", "ping@internal")
        log.record(cast(Any, Client()), ex, 10.0, None)
        assert len(sink.lines) == expected


def test_ipv6_client_address() -> None:
    metrics = WorkerMetrics()
    sink = Lines()
    log = AccessLog(AccessLogConfig(format="json"), sink, metrics)
    log.record(cast(Any, Client(("::1", 5000))), exchange(b"[::1]:81"), 10.0, None)
    data = json.loads(sink.lines[0])
    assert data["ClientAddr"] == "[::1]:5000" and data["ClientHost"] == "::1"
    assert (data["RequestHost"], data["RequestPort"]) == ("::1", "81")


def test_routers_with_access_logs_off_are_left_out() -> None:
    metrics = WorkerMetrics()
    routers = {
        "quiet@file": Router.model_validate(
            {"rule": "Path(`/`)", "observability": {"accessLogs": False}}
        ),
        "loud@file": Router.model_validate(
            {"rule": "Path(`/`)", "observability": {"metrics": False}}
        ),
    }
    sink = Lines()
    log = AccessLog(AccessLogConfig(), sink, metrics, lambda: routers)
    for router in ("quiet@file", "loud@file"):
        ex = exchange()
        ex.stats = metrics.target("web", router, "s@file")
        log.record(cast(Any, Client()), ex, 10.0, None)
    assert [line.split('"')[-4] for line in sink.lines] == ["loud@file"]


class TLSTransport(Transport):
    class SSLObject:
        def version(self) -> str:
            return "TLSv1.2"

        def cipher(self) -> tuple[str, str, int]:
            return ("ECDHE-RSA-AES128-GCM-SHA256", "TLSv1.2", 128)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.SSLObject() if name == "ssl_object" else super().get_extra_info(name)


def test_tls_fields_use_go_names() -> None:
    client = Client()
    client.entrypoint = EntryPointRuntime("websecure", tls=True)
    client.transport = TLSTransport(("127.0.0.1", 443))
    sink = Lines()
    log = AccessLog(AccessLogConfig(format="json"), sink, WorkerMetrics())
    log.record(cast(Any, client), exchange(), 10.0, None)
    data = json.loads(sink.lines[0])
    assert (data["TLSVersion"], data["TLSCipher"]) == (
        "1.2",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    )
    assert data["RequestScheme"] == "https" and data["entryPointName"] == "websecure"
