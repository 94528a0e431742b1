"""The compiled module, plus the few conversions every other module needs.

Import ``ffi``/``lib`` from here, never from ``_mongoose_cffi`` directly, so
that a missing build gives one clear error.
"""
from __future__ import annotations

try:
    from ._mongoose_cffi import ffi, lib
except ImportError as exc:  # pragma: no cover - only without a build
    raise ImportError(
        "mongoose_py's compiled module _mongoose_cffi is missing (%s). "
        "Install the package with `pip install .` (or run `python build_ffi.py` "
        "in a source checkout) so that Mongoose gets fetched and compiled." % exc
    ) from exc

NULL = ffi.NULL
unpack = ffi.unpack


def to_bytes(data) -> bytes:
    """str → UTF-8, bytes-like → bytes (the convention of the binding we replace)."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8")
    return bytes(data)


def cstr(data) -> bytes:
    """A NUL-terminated C string argument; refuses embedded NULs instead of truncating."""
    b = to_bytes(data)
    if b"\0" in b:
        raise ValueError("string argument contains a NUL byte: %r" % (b[:60],))
    return b


def mg_str_bytes(s) -> bytes:
    """Copy a ``struct mg_str`` (pointer + length) into bytes."""
    n = s.len
    return unpack(s.buf, n) if n else b""


def mg_str_text(s) -> str:
    n = s.len
    return unpack(s.buf, n).decode("utf-8", "surrogateescape") if n else ""


def check_header_text(kind: str, text: str) -> None:
    """Header names/values must not smuggle extra lines (CR/LF) or NULs."""
    if "\r" in text or "\n" in text or "\0" in text:
        raise ValueError("Header %s contains illegal character (CR, LF, or NUL): %r" % (kind, text))


def header_block(headers) -> str:
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


def mg_str_of(b: bytes):
    """A ``struct mg_str`` value over ``b``; returns ``(value, keepalive)``:
    keep the second item referenced for as long as C may read the first."""
    keep = ffi.from_buffer(b)
    s = ffi.new("struct mg_str *")
    s.buf = keep
    s.len = len(b)
    return s[0], (keep, s)
