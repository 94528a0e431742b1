"""A Flask app under mongoose_py.wsgi, checked with requests, httpx, curl and raw sockets."""
import json
import socket
import threading
import time

import flask
import httpx
import requests

from conftest import wait_for
from web_helpers import curl, raw_request, wsgi_server

FILE_DATA = bytes(range(256)) * 40
STATE = {}


def make_app(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(FILE_DATA)
    app = flask.Flask(__name__)

    @app.post("/json")
    def echo_json():
        return {"got": flask.request.get_json(), "foo": flask.request.headers.get("X-Foo")}

    @app.post("/form")
    def form():
        out = dict(flask.request.form)
        for name, f in flask.request.files.items():
            out[name] = [f.filename, f.read().decode()]
        return out

    @app.post("/raw")
    def raw():
        return {"len": len(flask.request.get_data()), "head": flask.request.get_data()[:8].decode()}

    @app.get("/cookies")
    def cookies():
        r = flask.make_response("seen=%s" % flask.request.cookies.get("who", ""))
        r.set_cookie("who", "flask")
        return r

    @app.route("/file", methods=["GET", "HEAD"])
    def file():
        return flask.send_file(str(path), mimetype="application/octet-stream", conditional=True)

    @app.get("/declared")
    def declared():
        return flask.Response((b"%d" % i * 5 for i in range(4)), headers={"Content-Length": "20"})

    @app.get("/chunks")
    def chunks():
        return flask.Response(b"part%d;" % i for i in range(3))

    @app.get("/sse")
    def sse():
        gate = STATE.setdefault("gate", threading.Event())

        def events():
            try:
                yield b"data: first\n\n"
                gate.wait(10)   # held back, the first event would never arrive: the test opens the gate
                for i in range(100000):
                    yield b"data: %d\n\n" % i
                    time.sleep(0.02)
            finally:
                STATE["closed"] = STATE.get("closed", 0) + 1
        return flask.Response(events(), mimetype="text/event-stream")

    @app.get("/env")
    def env():
        return {k: v for k, v in flask.request.environ.items() if k.startswith("HTTP_") or k == "SCRIPT_NAME"}

    return app


def test_json_form_multipart_cookies(tmp_path):
    with wsgi_server(make_app(tmp_path)) as port:
        base = "http://127.0.0.1:%d" % port
        assert requests.post(base + "/json", json={"a": 1}, timeout=10).json() == {"got": {"a": 1}, "foo": None}
        assert requests.post(base + "/form", data={"x": "1"}, timeout=10).json() == {"x": "1"}
        r = requests.post(base + "/form", data={"x": "1"}, files={"up": ("a.txt", b"file body")}, timeout=10)
        assert r.json() == {"x": "1", "up": ["a.txt", "file body"]}
        s = requests.Session()
        assert s.get(base + "/cookies", timeout=10).text == "seen="
        assert s.get(base + "/cookies", timeout=10).text == "seen=flask"
        with httpx.Client(base_url=base, timeout=10) as client:
            assert client.post("/json", json=[2]).json()["got"] == [2]


def test_chunked_request_body_reaches_the_app(tmp_path):
    with wsgi_server(make_app(tmp_path)) as port:
        body = (b"%06d" % i for i in range(5000))  # a generator: requests sends it chunked
        r = requests.post("http://127.0.0.1:%d/raw" % port, data=body, timeout=20)
        assert r.json() == {"len": 30000, "head": "00000000"}


def test_underscore_headers_are_dropped(tmp_path):
    with wsgi_server(make_app(tmp_path)) as port:
        raw = raw_request(port, b"GET /env HTTP/1.1\r\nHost: x\r\nX-Foo: good\r\nX_Foo: evil\r\n"
                                b"Connection: close\r\n\r\n")
        env = json.loads(raw.partition(b"\r\n\r\n")[2])
        assert env["HTTP_X_FOO"] == "good"


def test_file_range_head_declared_length_and_http10(tmp_path):
    with wsgi_server(make_app(tmp_path)) as port:
        base = "http://127.0.0.1:%d" % port
        r = requests.get(base + "/file", headers={"Range": "bytes=10-19"}, timeout=10)
        assert r.status_code == 206 and r.content == FILE_DATA[10:20]
        code, out, err = curl("-I", base + "/file")
        assert code == 0, err
        assert b"content-length: %d" % len(FILE_DATA) in out.lower()
        r = requests.get(base + "/declared", timeout=10)
        assert r.headers["Content-Length"] == "20" and "Transfer-Encoding" not in r.headers
        assert r.content == b"00000111112222233333"
        r = requests.get(base + "/chunks", timeout=10)
        assert r.headers["Transfer-Encoding"] == "chunked" and r.content == b"part0;part1;part2;"
        raw = raw_request(port, b"GET /chunks HTTP/1.0\r\nHost: x\r\n\r\n")
        head, _, body = raw.partition(b"\r\n\r\n")
        assert b"chunked" not in head.lower() and body == b"part0;part1;part2;"


def test_sse_streams_each_block_and_abandoned_clients_free_the_workers(tmp_path):
    STATE.clear()
    with wsgi_server(make_app(tmp_path), workers=2) as port:
        with requests.get("http://127.0.0.1:%d/sse" % port, stream=True, timeout=10) as r:
            lines = r.iter_lines()
            assert next(lines) == b"data: first"  # arrived while the generator waits
            STATE["gate"].set()
            assert [next(lines) for _ in range(3)] == [b"", b"data: 0", b""]
        assert wait_for(lambda: STATE.get("closed") == 1, 10), "the app's iterator was not closed"
        # more abandoned streams than workers: each is noticed and its worker freed
        for n in range(4):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"GET /sse HTTP/1.1\r\nHost: x\r\n\r\n")
            got = b""
            for _ in range(50):
                got += s.recv(4096)
                if b"data: first" in got:
                    break
            assert b"data: first" in got
            s.close()
            assert wait_for(lambda: STATE.get("closed") == 2 + n, 10), STATE
        assert requests.post("http://127.0.0.1:%d/json" % port, json=1, timeout=10).json()["got"] == 1
