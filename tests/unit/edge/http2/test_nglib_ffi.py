"""libnghttp2's declarations come pre-parsed (proxynow/edge/http2/nglib_ffi.py), so that
no worker loads pycparser; a stale or missing file falls back to parsing them
(proxynow/edge/http2/nglib.py)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from proxynow.edge.http2 import nglib, nglib_ffi

REGENERATE = "python -m proxynow.edge.http2.nglib"


def test_the_committed_module_is_of_the_current_declarations() -> None:
    assert nglib.cdef_digest() == nglib_ffi.CDEF_SHA256, f"stale: run `{REGENERATE}`"


def test_a_worker_opens_libnghttp2_without_parsing_declarations() -> None:
    probe = (
        "import sys\n"
        "from proxynow.edge.http2 import nglib, nglib_ffi\n"
        "assert nglib.ffi is nglib_ffi.ffi\n"
        "lib = nglib.load()\n"
        "assert lib is not None, 'libnghttp2-14 is a test dependency (scripts/test.sh)'\n"
        "print(lib.nghttp2_version(0).version_num, 'pycparser' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    version, parsed = done.stdout.split()
    assert int(version) >= 0x013400
    assert parsed == "False"


def test_emit_writes_a_module_with_the_same_types(tmp_path: Path) -> None:
    path = tmp_path / "regenerated.py"
    nglib.emit(path)
    spec = importlib.util.spec_from_file_location("regenerated", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert nglib.cdef_digest() == module.CDEF_SHA256
    for name in ("nghttp2_nv", "nghttp2_frame_hd", "nghttp2_settings_entry", "nghttp2_info"):
        assert module.ffi.sizeof(name) == nglib.ffi.sizeof(name), name
    assert not path.with_suffix(".partial").exists()


def test_a_stale_stamp_parses_the_declarations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nglib, "cdef_digest", lambda: "not the stamp")
    parsed = nglib._ffi()
    assert parsed is not nglib_ffi.ffi
    assert parsed.sizeof("nghttp2_nv") == nglib_ffi.ffi.sizeof("nghttp2_nv")
