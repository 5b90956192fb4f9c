"""TLS towards HTTPS backends: the client context of one `serversTransport`.

Traefik's options, applied as Go's crypto/tls applies them: `rootCAs` (added to the
system's roots), `insecureSkipVerify`, `serverName` (SNI and the name verified; the pool
passes it), `certificates` (client certificates for backends that require mTLS),
`minVersion` / `maxVersion` and `cipherSuites` (TLS 1.2 suites by Go name; TLS 1.3 suites
are not configurable, as in Go). ALPN offers `h2` then `http/1.1` for a pool that may
speak HTTP/2 (edge/upstream/h2.py), else only `http/1.1` (`disableHTTP2`, upgrades).

`transport_problem` is the same validation without building anything, for the aggregator,
so that a misspelt cipher or version disables the transport (and its services) with a
message instead of failing connections later.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

from proxynow.edge.tls.contexts import cipher_names, load_chain, load_pem, tls_version

if TYPE_CHECKING:
    from proxynow.config.dynamic import ServersTransport
    from proxynow.edge.upstream.transport import TransportOptions

__all__ = ["client_context", "transport_problem"]


def client_context(options: TransportOptions, http2: bool = False) -> ssl.SSLContext:
    """The SSLContext of the pool's connections; raises OSError/ssl.SSLError/ValueError on
    unreadable files or unknown names (the pool turns that into 502s and one log line)."""
    context = ssl.create_default_context()
    for path in options.root_cas:
        context.load_verify_locations(cadata=load_pem(path).decode("ascii"))
    if options.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if options.min_version:
        context.minimum_version = tls_version(options.min_version)
    if options.max_version:
        context.maximum_version = tls_version(options.max_version)
    if options.cipher_suites:
        context.set_ciphers(cipher_names(options.cipher_suites))
    for cert, key in options.certificates:
        load_chain(context, load_pem(cert), load_pem(key))
    context.set_alpn_protocols(["h2", "http/1.1"] if http2 else ["http/1.1"])
    return context


def transport_problem(spec: ServersTransport) -> str | None:
    """Why the names in `spec` cannot be used, or None (files are read by the workers)."""
    try:
        for version in (spec.min_version, spec.max_version):
            if version:
                tls_version(version)
        if spec.cipher_suites:
            cipher_names(tuple(spec.cipher_suites))
    except ValueError as exc:
        return str(exc)
    return None
