"""Observability in the control plane: the workers' counters merged and exported.

`totals` (merge across workers, restart-safe), `control` (reloads, certificates),
`families` (Traefik's Prometheus families, pure), `prometheus` (the scrape and its route).
"""
