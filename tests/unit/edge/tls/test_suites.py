"""TLS 1.3 suite order: AES-128-GCM first, as Go (so Traefik) picks it on AES hardware;
OpenSSL's own order puts AES-256-GCM with its dearer SHA-384 key schedule first.
Handshakes over memory BIOs with the ssl module's default client (it offers all three)."""

from __future__ import annotations

import contextlib
import datetime
import ssl

from proxynow.certs import self_signed
from proxynow.config.dynamic import TLSOptions
from proxynow.edge.tls import tickets
from proxynow.edge.tls.contexts import ContextCache, option_spec

CERT, KEY = self_signed("app.test", ["app.test"], valid_for=datetime.timedelta(days=1))


def negotiated(server: ssl.SSLContext, client_suites: str = "") -> str:
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_context.check_hostname = False
    client_context.verify_mode = ssl.CERT_NONE
    if client_suites:
        assert tickets.set_tls13_suites(client_context, client_suites)
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_context.wrap_bio(c_in, c_out, server_hostname="app.test")
    served = server.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(4):
        for end in (client, served):
            with contextlib.suppress(ssl.SSLWantReadError):
                end.do_handshake()
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    cipher = served.cipher()
    assert cipher is not None
    return cipher[0]


def server_context(**options: object) -> ssl.SSLContext:
    cache = ContextCache()
    return cache.get(cache.pair(CERT, KEY), option_spec(TLSOptions.model_validate(options)))


def test_tls13_prefers_aes128_gcm_like_go() -> None:
    assert negotiated(server_context()) == "TLS_AES_128_GCM_SHA256"


def test_the_other_suites_are_still_served() -> None:
    # A client that offers only one of them gets it: the order changed, not the set.
    for suite in ("TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"):
        assert negotiated(server_context(), suite) == suite


def test_tls12_only_options_leave_tls13_alone() -> None:
    context = server_context(maxVersion="VersionTLS12")
    assert context.maximum_version == ssl.TLSVersion.TLSv1_2
    assert negotiated(context).startswith("ECDHE-")
