"""HTTP server against real clients: curl, http.client and raw sockets.

Every test runs the same small application (``App``) behind a real listener on
127.0.0.1 (port 0).  The ``app_server`` fixture serves it in both handler
styles: a cymongoose-style handler function (``Manager(handler)`` or
``listen(url, handler)``) and a ``Connection`` subclass with ``on_http_msg``.
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import json
import random
import socket
import subprocess
import threading

import pytest

from conftest import require_tool, wait_for
from mongoose_py import MG_EV_HTTP_MSG, Connection

MIB = 1024 * 1024
TIMEOUT = 15


# --------------------------------------------------------------------------
# helpers: curl, raw-socket HTTP/1.1 response reader
# --------------------------------------------------------------------------

def curl(*args, timeout=30):
    """Run curl once (bounded by --max-time and ``timeout``); returns CompletedProcess."""
    exe = require_tool("curl")
    return subprocess.run([exe, "-sS", "--max-time", "20"] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)


def big_payload(n=MIB, seed=1):
    """Deterministic binary payload with every byte value (NULs included)."""
    return random.Random(seed).getrandbits(8 * n).to_bytes(n, "little")


def read_response(f):
    """Read one HTTP/1.1 response from a binary file object (``sock.makefile("rb")``).

    Returns ``(status, [(name, raw_value)], body)``; the body is read by
    Content-Length or de-chunked, never "until close".
    """
    status_line = f.readline()
    if not status_line:
        raise EOFError("connection closed before a response")
    proto, code, _ = status_line.decode("latin-1").split(" ", 2)
    assert proto == "HTTP/1.1", status_line
    headers = []
    while True:
        line = f.readline()
        assert line.endswith(b"\r\n"), "header line must end with CRLF: %r" % line
        if line == b"\r\n":
            break
        name, sep, value = line[:-2].decode("latin-1").partition(":")
        assert sep, line
        headers.append((name, value))
    lower = {k.lower(): v.strip() for k, v in headers}
    if lower.get("transfer-encoding", "").lower() == "chunked":
        assert "content-length" not in lower, "chunked response with a Content-Length"
        body = b""
        while True:
            size = int(f.readline().split(b";")[0].strip(), 16)
            if size == 0:
                assert f.readline() == b"\r\n"
                break
            body += f.read(size)
            assert f.read(2) == b"\r\n"
    else:
        n = int(lower["content-length"])
        body = f.read(n)
        assert len(body) == n
    return int(code), headers, body


def header_map(headers):
    return {k.lower(): v.strip() for k, v in headers}


def raw_request(port, data, count=1):
    """Write ``data`` in ONE sendall on a fresh socket and read ``count`` responses."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(data)
        f = s.makefile("rb")
        try:
            return [read_response(f) for _ in range(count)]
        finally:
            f.close()


def client(port):
    return http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)


# --------------------------------------------------------------------------
# the application under test, in both handler styles
# --------------------------------------------------------------------------

class App:
    """Routes used by the tests. ``seen`` records (conn.id, method, uri, body length)."""

    def __init__(self):
        self.seen = []
        self.caught = []
        self.conn_types = []
        self.lock = threading.Lock()

    def __call__(self, conn, msg):
        uri = msg.uri
        with self.lock:
            self.seen.append((conn.id, msg.method, uri, len(msg.body_bytes)))
            self.conn_types.append(type(conn))
        route = getattr(self, "r_" + uri.strip("/").replace("/", "_"), None)
        if route is None:
            conn.reply(404, "no route %s\n" % uri)
        else:
            route(conn, msg)

    def r_echo(self, conn, msg):
        body = msg.body_bytes
        conn.reply(200, body, {"Content-Type": "application/octet-stream", "X-Method": msg.method,
                               "X-Conn": str(conn.id), "X-Sha": hashlib.sha256(body).hexdigest()})

    def r_big(self, conn, msg):
        conn.reply(200, big_payload(int(msg.query_var("n") or MIB)),
                   {"Content-Type": "application/octet-stream"})

    def r_binary(self, conn, msg):
        conn.reply(200, b"ab\x00cd\x00\x00\xff\x00")

    def r_unicode(self, conn, msg):
        conn.reply(200, "h\u00e9llo \u20ac")

    def r_conn(self, conn, msg):
        conn.reply(200, str(conn.id))

    def r_query(self, conn, msg):
        names = [n for n in (msg.header("X-Names") or "").split(",") if n]
        conn.reply_json({"uri": msg.uri, "query": msg.query,
                         "vars": {n: msg.query_var(n) for n in names}})

    def r_headers(self, conn, msg):
        conn.reply_json({"headers": msg.headers(), "one": msg.header("x-ONE"),
                         "missing": msg.header("X-Missing"), "dflt": msg.header("X-Missing", "dflt")})

    def r_reply_headers(self, conn, msg):
        conn.reply(202, "h", {"X-Alpha": "1", "X-Beta": "two words", "Cache-Control": "no-store",
                              "X-Number": 42, "Content-Length": "999"})

    def r_inject(self, conn, msg):
        bad = [
            {"X-Evil": "a\r\nSet-Cookie: pwned=1"},
            {"X-Evil": "a\nSet-Cookie: pwned=1"},
            {"X-Evil": "a\rb"},
            {"X-Evil": "a\0b"},
            {"X-Evil\r\nSet-Cookie": "pwned=1"},
            {"X-Evil\n": "1"},
        ]
        for h in bad:
            try:
                conn.reply(200, "injected", h)
            except ValueError:
                self.caught.append(("reply", sorted(h)))
        try:
            conn.reply_json({"x": 1}, 200, {"X-Evil": "a\r\nSet-Cookie: pwned=1"})
        except ValueError:
            self.caught.append(("reply_json", None))
        conn.reply(200, "clean", {"X-Clean": "yes"})

    def r_json(self, conn, msg):
        conn.reply_json({"n": 1, "list": [1, "two", None], "nested": {"ok": True}}, 201,
                        {"X-Extra": "e", "content-type": "text/html"})

    def r_boom(self, conn, msg):
        raise RuntimeError("handler failure (expected by the test)")

    def r_half(self, conn, msg):
        conn.reply(200, "complete")
        raise RuntimeError("raised after a complete reply (expected by the test)")

    def r_half_chunked(self, conn, msg):
        conn.reply(200, "", {"Transfer-Encoding": "chunked"})
        conn.http_chunk(b"first part, then the handler fails")
        raise RuntimeError("raised in the middle of a chunked reply (expected by the test)")

    def r_creds(self, conn, msg):
        conn.reply_json({"creds": msg.credentials()})

    def r_chunked(self, conn, msg):
        conn.reply(200, b"", {"Transfer-Encoding": "chunked", "Content-Type": "application/octet-stream"})
        for part in CHUNKS:
            conn.http_chunk(part)
        conn.http_chunk(b"")

    def r_chunked_timer(self, conn, msg):
        """Chunks written later, from timers on the loop thread (a real stream)."""
        conn.reply(200, "start|", {"Transfer-Encoding": "chunked"})
        parts = [b"one|", b"two|", b"three|", b""]
        mgr = conn.manager

        def step():
            if not conn.is_closing:
                conn.http_chunk(parts.pop(0))
            if parts:
                mgr.timer_add(10, step)
        mgr.timer_add(10, step)

    def r_sse(self, conn, msg):
        conn.reply(200, "", {"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                             "Transfer-Encoding": "chunked"})
        conn.http_sse("greeting", "hello")
        conn.http_sse("multi", "line one\nline two\r\nline three")
        conn.http_sse("", "no event type")
        try:
            conn.http_sse("bad\nevent", "x")
        except ValueError:
            self.caught.append(("sse", None))
        conn.http_chunk(b"")


CHUNKS = [b"alpha", b"\x00\x01\x02 binary \x00", b"x" * 70000, "unicode \u20ac".encode("utf-8")]


def make_subclass(app):
    class AppConnection(Connection):
        def on_http_msg(self, msg):
            app(self, msg)
    return AppConnection


def make_handler(app):
    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            app(conn, data)
    return handler


STYLES = ["listen_handler", "manager_handler", "subclass", "manager_class"]


def start_app(serve, style, app, **manager_kwargs):
    if style == "listen_handler":
        return serve(make_handler(app), manager_kwargs=manager_kwargs)
    if style == "manager_handler":
        return serve(manager_kwargs=dict(manager_kwargs, handler=make_handler(app)))
    if style == "subclass":
        return serve(connection_class=make_subclass(app), manager_kwargs=manager_kwargs)
    if style == "manager_class":
        return serve(manager_kwargs=dict(manager_kwargs, connection_class=make_subclass(app)))
    raise AssertionError(style)


@pytest.fixture(params=["handler", "subclass"])
def app_server(request, serve):
    """``(app, port)``: the App served by a handler function or by a Connection subclass."""
    app = App()
    style = "listen_handler" if request.param == "handler" else "subclass"
    _, _, port = start_app(serve, style, app)
    return app, port


@pytest.fixture
def app_once(serve):
    """The App behind a handler function only (for the slow, timeout-bound tests)."""
    app = App()
    _, _, port = start_app(serve, "listen_handler", app)
    return app, port


# --------------------------------------------------------------------------
# handler styles
# --------------------------------------------------------------------------

@pytest.mark.parametrize("style", STYLES)
def test_every_handler_style_serves_requests(serve, style):
    app = App()
    mgr, listener, port = start_app(serve, style, app)
    c = client(port)
    c.request("POST", "/echo", body=b"style " + style.encode())
    r = c.getresponse()
    assert (r.status, r.read()) == (200, b"style " + style.encode())
    assert r.getheader("X-Method") == "POST"
    assert app.seen == [(int(r.getheader("X-Conn")), "POST", "/echo", len("style " + style))]
    c.close()
    if style in ("subclass", "manager_class"):
        assert type(listener).__name__ == "AppConnection"
        assert [t.__name__ for t in app.conn_types] == ["AppConnection"]   # accepted: the listener's class
    else:
        assert app.conn_types == [Connection]


# --------------------------------------------------------------------------
# keep-alive and pipelining
# --------------------------------------------------------------------------

def test_keep_alive_http_client(app_server):
    app, port = app_server
    c = client(port)
    ids = []
    for i in range(6):
        c.request("POST", "/echo", body=b"request %d" % i)
        r = c.getresponse()
        assert r.status == 200
        assert r.read() == b"request %d" % i
        assert not r.will_close
        ids.append(r.getheader("X-Conn"))
    c.close()
    assert len(set(ids)) == 1, "every request must arrive on the same connection: %r" % ids
    assert [s[2] for s in app.seen] == ["/echo"] * 6


def test_keep_alive_curl(app_server):
    app, port = app_server
    urls = ["http://127.0.0.1:%d/conn" % port] * 4
    r = curl("-w", "|%{http_code} %{num_connects}\n", *urls)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert len(lines) == 4
    bodies, codes, connects = [], [], []
    for line in lines:
        body, _, tail = line.partition("|")
        code, n = tail.split()
        bodies.append(body), codes.append(code), connects.append(int(n))
    assert codes == ["200"] * 4
    assert connects == [1, 0, 0, 0], "curl had to reconnect: %r" % connects
    assert len(set(bodies)) == 1 and bodies[0] == str(app.seen[0][0])


def test_pipelined_requests_answered_in_order(app_server):
    app, port = app_server
    reqs = []
    for i in range(12):
        if i % 3 == 0:
            body = b"body-%d-" % i + b"\x00" * i
            reqs.append(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        elif i % 3 == 1:
            reqs.append(b"GET /query?a=%d HTTP/1.1\r\nHost: x\r\nX-Names: a\r\n\r\n" % i)
        else:
            reqs.append(b"GET /conn HTTP/1.1\r\nHost: x\r\n\r\n")
    responses = raw_request(port, b"".join(reqs), count=len(reqs))
    conn_ids = set()
    for i, (status, headers, body) in enumerate(responses):
        assert status == 200
        if i % 3 == 0:
            assert body == b"body-%d-" % i + b"\x00" * i
            conn_ids.add(header_map(headers)["x-conn"])
        elif i % 3 == 1:
            assert json.loads(body)["vars"] == {"a": str(i)}
        else:
            conn_ids.add(body.decode())
    assert len(conn_ids) == 1
    assert len(app.seen) == 12


def test_pipelined_requests_split_across_writes(app_server):
    """A pipeline whose bytes arrive in odd fragments is still parsed request by request."""
    app, port = app_server
    data = b"".join(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n%03d" % i for i in range(5))
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for k in range(0, len(data), 37):
            s.sendall(data[k:k + 37])
        f = s.makefile("rb")
        bodies = [read_response(f)[2] for _ in range(5)]
        f.close()
    assert bodies == [b"%03d" % i for i in range(5)]


# --------------------------------------------------------------------------
# bodies: 1 MiB both ways, binary
# --------------------------------------------------------------------------

def test_one_mib_request_body_echoed_http_client(app_server):
    app, port = app_server
    payload = big_payload(MIB, seed=2)
    c = client(port)
    c.request("POST", "/echo", body=payload, headers={"Content-Type": "application/octet-stream"})
    r = c.getresponse()
    body = r.read()
    assert r.status == 200
    assert int(r.getheader("Content-Length")) == MIB
    assert r.getheader("X-Sha") == hashlib.sha256(payload).hexdigest()
    assert body == payload
    # the connection is still usable afterwards
    c.request("GET", "/conn")
    assert c.getresponse().read() == r.getheader("X-Conn").encode()
    c.close()


def test_one_mib_request_body_echoed_curl(app_server, tmp_path):
    app, port = app_server
    payload = big_payload(MIB, seed=3)
    src = tmp_path / "up.bin"
    src.write_bytes(payload)
    out = tmp_path / "down.bin"
    # "Expect:" disables curl's 100-continue wait (Mongoose never sends 100 Continue)
    r = curl("-H", "Expect:", "--data-binary", "@%s" % src, "-o", str(out), "-w", "%{http_code}",
             "http://127.0.0.1:%d/echo" % port)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"200"
    assert out.read_bytes() == payload


def test_one_mib_response_http_client_and_curl(app_server, tmp_path):
    app, port = app_server
    expected = big_payload(MIB)
    c = client(port)
    c.request("GET", "/big")
    r = c.getresponse()
    assert r.status == 200 and int(r.getheader("Content-Length")) == MIB
    assert r.read() == expected
    c.close()
    out = tmp_path / "big.bin"
    r = curl("-o", str(out), "-w", "%{http_code} %{size_download}", "http://127.0.0.1:%d/big" % port)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == "200 %d" % MIB
    assert out.read_bytes() == expected


def test_binary_bodies_with_nul_bytes(app_server):
    app, port = app_server
    c = client(port)
    c.request("GET", "/binary")
    r = c.getresponse()
    assert r.getheader("Content-Length") == "9"
    assert r.read() == b"ab\x00cd\x00\x00\xff\x00"
    every_byte = bytes(range(256)) * 4
    c.request("POST", "/echo", body=every_byte)
    r = c.getresponse()
    assert r.getheader("Content-Length") == "1024"
    assert r.read() == every_byte
    c.request("POST", "/echo", body=b"\x00")
    r = c.getresponse()
    assert (r.getheader("Content-Length"), r.read()) == ("1", b"\x00")
    c.request("POST", "/echo", body=b"")
    r = c.getresponse()
    assert (r.getheader("Content-Length"), r.read()) == ("0", b"")
    c.close()


def test_str_body_is_utf8_with_byte_content_length(app_server):
    app, port = app_server
    c = client(port)
    c.request("GET", "/unicode")
    r = c.getresponse()
    assert r.getheader("Content-Length") == "10"
    assert r.read().decode("utf-8") == "h\u00e9llo \u20ac"
    c.close()


def test_reply_sends_exactly_one_exact_content_length(app_server):
    app, port = app_server
    (status, headers, body), = raw_request(port, b"GET /reply_headers HTTP/1.1\r\nHost: x\r\n\r\n")
    lengths = [v for k, v in headers if k.lower() == "content-length"]
    assert lengths == [" 1"], "user Content-Length must be replaced by the exact one: %r" % headers
    assert status == 202 and body == b"h"


# --------------------------------------------------------------------------
# concurrency
# --------------------------------------------------------------------------

def test_one_hundred_concurrent_clients(app_server):
    app, port = app_server
    n = 100
    barrier = threading.Barrier(n, timeout=TIMEOUT)
    results, errors = {}, []

    def worker(i):
        try:
            c = client(port)
            c.connect()
            barrier.wait()
            got = []
            for k in range(2):
                payload = b"client %d request %d " % (i, k) + bytes([i, k, 0]) * 50
                c.request("POST", "/echo", body=payload)
                r = c.getresponse()
                got.append((r.status, r.read() == payload, r.getheader("X-Conn")))
            c.close()
            results[i] = got
        except Exception as exc:  # reported below
            errors.append((i, repr(exc)))

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT * 2)
    assert not any(t.is_alive() for t in threads), "clients hung"
    assert not errors, errors[:5]
    assert len(results) == n
    conn_ids = set()
    for i, got in results.items():
        assert [(s, ok) for s, ok, _ in got] == [(200, True), (200, True)], (i, got)
        assert got[0][2] == got[1][2], "a client's two requests must share its connection"
        conn_ids.add(got[0][2])
    assert len(conn_ids) == n
    assert len(app.seen) == 2 * n


# --------------------------------------------------------------------------
# query variables and headers
# --------------------------------------------------------------------------

def test_query_vars_url_decoded(app_server):
    app, port = app_server
    c = client(port)
    q = "a=1&b=hello%20world&c=x+y&d=&e=%E2%82%AC&f=a%2Bb%3Dc%26d&g=%41%42c&dup=first&dup=second&flag"
    names = "a,b,c,d,e,f,g,dup,flag,missing,A"
    c.request("GET", "/query?" + q, headers={"X-Names": names})
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Content-Type") == "application/json"
    data = json.loads(r.read())
    assert data["uri"] == "/query"
    assert data["query"] == q
    assert data["vars"] == {
        "a": "1", "b": "hello world", "c": "x y",
        "d": None,            # empty value -> None (cymongoose behaviour)
        "e": "\u20ac", "f": "a+b=c&d", "g": "ABc",
        "dup": "first",       # the first occurrence wins
        "flag": None,         # a name without "=" is an empty value
        "missing": None,
        "A": "1",             # Mongoose matches names case-insensitively
    }
    c.request("GET", "/query", headers={"X-Names": "a"})
    data = json.loads(c.getresponse().read())
    assert data == {"uri": "/query", "query": "", "vars": {"a": None}}
    c.request("GET", "/query?a=" + "%41" * 2047, headers={"X-Names": "a"})
    assert json.loads(c.getresponse().read())["vars"] == {"a": "A" * 2047}
    c.close()


def test_query_var_malformed_or_too_long_raises_in_handler(serve):
    caught = []

    def handler(conn, ev, msg):
        if ev == MG_EV_HTTP_MSG:
            for name in ("bad", "long"):
                try:
                    msg.query_var(name)
                except ValueError as exc:
                    caught.append(str(exc))
            conn.reply(200, repr(msg.query_var("good")))

    _, _, port = serve(handler)
    c = client(port)
    c.request("GET", "/?bad=%zz&good=%41&long=" + "x" * 2048)
    assert c.getresponse().read() == b"'A'"
    c.close()
    assert len(caught) == 2 and "bad" in caught[0] and "long" in caught[1]


def test_request_headers_header_and_headers(app_server):
    app, port = app_server
    c = client(port)
    c.putrequest("GET", "/headers", skip_host=True, skip_accept_encoding=True)
    c.putheader("Host", "example.test")
    c.putheader("X-One", "value one")
    c.putheader("X-Two", "  padded value\t")
    c.putheader("X-Utf8", "caf\u00e9".encode("utf-8"))
    c.endheaders()
    r = c.getresponse()
    data = json.loads(r.read())
    assert [tuple(h) for h in data["headers"]] == [
        ("Host", "example.test"), ("X-One", "value one"), ("X-Two", "padded value"),
        ("X-Utf8", "caf\u00e9")]
    assert data["one"] == "value one"          # case-insensitive name lookup
    assert data["missing"] is None and data["dflt"] == "dflt"
    c.close()


def test_curl_custom_headers_reach_the_handler(app_server):
    app, port = app_server
    r = curl("-H", "X-One: from curl", "-H", "X-Other: 2", "http://127.0.0.1:%d/headers" % port)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["one"] == "from curl"
    assert ["X-Other", "2"] in data["headers"]
    assert any(k == "User-Agent" and v.startswith("curl/") for k, v in data["headers"])


def test_reply_headers_reach_the_client(app_server):
    app, port = app_server
    c = client(port)
    c.request("GET", "/reply_headers")
    r = c.getresponse()
    assert r.status == 202 and r.reason == "Accepted"
    assert r.read() == b"h"
    assert r.getheader("X-Alpha") == "1"
    assert r.getheader("X-Beta") == "two words"
    assert r.getheader("Cache-Control") == "no-store"
    assert r.getheader("X-Number") == "42"
    assert r.getheader("Content-Type") == "text/plain"    # added when not given
    assert r.msg.get_all("Content-Length") == ["1"]
    c.close()


def test_header_injection_raises_value_error_and_sends_nothing(app_server):
    app, port = app_server
    c = client(port)
    c.request("GET", "/inject")
    r = c.getresponse()
    assert r.status == 200
    assert r.read() == b"clean"
    assert r.getheader("X-Clean") == "yes"
    assert r.getheader("Set-Cookie") is None and r.getheader("X-Evil") is None
    assert len(app.caught) == 7, app.caught
    assert app.caught[-1] == ("reply_json", None)
    # nothing of the refused replies leaked onto the wire: the next response is the next request's
    c.request("GET", "/conn")
    r2 = c.getresponse()
    assert r2.status == 200 and r2.read().isdigit()
    c.close()


def test_reply_json(app_server):
    app, port = app_server
    c = client(port)
    c.request("GET", "/json")
    r = c.getresponse()
    raw = r.read()
    assert r.status == 201
    assert r.getheader("Content-Type") == "application/json"   # forced, the user's text/html is dropped
    assert r.msg.get_all("Content-Type") == ["application/json"]
    assert r.getheader("X-Extra") == "e"
    assert json.loads(raw) == {"n": 1, "list": [1, "two", None], "nested": {"ok": True}}
    assert int(r.getheader("Content-Length")) == len(raw)
    c.close()


# --------------------------------------------------------------------------
# failing handlers
# --------------------------------------------------------------------------

def test_raising_handler_gives_500_and_server_keeps_serving(serve):
    app = App()
    errors = []
    _, _, port = start_app(serve, "listen_handler", app, error_handler=errors.append)
    keep = client(port)                 # a keep-alive client opened before the failure
    keep.request("GET", "/conn")
    keep_id = keep.getresponse().read()
    c = client(port)
    c.request("GET", "/boom")
    r = c.getresponse()
    assert r.status == 500
    assert r.read() == b"Internal Server Error\n"
    assert r.will_close
    c.close()
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError)
    r = curl("-w", "|%{http_code}", "http://127.0.0.1:%d/boom" % port)
    assert r.stdout.endswith(b"|500")
    assert wait_for(lambda: len(errors) == 2)
    # the server and the other client's connection go on
    keep.request("GET", "/conn")
    assert keep.getresponse().read() == keep_id
    keep.close()
    r = curl("-w", "|%{http_code}", "http://127.0.0.1:%d/conn" % port)
    assert r.returncode == 0 and r.stdout.endswith(b"|200")


def test_subclass_hook_that_raises_gives_500(serve):
    class Failing(Connection):
        def on_http_msg(self, msg):
            if msg.uri == "/boom":
                raise KeyError("expected by the test")
            self.reply(200, "fine")

    errors = []
    _, _, port = serve(connection_class=Failing, manager_kwargs={"error_handler": errors.append})
    for path, expected in (("/boom", 500), ("/ok", 200), ("/boom", 500), ("/ok", 200)):
        c = client(port)
        c.request("GET", path)
        assert c.getresponse().status == expected
        c.close()
    assert [type(e) for e in errors] == [KeyError, KeyError]


def test_handler_raising_after_complete_reply_keeps_that_reply(app_server):
    app, port = app_server
    c = client(port)
    c.request("GET", "/half")
    r = c.getresponse()
    assert (r.status, r.read()) == (200, b"complete")
    c.request("GET", "/conn")            # the connection was not poisoned by a stray 500
    r = c.getresponse()
    assert r.status == 200 and r.read().isdigit()
    c.close()


def test_handler_raising_mid_chunked_reply_cuts_the_response(app_server):
    app, port = app_server
    c = client(port)
    c.request("GET", "/half_chunked")
    # The half-written reply is cut (the connection is closed, unsent bytes
    # dropped): the client must see a failure, never a complete response.
    with pytest.raises((http.client.IncompleteRead, http.client.RemoteDisconnected)):
        c.getresponse().read()
    c.close()
    c = client(port)
    c.request("GET", "/conn")
    assert c.getresponse().status == 200
    c.close()


# --------------------------------------------------------------------------
# credentials
# --------------------------------------------------------------------------

def _creds(port, headers=None, path="/creds"):
    c = client(port)
    c.request("GET", path, headers=headers or {})
    data = json.loads(c.getresponse().read())["creds"]
    c.close()
    return None if data is None else tuple(data)


def test_credentials_basic_and_bearer(app_server):
    app, port = app_server
    basic = "Basic " + base64.b64encode(b"alice:s3cr:et").decode()
    assert _creds(port, {"Authorization": basic}) == ("alice", "s3cr:et")
    utf8 = "Basic " + base64.b64encode("j\u00fcrgen:p\u00e4ss".encode("utf-8")).decode()
    assert _creds(port, {"Authorization": utf8}) == ("j\u00fcrgen", "p\u00e4ss")
    assert _creds(port, {"Authorization": "Bearer tok.en-123"}) == ("", "tok.en-123")
    assert _creds(port, {"Authorization": "bearer lower"}) == ("", "lower")
    assert _creds(port, {"Cookie": "a=b; access_token=cookietok; c=d"}) == ("", "cookietok")
    assert _creds(port, path="/creds?access_token=querytok") == ("", "querytok")
    assert _creds(port) is None
    assert _creds(port, {"Authorization": "Basic !!!not-base64"}) is None


def test_credentials_from_curl_basic_and_bearer(app_server):
    app, port = app_server
    url = "http://127.0.0.1:%d/creds" % port
    r = curl("-u", "bob:pa ss:word", url)
    assert json.loads(r.stdout)["creds"] == ["bob", "pa ss:word"]
    r = curl("-H", "Authorization: Bearer abc.def.ghi", url)
    assert json.loads(r.stdout)["creds"] == ["", "abc.def.ghi"]


# --------------------------------------------------------------------------
# chunked responses and server-sent events
# --------------------------------------------------------------------------

def test_http_chunk_read_by_http_client(app_server):
    app, port = app_server
    c = client(port)
    for _ in range(2):                   # twice: the connection survives a chunked reply
        c.request("GET", "/chunked")
        r = c.getresponse()
        assert r.status == 200
        assert r.chunked
        assert r.getheader("Content-Length") is None
        assert r.getheader("Transfer-Encoding") == "chunked"
        assert r.read() == b"".join(CHUNKS)
    c.close()


def test_http_chunk_written_from_timers(app_server):
    app, port = app_server
    c = client(port)
    c.request("GET", "/chunked_timer")
    r = c.getresponse()
    assert r.read() == b"start|one|two|three|"
    c.close()
    r = curl("http://127.0.0.1:%d/chunked_timer" % port)
    assert r.stdout == b"start|one|two|three|"


def test_chunked_wire_format_raw(app_server):
    app, port = app_server
    (status, headers, body), = raw_request(port, b"GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n")
    h = header_map(headers)
    assert h["transfer-encoding"] == "chunked" and "content-length" not in h
    assert body == b"".join(CHUNKS)


def test_http_sse_read_by_raw_socket(app_server):
    app, port = app_server
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(b"GET /sse HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        f = s.makefile("rb")
        status, headers, body = read_response(f)
        f.close()
    h = header_map(headers)
    assert status == 200
    assert h["content-type"] == "text/event-stream"
    assert h["cache-control"] == "no-cache"
    assert body == (b"event: greeting\ndata: hello\n\n"
                    b"event: multi\ndata: line one\ndata: line two\ndata: line three\n\n"
                    b"data: no event type\n\n")
    assert app.caught == [("sse", None)]


def test_http_sse_events_are_one_chunk_each(app_server):
    """Each http_sse() call is exactly one HTTP chunk (a client may parse per chunk)."""
    app, port = app_server
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(b"GET /sse HTTP/1.1\r\nHost: x\r\n\r\n")
        f = s.makefile("rb")
        while f.readline() != b"\r\n":
            pass
        chunks = []
        while True:
            size = int(f.readline().strip(), 16)
            data = f.read(size)
            f.read(2)
            if size == 0:
                break
            chunks.append(data)
        f.close()
    assert chunks == [b"event: greeting\ndata: hello\n\n",
                      b"event: multi\ndata: line one\ndata: line two\ndata: line three\n\n",
                      b"data: no event type\n\n"]


# --------------------------------------------------------------------------
# connection management and protocol details
# --------------------------------------------------------------------------

def _closed_by_server(sock, wait=2.0):
    """True if the server closes ``sock`` (EOF) within ``wait`` seconds."""
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except socket.timeout:
        return False


def test_connection_close_request_is_honoured(app_server):
    app, port = app_server
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(b"GET /conn HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        f = s.makefile("rb")
        status, _, body = read_response(f)
        assert status == 200 and body.isdigit()
        assert f.read() == b"", "the server must close after answering 'Connection: close'"
        f.close()


def test_head_response_has_no_body(app_server):
    app, port = app_server
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(b"HEAD /unicode HTTP/1.1\r\nHost: x\r\n\r\nGET /conn HTTP/1.1\r\nHost: x\r\n\r\n")
        f = s.makefile("rb")
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += f.readline()
        assert b"Content-Length: 10\r\n" in head      # the length the GET would have
        assert f.readline() == b"HTTP/1.1 200 OK\r\n", "HEAD response carried a body"
        f.close()


def test_http10_request_without_keep_alive_is_closed(app_once):
    app, port = app_once
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(b"GET /conn HTTP/1.0\r\n\r\n")
        f = s.makefile("rb")
        status, _, body = read_response(f)
        f.close()
        assert status == 200 and body.isdigit()
        assert _closed_by_server(s)


def test_expect_100_continue_is_answered(app_once):
    app, port = app_once
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        s.settimeout(2.0)
        try:
            interim = s.recv(64)
        except socket.timeout:
            interim = b""
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.settimeout(TIMEOUT)
        s.sendall(b"hello")
        f = s.makefile("rb")
        assert read_response(f)[2] == b"hello"
        f.close()


def test_large_upload_with_curl_expect_default(app_once, tmp_path):
    """curl's default 'Expect: 100-continue' for big bodies still works (after its
    1 s expect timeout, as Mongoose never answers 100)."""
    app, port = app_once
    payload = big_payload(MIB + 1, seed=4)
    src = tmp_path / "up.bin"
    src.write_bytes(payload)
    r = curl("--data-binary", "@%s" % src, "-w", "|%{http_code}", "http://127.0.0.1:%d/echo" % port)
    assert r.returncode == 0, r.stderr
    assert r.stdout == payload + b"|200"
