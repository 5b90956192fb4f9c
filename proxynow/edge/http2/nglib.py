"""libnghttp2's server-session API, declared for cffi in ABI mode (no headers, no compiler).

Only what proxynow/edge/http2/ngcodec.py calls is declared, with the layouts of nghttp2.h
(1.52, Debian's libnghttp2-14; the API has been stable since 1.0). Byte pointers the codec
hands over are declared `char *` instead of `uint8_t *` (the same ABI), so that cffi takes
`bytes` without a conversion; the few the hot path reads or fills (a header field's name
and value, the bytes `mem_send` serialized, the buffer a DATA read fills) are declared
`uintptr_t`, addresses into `MEMORY` (ngcodec.py), which cost a slice instead of a cdata
object and an `ffi.unpack` each. The frame union declares only
the members read here: frames are read through pointers the library gives, never
allocated by cffi, so the union's size does not matter.

The declarations are parsed once, when they change, not in every worker: parsing them needs
pycparser (about 3 MB and 40 ms per process). `python -m proxynow.edge.http2.nglib` writes
nglib_ffi.py, cffi's out-of-line ABI module for `CDEF` (the parsed types as data, loaded by
cffi's backend alone), stamped with `CDEF`'s SHA-256; `ffi` comes from it when the stamp
matches and cffi's backend accepts it, else from `CDEF` parsed here (a stale or
incompatible file costs the memory, never correctness). A test keeps the stamp current.

`load()` opens the library once; None when it cannot be found (the `h2` codec is used
then: edge/http2/choice.py). `PROXYNOW_NGHTTP2_LIBRARY` names another file to open (what
the fallback's test uses to make the opening fail for real).
"""

from __future__ import annotations

import ctypes.util
import hashlib
import importlib
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["CDEF", "GENERATED", "cdef_digest", "emit", "ffi", "load"]

CDEF = """
typedef struct nghttp2_session nghttp2_session;
typedef struct nghttp2_session_callbacks nghttp2_session_callbacks;
typedef struct nghttp2_option nghttp2_option;

typedef struct {
  char *name;
  char *value;
  size_t namelen;
  size_t valuelen;
  uint8_t flags;
} nghttp2_nv;

typedef struct {
  size_t length;
  int32_t stream_id;
  uint8_t type;
  uint8_t flags;
  uint8_t reserved;
} nghttp2_frame_hd;

typedef struct {
  int32_t stream_id;
  int32_t weight;
  uint8_t exclusive;
} nghttp2_priority_spec;

typedef struct {
  nghttp2_frame_hd hd;
  size_t padlen;
} nghttp2_data;

typedef struct {
  nghttp2_frame_hd hd;
  size_t padlen;
  nghttp2_priority_spec pri_spec;
  nghttp2_nv *nva;
  size_t nvlen;
  int cat;
} nghttp2_headers;

typedef struct {
  nghttp2_frame_hd hd;
  uint32_t error_code;
} nghttp2_rst_stream;

typedef struct {
  nghttp2_frame_hd hd;
  int32_t last_stream_id;
  uint32_t error_code;
  char *opaque_data;
  size_t opaque_data_len;
  uint8_t reserved;
} nghttp2_goaway;

typedef union {
  nghttp2_frame_hd hd;
  nghttp2_data data;
  nghttp2_headers headers;
  nghttp2_rst_stream rst_stream;
  nghttp2_goaway goaway;
} nghttp2_frame;

typedef struct {
  int32_t settings_id;
  uint32_t value;
} nghttp2_settings_entry;

typedef union {
  int fd;
  void *ptr;
} nghttp2_data_source;

typedef ssize_t (*nghttp2_data_source_read_callback)(
    uintptr_t session, int32_t stream_id, uintptr_t buf, size_t length,
    uint32_t *data_flags, nghttp2_data_source *source, void *user_data);

typedef struct {
  nghttp2_data_source source;
  nghttp2_data_source_read_callback read_callback;
} nghttp2_data_provider;

typedef int (*nghttp2_on_frame_recv_callback)(
    nghttp2_session *session, const nghttp2_frame *frame, void *user_data);
typedef int (*nghttp2_on_invalid_frame_recv_callback)(
    nghttp2_session *session, const nghttp2_frame *frame, int lib_error_code,
    void *user_data);
typedef int (*nghttp2_on_data_chunk_recv_callback)(
    nghttp2_session *session, uint8_t flags, int32_t stream_id, const char *data,
    size_t len, void *user_data);
typedef int (*nghttp2_on_stream_close_callback)(
    nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data);
typedef int (*nghttp2_on_header_callback)(
    uintptr_t session, uintptr_t frame, uintptr_t name,
    size_t namelen, uintptr_t value, size_t valuelen, uint8_t flags, void *user_data);
typedef int (*nghttp2_on_invalid_header_callback)(
    nghttp2_session *session, const nghttp2_frame *frame, const char *name,
    size_t namelen, const char *value, size_t valuelen, uint8_t flags, void *user_data);
typedef int (*nghttp2_unpack_extension_callback)(
    nghttp2_session *session, void **payload, const nghttp2_frame_hd *hd, void *user_data);
typedef int (*nghttp2_on_extension_chunk_recv_callback)(
    nghttp2_session *session, const nghttp2_frame_hd *hd, const char *data, size_t len,
    void *user_data);

typedef struct {
  int age;
  int version_num;
  const char *version_str;
  const char *proto_str;
} nghttp2_info;

nghttp2_info *nghttp2_version(int least_version);
const char *nghttp2_strerror(int lib_error_code);

int nghttp2_session_callbacks_new(nghttp2_session_callbacks **callbacks_ptr);
void nghttp2_session_callbacks_set_on_frame_recv_callback(
    nghttp2_session_callbacks *cbs, nghttp2_on_frame_recv_callback cb);
void nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(
    nghttp2_session_callbacks *cbs, nghttp2_on_invalid_frame_recv_callback cb);
void nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
    nghttp2_session_callbacks *cbs, nghttp2_on_data_chunk_recv_callback cb);
void nghttp2_session_callbacks_set_on_stream_close_callback(
    nghttp2_session_callbacks *cbs, nghttp2_on_stream_close_callback cb);
void nghttp2_session_callbacks_set_on_header_callback(
    nghttp2_session_callbacks *cbs, nghttp2_on_header_callback cb);
void nghttp2_session_callbacks_set_on_invalid_header_callback(
    nghttp2_session_callbacks *cbs, nghttp2_on_invalid_header_callback cb);
void nghttp2_session_callbacks_set_unpack_extension_callback(
    nghttp2_session_callbacks *cbs, nghttp2_unpack_extension_callback cb);
void nghttp2_session_callbacks_set_on_extension_chunk_recv_callback(
    nghttp2_session_callbacks *cbs, nghttp2_on_extension_chunk_recv_callback cb);

int nghttp2_option_new(nghttp2_option **option_ptr);
void nghttp2_option_del(nghttp2_option *option);
void nghttp2_option_set_no_auto_window_update(nghttp2_option *option, int val);
void nghttp2_option_set_no_closed_streams(nghttp2_option *option, int val);
void nghttp2_option_set_max_settings(nghttp2_option *option, size_t val);
void nghttp2_option_set_max_continuations(nghttp2_option *option, size_t val);
void nghttp2_option_set_user_recv_extension_type(nghttp2_option *option, uint8_t type);

int nghttp2_session_server_new2(
    nghttp2_session **session_ptr, const nghttp2_session_callbacks *callbacks,
    void *user_data, const nghttp2_option *option);
void nghttp2_session_del(nghttp2_session *session);
ssize_t nghttp2_session_mem_recv(nghttp2_session *session, const char *in, size_t inlen);
ssize_t nghttp2_session_mem_send(nghttp2_session *session, uintptr_t *data_ptr);
int nghttp2_session_want_read(nghttp2_session *session);
int nghttp2_session_resume_data(nghttp2_session *session, int32_t stream_id);
int nghttp2_session_consume(nghttp2_session *session, int32_t stream_id, size_t size);
int32_t nghttp2_session_get_stream_remote_window_size(
    nghttp2_session *session, int32_t stream_id);
int32_t nghttp2_session_get_remote_window_size(nghttp2_session *session);
int32_t nghttp2_session_get_last_proc_stream_id(nghttp2_session *session);
int nghttp2_session_terminate_session(nghttp2_session *session, uint32_t error_code);

int nghttp2_submit_settings(
    nghttp2_session *session, uint8_t flags, const nghttp2_settings_entry *iv, size_t niv);
int nghttp2_submit_window_update(
    nghttp2_session *session, uint8_t flags, int32_t stream_id, int32_t increment);
int nghttp2_submit_response(
    nghttp2_session *session, int32_t stream_id, const nghttp2_nv *nva, size_t nvlen,
    const nghttp2_data_provider *data_prd);
int nghttp2_submit_trailer(
    nghttp2_session *session, int32_t stream_id, const nghttp2_nv *nva, size_t nvlen);
int32_t nghttp2_submit_headers(
    nghttp2_session *session, uint8_t flags, int32_t stream_id, const void *pri_spec,
    const nghttp2_nv *nva, size_t nvlen, void *stream_user_data);
int nghttp2_submit_rst_stream(
    nghttp2_session *session, uint8_t flags, int32_t stream_id, uint32_t error_code);
int nghttp2_submit_goaway(
    nghttp2_session *session, uint8_t flags, int32_t last_stream_id, uint32_t error_code,
    const char *opaque_data, size_t opaque_data_len);
"""

GENERATED = Path(__file__).with_name("nglib_ffi.py")
_GENERATED_MODULE = "proxynow.edge.http2.nglib_ffi"


def cdef_digest() -> str:
    """The stamp nglib_ffi.py must carry to be used."""
    return hashlib.sha256(CDEF.encode()).hexdigest()


def emit(path: Path = GENERATED) -> None:
    """Write cffi's out-of-line ABI module for `CDEF` to `path`, stamped."""
    import cffi  # type: ignore[import-untyped]  # no stubs shipped

    builder = cffi.FFI()
    builder.cdef(CDEF)
    builder.set_source(_GENERATED_MODULE, None)
    partial = path.with_suffix(".partial")
    builder.emit_python_code(str(partial))
    with partial.open("a") as out:
        out.write(f"\nCDEF_SHA256 = {cdef_digest()!r}\n")
    os.replace(partial, path)


def _ffi() -> Any:
    try:
        generated: Any = importlib.import_module(_GENERATED_MODULE)
    except Exception:  # absent, or written by a cffi this backend does not accept
        generated = None
    if generated is not None and getattr(generated, "CDEF_SHA256", None) == cdef_digest():
        return generated.ffi
    import cffi

    parsed = cffi.FFI()
    parsed.cdef(CDEF)
    return parsed


ffi = _ffi()

# Where Debian's libnghttp2-14 puts it; find_library for other layouts.
_NAMES = ("libnghttp2.so.14", "nghttp2")
_LEAST_VERSION = 0x013400  # 1.52.0: the CONTINUATION and Rapid Reset fixes Debian backports
# A build without the CONTINUATION-flood fix (CVE-2024-28182: upstream 1.61, backported to
# Debian's 1.52) is not used: `h2`, which bounds CONTINUATION frames, serves instead.
_REQUIRED = ("nghttp2_option_set_max_continuations",)
_loaded: list[Any] = []


def _has(lib: Any, names: tuple[str, ...]) -> bool:
    try:
        for name in names:
            getattr(lib, name)
    except AttributeError:
        return False
    return True


def load() -> Any | None:
    """The library (its functions as attributes), or None where it cannot be opened."""
    if _loaded:
        return _loaded[0]
    lib = None
    override = os.environ.get("PROXYNOW_NGHTTP2_LIBRARY")
    for name in (override,) if override else _NAMES:
        path = name if "/" in name or ".so" in name else ctypes.util.find_library(name)
        if not path:
            continue
        try:
            lib = ffi.dlopen(path)
        except OSError:
            continue
        if lib.nghttp2_version(_LEAST_VERSION) == ffi.NULL or not _has(lib, _REQUIRED):
            lib = None
            continue
        break
    _loaded.append(lib)
    return lib


if __name__ == "__main__":
    emit(Path(sys.argv[1]) if len(sys.argv) > 1 else GENERATED)
