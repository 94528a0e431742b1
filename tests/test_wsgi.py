"""mongoose_py.wsgi against http.client: environ, headers, bodies, errors, streaming."""
import http.client
import json
import socket

import pytest

from mongoose_py.wsgi import WSGIServer

from conftest import LoopThread


@pytest.fixture
def wsgi():
    servers = []

    def start(app, **kw):
        srv = WSGIServer(app, **kw)
        port = srv.listen("http://127.0.0.1:0").local_addr[1]
        loop = LoopThread(srv.manager).start()
        servers.append((srv, loop))
        return port

    yield start
    for srv, loop in servers:
        loop.stop()
        srv.close()


def test_environ_and_duplicate_headers(wsgi):
    def app(env, start_response):
        seen = {k: env[k] for k in ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE",
                                    "HTTP_X_A", "SERVER_PORT", "wsgi.url_scheme")}
        seen["body"] = env["wsgi.input"].read().decode()
        body = json.dumps(seen).encode()
        start_response("201 Created", [("Content-Type", "application/json"),
                                       ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
        return [body]

    port = wsgi(app)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", "/p%20q?x=1", body=b"hi", headers={"Content-Type": "text/x", "X-A": "v"})
    r = c.getresponse()
    data = json.loads(r.read())
    assert r.status == 201
    assert r.headers.get_all("Set-Cookie") == ["a=1", "b=2"]
    assert data == {"REQUEST_METHOD": "POST", "PATH_INFO": "/p q", "QUERY_STRING": "x=1", "CONTENT_TYPE": "text/x",
                    "HTTP_X_A": "v", "SERVER_PORT": str(port), "wsgi.url_scheme": "http", "body": "hi"}


def test_keep_alive_and_error_gives_500(wsgi):
    def app(env, start_response):
        if env["PATH_INFO"] == "/boom":
            raise ValueError("boom")
        start_response("200 OK", [])
        return [b"ok ", env["PATH_INFO"].encode()]

    port = wsgi(app)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for path in ("/a", "/b"):
        c.request("GET", path)
        r = c.getresponse()
        assert (r.status, r.read()) == (200, b"ok " + path.encode())
    c2 = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c2.request("GET", "/boom")
    assert c2.getresponse().status == 500
    c.request("GET", "/c")
    assert c.getresponse().read() == b"ok /c"


def test_large_body_is_streamed_chunked(wsgi):
    block = bytes(range(256)) * 256  # 64 KiB

    def app(env, start_response):
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (block for _ in range(48))  # 3 MiB, more than the threshold

    port = wsgi(app)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    c.request("GET", "/big")
    r = c.getresponse()
    assert r.headers["Transfer-Encoding"] == "chunked"
    assert r.read() == block * 48


def test_pipelined_requests_answered_in_order(wsgi):
    def app(env, start_response):
        start_response("200 OK", [])
        return [env["PATH_INFO"].encode()]

    port = wsgi(app, workers=4)
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(6)))
    buf = b""
    while buf.count(b"HTTP/1.1 200") < 6:
        chunk = s.recv(65536)
        assert chunk, "server closed early"
        buf += chunk
    s.close()
    assert [part.rsplit(b"\r\n\r\n", 1)[1][:2] for part in buf.split(b"HTTP/1.1 200")[1:]] == \
        [b"/%d" % i for i in range(6)]


def test_header_injection_is_refused_with_500(wsgi):
    def app(env, start_response):
        start_response("200 OK", [("X-Evil", "a\r\nSet-Cookie: stolen=1")])
        return [b"never"]

    port = wsgi(app, error_handler=lambda exc: None)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/")
    r = c.getresponse()
    assert r.status == 500 and r.headers.get("Set-Cookie") is None and r.read() == b"Internal Server Error\n"
