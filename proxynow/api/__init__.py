"""The API (Traefik v3.7's paths and shapes), served by the control plane.

- `internal`: the `@internal` routers and services that route the entrypoints to it;
- `dump`: configuration models to Traefik's JSON, secrets redacted;
- `shapes`: the current state (snapshot, statuses, health) as Traefik's items;
- `query`: filtering, sorting, paging; `endpoints`: a path to its answer (pure);
- `server`: the aiohttp shell on a private loopback address.

docs/api.md says what is served where, and how it differs from Traefik.
"""
