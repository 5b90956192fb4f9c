"""The copy of a request's body kept so that the retry middleware can send it again (its
`maxRequestBodyBytes`): the front end adds each piece as it goes to the backend, the
pieces held before the first attach are added when they go out (`took`)."""

from __future__ import annotations

__all__ = ["MAX_REPLAY", "Replay"]

# The copy for `maxRequestBodyBytes: -1` (Traefik: no limit) stops here: a worker never
# holds an endless body for a retry that may not come.
MAX_REPLAY = 16 << 20


class Replay:
    """A request body as sent (framing included), or None once it grew past `limit`: then
    the request is not sent again, and its backend's answer stands."""

    __slots__ = ("body", "limit", "resent", "size")

    def __init__(self, limit: int) -> None:
        self.limit = limit if limit >= 0 else MAX_REPLAY
        self.body: list[bytes] | None = []
        self.size = 0
        self.resent = 0  # pieces of `body` put back as pending by `again`, not yet sent

    def add(self, data: bytes) -> None:
        """A piece of the body, as written to the backend."""
        body = self.body
        if body is None:
            return
        self.size += len(data)
        if self.size > self.limit:
            self.body = None  # too large to keep: nothing of it is kept
        else:
            body.append(data)

    def took(self, pending: list[bytes]) -> None:
        """The pieces held until a connection was attached went out with the head."""
        fresh = pending[self.resent :] if self.resent else pending
        self.resent = 0
        for data in fresh:
            self.add(data)

    def again(self) -> list[bytes] | None:
        """The body to send with the next attempt (None: it was too large)."""
        if self.body is None:
            return None
        self.resent = len(self.body)
        return list(self.body)
