"""Both HTTP/2 codecs of the front end (edge/http2/choice.py), for tests that run on each.

`CODECS` are the values of PROXYNOW_H2_CODEC; `codec_class(name)` is the class that value
selects. libnghttp2 missing FAILS the nghttp2 runs (the choice raises), never skips them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

from proxynow.edge.http2.choice import ENV, codec_factory
from proxynow.edge.http2.codec import ServerCodec

__all__ = ["CODECS", "codec_class", "codec_env", "use_codec"]

CODECS = ("nghttp2", "h2")


@contextlib.contextmanager
def codec_env(name: str) -> Iterator[None]:
    """PROXYNOW_H2_CODEC=`name` meanwhile (for a fixture wider than a test)."""
    saved = os.environ.get(ENV)
    os.environ[ENV] = name
    try:
        yield
    finally:
        if saved is None:
            del os.environ[ENV]
        else:
            os.environ[ENV] = saved


def codec_class(name: str) -> type[ServerCodec]:
    with codec_env(name):
        return codec_factory()


def use_codec(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """This test's in-process front ends and the proxynow processes it starts use `name`."""
    monkeypatch.setenv(ENV, name)
