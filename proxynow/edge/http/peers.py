"""What the connections of one HTTP entrypoint memoise about their clients.

`PeerCache` maps a client address to a `Peer` (its parsed IP, whether its forwarded
headers are trusted, and the X-Forwarded-* blocks it needed so far) and a raw Host value
to its canonical form. Every memo is bounded: its inputs are chosen by clients.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, NamedTuple

from proxynow.edge.core.ipcheck import peer_address
from proxynow.edge.message.headers import ForwardContext, RequestHead, forwarded_headers
from proxynow.rules import canonical_host

if TYPE_CHECKING:
    from proxynow.edge.http.exchange import EntryPointRuntime

__all__ = ["Peer", "PeerCache"]

_IP = ipaddress.IPv4Address | ipaddress.IPv6Address


class PeerCache:
    """What the connections of one entrypoint memoise together (pure functions of their
    input, each bounded: the inputs are chosen by clients).

    - client address → `Peer` (parsed IP, ForwardContext, and per raw Host its canonical
      form and forwarded-header block): a new connection from a known peer parses
      nothing (`ipaddress.ip_address` was 4% of a connection's CPU), and a request with
      no client-sent X-Forwarded-* reuses the block of an earlier request with the same
      Host from the same peer;
    - raw Host → canonical host: requests rotating over many hosts on one connection
      (bench routers-1000) canonicalise each spelling once.
    """

    __slots__ = ("ep", "hosts", "peers")

    LIMIT = 4096  # distinct entries remembered per memo; then start over

    def __init__(self, ep: EntryPointRuntime) -> None:
        self.ep = ep
        self.peers: dict[str, Peer] = {}
        self.hosts: dict[bytes, str] = {}

    def host(self, raw: bytes) -> str:
        """The canonical host of a Host value not memoised yet."""
        host = canonical_host(raw.decode("latin-1"))
        if len(self.hosts) >= self.LIMIT:
            self.hosts.clear()
        self.hosts[raw] = host
        return host

    def get(self, host: str) -> Peer:
        known = self.peers.get(host)
        if known is None:
            known = self.peers[host] = self._parse(host)
            if len(self.peers) > self.LIMIT:
                self.peers = {host: known}
        return known

    def _parse(self, host: str) -> Peer:
        try:
            ip: _IP | None = peer_address(ipaddress.ip_address(host.partition("%")[0]))
        except ValueError:
            ip = None
        ep = self.ep
        ctx = ForwardContext(host.encode("ascii"), ep.trusts(ip), ep.tls, ep.server_name)
        return Peer(ip, ctx, {})


class Peer(NamedTuple):
    """One client address as the connections from it see it (`PeerCache`)."""

    ip: _IP | None
    ctx: ForwardContext
    # Raw Host → (canonical host, X-Forwarded-* block for a request without client-sent
    # forwarded headers): one lookup per request for both.
    hosts: dict[bytes, tuple[str, bytes]]

    def learn(self, raw: bytes, cache: PeerCache) -> tuple[str, bytes]:
        """What a Host value not memoised yet for this peer means (see `hosts`)."""
        host = cache.hosts.get(raw)
        if host is None:
            host = cache.host(raw)
        blank = RequestHead(self.ctx.trusted)
        blank.host = raw
        known = (host, forwarded_headers(blank, self.ctx, False))
        if len(self.hosts) >= PeerCache.LIMIT:
            self.hosts.clear()
        self.hosts[raw] = known
        return known
