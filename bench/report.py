"""Turning measurements into the benchmark report.

Pure functions: per-round measurements in, medians, ratios to Traefik, target verdicts and a
markdown document out. Nothing here starts a process or reads a clock, so the whole report can
be tested from hand-written measurements.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.proxies import REFERENCE, follows_files
from bench.scenarios import BY_NAME, TARGETS, Scenario, Target

METRICS = (
    "rps",
    "p50_us",
    "p99_us",
    "cpu_us_per_request",
    "rss_mib",
    "pss_mib",
    "others_on_proxy_cores",
)
NOISY = 0.10  # flag a measurement whose proxy cores were this busy with other programs
MIB = 1024 * 1024


@dataclass(frozen=True)
class Measurement:
    """One proxy in one scenario in one round: figures, or why there are none."""

    proxy: str
    scenario: str
    round: int
    rps: float = 0.0
    p50_us: float = 0.0
    p99_us: float = 0.0
    cpu_us_per_request: float = 0.0
    rss_mib: float = 0.0
    pss_mib: float = 0.0
    requests: int = 0
    socket_errors: int = 0
    non_2xx: int = 0
    churn_writes: int = 0
    churn_applied: bool | None = None  # None: not a churn scenario
    # Share of the proxy's cores that other programs used during the measurement (0..1); not
    # measured (0) where wrk and the backend share the proxy's cores on purpose.
    others_on_proxy_cores: float = 0.0
    error: str = ""  # the proxy failed to start, to proxy, or died
    skipped: str = ""  # the proxy does not take part in this scenario

    @property
    def ok(self) -> bool:
        return not self.error and not self.skipped


@dataclass(frozen=True)
class Summary:
    """Medians over the successful rounds of one proxy in one scenario."""

    proxy: str
    scenario: str
    rounds: int
    ok_rounds: int
    medians: dict[str, float] = field(default_factory=dict)
    socket_errors: int = 0
    non_2xx: int = 0
    churn_applied: bool | None = None
    problem: str = ""  # the first error or the skip reason
    skipped: bool = False  # the proxy does not take part in this scenario

    @property
    def errors(self) -> int:
        return self.socket_errors + self.non_2xx


def summarise(measurements: Sequence[Measurement]) -> dict[tuple[str, str], Summary]:
    """Group by (scenario, proxy) and take the median of each metric over the good rounds."""
    groups: dict[tuple[str, str], list[Measurement]] = {}
    for m in measurements:
        groups.setdefault((m.scenario, m.proxy), []).append(m)
    return {key: _summary(group) for key, group in groups.items()}


def _summary(group: list[Measurement]) -> Summary:
    good = [m for m in group if m.ok]
    bad = [m for m in group if not m.ok]
    problem = (bad[0].skipped or bad[0].error) if bad else ""
    medians = {k: statistics.median(getattr(m, k) for m in good) for k in METRICS} if good else {}
    churn = [m.churn_applied for m in good if m.churn_applied is not None]
    return Summary(
        proxy=group[0].proxy,
        scenario=group[0].scenario,
        rounds=len(group),
        ok_rounds=len(good),
        medians=medians,
        socket_errors=sum(m.socket_errors for m in good),
        non_2xx=sum(m.non_2xx for m in good),
        churn_applied=all(churn) if churn else None,
        problem=problem,
        skipped=bool(bad) and all(m.skipped for m in bad),
    )


def ratio(
    summaries: dict[tuple[str, str], Summary],
    scenario: str,
    proxy: str,
    metric: str,
    against: str = REFERENCE,
) -> float | None:
    """median(proxy) / median(against) in the same scenario; None if either is missing."""
    mine = summaries.get((scenario, proxy))
    theirs = summaries.get((scenario, against))
    if not mine or not theirs or not mine.medians or not theirs.medians:
        return None
    if theirs.medians[metric] == 0:
        return None
    return mine.medians[metric] / theirs.medians[metric]


@dataclass(frozen=True)
class Verdict:
    target: Target
    value: float | None  # the ratio (or the error count for the "zero" target)
    passed: bool | None  # None: could not be evaluated
    note: str = ""


def evaluate(
    summaries: dict[tuple[str, str], Summary],
    proxy: str = "proxynow",
    targets: Iterable[Target] = TARGETS,
) -> list[Verdict]:
    return [_evaluate(summaries, proxy, t) for t in targets if (t.scenario, proxy) in summaries]


def _evaluate(summaries: dict[tuple[str, str], Summary], proxy: str, t: Target) -> Verdict:
    mine = summaries[(t.scenario, proxy)]
    if not mine.medians:
        outcome = "skipped" if mine.skipped else "failed"
        return Verdict(t, None, None, f"{proxy} {outcome}: see the {t.scenario} table")
    if t.against == "zero":
        return Verdict(t, float(mine.errors), mine.errors == 0)
    if t.against.startswith("self@"):
        base = summaries.get((t.against.removeprefix("self@"), proxy))
        value = (
            mine.medians[t.metric] / base.medians[t.metric]
            if base and base.medians and base.medians[t.metric]
            else None
        )
    else:
        value = ratio(summaries, t.scenario, proxy, t.metric, t.against)
    if value is None:
        if t.against.startswith("self@"):
            note = f"no {proxy} figure in {t.against.removeprefix('self@')}"
        else:
            note = f"no {t.against} figure in {t.scenario}"
        return Verdict(t, None, None, note)
    return Verdict(t, value, value >= t.bound if t.at_least else value <= t.bound)


# --- markdown ----------------------------------------------------------------------------


def render_markdown(
    header: dict[str, str],
    scenarios: Sequence[Scenario],
    proxies: Sequence[str],
    summaries: dict[tuple[str, str], Summary],
) -> str:
    lines = ["# proxynow benchmark", ""]
    lines += [f"- **{key}**: {value}" for key, value in header.items()]
    lines += ["", "Medians over rounds; `x Traefik` columns are ratios to Traefik in this run.", ""]
    for scenario in scenarios:
        lines += _scenario_table(scenario, proxies, summaries)
    lines += _targets_table(summaries)
    return "\n".join(lines).rstrip("\n") + "\n"


_COLUMNS = (
    "| proxy | RPS | p50 ms | p99 ms | CPU µs/req | RSS MiB | errors (socket / non-2xx) "
    "| RPS x Traefik | p99 x Traefik | CPU x Traefik | RSS x Traefik |"
)


def _scenario_table(
    scenario: Scenario, proxies: Sequence[str], summaries: dict[tuple[str, str], Summary]
) -> list[str]:
    lines = [f"### {scenario.name}", "", scenario.summary, "", _COLUMNS, "|---" * 11 + "|"]
    for proxy in proxies:
        s = summaries.get((scenario.name, proxy))
        if s is not None:
            lines.append(_row(s, summaries))
    notes = [n for n in (_note(summaries.get((scenario.name, p))) for p in proxies) if n]
    return [*lines, "", *notes, ""] if notes else [*lines, ""]


def _row(s: Summary, summaries: dict[tuple[str, str], Summary]) -> str:
    if not s.medians:
        label = "skipped" if s.skipped else "failed"
        return f"| {s.proxy} | {label}: {_one_line(s.problem)} |" + " |" * 9
    m = s.medians
    cells = [
        s.proxy,
        f"{m['rps']:,.0f}",
        f"{m['p50_us'] / 1000:.2f}",
        f"{m['p99_us'] / 1000:.2f}",
        f"{m['cpu_us_per_request']:.1f}",
        f"{m['rss_mib']:.1f}",
        f"{s.socket_errors} / {s.non_2xx}",
    ]
    for metric in ("rps", "p99_us", "cpu_us_per_request", "rss_mib"):
        value = ratio(summaries, s.scenario, s.proxy, metric)
        cells.append("-" if value is None else f"{value:.2f}")
    return "| " + " | ".join(cells) + " |"


def _note(s: Summary | None) -> str:
    if s is None:
        return ""
    parts = []
    if s.medians and s.ok_rounds < s.rounds:
        parts.append(f"{s.rounds - s.ok_rounds} of {s.rounds} rounds failed: {s.problem}")
    if s.medians and s.medians["others_on_proxy_cores"] > NOISY:
        share = s.medians["others_on_proxy_cores"]
        parts.append(f"other programs used {share:.0%} of the proxy's core(s): noisy figures")
    if s.medians and BY_NAME[s.scenario].churn and not follows_files(s.proxy):
        parts.append(
            "reads no dynamic file: it served unchanged while the churn writer ran beside"
            " wrk, so its p99 here against its own keepalive-c50 is the writer's share"
        )
    if s.churn_applied is False:
        parts.append("the proxy did NOT pick up the churned routers")
    elif s.churn_applied:
        parts.append("churned routers were picked up")
    return f"- {s.proxy}: " + "; ".join(_one_line(p) for p in parts) if parts else ""


def _targets_table(summaries: dict[tuple[str, str], Summary]) -> list[str]:
    verdicts = evaluate(summaries)
    if not verdicts:
        return []
    lines = [
        "## Targets (proxynow)",
        "",
        "| scenario | target | measured | result |",
        "|---|---|---|---|",
    ]
    for v in verdicts:
        if v.value is None:
            measured = "-"
        elif v.target.against == "zero":
            measured = f"{v.value:.0f}"
        else:
            measured = f"{v.value:.2f}x"
        result = {True: "pass", False: "**FAIL**", None: f"n/a ({_one_line(v.note)})"}[v.passed]
        lines.append(f"| {v.target.scenario} | {v.target.label} | {measured} | {result} |")
    return [*lines, ""]


def _one_line(text: str, limit: int = 240) -> str:
    """A problem in one table cell: its first line and, for a log tail, the log's last line."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()] or [""]
    brief = lines[0] if len(lines) == 1 else f"{lines[0]} … {lines[-1]}"
    flat = " ".join(brief.split()).replace("|", "\\|")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def to_json(
    header: dict[str, str],
    measurements: Sequence[Measurement],
    summaries: dict[tuple[str, str], Summary],
) -> dict[str, Any]:
    return {
        "header": header,
        "measurements": [asdict(m) for m in measurements],
        "summaries": [asdict(s) for s in summaries.values()],
        "targets": [
            {
                "scenario": v.target.scenario,
                "target": v.target.label,
                "value": v.value,
                "passed": v.passed,
                "note": v.note,
            }
            for v in evaluate(summaries)
        ],
    }
