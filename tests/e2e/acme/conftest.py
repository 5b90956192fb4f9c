"""Fixtures for the end-to-end ACME tests: Pebble per test."""

from __future__ import annotations

from tests.support.pebble import pebble_factory

__all__ = ["pebble_factory"]  # the fixture, re-exported for pytest
