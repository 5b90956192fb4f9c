"""Which HTTP/2 codec serves clients: libnghttp2's (ngcodec.py) where the library opens,
else `h2`'s (codec.py), said once in the log. `PROXYNOW_H2_CODEC=h2` forces `h2`;
`PROXYNOW_H2_CODEC=nghttp2` requires libnghttp2 (a failure to open it is an error, so that
tests of that codec cannot pass on the other). See docs/http2.md, "The codec"."""

from __future__ import annotations

import logging
import os

from proxynow.edge.http2.codec import Codec, ServerCodec
from proxynow.edge.http2.nglib import load

__all__ = ["ENV", "codec_factory"]

log = logging.getLogger(__name__)

ENV = "PROXYNOW_H2_CODEC"
_said: set[str] = set()


def _say(message: str, *args: object, level: int = logging.INFO) -> None:
    if message not in _said:
        _said.add(message)
        log.log(level, message, *args)


def codec_factory() -> type[ServerCodec]:
    """The codec class for new HTTP/2 connections (ValueError for a bad PROXYNOW_H2_CODEC,
    RuntimeError when nghttp2 is required and cannot be opened)."""
    wanted = os.environ.get(ENV, "")
    if wanted not in ("", "h2", "nghttp2"):
        raise ValueError(f"{ENV}={wanted!r}: expected h2 or nghttp2")
    if wanted == "h2":
        _say("HTTP/2 codec: h2 (%s=h2)", ENV)
        return Codec
    lib = load()
    if lib is None:
        if wanted == "nghttp2":
            raise RuntimeError(f"{ENV}=nghttp2 but libnghttp2 cannot be opened")
        _say(
            "HTTP/2 codec: h2, libnghttp2 cannot be opened (install libnghttp2-14 for the "
            "faster codec)",
            level=logging.WARNING,
        )
        return Codec
    from proxynow.edge.http2 import ngcodec

    ngcodec.available(lib)
    _say("HTTP/2 codec: libnghttp2 %s", ngcodec.version())
    return ngcodec.NgCodec
