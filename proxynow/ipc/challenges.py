"""ACME challenge answers the data plane serves: the hook between proxynow/acme and workers.

The ACME manager (control plane) builds a `ChallengeSet` and calls
`Supervisor.publish_challenges`; every worker keeps the latest one next to its graph
(no graph rebuild). HTTP-01: `GET /.well-known/acme-challenge/<token>` is answered with
the key authorization before any routing. TLS-ALPN-01: a ClientHello for a domain in
`tlsalpn01` that offers ALPN `acme-tls/1` gets that domain's challenge certificate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["ACME_TLS_ALPN", "EMPTY_CHALLENGES", "HTTP01_PREFIX", "ChallengeSet"]

HTTP01_PREFIX = "/.well-known/acme-challenge/"
ACME_TLS_ALPN = "acme-tls/1"


@dataclass(frozen=True, slots=True)
class ChallengeSet:
    """The pending challenges; picklable, never mutated once built."""

    # token -> key authorization
    http01: Mapping[str, str] = field(default_factory=dict)
    # domain (lower case) -> (certificate PEM, key PEM)
    tlsalpn01: Mapping[str, tuple[bytes, bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Copies, so a caller mutating its dict later cannot change a published set.
        object.__setattr__(self, "http01", dict(self.http01))
        tls = {domain.lower(): pair for domain, pair in self.tlsalpn01.items()}
        object.__setattr__(self, "tlsalpn01", tls)

    def http01_answer(self, path: str) -> str | None:
        """The key authorization for an HTTP-01 request path, or None."""
        if not path.startswith(HTTP01_PREFIX):
            return None
        return self.http01.get(path[len(HTTP01_PREFIX) :])


EMPTY_CHALLENGES = ChallengeSet()
