"""The report: medians, ratios to Traefik, target verdicts and the markdown, from known data."""

from __future__ import annotations

from bench.report import Measurement, evaluate, ratio, render_markdown, summarise
from bench.scenarios import BY_NAME, TARGETS


def m(proxy: str, scenario: str, round_no: int, rps: float, p99: float = 1000.0) -> Measurement:
    return Measurement(
        proxy,
        scenario,
        round_no,
        rps=rps,
        p50_us=p99 / 2,
        p99_us=p99,
        cpu_us_per_request=10,
        rss_mib=50,
        pss_mib=40,
    )


def test_medians_are_taken_over_the_successful_rounds_only() -> None:
    rounds = [
        m("traefik", "keepalive-c10", 0, 100),
        m("traefik", "keepalive-c10", 1, 300),
        m("traefik", "keepalive-c10", 2, 200),
        Measurement("traefik", "keepalive-c10", 3, error="died"),
    ]
    summary = summarise(rounds)[("keepalive-c10", "traefik")]
    assert summary.medians["rps"] == 200
    assert (summary.rounds, summary.ok_rounds, summary.problem) == (4, 3, "died")


def test_ratios_are_to_traefik_in_the_same_scenario() -> None:
    summaries = summarise(
        [m("traefik", "keepalive-c10", 0, 100, p99=4000), m("proxynow", "keepalive-c10", 0, 250)]
    )
    assert ratio(summaries, "keepalive-c10", "proxynow", "rps") == 2.5
    assert ratio(summaries, "keepalive-c10", "proxynow", "p99_us") == 0.25
    assert ratio(summaries, "body-1m", "proxynow", "rps") is None


def test_targets_pass_fail_and_cannot_be_evaluated() -> None:
    summaries = summarise(
        [
            m("traefik", "keepalive-c10", 0, 100, p99=1000),
            m("nginx", "keepalive-c10", 0, 500),
            m("proxynow", "keepalive-c10", 0, 260, p99=600),  # 2.6x RPS, 0.6x p99, 0.52x nginx
            m("traefik", "body-1m", 0, 100),
            Measurement("proxynow", "body-1m", 0, error="exited with code 1"),
        ]
    )
    verdicts = {(v.target.scenario, v.target.label): v for v in evaluate(summaries)}
    assert verdicts[("keepalive-c10", "RPS ≥ 2.5x Traefik")].passed is True
    assert verdicts[("keepalive-c10", "p99 ≤ ½ Traefik")].passed is False
    assert verdicts[("keepalive-c10", "RPS ≥ 0.6x nginx")].passed is False
    failed = verdicts[("body-1m", "RPS ≥ 1.5x Traefik")]
    assert failed.passed is None
    assert "failed" in failed.note


def test_self_targets_compare_with_proxynows_own_baseline() -> None:
    summaries = summarise(
        [
            m("proxynow", "routers-1", 0, 1000),
            m("proxynow", "routers-1000", 0, 960),
            m("proxynow", "keepalive-c50", 0, 1000, p99=1000),
            m("proxynow", "config-churn", 0, 1000, p99=1200),
        ]
    )
    verdicts = {(v.target.scenario, v.target.label): v for v in evaluate(summaries)}
    assert verdicts[("routers-1000", "RPS within 5% of 1 router")].passed is True
    churn = verdicts[("config-churn", "p99 within 10% of no changes")]
    assert churn.passed is False
    assert churn.value is not None and abs(churn.value - 1.2) < 1e-9
    assert verdicts[("config-churn", "0 errors")].passed is True


def test_every_target_names_a_known_scenario() -> None:
    for target in TARGETS:
        assert target.scenario in BY_NAME
        if target.against.startswith("self@"):
            assert target.against.removeprefix("self@") in BY_NAME


def test_markdown_shows_figures_failures_and_skips() -> None:
    scenario = BY_NAME["config-churn"]
    summaries = summarise(
        [
            m("traefik", "config-churn", 0, 12345.6),
            Measurement("nginx", "config-churn", 0, skipped="no file provider"),
            Measurement(
                "proxynow",
                "config-churn",
                0,
                error="proxynow did not proxy / | x\nTraceback ...\nImportError: no cli",
            ),
        ]
    )
    text = render_markdown(
        {"Command": "`x`"}, [scenario], ["traefik", "nginx", "proxynow"], summaries
    )
    assert "| traefik | 12,346 |" in text
    assert "| nginx | skipped: no file provider |" in text
    # The first line and the log's last line, with the table's separator escaped.
    assert "| proxynow | failed: proxynow did not proxy / \\| x … ImportError: no cli |" in text
    assert "## Targets (proxynow)" in text
