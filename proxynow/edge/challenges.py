"""ACME challenge answers that the control plane hands to every worker.

The ACME manager (control plane) builds a `ChallengeSet` whenever a pending challenge
appears or goes away, and `Supervisor.publish_challenges` sends it to every worker. The
workers answer HTTP-01 (`/.well-known/acme-challenge/<token>`) on every HTTP entrypoint
before routing and redirects, and TLS-ALPN-01 for ClientHellos offering `acme-tls/1`.
The set is frozen and picklable: a worker replaces its whole set with one assignment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["ChallengeSet"]


@dataclass(frozen=True, slots=True)
class ChallengeSet:
    """Pending ACME challenge answers.

    `http01` maps a token to its key authorization; `tlsalpn01` maps a domain to the
    (certificate PEM, private key PEM) of its TLS-ALPN-01 response certificate.
    """

    http01: Mapping[str, str] = field(default_factory=dict)
    tlsalpn01: Mapping[str, tuple[bytes, bytes]] = field(default_factory=dict)
