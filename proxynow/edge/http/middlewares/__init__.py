"""Traefik's HTTP middlewares, one module per type, compiled per router into per-phase hooks."""
