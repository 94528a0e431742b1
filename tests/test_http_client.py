"""HTTP client (``mgr.connect("http://...")`` / ``http_connect``) against our own
server and against Python's ``http.server`` (ThreadingHTTPServer in a thread).

The client writes its request with ``conn.send(...)`` on MG_EV_CONNECT (there is
no request builder in the API) and reads MG_EV_HTTP_MSG.
"""
from __future__ import annotations

import base64
import hashlib
import http.server
import json
import random
import threading

import pytest

from conftest import pump
from mongoose_py import (
    MG_EV_CLOSE, MG_EV_CONNECT, MG_EV_ERROR, MG_EV_HTTP_MSG, Connection, Manager,
)
from netutil import free_port

MIB = 1024 * 1024
TIMEOUT = 15


def payload(n, seed=5):
    return random.Random(seed).getrandbits(8 * n).to_bytes(n, "little")


def request_bytes(method, path, port, body=b"", headers=None, close=True):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1:%d" % port]
    for k, v in (headers or {}).items():
        lines.append("%s: %s" % (k, v))
    if body or method in ("POST", "PUT"):
        lines.append("Content-Length: %d" % len(body))
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def snapshot(msg):
    """Everything a test checks about a response, read inside the callback."""
    return {"status": msg.status(), "method": msg.method, "uri": msg.uri, "proto": msg.proto,
            "headers": msg.headers(), "body": msg.body_bytes,
            "content_type": msg.header("content-type"), "x_server": msg.header("X-Server")}


class Fetch:
    """A handler-function HTTP client: one or more requests written on CONNECT."""

    def __init__(self, *requests, after_connect=None, expect=None):
        self.requests = requests
        self.after_connect = after_connect
        self.expect = len(requests) if expect is None else expect
        self.responses = []
        self.errors = []
        self.events = []
        self.closed = False

    def __call__(self, conn, ev, data):
        self.events.append(ev)
        if ev == MG_EV_CONNECT:
            for r in self.requests:
                conn.send(r)
            if self.after_connect:
                self.after_connect(conn)
        elif ev == MG_EV_HTTP_MSG:
            self.responses.append(snapshot(data))
            if len(self.responses) == self.expect:
                conn.drain()
        elif ev == MG_EV_ERROR:
            self.errors.append(data)
        elif ev == MG_EV_CLOSE:
            self.closed = True


def run_client(mgr, url, fetch, connect=None):
    conn = (connect or mgr.connect)(url, fetch)
    assert pump(mgr, lambda: fetch.closed, timeout=TIMEOUT), "client did not finish: %r" % fetch.events
    return conn


# --------------------------------------------------------------------------
# servers
# --------------------------------------------------------------------------

def our_app(conn, ev, msg):
    if ev != MG_EV_HTTP_MSG:
        return
    if msg.uri == "/echo":
        body = msg.body_bytes
        conn.reply(200, body, {"X-Server": "mongoose_py", "X-Sha": hashlib.sha256(body).hexdigest(),
                               "Content-Type": "application/octet-stream"})
    elif msg.uri == "/creds":
        conn.reply_json({"creds": msg.credentials(), "auth": msg.header("Authorization")})
    elif msg.uri == "/big":
        conn.reply(200, payload(MIB), {"Content-Type": "application/octet-stream"})
    elif msg.uri == "/chunked":
        conn.reply(200, "", {"Transfer-Encoding": "chunked"})
        for part in (b"one,", b"\x00two,", b"three" * 1000):
            conn.http_chunk(part)
        conn.http_chunk(b"")
    elif msg.uri == "/query":
        conn.reply_json({"q": msg.query, "a": msg.query_var("a")})
    else:
        conn.reply(404, "not here\n", {"X-Server": "mongoose_py"})


@pytest.fixture
def our_port(serve):
    _, _, port = serve(our_app)
    return port


class PyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen = None  # set per server

    def log_message(self, *args):  # keep test output clean
        pass

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, code, body, ctype="text/plain", extra=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Server", "http.server")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.server.seen.append((self.command, self.path, dict(self.headers.items())))
        if self.path == "/hello":
            self._send(200, b"hello from http.server", extra={"X-Multi": "a, b"})
        elif self.path == "/big":
            self._send(200, payload(MIB), "application/octet-stream")
        elif self.path == "/auth":
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
                self._send(200, json.dumps([user, pw]).encode(), "application/json")
            else:
                self._send(401, b"who are you?", extra={"WWW-Authenticate": 'Basic realm="t"'})
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"py-", b"chunk\x00ed-", b"z" * 5000):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/close-delimited":
            # HTTP/1.0 style: no Content-Length, the body ends when the server closes
            self.protocol_version = "HTTP/1.0"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"until the end\x00of the connection")
            self.close_connection = True
        elif self.path == "/redirect":
            self._send(302, b"", extra={"Location": "/hello"})
        else:
            self._send(404, b"nothing at " + self.path.encode())

    def do_POST(self):
        body = self._body()
        self.server.seen.append((self.command, self.path, dict(self.headers.items())))
        self._send(200, body, "application/octet-stream", {"X-Sha": hashlib.sha256(body).hexdigest()})


@pytest.fixture
def py_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PyHandler)
    srv.daemon_threads = True
    srv.seen = []
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    t.join(10)
    assert not t.is_alive()


# --------------------------------------------------------------------------
# against our own server
# --------------------------------------------------------------------------

def test_get_and_post_against_our_server(manager, our_port):
    body = b"client body \x00\x01\x02"
    fetch = Fetch(request_bytes("POST", "/echo", our_port, body, close=False),
                  request_bytes("GET", "/nope", our_port))
    conn = run_client(manager, "http://127.0.0.1:%d/" % our_port, fetch)
    assert not fetch.errors
    r1, r2 = fetch.responses
    assert r1["status"] == 200 and r1["body"] == body
    assert r1["method"] == "HTTP/1.1" and r1["uri"] == "200" and r1["proto"] == "OK"
    assert r1["x_server"] == "mongoose_py" and r1["content_type"] == "application/octet-stream"
    assert ("Content-Length", str(len(body))) in r1["headers"]
    assert r2["status"] == 404 and r2["body"] == b"not here\n"
    assert fetch.events.index(MG_EV_CONNECT) < fetch.events.index(MG_EV_HTTP_MSG)
    assert conn.is_closing and conn.id == 0


def test_client_and_server_in_one_manager(manager):
    listener = manager.listen("http://127.0.0.1:0", our_app)
    port = listener.local_addr[1]
    fetch = Fetch(request_bytes("GET", "/query?a=x%20y", port))
    run_client(manager, "http://127.0.0.1:%d" % port, fetch)
    assert json.loads(fetch.responses[0]["body"]) == {"q": "a=x%20y", "a": "x y"}


def test_one_mib_both_ways_against_our_server(manager, our_port):
    up = payload(MIB, seed=9)
    fetch = Fetch(request_bytes("POST", "/echo", our_port, up, close=False),
                  request_bytes("GET", "/big", our_port))
    run_client(manager, "http://127.0.0.1:%d" % our_port, fetch)
    echo, big = fetch.responses
    assert echo["body"] == up
    assert dict(echo["headers"])["X-Sha"] == hashlib.sha256(up).hexdigest()
    assert big["status"] == 200 and big["body"] == payload(MIB)


def test_chunked_response_from_our_server_is_reassembled(manager, our_port):
    fetch = Fetch(request_bytes("GET", "/chunked", our_port))
    run_client(manager, "http://127.0.0.1:%d" % our_port, fetch)
    assert fetch.responses[0]["body"] == b"one,\x00two," + b"three" * 1000


def get_with_basic_auth(manager, url, path, user, password):
    """GET ``path`` with ``http_basic_auth(user, password)``: the response."""
    def add_auth(conn):
        conn.send("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" % path)
        conn.http_basic_auth(user, password)
        conn.send("\r\n")

    fetch = Fetch(after_connect=add_auth, expect=1)
    run_client(manager, url, fetch)
    return fetch.responses[0]


def test_http_basic_auth_against_our_server(manager, our_port):
    r = get_with_basic_auth(manager, "http://127.0.0.1:%d" % our_port, "/creds", "alice", "s3cret:with:colons")
    data = json.loads(r["body"])
    assert data["creds"] == ["alice", "s3cret:with:colons"]
    assert data["auth"] == "Basic " + base64.b64encode(b"alice:s3cret:with:colons").decode()


def test_subclass_client_with_hooks(manager, our_port):
    class Client(Connection):
        def __init__(self):
            super().__init__()
            self.got = []
            self.closed = False

        def on_connect(self):
            self.send(request_bytes("POST", "/echo", our_port, b"from a subclass"))

        def on_http_msg(self, msg):
            self.got.append((msg.status(), msg.body_bytes, msg.header("X-Server")))
            self.drain()

        def on_close(self):
            self.closed = True

    conn = manager.connect("http://127.0.0.1:%d" % our_port, connection_class=Client)
    assert isinstance(conn, Client) and conn.is_client
    assert pump(manager, lambda: conn.closed, timeout=TIMEOUT)
    assert conn.got == [(200, b"from a subclass", "mongoose_py")]


def test_http_connect_explicit_and_message_copy(manager, our_port):
    kept = []

    def handler(conn, ev, data):
        if ev == MG_EV_CONNECT:
            conn.send(request_bytes("GET", "/query?a=1", our_port))
        elif ev == MG_EV_HTTP_MSG:
            kept.append((data, data.copy()))
            conn.drain()

    conn = manager.http_connect("http://127.0.0.1:%d" % our_port, handler)
    assert pump(manager, lambda: conn.is_closing and kept, timeout=TIMEOUT)
    live, owned = kept[0]
    assert not live
    with pytest.raises(RuntimeError):
        live.status()
    assert owned.status() == 200 and json.loads(owned.body_bytes) == {"q": "a=1", "a": "1"}
    assert owned.header("Content-Type") == "application/json"


def test_connect_refused_reports_error(manager):
    port = free_port()  # nothing listens there
    fetch = Fetch(request_bytes("GET", "/", port))
    run_client(manager, "http://127.0.0.1:%d" % port, fetch)
    assert fetch.errors and isinstance(fetch.errors[0], str)
    assert MG_EV_CONNECT not in fetch.events and not fetch.responses


# --------------------------------------------------------------------------
# against Python's http.server
# --------------------------------------------------------------------------

def url_of(srv, path="/"):
    return "http://127.0.0.1:%d%s" % (srv.server_address[1], path)


def test_get_against_http_server(manager, py_server):
    port = py_server.server_address[1]
    fetch = Fetch(request_bytes("GET", "/hello", port, headers={"X-Client": "mongoose_py"}))
    run_client(manager, url_of(py_server), fetch)
    r = fetch.responses[0]
    assert r["status"] == 200 and r["body"] == b"hello from http.server"
    assert r["x_server"] == "http.server"
    assert dict(r["headers"])["X-Multi"] == "a, b"
    assert any(k == "Server" and v.startswith("BaseHTTP") for k, v in r["headers"])
    method, path, headers = py_server.seen[0]
    assert (method, path, headers["X-Client"]) == ("GET", "/hello", "mongoose_py")


def test_status_codes_against_http_server(manager, py_server):
    port = py_server.server_address[1]
    fetch = Fetch(request_bytes("GET", "/missing", port, close=False),
                  request_bytes("GET", "/redirect", port, close=False),
                  request_bytes("GET", "/auth", port))
    run_client(manager, url_of(py_server), fetch)
    assert [r["status"] for r in fetch.responses] == [404, 302, 401]
    assert fetch.responses[0]["body"] == b"nothing at /missing"
    assert dict(fetch.responses[1]["headers"])["Location"] == "/hello"
    assert dict(fetch.responses[2]["headers"])["WWW-Authenticate"] == 'Basic realm="t"'


def test_one_mib_both_ways_against_http_server(manager, py_server):
    port = py_server.server_address[1]
    up = payload(MIB, seed=13)
    fetch = Fetch(request_bytes("POST", "/upload", port, up, close=False), request_bytes("GET", "/big", port))
    run_client(manager, url_of(py_server), fetch)
    echo, big = fetch.responses
    assert echo["status"] == 200 and echo["body"] == up
    assert dict(echo["headers"])["X-Sha"] == hashlib.sha256(up).hexdigest()
    assert big["body"] == payload(MIB)


def test_chunked_response_from_http_server(manager, py_server):
    port = py_server.server_address[1]
    fetch = Fetch(request_bytes("GET", "/chunked", port))
    run_client(manager, url_of(py_server), fetch)
    assert fetch.responses[0]["status"] == 200
    assert fetch.responses[0]["body"] == b"py-chunk\x00ed-" + b"z" * 5000


def test_close_delimited_response_from_http_server(manager, py_server):
    port = py_server.server_address[1]
    fetch = Fetch(request_bytes("GET", "/close-delimited", port))
    run_client(manager, url_of(py_server), fetch)
    r = fetch.responses[0]
    assert r["method"] == "HTTP/1.0" and r["status"] == 200
    assert r["body"] == b"until the end\x00of the connection"


def test_http_basic_auth_against_http_server(manager, py_server):
    r = get_with_basic_auth(manager, url_of(py_server), "/auth", "bob", "pa ss")
    assert r["status"] == 200
    assert json.loads(r["body"]) == ["bob", "pa ss"]


def test_many_clients_in_parallel_against_http_server(py_server):
    """Twenty concurrent client connections from one Manager."""
    port = py_server.server_address[1]
    with Manager() as mgr:
        fetches = []
        for i in range(20):
            f = Fetch(request_bytes("POST", "/echo", port, b"n=%d" % i))
            mgr.connect(url_of(py_server), f)
            fetches.append(f)
        assert pump(mgr, lambda: all(f.closed for f in fetches), timeout=TIMEOUT)
    assert [f.responses[0]["body"] for f in fetches] == [b"n=%d" % i for i in range(20)]
