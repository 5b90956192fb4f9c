"""`stripPrefix`: the first of `prefixes` the path starts with is removed, and named in
`X-Forwarded-Prefix`.

As Traefik v3: the decoded path is tested and cut, its escaped form cut by the same bytes
when it has one (so `/api%2Fx` stripped of `/api` goes upstream as `/x`: `/%2Fx` no longer
encodes the path, and Go re-escapes it); a leading slash is kept. `forceSlash` is read and
ignored, as in Traefik v3, where it has no effect any more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from proxynow.edge.http.middlewares.base import BuildContext, Reply, Step
from proxynow.edge.http.middlewares.gourl import (
    BAD_PATH,
    add_header,
    from_target,
    leading_slash,
    plain,
    set_target,
)
from proxynow.edge.message.headers import line_header
from proxynow.rules import routing_path

if TYPE_CHECKING:
    from proxynow.config.middlewares import Middleware
    from proxynow.edge.http.exchange import Exchange

__all__ = ["FORWARDED_PREFIX", "build"]

FORWARDED_PREFIX: Final = b"X-Forwarded-Prefix"
_REWRITES: Final = frozenset((FORWARDED_PREFIX.lower(),))


def build(middleware: Middleware, context: BuildContext) -> Step:
    """The `stripPrefix` builder (registry.py)."""
    options = middleware.strip_prefix
    assert options is not None
    prefixes = tuple(prefix.encode("utf-8") for prefix in options.prefixes)
    if not prefixes:
        return Step("stripPrefix")

    # A request whose path is plain (gourl.plain: its own decoding and escaping, the
    # common case) is cut by bytes with no GoPath: the same result, a third of the calls;
    # and remembered by its target, which clients repeat.
    sendable = all(line_header(FORWARDED_PREFIX, prefix) for prefix in prefixes)
    return Step("stripPrefix", request=_Strip(prefixes, sendable).request, rewrites=_REWRITES)


# What a target's cut is: (the prefixes it was cut by, kind, target sent on, the prefix
# stripped, its routing path).
_Cut = tuple[tuple[bytes, ...], int, bytes, bytes, str]
_SLOW: Final = 0  # not plain: through GoPath (gourl.from_target)
_KEPT: Final = 1  # plain, and no prefix matches: nothing changes
_CUT: Final = 2  # plain, and stripped


# Plain target → its cut, for every stripPrefix of the worker: one bound on the memory
# whatever the number of routers (targets are the clients'; about 7 MiB at most). A target
# cut by other prefixes (another router's) is cut again, and remembered for these.
_SEEN: Final[dict[bytes, _Cut]] = {}
LIMIT: Final = 4096  # cuts remembered; then start over
LONGEST: Final = 512  # a longer target is cut anew each time


class _Strip:
    """One stripPrefix's prefixes, and the cuts of plain targets remembered (bounded:
    targets are the clients'); its bound `request` is the step's hook."""

    __slots__ = ("fast", "prefixes")

    def __init__(self, prefixes: tuple[bytes, ...], fast: bool) -> None:
        self.prefixes = prefixes
        self.fast = fast  # every prefix can be sent as it is: plain targets are cut by bytes

    def request(self, exchange: Exchange) -> Reply | None:
        target = exchange.target
        if self.fast:
            cut = _SEEN.get(target)
            if cut is None or cut[0] != self.prefixes:
                cut = self.learn(target)
            if cut[1] == _CUT:
                exchange.head.append_line(FORWARDED_PREFIX, cut[3])
                exchange.target, exchange.path = cut[2], cut[4]
                return None
            if cut[1] == _KEPT:
                return None
        return self.slow(exchange, target)

    def slow(self, exchange: Exchange, target: bytes) -> Reply | None:
        """Through Go's path rules (gourl.GoPath)."""
        go = from_target(target)
        if go is None:
            return BAD_PATH
        for prefix in self.prefixes:
            if go.path.startswith(prefix):
                go.path = leading_slash(go.path[len(prefix) :])
                if go.raw:
                    go.raw = leading_slash(go.raw.removeprefix(prefix))
                refused = add_header(exchange, FORWARDED_PREFIX, prefix)
                if refused is None:
                    set_target(exchange, go)
                return refused
        return None

    def learn(self, target: bytes) -> _Cut:
        cut = self._cut(target)
        if len(target) <= LONGEST:
            if len(_SEEN) >= LIMIT:
                _SEEN.clear()
            _SEEN[target] = cut
        return cut

    def _cut(self, target: bytes) -> _Cut:
        raw, sep, query = target.partition(b"?")
        if not plain(raw):
            return (self.prefixes, _SLOW, b"", b"", "")
        for prefix in self.prefixes:
            if raw.startswith(prefix):
                path = leading_slash(raw[len(prefix) :]) or b"/"  # Go's RequestURI
                routed = routing_path(path.decode("utf-8", "surrogateescape"))
                return (self.prefixes, _CUT, path + sep + query, prefix, routed)
        return (self.prefixes, _KEPT, b"", b"", "")
