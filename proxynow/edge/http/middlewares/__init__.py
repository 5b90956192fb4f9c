"""HTTP middlewares: one module per Traefik type, the step interface (base.py), the
registry of builders (registry.py) and the compiler of a router's chain (compile.py)."""

from proxynow.edge.http.middlewares.base import (
    RESEND,
    Chain,
    Defer,
    Reply,
    Resume,
    Step,
    run_request,
)
from proxynow.edge.http.middlewares.compile import compile_chain
from proxynow.edge.http.middlewares.redirect_scheme import entrypoint_redirect

__all__ = [
    "RESEND",
    "Chain",
    "Defer",
    "Reply",
    "Resume",
    "Step",
    "compile_chain",
    "entrypoint_redirect",
    "run_request",
]
