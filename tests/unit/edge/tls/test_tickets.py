"""Session tickets across workers: contexts of separate caches (as separate workers have)
resume each other's sessions once given the same key, and not before, nor after a new key.
Handshakes over memory BIOs with the ssl module as the client."""

from __future__ import annotations

import contextlib
import datetime
import os
import ssl

import pytest

from proxynow.certs import self_signed
from proxynow.config.dynamic import TLSOptions
from proxynow.edge.tls import tickets
from proxynow.edge.tls.contexts import ContextCache, option_spec

CERT, KEY = self_signed("app.test", ["app.test"], valid_for=datetime.timedelta(days=1))
VERSIONS = [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2]


class Client:
    """One client context (a session resumes only with the context it came from)."""

    def __init__(self, version: ssl.TLSVersion) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.context.check_hostname = False
        self.context.verify_mode = ssl.CERT_NONE
        self.context.maximum_version = version

    def connect(
        self, server: ssl.SSLContext, session: ssl.SSLSession | None = None
    ) -> tuple[ssl.SSLSession | None, bool]:
        """One handshake and one read (a TLS 1.3 ticket comes after the handshake)."""
        c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
        client = self.context.wrap_bio(c_in, c_out, server_hostname="app.test", session=session)
        served = server.wrap_bio(s_in, s_out, server_side=True)
        for _ in range(8):
            for end in (client, served):
                with contextlib.suppress(ssl.SSLWantReadError):
                    end.do_handshake()
            s_in.write(c_out.read())
            c_in.write(s_out.read())
        served.write(b"x")
        c_in.write(s_out.read())
        assert client.read(1) == b"x"
        return client.session, client.session_reused


def worker_context(key: bytes | None, **options: object) -> tuple[ContextCache, ssl.SSLContext]:
    """A context as a worker's cache makes it, given the shared key or not."""
    cache = ContextCache()
    if key is not None:
        cache.set_ticket_key(key)
    spec = option_spec(TLSOptions.model_validate(options))
    return cache, cache.get(cache.pair(CERT, KEY), spec)


def test_this_platform_can_share_keys() -> None:
    # The CI machines and the image run CPython on Debian's OpenSSL: sharing must work
    # there; a platform where it cannot logs it (edge/tls/contexts.py), resumes per worker.
    assert tickets.supported() is None


@pytest.mark.parametrize("version", VERSIONS, ids=["tls1.3", "tls1.2"])
def test_a_session_resumes_on_another_worker_with_the_shared_key(version: ssl.TLSVersion) -> None:
    key = os.urandom(tickets.KEY_BYTES)
    client = Client(version)
    _, first = worker_context(key)
    _, second = worker_context(key)
    session, reused = client.connect(first)
    assert not reused
    assert client.connect(second, session)[1]
    # Without the shared key each worker has its own: the same resumption fails.
    _, own_first = worker_context(None)
    _, own_second = worker_context(None)
    session, _ = client.connect(own_first)
    assert not client.connect(own_second, session)[1]


def test_a_new_key_reaches_existing_contexts_and_ends_old_tickets() -> None:
    client = Client(ssl.TLSVersion.TLSv1_3)
    cache, context = worker_context(os.urandom(tickets.KEY_BYTES))
    session, _ = client.connect(context)
    cache.set_ticket_key(os.urandom(tickets.KEY_BYTES))
    fresh, reused = client.connect(context, session)
    assert not reused
    assert client.connect(context, fresh)[1]  # tickets of the new key resume


def test_disabled_tickets_stay_disabled() -> None:
    key = os.urandom(tickets.KEY_BYTES)
    client = Client(ssl.TLSVersion.TLSv1_3)
    _, first = worker_context(key, disableSessionTickets=True)
    _, second = worker_context(key, disableSessionTickets=True)
    session, _ = client.connect(first)
    assert not client.connect(second, session)[1]


def test_a_key_of_the_wrong_size_is_refused() -> None:
    _, context = worker_context(None)
    assert not tickets.set_ticket_key(context, b"short")
    assert not tickets.set_ticket_key(context, os.urandom(tickets.KEY_BYTES + 1))
