"""Property tests (hypothesis) for the HTTP codec paths, through real sockets:

* random header names/values and random body bytes through ``conn.reply`` and
  back through http.client (and byte-exact through a raw socket);
* random query strings through ``msg.query_var``, compared with
  ``urllib.parse.parse_qs``.

``query_var`` versus ``parse_qs`` (Mongoose's ``mg_http_get_var`` +
``mg_url_decode(..., is_form_url_encoded=1)``). They agree on decoding: ``+`` is
a space, ``%XY`` is byte XY, the bytes are UTF-8 (surrogateescape), and only
``&`` separates entries (``;`` does not, as in ``parse_qs`` since Python 3.9.2).
They differ in three ways, which the tests state explicitly:

1. Names are compared raw (not URL-decoded) and ASCII case-insensitively
   (``mg_ncasecmp``); ``parse_qs`` decodes names and is case-sensitive.
   The first matching entry wins (``parse_qs(...)[name][0]`` likewise).
2. An empty value (``a=``, or ``a`` without ``=``) gives ``None`` (cymongoose
   behaviour); ``parse_qs`` drops it, or gives ``''`` with ``keep_blank_values``.
3. A malformed escape (``%zz``, ``%4``, a trailing ``%``) makes Mongoose's decoder
   fail (-3) and ``query_var`` raise ``ValueError``; ``parse_qs`` keeps the text.
   (The binding's message then says "longer than 2048 bytes", which is
   misleading for this case.)
"""
from __future__ import annotations

import http.client
import json
import random
import re
import socket
import threading
from urllib.parse import parse_qs, quote, quote_plus, unquote_plus

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mongoose_py import MG_EV_HTTP_MSG

TIMEOUT = 15
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])

TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
ASCII_PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
# any character but controls (CR, LF, NUL, ... are category Cc), surrogates and
# the Unicode line/paragraph separators
UNICODE_PRINTABLE = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"))
# large bodies (past Mongoose's 16 KiB send chunk and the 4 KiB stack buffer of
# the reply shim) from a random seed: generating them byte by byte is slow
BIG_BODIES = st.integers(0, 2 ** 32).map(lambda seed: random.Random(seed).randbytes(60000 + seed % 10000))


def header_dicts(values):
    # "X-" names: never Content-Length/-Type or Transfer-Encoding, which reply() treats specially
    names = st.text(alphabet=TCHAR, min_size=1, max_size=20).map(lambda s: "X-" + s)
    return st.dictionaries(names, values, max_size=6).filter(
        lambda d: len({k.lower() for k in d}) == len(d))


def read_raw_response(f):
    """One response from a binary file: (status, [raw header lines], body). Exact bytes."""
    status = int(f.readline().split(b" ")[1])
    lines = []
    while True:
        line = f.readline()
        assert line.endswith(b"\r\n"), line
        if line == b"\r\n":
            break
        lines.append(line[:-2])
    length = [int(l.split(b":", 1)[1]) for l in lines if l.lower().startswith(b"content-length:")]
    assert len(length) == 1, lines
    body = f.read(length[0])
    assert len(body) == length[0]
    return status, lines, body


class Box:
    """What the next reply must carry; set by the test thread, read by the loop thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.status = 200
        self.headers = {}
        self.error = None


def reply_app(box):
    def handler(conn, ev, msg):
        if ev == MG_EV_HTTP_MSG:
            with box.lock:
                status, headers = box.status, box.headers
            try:
                conn.reply(status, msg.body_bytes, headers)     # the request body, echoed
            except Exception as exc:  # reported to the test thread
                box.error = exc
                conn.reply(599, b"")
    return handler


# --------------------------------------------------------------------------
# headers and bodies through reply()
# --------------------------------------------------------------------------

def test_random_headers_and_bodies_through_reply_http_client(serve):
    box = Box()
    _, _, port = serve(reply_app(box))
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)

    @settings(max_examples=150, **SETTINGS)
    @given(headers=header_dicts(st.text(alphabet=ASCII_PRINTABLE | st.just("\t"), max_size=120)),
           body=st.binary(max_size=3000) | BIG_BODIES,
           status=st.sampled_from([200, 201, 202, 206, 400, 403, 404, 409, 418, 500, 503]))
    def check(headers, body, status):
        with box.lock:
            box.status, box.headers = status, headers
        c.request("POST", "/", body=body, headers={"Content-Type": "application/octet-stream"})
        r = c.getresponse()
        got = r.read()
        assert box.error is None, box.error
        assert r.status == status
        assert got == body
        assert r.msg.get_all("Content-Length") == [str(len(body))]
        for name, value in headers.items():
            # http.client strips the optional whitespace before a value (RFC 9110 OWS)
            assert r.msg.get_all(name) == [value.lstrip(" \t")], name
        assert not r.will_close

    try:
        check()
    finally:
        c.close()


def test_random_unicode_headers_byte_exact_on_the_wire(serve):
    """Any printable Unicode value goes out UTF-8 encoded, byte for byte.

    Checked on a raw socket: http.client decodes header bytes as latin-1 and its
    email parser splits on bytes such as 0x85, so it cannot judge non-ASCII."""
    box = Box()
    _, _, port = serve(reply_app(box))
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    f = sock.makefile("rb")

    @settings(max_examples=150, **SETTINGS)
    @given(headers=header_dicts(st.text(alphabet=UNICODE_PRINTABLE, max_size=60)),
           body=st.binary(max_size=2000))
    def check(headers, body):
        with box.lock:
            box.status, box.headers = 200, headers
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        status, lines, got = read_raw_response(f)
        assert box.error is None, box.error
        assert status == 200 and got == body
        for name, value in headers.items():
            assert ("%s: %s" % (name, value)).encode("utf-8") in lines, (name, value, lines)

    try:
        check()
    finally:
        f.close()
        sock.close()


def test_header_values_with_cr_lf_nul_are_refused(serve):
    box = Box()
    _, _, port = serve(reply_app(box))
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    evil = st.tuples(st.text(alphabet=ASCII_PRINTABLE, max_size=20), st.sampled_from(["\r", "\n", "\0", "\r\n "]),
                     st.text(alphabet=ASCII_PRINTABLE, max_size=20)).map("".join)

    @settings(max_examples=60, **SETTINGS)
    @given(value=evil, in_name=st.booleans())
    def check(value, in_name):
        # a value ending in exactly one CRLF is accepted as a line end (the seed README's style)
        assume(in_name or not re.fullmatch(r"[^\r\n\0]*\r\n", value))
        headers = {"X-" + value: "v"} if in_name else {"X-Evil": value}
        with box.lock:
            box.status, box.headers = 200, headers
        box.error = None
        c.request("GET", "/")
        r = c.getresponse()
        r.read()
        assert isinstance(box.error, ValueError), box.error
        assert r.status == 599                     # the refused reply sent nothing
        assert r.getheader("X-Evil") is None

    try:
        check()
    finally:
        c.close()


# --------------------------------------------------------------------------
# query strings through query_var
# --------------------------------------------------------------------------

def query_app(conn, ev, msg):
    if ev == MG_EV_HTTP_MSG:
        out = {}
        for name in (msg.header("X-Names") or "").split(","):
            try:
                out[name] = {"value": msg.query_var(name)}
            except ValueError:
                out[name] = {"error": "ValueError"}
        conn.reply_json({"query": msg.query, "vars": out})


def ask(c, query, names):
    c.request("GET", "/q?" + query if query else "/q", headers={"X-Names": ",".join(names)})
    r = c.getresponse()
    data = json.loads(r.read())
    assert r.status == 200
    assert data["query"] == query
    return {n: v.get("value", v) for n, v in data["vars"].items()}


_ESCAPE_OK = re.compile(r"%[0-9A-Fa-f]{2}")


def mongoose_model(query, name):
    """What mg_http_get_var + query_var do (see the module docstring)."""
    for entry in query.split("&"):
        if not entry:
            continue
        key, _, value = entry.partition("=")
        if key.lower() == name.lower() and len(key) == len(name):      # raw, ASCII case-insensitive
            if "%" in _ESCAPE_OK.sub("", value):
                return {"error": "ValueError"}                          # difference 3
            decoded = unquote_plus(value, errors="surrogateescape")
            return decoded or None                                      # difference 2
    return None


def encode_value(text, how):
    if how == "plus":
        return quote_plus(text, safe="")
    if how == "percent":
        return quote(text, safe="")
    # "minimal": leave everything literal that cannot be mistaken for syntax
    return quote(text, safe="!$'()*,/:;@~=?")


def test_random_well_formed_queries_match_parse_qs(serve):
    _, _, port = serve(query_app)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=6)
    pairs = st.lists(st.tuples(keys, st.text(max_size=40), st.sampled_from(["plus", "percent", "minimal"]),
                               st.booleans()), max_size=8)

    @settings(max_examples=150, **SETTINGS)
    @given(pairs=pairs, extra_amps=st.booleans())
    def check(pairs, extra_amps):
        parts = []
        for k, v, how, with_eq in pairs:
            parts.append(k + "=" + encode_value(v, how) if (with_eq or v) else k)
        query = ("&&" if extra_amps else "&").join(parts)
        names = sorted({k for k, _, _, _ in pairs} | {"missing"})
        got = ask(c, query, names)
        expected_qs = parse_qs(query, keep_blank_values=True, encoding="utf-8", errors="surrogateescape")
        for n in names:
            first = expected_qs.get(n, [""])[0]
            # same decoding and first-wins as parse_qs; an empty value is None (difference 2)
            assert got[n] == (first or None), (query, n)
            assert got[n] == mongoose_model(query, n)

    try:
        check()
    finally:
        c.close()


def test_random_raw_queries_follow_mongoose_rules(serve):
    """Arbitrary (also malformed) query strings: query_var behaves as the model
    of Mongoose's rules; where none of the documented differences applies, it
    equals parse_qs."""
    _, _, port = serve(query_app)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    alphabet = "aAbB=&+%0123456789cdefxXZ.-_~"
    names = ["a", "b", "A", "ab", "aB", "x"]

    @settings(max_examples=200, **SETTINGS)
    @given(query=st.text(alphabet=alphabet, max_size=50))
    def check(query):
        got = ask(c, query, names)
        pq = parse_qs(query, keep_blank_values=True, encoding="utf-8", errors="surrogateescape")
        for n in names:
            model = mongoose_model(query, n)
            assert got[n] == model, (query, n)
            # The differences, stated: the first entry whose RAW key equals n
            # ASCII-case-insensitively is the one Mongoose reads.
            raw_keys = [e.partition("=")[0] for e in query.split("&") if e]
            first_ci = next((k for k in raw_keys if k.lower() == n.lower()), None)
            exact_decoded = [unquote_plus(k, errors="surrogateescape") for k in raw_keys]
            comparable = (
                first_ci == n                                   # not a case-insensitive match (difference 1)
                and exact_decoded.index(n) == raw_keys.index(n)  # no earlier key that only decodes to n
                and not (isinstance(model, dict))                # no malformed escape (difference 3)
            )
            if comparable:
                assert got[n] == (pq[n][0] or None), (query, n)  # empty -> None (difference 2)
            elif first_ci is None and n not in pq:
                assert got[n] is None, (query, n)

    try:
        check()
    finally:
        c.close()


def test_query_var_documented_differences_from_parse_qs(serve):
    """The three differences, one concrete example each, and two shared rules."""
    _, _, port = serve(query_app)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        # 1. raw, case-insensitive names
        assert ask(c, "A=1&a=2", ["a"]) == {"a": "1"}
        assert parse_qs("A=1&a=2")["a"] == ["2"]
        assert ask(c, "%61=1", ["a"]) == {"a": None}
        assert parse_qs("%61=1") == {"a": ["1"]}
        # 2. empty values
        assert ask(c, "a=&b", ["a", "b"]) == {"a": None, "b": None}
        assert parse_qs("a=&b", keep_blank_values=True) == {"a": [""], "b": [""]}
        # 3. malformed escapes
        assert ask(c, "a=%zz&b=%4&c=50%", ["a", "b", "c"]) == {
            "a": {"error": "ValueError"}, "b": {"error": "ValueError"}, "c": {"error": "ValueError"}}
        assert parse_qs("a=%zz&b=%4&c=50%") == {"a": ["%zz"], "b": ["%4"], "c": ["50%"]}
        # shared: ';' is not a separator; '+' is a space, '%2B' a plus
        assert ask(c, "a=1;b=2&c=x+y%2Bz", ["a", "b", "c"]) == {"a": "1;b=2", "b": None, "c": "x y+z"}
        assert parse_qs("a=1;b=2&c=x+y%2Bz") == {"a": ["1;b=2"], "c": ["x y+z"]}
        # non-UTF-8 bytes: surrogateescape in both
        assert ask(c, "a=%ff%00", ["a"]) == {"a": "\udcff\x00"}
    finally:
        c.close()
