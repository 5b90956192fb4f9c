"""When to renew and when to retry (pure: times in, times out).

Renewal starts when a third of the certificate's lifetime is left. The lifetime is the
certificate's own (notBefore → notAfter), shortened to `certificatesDuration` when that
is smaller, as Traefik uses that option to choose its renewal timing.

Failures are retried per domain set with a front-loaded, capped table of delays
(certmagic's habit): quick retries first for transient errors, then at most one attempt
an hour. A `Retry-After` from the CA (rate limits, 429) is honoured when it asks for
longer. The last good certificate keeps serving meanwhile.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from cryptography import x509

__all__ = ["BACKOFF", "Backoff", "certificate_times", "renew_at"]

BACKOFF: tuple[float, ...] = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
"""Delays in seconds before the 1st, 2nd, ... retry; the last one repeats."""


def certificate_times(chain_pem: bytes) -> tuple[float, float]:
    """(notBefore, notAfter) of the leaf certificate, POSIX seconds."""
    leaf = x509.load_pem_x509_certificate(chain_pem)
    return (
        leaf.not_valid_before_utc.timestamp(),
        leaf.not_valid_after_utc.timestamp(),
    )


def renew_at(not_before: float, not_after: float, duration_hours: float = 0) -> float:
    """The time at which a third of the lifetime is left."""
    lifetime = not_after - not_before
    if duration_hours > 0:
        lifetime = min(lifetime, duration_hours * 3600)
    return not_after - lifetime / 3


@dataclass(frozen=True, slots=True)
class Backoff:
    """Failures so far for one domain set and the earliest time of the next attempt."""

    failures: int = 0
    next_at: float = 0.0

    def failed(self, now: float, retry_after: float | None = None) -> Backoff:
        """The state after one more failure at `now`."""
        delay = BACKOFF[min(self.failures, len(BACKOFF) - 1)]
        if retry_after is not None and retry_after > delay:
            delay = retry_after
        return Backoff(self.failures + 1, now + delay)


def retry_after_seconds(value: str | None, now: datetime.datetime) -> float | None:
    """A `Retry-After` header value (seconds or HTTP date) as seconds from `now`."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - now).total_seconds())
