"""The compiled module, plus the few conversions every other module needs.

Import ``ffi``/``lib`` from here, never from ``_mongoose_cffi`` directly, so
that a missing build gives one clear error.
"""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Mapping, Optional, Tuple

if TYPE_CHECKING:
    from ._mongoose_cffi import CData  # the stub's name for cffi cdata (no runtime class)

try:
    from ._mongoose_cffi import ffi as ffi, lib as lib  # re-exported (mypy --strict)
except ImportError as exc:  # pragma: no cover - only without a build
    if exc.name == "_cffi_backend":  # built, but this environment lacks cffi
        raise ImportError(
            "mongoose_py needs cffi at run time, and it is not installed in this environment "
            "(%s): `pip install cffi`." % exc) from exc
    raise ImportError(
        "mongoose_py's compiled module _mongoose_cffi is missing (%s). "
        "Install the package with `pip install .` (or run `python build_ffi.py` "
        "in a source checkout) so that Mongoose gets fetched and compiled." % exc
    ) from exc

NULL = ffi.NULL
unpack = ffi.unpack

# ---- C functions that can run Python before they return ----
#
# On PyPy (7.3.11, Debian's), JIT-compiled code calls a C function with the
# GIL released and keeps the calling frames virtual meanwhile. If a Python
# callback made during that call forces those frames (logging's findCaller,
# sys._getframe, an exception's context walk...), the JIT crashed when the
# call returned: a segfault, or "Fatal RPython error: AssertionError" in
# blackhole_from_resumedata. pypyjit.residual_call makes the call opaque to
# the JIT instead (an ordinary call that may force its caller, a path that
# works). Measured on the WebSocket test modules: 12 crashes in 20 runs with
# direct calls, 0 in 60 with this. It costs ~75 ns per call on PyPy, nothing
# on CPython (where ``reentrant.X is lib.X``).
try:
    from pypyjit import residual_call as _residual_call
except ImportError:  # CPython
    _residual_call = None

# Every C entry point that can reach mgpy_dispatch synchronously: the loop;
# connection creation (MG_EV_OPEN, or an immediate error); ws upgrade
# (MG_EV_WS_OPEN); errors; closing a manager (MG_EV_CLOSE). Replies are kept
# off this list on purpose (they are the per-request hot path: a residual call
# there cost ~10% req/s): a reply that lets a buffered pipelined request
# through leaves its parsing to the next poll (mgpy_resp_done). Mongoose's
# debug log lines reach Python from many calls, through log_from_callback,
# which walks no frames. tests/test_reentrant_calls.py keeps this complete.
_REENTRANT = ("mgpy_poll", "mg_mgr_free", "mgpy_mgr_destroy", "mgpy_listen", "mgpy_listen_reuse",
              "mgpy_connect", "mgpy_ws_connect", "mgpy_mqtt_connect", "mgpy_sntp_connect",
              "mgpy_ws_upgrade", "mgpy_error", "mg_tls_init", "mg_resolve")


class _Reentrant:
    """``reentrant.NAME(...)``: call ``lib.NAME`` the way that is safe when
    Python handlers run inside it (see above). Use it for every name in
    ``_REENTRANT``; plain ``lib`` for everything else."""

    __slots__ = _REENTRANT

    def __init__(self) -> None:
        for name in _REENTRANT:
            fn = getattr(lib, name)
            setattr(self, name, fn if _residual_call is None else functools.partial(_residual_call, fn))


reentrant = _Reentrant()


def to_bytes(data: Any) -> bytes:
    """str → UTF-8, bytes-like → bytes (the convention of the binding we replace)."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8")
    return bytes(data)


def cstr(data: Any) -> bytes:
    """A NUL-terminated C string argument; refuses embedded NULs instead of truncating."""
    b = to_bytes(data)
    if b"\0" in b:
        raise ValueError("string argument contains a NUL byte: %r" % (b[:60],))
    return b


def mg_str_bytes(s: CData) -> bytes:
    """Copy a ``struct mg_str`` (pointer + length) into bytes."""
    n = s.len
    return unpack(s.buf, n) if n else b""


def mg_str_text(s: CData) -> str:
    n = s.len
    return unpack(s.buf, n).decode("utf-8", "surrogateescape") if n else ""


def check_header_text(kind: str, text: str) -> None:
    """Header names/values must not smuggle extra lines (CR/LF) or NULs."""
    if "\r" in text or "\n" in text or "\0" in text:
        raise ValueError("Header %s contains illegal character (CR, LF, or NUL): %r" % (kind, text))


def header_block(headers: Optional[Mapping[Any, Any]]) -> str:
    """``{"A": "b"}`` → ``"A: b\\r\\n"`` with every name and value checked."""
    if not headers:
        return ""
    parts = []
    for k, v in headers.items():
        # A value ending in CRLF (as in the seed README's example) means the
        # line end the caller thought was needed; anything else is an injection.
        k, v = str(k), str(v)
        if v.endswith("\r\n"):
            v = v[:-2]
        check_header_text("name", k)
        check_header_text("value", v)
        parts.append("%s: %s\r\n" % (k, v))
    return "".join(parts)


def mg_str_of(b: bytes) -> Tuple[CData, Any]:
    """A ``struct mg_str`` value over ``b``; returns ``(value, keepalive)``:
    keep the second item referenced for as long as C may read the first."""
    keep = ffi.from_buffer(b)
    s = ffi.new("struct mg_str *")
    s.buf = keep
    s.len = len(b)
    return s[0], (keep, s)
