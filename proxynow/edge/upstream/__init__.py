"""Backends: servers, transport options, upstream connections, pools, backend TLS and health."""
