"""The control-plane ↔ worker channel: framing, and a slow reader never piles up snapshots."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

from proxynow.ipc.channel import SNAPSHOT, Channel, Message


async def pair() -> tuple[Channel, Channel, list[Message], socket.socket]:
    """Two connected channels; returns (sender, receiver, received, receiver's socket)."""
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    received: list[Message] = []
    _, sender = await loop.create_unix_connection(lambda: Channel(lambda m: None), sock=ours)
    _, receiver = await loop.create_unix_connection(lambda: Channel(received.append), sock=theirs)
    return sender, receiver, received, theirs


async def wait_for(condition: Callable[[], object], what: str) -> None:
    async def check() -> None:
        while not condition():
            await asyncio.sleep(0.005)

    try:
        await asyncio.wait_for(check(), 20)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def test_messages_arrive_whole_and_in_order() -> None:
    sender, receiver, received, _ = await pair()
    big = bytes(range(256)) * 20000  # several MiB: split across many reads
    messages: list[Message] = [("a", 1), (SNAPSHOT, 2, big), ("c", {"k": [1, 2]})]
    for message in messages:
        sender.send(message)
    await wait_for(lambda: len(received) == 3, "three messages")
    assert received == messages
    sender.close()
    await receiver.closed


async def test_a_reader_that_is_not_reading_gets_only_the_latest_pending_snapshot() -> None:
    sender, receiver, received, _ = await pair()
    receiver_transport = receiver._transport
    assert receiver_transport is not None
    receiver_transport.pause_reading()  # type: ignore[attr-defined]
    blob = b"x" * (1024 * 1024)
    for version in range(1, 51):
        sender.send_latest((SNAPSHOT, version, blob))
    # 50 MiB were offered; the sender holds at most one pending snapshot beyond what the
    # socket buffers took, and the newest one always gets through.
    assert len(sender._pending) <= 1
    receiver_transport.resume_reading()  # type: ignore[attr-defined]
    await wait_for(lambda: received and received[-1][1] == 50, "the newest snapshot")
    versions = [message[1] for message in received]
    assert versions == sorted(versions)
    assert len(versions) < 50
    sender.close()
    await receiver.closed
