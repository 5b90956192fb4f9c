"""proxynow: a Docker-label-driven edge router with automatic TLS."""

__version__ = "0.1.0"
