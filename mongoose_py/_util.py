"""Module-level utilities over Mongoose's JSON, URL, hash and misc functions."""
from __future__ import annotations

from typing import List, Optional, Tuple

from ._bridge import EV_NAMES
from ._ffi import NULL, cstr, ffi, lib, mg_str_bytes, mg_str_of, mg_str_text, to_bytes


def _json(data):
    return mg_str_of(to_bytes(data))


def json_get(data, path: str) -> Optional[str]:
    """Raw JSON text of the value at ``path`` (``'"Alice"'``, ``'30'``), or None."""
    s, keep = _json(data)
    tok = lib.mg_json_get_tok(s, cstr(path))
    if tok.buf == NULL or tok.len == 0:
        return None
    return mg_str_text(tok)


def json_get_num(data, path: str, default=None):
    s, keep = _json(data)
    v = ffi.new("double *")
    return v[0] if lib.mg_json_get_num(s, cstr(path), v) else default


def json_get_bool(data, path: str, default=None):
    s, keep = _json(data)
    v = ffi.new("bool *")
    return bool(v[0]) if lib.mg_json_get_bool(s, cstr(path), v) else default


def json_get_long(data, path: str, default: int = 0) -> int:
    s, keep = _json(data)
    return int(lib.mg_json_get_long(s, cstr(path), default))


def json_get_str(data, path: str) -> Optional[str]:
    s, keep = _json(data)
    p = lib.mg_json_get_str(s, cstr(path))
    if p == NULL:
        return None
    try:
        return ffi.string(p).decode("utf-8", "surrogateescape")
    finally:
        lib.mg_free(p)


def url_encode(data: str) -> str:
    """Percent-encode (lower-case hex, like Mongoose)."""
    b = to_bytes(data)
    if not b:
        return ""
    size = 3 * len(b) + 4
    buf = ffi.new("char[]", size)
    n = lib.mg_url_encode(b, len(b), buf, size)
    if n == 0:
        raise ValueError("url_encode failed")
    return ffi.unpack(buf, n).decode("ascii")


def url_port(url: str) -> int:
    return int(lib.mg_url_port(cstr(url)))


def _url_part(fn, url):
    b = cstr(url)
    keep = ffi.new("char[]", b)
    return mg_str_text(fn(keep))


def url_host(url: str) -> str:
    return _url_part(lib.mg_url_host, url)


def url_user(url: str) -> str:
    return _url_part(lib.mg_url_user, url)


def url_pass(url: str) -> str:
    return _url_part(lib.mg_url_pass, url)


def url_uri(url: str) -> str:
    keep = ffi.new("char[]", cstr(url))
    return ffi.string(lib.mg_url_uri(keep)).decode("utf-8", "surrogateescape")


def url_is_ssl(url: str) -> bool:
    return bool(lib.mg_url_is_ssl(cstr(url)))


def match(s: str, pattern: str) -> Tuple[bool, List[str]]:
    """Mongoose glob: ``?`` one char, ``*`` up to ``/``, ``#`` anything.
    Returns ``(matched, captures)``."""
    sb, pb = to_bytes(s), to_bytes(pattern)
    ss, k1 = mg_str_of(sb)
    ps, k2 = mg_str_of(pb)
    ncaps = pb.count(b"*") + pb.count(b"?") + pb.count(b"#") + 1
    caps = ffi.new("struct mg_str[]", ncaps)
    if not lib.mg_match(ss, ps, caps):
        return False, []
    return True, [mg_str_text(caps[i]) for i in range(ncaps - 1)]


def event_name(ev: int) -> str:
    name = EV_NAMES.get(ev)
    if name is not None and name not in ("MG_EV_MDNS_REQ", "MG_EV_MDNS_RESP", "MG_EV_MODBUS_REQ"):
        return name
    if ev >= lib.MG_EV_USER:
        return "MG_EV_USER" if ev == lib.MG_EV_USER else "MG_EV_USER+%d" % (ev - lib.MG_EV_USER)
    return "MG_EV_UNKNOWN(%d)" % ev


def log_set(level: int) -> None:
    """Mongoose's log level (MG_LL_*); lines go to the ``mongoose_py`` logger."""
    lib.mg_log_level = int(level)


def log_get() -> int:
    return int(lib.mg_log_level)


def md5(data) -> bytes:
    b = to_bytes(data)
    out = ffi.new("unsigned char[16]")
    lib.mgpy_md5(b, len(b), out)
    return ffi.unpack(out, 16)


def sha1(data) -> bytes:
    b = to_bytes(data)
    out = ffi.new("unsigned char[20]")
    lib.mgpy_sha1(b, len(b), out)
    return ffi.unpack(out, 20)


def sha256(data) -> bytes:
    b = to_bytes(data)
    out = ffi.new("uint8_t[32]")
    lib.mg_sha256(out, ffi.from_buffer("uint8_t[]", b), len(b))
    return ffi.unpack(out, 32)


def hmac_sha256(key, data) -> bytes:
    k, d = to_bytes(key), to_bytes(data)
    out = ffi.new("uint8_t[32]")
    lib.mg_hmac_sha256(out, ffi.from_buffer("uint8_t[]", k), len(k), ffi.from_buffer("uint8_t[]", d), len(d))
    return ffi.unpack(out, 32)


def base64_encode(data) -> str:
    b = to_bytes(data)
    size = 4 * ((len(b) + 2) // 3) + 1
    buf = ffi.new("char[]", size)
    n = lib.mg_base64_encode(b, len(b), buf, size)
    return ffi.unpack(buf, n).decode("ascii")


def base64_decode(data) -> bytes:
    """Standard base64 with padding; invalid input gives ``b""``."""
    b = to_bytes(data)
    if not b:
        return b""
    size = len(b) // 4 * 3 + 4
    buf = ffi.new("char[]", size)
    n = lib.mg_base64_decode(b, len(b), buf, size)
    return ffi.unpack(buf, n) if n else b""


def millis() -> int:
    return int(lib.mg_millis())


def random_bytes(length: int) -> bytes:
    if length < 0:
        raise ValueError("length must be >= 0")
    buf = ffi.new("char[]", max(length, 1))
    if length and not lib.mg_random(buf, length):
        raise OSError("mg_random failed")
    return ffi.unpack(buf, length)


def random_str(length: int) -> str:
    if length < 0:
        raise ValueError("length must be >= 0")
    buf = ffi.new("char[]", length + 1)
    lib.mg_random_str(buf, length + 1)
    return ffi.string(buf).decode("ascii")


def crc32(data, initial: int = 0) -> int:
    b = to_bytes(data)
    return int(lib.mg_crc32(initial & 0xFFFFFFFF, b, len(b)))
