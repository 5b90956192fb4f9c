"""Which HTTP/2 codec a running `proxynow run` serves with (edge/http2/choice.py): libnghttp2's
where the library opens, else `h2`'s, said once in the log; PROXYNOW_H2_CODEC=nghttp2 where
it cannot open is an error, not a silent fallback. The library is made to fail to open for
real (PROXYNOW_NGHTTP2_LIBRARY names a file that is not one)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.proc import HttpBackend, ProxynowProcess, proxynow_factory

__all__ = ["proxynow_factory"]

Start = Callable[..., ProxynowProcess]
FALLBACK = "HTTP/2 codec: h2, libnghttp2 cannot be opened"


@pytest.fixture
def backend() -> Iterator[HttpBackend]:
    with HttpBackend("b1") as server:
        yield server


def config(backend: HttpBackend) -> tuple[dict[str, object], dict[str, object]]:
    service = {"loadBalancer": {"servers": [{"url": backend.url}]}}
    router = {"rule": "PathPrefix(`/`)", "entryPoints": ["web"], "service": "app"}
    static = {"entryPoints": {"web": {"address": "127.0.0.1:0"}}, "log": {"level": "INFO"}}
    return static, {"http": {"routers": {"all": router}, "services": {"app": service}}}


def h2c_get(port: int, path: str) -> str:
    url = f"http://127.0.0.1:{port}{path}"
    done = subprocess.run(
        ["curl", "-sS", "--max-time", "20", "--http2-prior-knowledge", url],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout


def test_libnghttp2_serves_by_default(
    proxynow_factory: Start, backend: HttpBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROXYNOW_H2_CODEC", raising=False)
    proxy = proxynow_factory(*config(backend), workers=1)
    assert h2c_get(proxy.ports["web"], "/a") == "b1 /a"
    assert "HTTP/2 codec: libnghttp2 1." in proxy.stderr()


def test_without_the_library_h2_serves_and_says_so_once(
    proxynow_factory: Start,
    backend: HttpBackend,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.delenv("PROXYNOW_H2_CODEC", raising=False)
    not_a_library = tmp_path / "libnghttp2.so.14"
    not_a_library.write_bytes(b"not an ELF file")
    monkeypatch.setenv("PROXYNOW_NGHTTP2_LIBRARY", str(not_a_library))
    proxy = proxynow_factory(*config(backend), workers=1)
    port = proxy.ports["web"]
    assert [h2c_get(port, "/a"), h2c_get(port, "/b")] == ["b1 /a", "b1 /b"]
    assert proxy.stderr().count(FALLBACK) == 1


def test_requiring_nghttp2_without_it_is_an_error(
    proxynow_factory: Start,
    backend: HttpBackend,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("PROXYNOW_H2_CODEC", "nghttp2")
    monkeypatch.setenv("PROXYNOW_NGHTTP2_LIBRARY", str(tmp_path / "missing.so"))
    with pytest.raises(AssertionError, match="libnghttp2 cannot be opened"):
        proxynow_factory(*config(backend), workers=1)
