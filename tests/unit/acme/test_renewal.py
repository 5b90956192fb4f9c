"""Renewal timing and the retry table (pure)."""

from __future__ import annotations

import datetime

import pytest

from proxynow.acme.renewal import BACKOFF, Backoff, certificate_times, renew_at, retry_after_seconds
from tests.support.acme import self_signed

DAY = 86400.0


@pytest.mark.parametrize(
    ("lifetime", "duration_hours", "left_at_renewal"),
    [
        (90 * DAY, 0, 30 * DAY),  # a third of 90 days: Traefik's 30 days for LE
        (90 * DAY, 2160, 30 * DAY),
        (90 * DAY, 24, 8 * 3600),  # certificatesDuration shorter than the certificate
        (6 * DAY, 2160, 2 * DAY),  # never longer than the certificate itself
    ],
)
def test_renewal_when_a_third_of_the_lifetime_is_left(
    lifetime: float, duration_hours: float, left_at_renewal: float
) -> None:
    not_before = 1_000_000.0
    not_after = not_before + lifetime
    assert not_after - renew_at(not_before, not_after, duration_hours) == left_at_renewal


def test_certificate_times_read_the_leaf() -> None:
    cert, _ = self_signed("a.example.com", days=90)
    not_before, not_after = certificate_times(cert)
    assert not_after - not_before == pytest.approx(90 * DAY + 3600)


def test_backoff_is_front_loaded_capped_and_honours_retry_after() -> None:
    state = Backoff()
    delays = []
    for _ in range(len(BACKOFF) + 3):
        state = state.failed(now=100.0)
        delays.append(state.next_at - 100.0)
    assert delays[:4] == [1, 2, 5, 10]
    assert delays[-4:] == [3600, 3600, 3600, 3600]
    assert Backoff().failed(now=0, retry_after=120).next_at == 120
    assert Backoff(failures=10).failed(now=0, retry_after=5).next_at == 3600


def test_retry_after_header_values() -> None:
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    assert retry_after_seconds("30", now) == 30
    assert retry_after_seconds("Thu, 01 Jan 2026 00:01:00 GMT", now) == 60
    assert retry_after_seconds("garbage", now) is None
    assert retry_after_seconds(None, now) is None
