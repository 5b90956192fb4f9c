"""contentType: the sniffing table (Go's DetectContentType order) and when the step marks a
response for it."""

from __future__ import annotations

import pytest

from proxynow.config.middlewares import Middleware
from proxynow.edge.http.middlewares.base import BuildContext
from proxynow.edge.http.middlewares.content_type import SNIFF, build
from proxynow.edge.http.middlewares.sniff import detect
from proxynow.edge.message.headers import ResponseHead
from tests.unit.edge.http.middlewares.support import exchange

SNIFFED = [
    (b"<!DOCTYPE HTML><html>", b"text/html; charset=utf-8"),
    (b"\n\t <html>", b"text/html; charset=utf-8"),
    (b"<p>x</p>", b"text/html; charset=utf-8"),
    (b"<!-- c -->", b"text/html; charset=utf-8"),
    (b"<pre>x</pre>", b"text/plain; charset=utf-8"),  # <p then 'r': not a tag of the table
    (b"<html", b"text/plain; charset=utf-8"),  # the tag needs a space or '>' after it
    (b"<?xml version='1.0'?>", b"text/xml; charset=utf-8"),
    (b"%PDF-1.7", b"application/pdf"),
    (b"\xfe\xff\x00a", b"text/plain; charset=utf-16be"),
    (b"\xef\xbb\xbfabc", b"text/plain; charset=utf-8"),
    (b"GIF89a....", b"image/gif"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", b"image/png"),
    (b"\xff\xd8\xff\xe0", b"image/jpeg"),
    (b"RIFF\x10\x00\x00\x00WEBPVP8 ", b"image/webp"),
    (b"RIFF\x10\x00\x00\x00WAVEfmt ", b"audio/wave"),
    (b"ID3\x03", b"audio/mpeg"),
    (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp41isom", b"video/mp4"),
    (b"wOF2\x00", b"font/woff2"),
    (b"\x1f\x8b\x08\x00", b"application/x-gzip"),
    (b"PK\x03\x04", b"application/zip"),
    (b"\x00asm\x01", b"application/wasm"),
    (b'{"a": 1}', b"text/plain; charset=utf-8"),
    (b"\x1b[0m colour", b"text/plain; charset=utf-8"),  # ESC is not a binary byte
    (b"\x00\x01\x02", b"application/octet-stream"),
    (b"a" * 600 + b"\x00", b"text/plain; charset=utf-8"),  # only 512 bytes are looked at
]


@pytest.mark.parametrize(("data", "media"), SNIFFED)
def test_the_media_type_go_detects(data: bytes, media: bytes) -> None:
    assert detect(data) == media


def marked(
    options: dict[str, object],
    status: int,
    lines: list[tuple[bytes, bytes]],
    method: bytes = b"GET",
) -> bool:
    middleware = Middleware.model_validate({"contentType": options})
    step = build(middleware, BuildContext("r", False, lambda name: None))
    if step.response_head is None:
        return False
    found = exchange(b"/", method)
    found.transform = None
    head = ResponseHead()
    for name, value in lines:
        head.add(name, value)
    step.response_head(found, status, head)
    return found.transform is SNIFF


LENGTH = (b"Content-Length", b"5")


def test_a_response_with_a_length_and_no_type_is_sniffed() -> None:
    assert marked({}, 200, [LENGTH])
    assert marked({"autoDetect": True}, 404, [LENGTH])


def test_nothing_is_sniffed_when_there_is_a_type_or_no_known_body() -> None:
    assert not marked({}, 200, [LENGTH, (b"Content-Type", b"application/json")])
    assert not marked({}, 200, [LENGTH, (b"Content-Type", b"")])  # set, even empty: kept
    assert not marked({}, 200, [(b"Content-Length", b"0")])
    assert not marked({}, 200, [(b"Transfer-Encoding", b"chunked")])
    assert not marked({}, 200, [])  # close-delimited
    assert not marked({}, 204, [LENGTH])
    assert not marked({}, 304, [LENGTH])
    assert not marked({}, 200, [LENGTH], method=b"HEAD")


def test_auto_detect_false_makes_it_a_no_op() -> None:
    middleware = Middleware.model_validate({"contentType": {"autoDetect": False}})
    step = build(middleware, BuildContext("r", False, lambda name: None))
    assert step.response_head is None and step.request is None
