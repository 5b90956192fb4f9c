"""proxynow: a Docker-label-driven edge router with automatic TLS."""

from proxynow import compiled

__version__ = "0.1.0"

# Before any hot module is imported: compiled only if built from these sources.
compiled.install()
