"""Both HTTP/2 codecs of the front end (edge/http2/choice.py), for tests that run on each.

`CODECS` are the values of PROXYNOW_H2_CODEC; `codec_class(name)` is the class that value
selects. libnghttp2 missing FAILS the nghttp2 runs (the choice raises), never skips them.
"""

from __future__ import annotations

import os

import pytest

from proxynow.edge.http2.choice import ENV, codec_factory
from proxynow.edge.http2.codec import ServerCodec

__all__ = ["CODECS", "codec_class", "use_codec"]

CODECS = ("nghttp2", "h2")


def codec_class(name: str) -> type[ServerCodec]:
    saved = os.environ.get(ENV)
    os.environ[ENV] = name
    try:
        return codec_factory()
    finally:
        if saved is None:
            del os.environ[ENV]
        else:
            os.environ[ENV] = saved


def use_codec(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """This test's in-process front ends and the proxynow processes it starts use `name`."""
    monkeypatch.setenv(ENV, name)
