"""An in-memory client connection: a fake transport under a front end's protocol.

`ClientTransport` is what the front end writes to: it records writes, honours
pause/resume of reading (data the client sends while reading is paused waits, as a socket
would hold it), calls `pause_writing` / `resume_writing` when the client stops or starts
reading again (the high-water mark asyncio's transports use), and calls `connection_lost`
on the next loop turn after `close` or `abort`. `Connection` pairs it with a codec; the
upstream side of the protocol stays real (it dials the test's loopback backends).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from tests.transport.client_codecs import ClientCodec, Request, Response

__all__ = ["ClientTransport", "Connection", "until"]

T = TypeVar("T")
DEADLINE = 10.0
HIGH_WATER = 64 << 10  # asyncio's default write-buffer high-water mark


async def until(condition: Callable[[], T], what: str, deadline: float = DEADLINE) -> T:
    """Poll `condition` on the loop until it is truthy (the loop keeps serving meanwhile)."""
    end = time.monotonic() + deadline
    while not (value := condition()):
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)
    return value


class ClientTransport(asyncio.Transport):
    """The client's end of one connection, as the front end's protocol sees it."""

    def __init__(
        self,
        protocol: asyncio.Protocol,
        deliver: Callable[[bytes], None],
        peer: tuple[str, int],
        local: tuple[str, int],
    ) -> None:
        super().__init__()
        self.protocol = protocol
        self.deliver = deliver  # where what the client reads goes (its codec)
        self.extra = {"peername": peer, "sockname": local}
        self.loop = asyncio.get_running_loop()
        self.written = 0  # bytes the protocol wrote, read by the client or not
        self.written_at_pause = -1  # `written` when the protocol was told to pause writing
        self.unread: list[bytes] = []  # written while the client was not reading
        self.client_reading = True
        self.writing_paused = False
        self.reading_paused = False
        self.inbox: deque[bytes | None] = deque()  # what reading paused holds; None: EOF
        self.closing = False
        self.lost = False

    # ------------------------------------------------------------------ what the protocol calls

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.extra.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.lost, "write after connection_lost"
        if not data:
            return
        data = bytes(data)
        self.written += len(data)
        if self.client_reading:
            self.deliver(data)
            return
        self.unread.append(data)
        if not self.writing_paused and self.get_write_buffer_size() > HIGH_WATER:
            self.writing_paused = True
            self.written_at_pause = self.written
            self.protocol.pause_writing()

    def get_write_buffer_size(self) -> int:
        return sum(map(len, self.unread))

    def can_write_eof(self) -> bool:
        return False

    def pause_reading(self) -> None:
        self.reading_paused = True

    def resume_reading(self) -> None:
        if self.reading_paused:
            self.reading_paused = False
            self.loop.call_soon(self._drain_inbox)

    def is_reading(self) -> bool:
        return not self.reading_paused

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self._lose()

    def abort(self) -> None:
        self._lose()

    # ------------------------------------------------------------------ what the client does

    def send(self, data: bytes | None) -> None:
        """Bytes from the client (None: its EOF): to the protocol now, or once it reads
        again."""
        if self.closing:
            return
        self.inbox.append(data)
        self._drain_inbox()

    def send_eof(self) -> None:
        self.send(None)

    def stop_reading(self) -> None:
        """The client stops reading: writes pile up, past the high-water mark the
        protocol is told to pause writing."""
        self.client_reading = False

    def read_again(self) -> None:
        """The client reads what piled up and goes on reading; the protocol resumes."""
        self.client_reading = True
        unread, self.unread = self.unread, []
        for data in unread:
            self.deliver(data)
        if self.writing_paused:
            self.writing_paused = False
            self.protocol.resume_writing()

    # ------------------------------------------------------------------ internals

    def _drain_inbox(self) -> None:
        while self.inbox and not self.reading_paused and not self.closing:
            data = self.inbox.popleft()
            if data is None:
                if not self.protocol.eof_received():
                    self.close()  # as asyncio's transports do when eof_received is falsy
            else:
                self.protocol.data_received(data)

    def _lose(self) -> None:
        if not self.closing:
            self.closing = True
            self.loop.call_soon(self._connection_lost)

    def _connection_lost(self) -> None:
        self.lost = True
        self.protocol.connection_lost(None)


class Connection:
    """One client connection through a front end: a codec over a `ClientTransport`."""

    def __init__(
        self,
        protocol: asyncio.Protocol,
        codec: ClientCodec,
        peer: tuple[str, int] = ("192.0.2.10", 51000),
        local: tuple[str, int] = ("127.0.0.1", 80),
    ) -> None:
        self.codec = codec
        self.transport = ClientTransport(protocol, self._read, peer, local)
        protocol.connection_made(self.transport)
        if preface := codec.preface():
            self.transport.send(preface)

    def _read(self, data: bytes) -> None:
        self.codec.feed(data)
        if reply := self.codec.outgoing():
            # Sent on the next loop turn, not from inside the protocol's own write.
            self.transport.loop.call_soon(self.transport.send, reply)

    def send(self, request: Request) -> None:
        self.transport.send(self.codec.request(request))

    async def exchange(self, request: Request) -> Response:
        """Send `request` and wait for its complete response."""
        answered = len(self.codec.responses)
        self.send(request)
        return await self.response(answered)

    async def response(self, index: int) -> Response:
        """Wait for the `index`-th complete response of the connection."""
        await until(
            lambda: len(self.codec.responses) > index or self.transport.lost,
            f"response {index}",
        )
        assert len(self.codec.responses) > index, "the connection closed before answering"
        return self.codec.responses[index]

    def close(self) -> None:
        """The client goes away (at the end of a test)."""
        if not self.transport.closing:
            self.transport.abort()
