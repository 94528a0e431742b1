"""Module-level utilities over Mongoose's JSON, URL, hash and misc functions."""
from __future__ import annotations

import json as _json_mod
import math
import re
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from ._bridge import EV_NAMES
from ._ffi import NULL, cstr, ffi, lib, mg_str_of, mg_str_text, to_bytes


Data = Union[str, bytes, bytearray, memoryview]  # str is UTF-8 encoded


def _json(data: Data) -> Tuple[Any, Any]:
    return mg_str_of(to_bytes(data))


def json_get(data: Data, path: str) -> Optional[str]:
    """Raw JSON text of the value at ``path`` (``'"Alice"'``, ``'30'``), or None."""
    s, keep = _json(data)
    tok = lib.mg_json_get_tok(s, cstr(path))
    if tok.buf == NULL or tok.len == 0:
        return None
    return mg_str_text(tok)


def json_get_num(data: Data, path: str, default: Optional[float] = None) -> Optional[float]:
    """The number at ``path`` as a float, or ``default``. Mongoose finds the
    token; Python converts it (Mongoose's own strtod is inexact for subnormals)."""
    s, keep = _json(data)
    v = ffi.new("double *")
    if not lib.mg_json_get_num(s, cstr(path), v):
        return default
    tok = lib.mg_json_get_tok(s, cstr(path))
    try:
        return float(ffi.unpack(tok.buf, tok.len))
    except (ValueError, OverflowError):
        return float(v[0])


def json_get_bool(data: Data, path: str, default: Optional[bool] = None) -> Optional[bool]:
    s, keep = _json(data)
    v = ffi.new("bool *")
    return bool(v[0]) if lib.mg_json_get_bool(s, cstr(path), v) else default


def json_get_long(data: Data, path: str, default: int = 0) -> int:
    """Integer at ``path`` (a number truncated toward zero: 3.14 → 3), or ``default``."""
    s, keep = _json(data)
    v = ffi.new("double *")
    if not lib.mg_json_get_num(s, cstr(path), v) or not math.isfinite(v[0]):
        return default
    return int(v[0])  # exact where mg_json_get_long's C cast would overflow


def json_get_str(data: Data, path: str) -> Optional[str]:
    """The string at ``path``, unescaped, or None (also for non-strings).

    Unescaped by Python's ``json``: Mongoose's own unescaper only knows
    ``\\u00XX`` (it turns ``"\\u00e9"`` into a lone 0xE9 byte and stops at
    ``\\u0100``) and cuts the result at ``\\u0000``.
    """
    s, keep = _json(data)
    tok = lib.mg_json_get_tok(s, cstr(path))
    if tok.buf == NULL or tok.len < 2 or tok.buf[0] != b'"':
        return None
    try:
        value = _json_mod.loads(mg_str_text(tok), strict=False)
    except ValueError:
        return None  # an invalid escape: Mongoose gives NULL too
    return value if isinstance(value, str) else None


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


def _url_part(fn: Callable[[Any], Any], url: str) -> str:
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


def _match_caps(s: bytes, p: bytes) -> Optional[Dict[int, List[Optional[int]]]]:
    """The captures ``mg_match`` computes, as ``[(start, length), ...]``, one per
    wildcard (``None`` when it did not match).

    A line-by-line port of ``mg_match`` (mongoose.c), because calling the C
    function with a capture array is not memory-safe: on backtracking it can
    write far more captures than the pattern has wildcards (``"#???"`` against
    10 bytes writes 18 slots), i.e. past the end of any fixed-size array.
    """
    i = j = ni = nj = 0
    k = 0
    caps = {0: [None, 0]}
    lp, ls = len(p), len(s)
    while i < lp or j < ls:
        if i < lp and j < ls and (p[i] == 63 or (p[i] != 42 and p[i] != 35 and s[j] == p[i])):  # ? * #
            cap = caps[k]
            if p[i] == 63:
                cap[0], cap[1] = j, 1
                k += 1
                caps[k] = [None, 0]
            elif cap[0] is not None and cap[1] == 0:
                cap[1] = j - cap[0]
                k += 1
                caps[k] = [None, 0]
            i += 1
            j += 1
        elif i < lp and (p[i] == 42 or p[i] == 35):
            cap = caps[k]
            if cap[0] is None:
                cap[0], cap[1] = j, 0
            ni = i
            i += 1
            nj = j + 1
        elif 0 < nj <= ls and ((ni < lp and p[ni] == 35) or (j < ls and s[j] != 47)):  # '/'
            i, j = ni, nj
            cap = caps[k]
            if cap[0] is None and cap[1] == 0:
                k -= 1
                caps.setdefault(k, [None, 0])[1] = 0
        else:
            return None
    cap = caps[k]
    if cap[0] is not None and cap[1] == 0:
        cap[1] = j - cap[0]
    return caps


def match(s: str, pattern: str) -> Tuple[bool, List[str]]:
    """Mongoose glob: ``?`` one char, ``*`` anything but ``/``, ``#`` anything.

    Returns ``(matched, captures)``: one capture per wildcard when matched
    (``""`` for an empty one), ``[]`` otherwise.

    >>> match("/api/v1/users", "/api/*/#")
    (True, ['v1', 'users'])
    """
    sb, pb = to_bytes(s), to_bytes(pattern)
    ss, k1 = mg_str_of(sb)
    ps, k2 = mg_str_of(pb)
    if not lib.mg_match(ss, ps, NULL):  # caps == NULL: the C function is safe
        return False, []
    nwild = pb.count(b"*") + pb.count(b"?") + pb.count(b"#")
    if nwild == 0:
        return True, []
    caps = _match_caps(sb, pb) or {}
    out = []
    for idx in range(nwild):
        cap = caps.get(idx)
        if cap is None or cap[0] is None:
            break  # as the binding we replace: captures up to the first unset one
        start, n = cap[0], max(cap[1] or 0, 0)  # cap[1] is an int (Optional only by type)
        out.append(sb[start:start + n].decode("utf-8", "surrogateescape"))
    return True, out


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


def md5(data: Data) -> bytes:
    b = to_bytes(data)
    out = ffi.new("unsigned char[16]")
    lib.mgpy_md5(b, len(b), out)
    return ffi.buffer(out, 16)[:]


def sha1(data: Data) -> bytes:
    b = to_bytes(data)
    out = ffi.new("unsigned char[20]")
    lib.mgpy_sha1(b, len(b), out)
    return ffi.buffer(out, 20)[:]


def sha256(data: Data) -> bytes:
    b = to_bytes(data)
    out = ffi.new("uint8_t[32]")
    lib.mg_sha256(out, ffi.from_buffer("uint8_t[]", b), len(b))
    return ffi.buffer(out, 32)[:]


def hmac_sha256(key: Data, data: Data) -> bytes:
    k, d = to_bytes(key), to_bytes(data)
    out = ffi.new("uint8_t[32]")
    lib.mg_hmac_sha256(out, ffi.from_buffer("uint8_t[]", k), len(k), ffi.from_buffer("uint8_t[]", d), len(d))
    return ffi.buffer(out, 32)[:]


def base64_encode(data: Data) -> str:
    b = to_bytes(data)
    size = 4 * ((len(b) + 2) // 3) + 1
    buf = ffi.new("char[]", size)
    n = lib.mg_base64_encode(b, len(b), buf, size)
    return ffi.unpack(buf, n).decode("ascii")


_B64 = re.compile(rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def base64_decode(data: Data) -> bytes:
    """Standard base64 with padding; invalid input gives ``b""``.

    Invalid: a length that is not a multiple of 4, a character outside the
    standard alphabet (whitespace included), or misplaced padding (Mongoose
    alone would decode a prefix of such input).
    """
    b = to_bytes(data)
    if not b or _B64.fullmatch(b) is None:
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


def crc32(data: Data, initial: int = 0) -> int:
    b = to_bytes(data)
    return int(lib.mg_crc32(initial & 0xFFFFFFFF, b, len(b)))
