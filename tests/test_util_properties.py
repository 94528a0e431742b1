"""Module-level utilities (BEHAVIOUR.md §1.9) checked against the standard
library with hypothesis, plus the fixed behaviours of the binding we replace
and "arbitrary input never crashes" for every function."""
import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import string
import urllib.parse

import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import mongoose_py as mp

PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------- hashes


@PROPS
@given(st.binary(max_size=3000))
def test_digests_match_hashlib(data):
    assert mp.md5(data) == hashlib.md5(data).digest()
    assert mp.sha1(data) == hashlib.sha1(data).digest()
    assert mp.sha256(data) == hashlib.sha256(data).digest()
    assert mp.sha256(bytearray(data)) == hashlib.sha256(data).digest()


@PROPS
@given(st.text(max_size=200))
def test_digests_of_text_are_of_its_utf8(text):
    b = text.encode("utf-8", "surrogatepass")
    if not b.decode("utf-8", "ignore") == text:
        with pytest.raises(UnicodeEncodeError):
            mp.sha256(text)
        return
    assert mp.md5(text) == hashlib.md5(b).digest()
    assert mp.sha256(text) == hashlib.sha256(b).digest()


@PROPS
@given(st.binary(max_size=200), st.binary(max_size=2000))
def test_hmac_sha256_matches_hmac(key, data):
    assert mp.hmac_sha256(key, data) == hmac.new(key, data, hashlib.sha256).digest()


def test_digest_sizes_and_known_vectors():
    assert mp.md5(b"") == bytes.fromhex("d41d8cd98f00b204e9800998ecf8427e")
    assert len(mp.sha1("abc")) == 20 and len(mp.sha256("abc")) == 32
    assert mp.hmac_sha256(b"k" * 100, b"long key") == hmac.new(b"k" * 100, b"long key", "sha256").digest()


# ---------------------------------------------------------------- base64


@PROPS
@given(st.binary(max_size=2000))
def test_base64_round_trip(data):
    enc = mp.base64_encode(data)
    assert enc == base64.b64encode(data).decode("ascii")
    assert mp.base64_decode(enc) == data
    assert mp.base64_decode(enc.encode()) == data


def stdlib_b64decode(text):
    if len(text) % 4:
        return b""  # the stdlib ignores some excess padding ("AAAA="): we refuse it
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return b""


@PROPS
@given(st.one_of(st.text(alphabet="QUJDRA+/=\n -_", max_size=16), st.text(max_size=16)))
def test_base64_decode_like_strict_stdlib(text):
    """Whatever the strict stdlib decoder refuses gives b"" (never a prefix)."""
    assert mp.base64_decode(text) == stdlib_b64decode(text)


@pytest.mark.parametrize("bad", ["!!!", "QUJD!", "QUJDRA", "QQ", "QQ=", "Q===", "QQ==QUJD", "QU JD", "QUJD\n", "AAAA=",
                                 "=QUJ", "\u00e9\u00e9\u00e9\u00e9", ""])
def test_base64_invalid_gives_empty(bad):
    assert mp.base64_decode(bad) == b""


# ---------------------------------------------------------------- crc32


@PROPS
@given(st.binary(max_size=2000), st.binary(max_size=2000))
def test_crc32_matches_binascii_incrementally(a, b):
    assert mp.crc32(a) == binascii.crc32(a)
    assert mp.crc32(b, mp.crc32(a)) == binascii.crc32(a + b)
    assert mp.crc32(b, initial=binascii.crc32(a)) == binascii.crc32(b, binascii.crc32(a))


def test_crc32_known():
    assert mp.crc32(b"123456789") == 0xCBF43926
    assert mp.crc32("") == 0


# ---------------------------------------------------------------- url_encode


def lower_hex_quote(text):
    return re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), urllib.parse.quote(text, safe=""))


@PROPS
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200))
def test_url_encode_matches_urllib(text):
    enc = mp.url_encode(text)
    assert urllib.parse.unquote(enc) == text
    assert enc == lower_hex_quote(text)
    assert re.fullmatch(r"(?:[A-Za-z0-9._~-]|%[0-9a-f]{2})*", enc)


def test_url_encode_examples():
    assert mp.url_encode("a+b /\u00e9") == "a%2bb%20%2f%c3%a9"
    assert mp.url_encode("") == ""
    assert mp.url_encode("x") == "x"


# ---------------------------------------------------------------- JSON

KEY = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=8)
SCALAR = st.one_of(
    st.none(), st.booleans(), st.integers(-2 ** 53, 2 ** 53),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30),
)
VALUE = st.recursive(SCALAR, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(KEY, kids, max_size=4),
                     max_leaves=12)


def close(a, b):
    return a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))


@PROPS
@given(st.dictionaries(KEY, VALUE, min_size=1, max_size=6), st.booleans())
def test_json_getters_match_json(doc, ascii_only):
    text = json.dumps(doc, ensure_ascii=ascii_only)
    data = text if not ascii_only else text.encode()
    assert json.loads(mp.json_get(data, "$")) == doc
    assert mp.json_get(data, "$.no_such_key_") is None
    for key, value in doc.items():
        path = "$." + key
        assert json.loads(mp.json_get(data, path)) == value
        if isinstance(value, bool):
            assert mp.json_get_bool(data, path) is value
            assert mp.json_get_num(data, path) is None
        elif isinstance(value, (int, float)):
            assert close(mp.json_get_num(data, path), float(value))
            assert mp.json_get_long(data, path) == int(value)
            assert mp.json_get_bool(data, path, "dflt") == "dflt"
        elif isinstance(value, str):
            assert mp.json_get_str(data, path) == value
            assert mp.json_get_num(data, path, -1.5) == -1.5
            assert mp.json_get_long(data, path, 7) == 7
        else:
            assert mp.json_get_str(data, path) is None
        if isinstance(value, list):
            for i, item in enumerate(value):
                assert json.loads(mp.json_get(data, "%s[%d]" % (path, i))) == item
            assert mp.json_get(data, "%s[%d]" % (path, len(value))) is None


def test_json_examples():
    doc = '{"user":{"name":"Alice","age":30.7,"tags":["a","b"]},"ok":true,"s":"\\u00e9\\u4e2d\\ud83d\\ude00"}'
    assert mp.json_get(doc, "$.user.name") == '"Alice"'
    assert mp.json_get(doc, "$.user.age") == "30.7"
    assert mp.json_get_long(doc, "$.user.age") == 30
    assert mp.json_get_long('{"n":-3.9}', "$.n") == -3
    big = mp.json_get_long('{"n":1e300}', "$.n")  # a Python int, not a C long overflow
    assert isinstance(big, int) and abs(big - 10 ** 300) < 10 ** 291
    assert mp.json_get_num(doc, "$.user.tags") is None
    assert mp.json_get_str(doc, "$.user.tags[1]") == "b"
    assert mp.json_get_str(doc, "$.s") == "\u00e9\u4e2d\U0001F600"
    assert mp.json_get_str('{"z":"a\\u0000b"}', "$.z") == "a\x00b"
    assert mp.json_get_str('{"z":"bad \\q escape"}', "$.z") is None
    assert mp.json_get_bool(doc, "$.ok") is True
    assert mp.json_get_long(doc, "$.nope") == 0
    assert mp.json_get("not json", "$") is None


# ---------------------------------------------------------------- URLs

SCHEMES = {"http": 80, "https": 443, "ws": 80, "wss": 443, "mqtt": 1883, "mqtts": 8883, "tcp": 0, "udp": 0}
LABEL = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=10)
HOST = st.one_of(st.lists(LABEL, min_size=1, max_size=4).map(".".join),
                 st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: "%d.%d.%d.%d" % t))
WORD = st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=10)


@PROPS
@given(st.sampled_from(sorted(SCHEMES)), st.one_of(st.none(), WORD), st.one_of(st.none(), WORD), HOST,
       st.one_of(st.none(), st.integers(1, 65535)),
       st.one_of(st.none(), st.lists(WORD, max_size=3).map(lambda p: "/" + "/".join(p))),
       st.one_of(st.none(), WORD))
def test_url_parts(scheme, user, password, host, port, path, query):
    url = scheme + "://"
    if user:
        url += user + (":" + password if password else "") + "@"
    url += host + (":%d" % port if port else "")
    uri = (path or "") + ("?q=" + query if query else "")
    if uri and not uri.startswith("/"):
        uri = "/" + uri
    url += uri
    assert mp.url_host(url) == host
    assert mp.url_port(url) == (port or SCHEMES[scheme])
    assert mp.url_user(url) == (user or "")
    assert mp.url_pass(url) == (password if user and password else "")
    assert mp.url_uri(url) == (uri or "/")
    assert mp.url_is_ssl(url) is (scheme in ("https", "wss", "mqtts"))


def test_url_examples():
    assert mp.url_port("tcp://h") == 0 and mp.url_port("sntp://x") == 0 and mp.url_port("ftp://x") == 0
    assert mp.url_is_ssl("tls://x") and mp.url_is_ssl("ssl://x") and not mp.url_is_ssl("http://x")
    assert mp.url_host("http://[::1]:8000/x") == "[::1]"
    assert mp.url_port("http://[::1]:8000/x") == 8000
    assert mp.url_uri("http://h:1/a/b?c=d#e") == "/a/b?c=d#e"
    with pytest.raises(ValueError):
        mp.url_host("http://a\x00b")


# ---------------------------------------------------------------- match


def glob_regex(pattern):
    return re.compile("".join({"?": ".", "*": "[^/]*", "#": ".*"}.get(c, re.escape(c)) for c in pattern), re.S)


@PROPS
@given(st.text(alphabet="ab/", max_size=10), st.text(alphabet="ab/?#", max_size=7))
def test_match_question_and_hash_like_a_regex(s, pattern):
    matched, caps = mp.match(s, pattern)
    assert matched == bool(glob_regex(pattern).fullmatch(s))
    if not matched:
        assert caps == []
    assert len(caps) <= sum(pattern.count(c) for c in "?*#")


@PROPS
@given(st.text(alphabet="ab/", max_size=10), st.text(alphabet="ab/", max_size=4),
       st.text(alphabet="ab/", max_size=4), st.sampled_from("*#?"))
def test_match_single_wildcard_capture(s, prefix, suffix, wild):
    if wild == "*":
        # mg_match's single-backtrack loop lets "*" cross a "/" in some cases
        # ("*/" matches "/a/"): compare on strings without "/" only.
        assume("/" not in s)
    pattern = prefix + wild + suffix
    matched, caps = mp.match(s, pattern)
    assert matched == bool(glob_regex(pattern).fullmatch(s))
    if matched:
        assert len(caps) == 1
        assert prefix + caps[0] + suffix == s


@PROPS
@given(st.text(max_size=30), st.text(max_size=12))
def test_match_arbitrary_input_is_safe(s, pattern):
    """No out-of-bounds capture writes (mg_match can write more captures than
    the pattern has wildcards: the binding computes them in Python)."""
    try:
        matched, caps = mp.match(s, pattern)
    except UnicodeEncodeError:
        return  # lone surrogates
    assert isinstance(matched, bool)
    for c in caps:
        assert c in s


def test_match_examples():
    assert mp.match("/api/v1/users", "/api/*/#") == (True, ["v1", "users"])
    assert mp.match("/api/v1/users", "/api/*") == (False, [])
    assert mp.match("abc", "a?c") == (True, ["b"])
    assert mp.match("abc", "abc") == (True, [])
    assert mp.match("/x/", "/*/") == (True, ["x"])
    assert mp.match("", "*") == (True, [""])
    assert mp.match("a/b", "#") == (True, ["a/b"])
    assert mp.match("bbbbbbb/a", "?#??a")[0] is True  # a pattern where mg_match overruns its captures
    assert mp.match("///a/aab/", "##???")[0] is True


# ---------------------------------------------------------------- http_var / multipart


@PROPS
@given(st.dictionaries(WORD, st.text(alphabet=string.ascii_letters + string.digits + "+%.-", max_size=12),
                       min_size=1, max_size=5).filter(lambda d: len({k.lower() for k in d}) == len(d)))
def test_http_var_finds_raw_values(form):  # names distinct ignoring case: Mongoose matches them so
    buf = "&".join("%s=%s" % kv for kv in form.items())
    for k, v in form.items():
        assert mp.http_var(buf, k) == v  # raw: not URL-decoded (as the binding we replace)
    assert mp.http_var(buf, "zz_absent_zz") is None
    assert mp.http_var(buf.encode(), next(iter(form))) == next(iter(form.values()))


def test_http_var_examples():
    assert mp.http_var("msg=hello+world%21&x=", "msg") == "hello+world%21"
    assert mp.http_var("msg=hello&x=", "x") == ""
    assert mp.http_var("", "x") is None
    assert mp.http_var("Name=1&name=2", "NAME") == "1"  # case-insensitive names, first match wins


def multipart_body(parts, boundary="XyZ123boundary"):
    out = b""
    for name, filename, body in parts:
        disp = 'form-data; name="%s"' % name + ('; filename="%s"' % filename if filename else "")
        out += b"--" + boundary.encode() + b"\r\nContent-Disposition: " + disp.encode() + b"\r\n\r\n" + body + b"\r\n"
    return out + b"--" + boundary.encode() + b"--\r\n"


@FEW
@given(st.lists(st.tuples(WORD, st.one_of(st.just(""), WORD.map(lambda w: w + ".bin")),
                          st.binary(max_size=300).filter(lambda b: b"--XyZ123boundary" not in b and b"\r\n--" not in b)),
                min_size=1, max_size=4))
def test_http_parse_multipart_round_trip(parts):
    body = multipart_body(parts)
    ofs, got = 0, []
    for _ in range(10):
        ofs, part = mp.http_parse_multipart(body, ofs)
        if part is None:
            assert ofs == 0
            break
        got.append((part["name"], part["filename"], part["body"]))
    assert got == [(n, f, b) for n, f, b in parts]


def test_http_parse_multipart_edges():
    assert mp.http_parse_multipart(b"") == (0, None)
    assert mp.http_parse_multipart(b"garbage") == (0, None)
    assert mp.http_parse_multipart(multipart_body([("a", "", b"1")]), 10 ** 6) == (0, None)
    assert mp.http_parse_multipart(multipart_body([("a", "", b"1")]), -5) == (0, None)


# ---------------------------------------------------------------- misc


def test_event_name():
    assert mp.event_name(mp.MG_EV_HTTP_MSG) == "MG_EV_HTTP_MSG"
    assert mp.event_name(mp.MG_EV_ERROR) == "MG_EV_ERROR"
    assert mp.event_name(mp.MG_EV_USER) == "MG_EV_USER"
    assert mp.event_name(mp.MG_EV_USER + 5) == "MG_EV_USER+5"
    for ev in (20, 21, 22, -1, -100):
        assert mp.event_name(ev) == "MG_EV_UNKNOWN(%d)" % ev
    names = {mp.event_name(getattr(mp, n)) for n in mp.__all__ if n.startswith("MG_EV_")}
    assert names == {n for n in mp.__all__ if n.startswith("MG_EV_")}


def test_log_set_get_and_logger(caplog):
    old = mp.log_get()
    try:
        for level in (mp.MG_LL_NONE, mp.MG_LL_ERROR, mp.MG_LL_INFO, mp.MG_LL_DEBUG, mp.MG_LL_VERBOSE):
            mp.log_set(level)
            assert mp.log_get() == level
        # Mongoose's own lines go to the "mongoose_py.mongoose" logger (under
        # "mongoose_py"), never stdout.
        mp.log_set(mp.MG_LL_DEBUG)
        with caplog.at_level(logging.DEBUG, logger="mongoose_py"):
            with mp.Manager() as mgr:
                mgr.listen("tcp://127.0.0.1:0")
        assert any(r.name == "mongoose_py.mongoose" and "127.0.0.1" in r.getMessage() for r in caplog.records)
        caplog.clear()
        mp.log_set(mp.MG_LL_NONE)
        with caplog.at_level(logging.DEBUG, logger="mongoose_py"):
            with mp.Manager() as mgr:
                mgr.listen("tcp://127.0.0.1:0")
        assert not [r for r in caplog.records if r.name.startswith("mongoose_py")]
    finally:
        mp.log_set(old)


def test_millis_is_monotonic_ms():
    import time
    a = mp.millis()
    time.sleep(0.05)
    b = mp.millis()
    assert isinstance(a, int) and 40 <= b - a < 5000


def test_random():
    for n in (0, 1, 16, 1000):
        assert len(mp.random_bytes(n)) == n
        s = mp.random_str(n)
        assert len(s) == n and re.fullmatch("[0-9a-zA-Z]*", s)
    assert mp.random_bytes(32) != mp.random_bytes(32)
    assert len(set(mp.random_str(20) for _ in range(20))) == 20
    for fn in (mp.random_bytes, mp.random_str):
        with pytest.raises((ValueError, OverflowError)):
            fn(-1)


# ---------------------------------------------------------------- never crash

CLEAN = (ValueError, TypeError, UnicodeError, OverflowError)


@PROPS
@given(st.binary(max_size=300), st.binary(max_size=40), st.integers(-10, 400))
def test_arbitrary_bytes_never_crash(data, other, n):
    text = data.decode("utf-8", "replace")
    path = "$" + other.decode("latin-1").replace("\x00", "")
    calls = [
        lambda: mp.json_get(data, path), lambda: mp.json_get_num(data, path), lambda: mp.json_get_bool(data, path),
        lambda: mp.json_get_long(data, path), lambda: mp.json_get_str(data, path),
        lambda: mp.url_encode(text), lambda: mp.url_port(text), lambda: mp.url_host(text),
        lambda: mp.url_user(text), lambda: mp.url_pass(text), lambda: mp.url_uri(text), lambda: mp.url_is_ssl(text),
        lambda: mp.match(data, other), lambda: mp.http_var(data, other), lambda: mp.http_parse_multipart(data, n),
        lambda: mp.base64_decode(data), lambda: mp.base64_encode(data), lambda: mp.crc32(data, n),
        lambda: mp.md5(data), lambda: mp.sha1(data), lambda: mp.sha256(data), lambda: mp.hmac_sha256(other, data),
        lambda: mp.event_name(n),
    ]
    for call in calls:
        try:
            call()
        except CLEAN:
            pass


@FEW
@given(st.text(alphabet='{}[]":,0123456789.-+eEtrufalsn\\ u', max_size=120),
       st.text(alphabet="$.[]0123456789abc", max_size=12))
def test_json_structured_garbage_never_crashes(doc, path):
    for fn in (mp.json_get, mp.json_get_num, mp.json_get_bool, mp.json_get_long, mp.json_get_str):
        try:
            fn(doc, path)
        except CLEAN:
            pass
