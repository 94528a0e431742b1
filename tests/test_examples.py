"""The scripts in examples/, run as a user runs them.

Each example is started as a subprocess with ``--port 0``; it prints
``listening on SCHEME://HOST:PORT`` and the test talks to it with real
clients (urllib/http.client, curl, websocket-client, paho-mqtt, mosquitto,
raw sockets, dnsmasq, an SNTP responder in this file, and the client
examples themselves). Every server is then stopped with SIGTERM and must exit
0 promptly (its graceful shutdown). All processes are stopped by pid.
"""
import ast
import hashlib
import http.client
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from certs import make_pki
from conftest import require_tool, wait_for
from netutil import UdpResponder, free_port, silent_udp_port, sntp_reply, start_dnsmasq

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.normpath(os.path.join(HERE, "..", "examples"))
LISTENING = re.compile(r"listening on (\w+)://([^:\s]+):(\d+)")
SCRIPTS = sorted(f for f in os.listdir(EXAMPLES) if f.endswith(".py")) if os.path.isdir(EXAMPLES) else []


class Example:
    """One example script running as a subprocess (stopped by pid by ``procs``)."""

    def __init__(self, procs, script, *args):
        self.proc = procs([sys.executable, os.path.join(EXAMPLES, script)] + [str(a) for a in args],
                          stdin=subprocess.DEVNULL)
        self.p = self.proc.p
        self.script = script
        self._buf = b""
        self.port = None

    def readline(self, timeout=20.0):
        """The next stdout line (without waiting past ``timeout``)."""
        deadline = time.monotonic() + timeout
        fd = self.p.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("%s printed no line in %gs; stderr: %s" % (self.script, timeout, self.err()))
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise AssertionError("%s exited (rc %s); stderr: %s" % (self.script, self.p.wait(5), self.err()))
                self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode("utf-8", "replace")

    def listening(self):
        line = self.readline()
        m = LISTENING.search(line)
        assert m, "%s: unexpected first line %r" % (self.script, line)
        self.port = int(m.group(3))
        return self

    def err(self):
        if self.p.poll() is None:
            return "(still running)"
        try:
            return self.p.stderr.read().decode("utf-8", "replace")[-3000:]
        except (ValueError, OSError):
            return ""

    def finish(self, timeout=30.0):
        """Wait for a client example to exit: ``(rc, stdout, stderr)``."""
        out, err = self.p.communicate(timeout=timeout)
        return self.p.returncode, (self._buf + out).decode("utf-8", "replace"), err.decode("utf-8", "replace")

    def stop_ok(self, sig=signal.SIGTERM, timeout=15.0):
        """SIGTERM (or Ctrl+C's SIGINT): the example must shut down gracefully and exit 0."""
        assert self.p.poll() is None, "%s died early: %s" % (self.script, self.err())
        os.kill(self.p.pid, sig)
        rc, out, err = self.finish(timeout)
        assert rc == 0, "%s exited %s after signal %d; stderr:\n%s" % (self.script, rc, sig, err)
        return out, err

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port


@pytest.fixture(autouse=True)
def no_proxy_from_the_environment(monkeypatch):
    """urllib, curl and websocket-client would send 127.0.0.1 traffic to an http_proxy."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def run(procs):
    """``run(script, *args)`` starts an example; servers: ``.listening()`` for the port."""
    def start(script, *args):
        return Example(procs, script, *args)
    return start


def get(url, data=None, headers=None, method=None, timeout=10):
    """``(status, headers, body)``; HTTP errors are answers too."""
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


# ---------------------------------------------------------------- every example

def test_every_example_of_the_list_is_there():
    # The 17 examples (the proxy client comes with a proxy to tunnel through), plus JSON-RPC.
    assert set(SCRIPTS) >= {
        "http_server.py", "http_client.py", "websocket_server.py", "websocket_broadcast.py",
        "mqtt_client.py", "mqtt_broker.py", "http_streaming.py", "http_file_upload.py", "rest_server.py",
        "sse_server.py", "sntp_client.py", "dns_client.py", "tcp_echo_server.py", "udp_echo_server.py",
        "tls_https_server.py", "http_proxy_client.py", "http_proxy.py", "multithreaded_server.py",
        "json_rpc_websocket.py"}


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_is_documented_and_self_contained(script):
    with open(os.path.join(EXAMPLES, script)) as f:
        tree = ast.parse(f.read())
    doc = ast.get_docstring(tree)
    assert doc and "tutorials/" in doc, "docstring must name the Mongoose tutorial it follows"
    imports = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imports |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "argparse" in imports
    assert {m for m in imports if m and "mongoose" in m} <= {"mongoose_py", "mongoose_py.mqtt"}
    with open(os.path.join(EXAMPLES, "README.md")) as f:
        assert script in f.read(), "examples/README.md must say how to run %s" % script


# ---------------------------------------------------------------- HTTP

def test_http_server_static_api_echo_uploads(run, tmp_path):
    curl = require_tool("curl")
    srv = run("http_server.py", "--port", 0, "--upload-dir", tmp_path / "up").listening()
    status, _, body = get(srv.base + "/")
    assert status == 200 and b"mongoose_py static files" in body
    status, headers, body = get(srv.base + "/api/info")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(body)["server"] == "mongoose_py"
    status, headers, body = get(srv.base + "/api/echo", data=b"\x00binary\xff", headers={"Content-Type": "x/y"})
    assert (status, headers["Content-Type"], body) == (200, "x/y", b"\x00binary\xff")
    assert get(srv.base + "/no/such/file")[0] == 404
    assert get(srv.base + "/../../etc/passwd")[0] in (400, 404)

    a, b = tmp_path / "a.bin", tmp_path / "b.txt"
    a.write_bytes(os.urandom(50000))
    b.write_text("hello\n")
    r = subprocess.run([curl, "-s", "-F", "file=@%s" % a, "-F", "other=@%s" % b, "-F", "field=value",
                        srv.base + "/upload"], capture_output=True, timeout=20)
    saved = json.loads(r.stdout)["saved"]
    assert saved == [{"field": "file", "file": "a.bin", "size": 50000},
                     {"field": "other", "file": "b.txt", "size": 6}]
    assert (tmp_path / "up" / "a.bin").read_bytes() == a.read_bytes()
    srv.stop_ok()


def test_http_server_tls(run, tmp_path):
    curl = require_tool("curl")
    pki = make_pki()
    srv = run("http_server.py", "--port", 0, "--cert", pki.path("server"), "--key", pki.path("server_key"))
    srv.listening()
    r = subprocess.run(
        [curl, "-s", "--cacert", pki.path("ca"), "--resolve", "localhost:%d:127.0.0.1" % srv.port,
         "https://localhost:%d/api/info" % srv.port], capture_output=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["tls"] is True
    srv.stop_ok()


def test_http_client(run, tmp_path):
    srv = run("http_server.py", "--port", 0).listening()
    rc, out, err = run("http_client.py", srv.base + "/api/info").finish()
    assert rc == 0, err
    assert json.loads(out)["server"] == "mongoose_py"

    rc, out, err = run("http_client.py", "-v", "-d", "ping pong", "-H", "Content-Type: text/x-demo",
                       srv.base + "/api/echo").finish()
    assert rc == 0 and out == "ping pong", err
    assert "Content-Type: text/x-demo" in err  # -v: headers on stderr

    rc, out, err = run("http_client.py", srv.base + "/missing").finish()
    assert rc == 1
    srv.stop_ok()

    rc, out, err = run("http_client.py", "http://127.0.0.1:%d/" % free_port()).finish()
    assert rc == 1 and "error" in err


def test_http_client_timeout(run):
    mute = socket.socket()  # accepts TCP (the kernel does) but never answers
    mute.bind(("127.0.0.1", 0))
    mute.listen(4)
    try:
        rc, out, err = run("http_client.py", "--timeout", "0.5",
                           "http://127.0.0.1:%d/" % mute.getsockname()[1]).finish()
        assert rc == 1 and "timeout" in err
    finally:
        mute.close()


def test_http_client_tls_verifies_with_ca(run):
    pki = make_pki()
    srv = run("tls_https_server.py", "--port", 0, "--cert", pki.path("server"), "--key", pki.path("server_key"))
    srv.listening()
    url = "https://127.0.0.1:%d/api/status" % srv.port
    rc, out, err = run("http_client.py", "--ca", pki.path("ca"), url).finish()
    assert rc == 0, err
    assert json.loads(out)["tls"] is True
    rc, out, err = run("http_client.py", "--ca", pki.path("other_ca"), url).finish()  # wrong CA
    assert rc == 1 and "error" in err
    srv.stop_ok()


def test_http_streaming(run):
    srv = run("http_streaming.py", "--port", 0).listening()
    size = 6 * 1024 * 1024 + 123
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=20)
    conn.request("GET", "/stream?size=%d" % size)
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Transfer-Encoding") == "chunked"
    assert resp.getheader("Content-Length") is None
    got = hashlib.sha256()
    n = 0
    while True:
        block = resp.read(100000)
        if not block:
            break
        got.update(block)
        n += len(block)
    assert n == size
    assert got.hexdigest() == hashlib.sha256((bytes(range(256)) * (size // 256 + 1))[:size]).hexdigest()
    conn.request("GET", "/count?n=5")  # same keep-alive connection
    resp = conn.getresponse()
    assert resp.read() == b"1\n2\n3\n4\n5\n"

    # SIGTERM in the middle of a stream: the stream is finished, then the server exits 0.
    conn.request("GET", "/stream?size=%d" % size)
    resp = conn.getresponse()
    n = len(resp.read(1000000))
    os.kill(srv.p.pid, signal.SIGTERM)
    while True:
        block = resp.read(100000)
        if not block:
            break
        n += len(block)
    assert n == size
    conn.close()
    rc, _, err = srv.finish(15)
    assert rc == 0, err


def rss(pid):
    """Resident memory of a process, in bytes (Linux)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for pid %d" % pid)


def test_http_streaming_slow_reader_holds_the_server_back(run):
    srv = run("http_streaming.py", "--port", 0).listening()
    rss_before = rss(srv.p.pid)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    s.connect(("127.0.0.1", srv.port))
    s.sendall(b"GET /stream?size=500000000 HTTP/1.1\r\nHost: x\r\n\r\n")  # 500 MB, read none of it
    s.settimeout(5)
    assert s.recv(100).startswith(b"HTTP/1.1 200")
    time.sleep(1.0)  # unpaced, the whole 500 MB would be queued in the server by now
    growth = rss(srv.p.pid) - rss_before
    assert growth < 64 * 1024 * 1024, "server memory grew by %d bytes" % growth
    s.close()
    srv.stop_ok()


def test_http_file_upload_streams_to_disk(run, tmp_path):
    curl = require_tool("curl")
    updir = tmp_path / "up"
    srv = run("http_file_upload.py", "--port", 0, "--upload-dir", updir, "--max-size", 5000000).listening()
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 7))  # > 1 MB: curl sends "Expect: 100-continue"
    r = subprocess.run([curl, "-s", "--data-binary", "@%s" % src, srv.base + "/upload?name=../../evil.bin"],
                       capture_output=True, timeout=30)
    answer = json.loads(r.stdout)
    assert answer == {"name": "evil.bin", "size": src.stat().st_size,
                      "sha256": hashlib.sha256(src.read_bytes()).hexdigest()}
    assert (updir / "evil.bin").read_bytes() == src.read_bytes()

    # Too large: refused from the headers alone, before the body is sent.
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(b"POST /upload?name=big HTTP/1.1\r\nHost: x\r\nContent-Length: 5000001\r\n"
              b"Expect: 100-continue\r\n\r\n")
    answer = s.recv(4096)
    if answer.startswith(b"HTTP/1.1 100 "):  # the binding answers "Expect: 100-continue" by itself
        answer = answer.split(b"\r\n\r\n", 1)[1] or s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413 ")
    s.close()
    assert not os.path.exists(updir / "big.part")

    # A client that goes away mid-upload leaves no file behind.
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(b"POST /upload?name=partial HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"y" * 1000)
    assert wait_for(lambda: (updir / "partial.part").exists(), 5)
    s.close()
    assert wait_for(lambda: not (updir / "partial.part").exists(), 5)
    assert not (updir / "partial").exists()
    srv.stop_ok()


def test_rest_server_crud(run):
    srv = run("rest_server.py", "--port", 0).listening()
    api = srv.base + "/api/items"
    status, _, body = get(api)
    assert (status, body) == (200, b"[]")
    status, headers, body = get(api, data=json.dumps({"name": "apple", "price": 1.5}).encode())
    assert status == 201 and headers["Location"] == "/api/items/1"
    assert json.loads(body) == {"id": 1, "name": "apple", "price": 1.5}
    get(api, data=b'{"name": "plum"}')
    status, _, body = get(api + "/1", data=b'{"name": "pear"}', method="PUT")
    assert status == 200 and json.loads(body)["name"] == "pear"
    assert [it["name"] for it in json.loads(get(api)[2])] == ["pear", "plum"]
    assert get(api + "/1", method="DELETE")[0] == 204
    assert get(api + "/1")[0] == 404
    status, headers, _ = get(api + "/2", method="PATCH")
    assert status == 405 and headers["Allow"] == "DELETE, GET, PUT"
    assert get(api, data=b"{not json")[0] == 400
    assert get(api, data=b'{"price": 3}')[0] == 400
    assert get(api + "/abc")[0] == 400
    assert get(srv.base + "/nope")[0] == 404
    srv.stop_ok()


def test_sse_server(run):
    srv = run("sse_server.py", "--port", 0, "--interval", "0.1").listening()
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.request("GET", "/events")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Type") == "text/event-stream"
    events, current = [], {}
    while len(events) < 4:
        line = resp.readline()  # de-chunked by http.client
        assert line, "stream ended"
        line = line.decode().rstrip("\n")
        if line.startswith("event: "):
            current["event"] = line[7:]
        elif line.startswith("data: "):
            current["data"] = json.loads(line[6:])
        elif line == "" and current:
            events.append(current)
            current = {}
    assert events[0] == {"event": "hello", "data": {"subscribers": 1}}
    ticks = [e["data"]["n"] for e in events[1:]]
    assert all(e["event"] == "tick" for e in events[1:]) and ticks == sorted(ticks) and len(set(ticks)) == 3
    conn.close()
    srv.stop_ok()


def test_sse_server_stops_with_a_subscriber_connected(run):
    srv = run("sse_server.py", "--port", 0, "--interval", "0.1").listening()
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"text/event-stream" in s.recv(4096)
    srv.stop_ok()  # streams never end: they get the shutdown timeout, then exit 0
    s.close()


# ---------------------------------------------------------------- WebSocket

def test_websocket_server(run):
    import websocket
    srv = run("websocket_server.py", "--port", 0).listening()
    url = "ws://127.0.0.1:%d/ws" % srv.port
    a = websocket.create_connection(url, timeout=5)
    b = websocket.create_connection(url, timeout=5)
    try:
        a.send("hello")
        assert a.recv() == "hello"
        a.send_binary(b"\x00\x01\xff")
        assert a.recv_data() == (websocket.ABNF.OPCODE_BINARY, b"\x00\x01\xff")
        assert json.loads(get(srv.base + "/api/stats")[2]) == {"clients": 2, "messages": 2}
        assert json.loads(get(srv.base + "/api/broadcast", data=b"to all")[2]) == {"sent_to": 2}
        assert a.recv() == "to all" and b.recv() == "to all"
        status, headers, body = get(srv.base + "/")
        assert status == 200 and b"WebSocket" in body
    finally:
        a.close()
    assert wait_for(lambda: json.loads(get(srv.base + "/api/stats")[2])["clients"] == 1, 5)
    b.close()
    srv.stop_ok()


def test_websocket_broadcast(run):
    import websocket
    srv = run("websocket_broadcast.py", "--port", 0, "--interval", "0.1").listening()
    url = "ws://127.0.0.1:%d/ws" % srv.port
    a = websocket.create_connection(url, timeout=5)
    b = websocket.create_connection(url, timeout=5)
    try:
        got_a = [json.loads(a.recv()) for _ in range(4)]
        got_b = [json.loads(b.recv()) for _ in range(4)]
        for got in (got_a, got_b):
            ticks = [m["tick"] for m in got]
            assert ticks == sorted(ticks) and len(set(ticks)) == 4
        assert got_a[-1]["clients"] == 2
        assert set(m["tick"] for m in got_a) & set(m["tick"] for m in got_b)  # the same broadcasts
    finally:
        a.close()
        b.close()
    srv.stop_ok()


def test_json_rpc_websocket(run):
    import websocket
    srv = run("json_rpc_websocket.py", "--port", 0).listening()
    ws = websocket.create_connection("ws://127.0.0.1:%d/websocket" % srv.port, timeout=5)
    try:
        def call(frame):
            ws.send(frame if isinstance(frame, str) else json.dumps(frame))
            return json.loads(ws.recv())

        assert call({"id": 1, "method": "sum", "params": [1, 2, 3.5]}) == {"id": 1, "result": 6.5}
        assert call({"id": 2, "method": "mul", "params": [6, 7]}) == {"id": 2, "result": 42}
        assert call({"id": 3, "method": "sum", "params": "x"})["error"]["code"] == -32602
        assert call({"id": 4, "method": "mul", "params": [1]})["error"]["code"] == -32603
        assert call({"id": 5, "method": "nope"})["error"] == {"code": -32601, "message": "nope not found"}
        assert call("not json")["error"]["code"] == -32700
        ws.send(json.dumps({"method": "sum", "params": [1]}))  # a notification: no answer...
        assert sorted(call({"id": 6, "method": "rpc.list"})["result"]) == ["mul", "rpc.list", "sum", "time.now"]
        assert abs(call({"id": 7, "method": "time.now"})["result"] - time.time()) < 60
    finally:
        ws.close()
    srv.stop_ok()


# ---------------------------------------------------------------- MQTT

class PahoClient:
    def __init__(self, port, auth=None):
        import paho.mqtt.client as paho
        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2)
        self.msgs = []
        self.rc = None
        self.subacks = 0
        self.c.on_connect = lambda c, u, f, rc, p=None: setattr(self, "rc", rc.value if hasattr(rc, "value") else rc)
        self.c.on_message = lambda c, u, m: self.msgs.append((m.topic, m.payload, m.qos))
        self.c.on_subscribe = lambda *a: setattr(self, "subacks", self.subacks + 1)
        if auth:
            self.c.username_pw_set(*auth)
        self.c.connect("127.0.0.1", port, keepalive=30)
        self.c.loop_start()
        assert wait_for(lambda: self.rc is not None, 5)

    def sub(self, topic, qos=0):
        n = self.subacks
        self.c.subscribe(topic, qos)
        assert wait_for(lambda: self.subacks > n, 5)

    def pub(self, topic, payload, qos=0):
        info = self.c.publish(topic, payload, qos=qos)
        info.wait_for_publish(5)
        assert info.is_published()

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def test_mqtt_broker_routes_with_wildcards_and_qos(run):
    srv = run("mqtt_broker.py", "--port", 0).listening()
    temps, everything = PahoClient(srv.port), PahoClient(srv.port)
    pub = PahoClient(srv.port)
    try:
        assert temps.rc == 0
        temps.sub("home/+/temp", 1)
        everything.sub("home/#", 0)
        pub.pub("home/kitchen/temp", b"21.5", qos=1)
        pub.pub("home/kitchen/light", b"on", qos=0)
        assert wait_for(lambda: len(everything.msgs) == 2 and len(temps.msgs) == 1, 5)
        assert temps.msgs == [("home/kitchen/temp", b"21.5", 1)]
        assert sorted(everything.msgs) == [("home/kitchen/light", b"on", 0), ("home/kitchen/temp", b"21.5", 0)]
    finally:
        for c in (temps, everything, pub):
            c.close()
    out, _ = srv.stop_ok()
    assert out.count("connect    ") >= 3


def test_mqtt_broker_auth(run):
    srv = run("mqtt_broker.py", "--port", 0, "--auth", "alice:secret").listening()
    bad = PahoClient(srv.port, auth=("alice", "wrong"))
    good = PahoClient(srv.port, auth=("alice", "secret"))
    try:
        assert bad.rc in (5, 135) and good.rc == 0  # CONNACK 5 "not authorized" (paho 2: reason 135)
    finally:
        bad.c.loop_stop()
        good.close()
    srv.stop_ok()


def test_mqtt_client_reconnects_until_the_broker_is_up(run):
    port = free_port()
    client = run("mqtt_client.py", "--url", "mqtt://127.0.0.1:%d" % port, "--reconnect", "0.2",
                 "--count", 1, "--sub", "demo/#", "--pub", "demo/x", "--message", "first try failed")
    assert "error" in client.readline()  # nothing listens yet: a failed attempt
    broker = run("mqtt_broker.py", "--port", port).listening()
    rc, out, err = client.finish()
    assert rc == 0, err
    assert "connected to mqtt://127.0.0.1:%d" % port in out
    assert "demo/x first try failed" in out
    broker.stop_ok()


def test_mqtt_client_with_mosquitto_qos_and_keepalive(run, procs, tmp_path):
    from mqtt_peers import start_mosquitto
    port, _ = start_mosquitto(procs, tmp_path)
    listener = PahoClient(port)
    listener.sub("kv/#", 1)
    client = run("mqtt_client.py", "--url", "mqtt://127.0.0.1:%d" % port, "--qos", 2, "--keepalive", 1,
                 "--reconnect", "0.5", "--count", 2, "--sub", "kv/#", "--pub", "kv/a", "--message", "one")
    try:
        assert client.readline().startswith("connected")
        assert client.readline() == "kv/a one"
        time.sleep(2.5)  # > 1.5 x keepalive: mosquitto drops a client that does not ping
        listener.pub("kv/b", b"two", qos=1)
        rc, out, err = client.finish()
        assert rc == 0, err
        assert "kv/b two" in out and "disconnected\n" not in out.split("kv/b two")[0]
        assert ("kv/a", b"one", 1) in listener.msgs
    finally:
        listener.close()


# ---------------------------------------------------------------- SNTP, DNS

FAKE_EPOCH_MS = 1000000000250  # 2001-09-09T01:46:40.250Z: not the local clock


@pytest.fixture
def sntp_server():
    """An RFC 4330 server on UDP 127.0.0.1 answering with a fixed time."""
    r = UdpResponder(lambda request: sntp_reply(request, FAKE_EPOCH_MS))
    yield r
    r.close()


def test_sntp_client_once(run, sntp_server):
    rc, out, err = run("sntp_client.py", "--server", "udp://127.0.0.1:%d" % sntp_server.port).finish()
    assert rc == 0, err
    m = re.match(r"time (\d+) 2001-09-09T01:46:40\.\d+\+00:00 offset ", out)
    assert m, out
    assert abs(int(m.group(1)) - FAKE_EPOCH_MS) < 5000  # plus half the round trip


def test_sntp_client_periodic_and_no_server(run, sntp_server):
    client = run("sntp_client.py", "--server", "udp://127.0.0.1:%d" % sntp_server.port, "--interval", "0.2")
    assert client.readline().startswith("time ")
    assert client.readline().startswith("time ")
    client.stop_ok()
    assert len(sntp_server.requests) >= 2

    with silent_udp_port() as silent:
        rc, out, err = run("sntp_client.py", "--server", "udp://127.0.0.1:%d" % silent, "--timeout", "0.5").finish()
    assert rc == 1 and "no answer" in err


@pytest.fixture
def dnsmasq(procs, tmp_path):
    """``udp://127.0.0.1:PORT`` of a dnsmasq that knows alpha.test and beta.test (.test is local)."""
    hosts = tmp_path / "hosts"
    hosts.write_text("10.1.2.3 alpha.test\n10.9.8.7 beta.test\n")
    _, port = start_dnsmasq(procs, hosts, "alpha.test", tries=5)
    return "udp://127.0.0.1:%d" % port


def test_dns_client(run, dnsmasq):
    rc, out, err = run("dns_client.py", "--dns", dnsmasq, "alpha.test", "beta.test").finish()
    assert rc == 0, err
    assert sorted(out.splitlines()) == ["alpha.test 10.1.2.3", "beta.test 10.9.8.7"]
    rc, out, err = run("dns_client.py", "--dns", dnsmasq, "--timeout", 1000, "alpha.test", "nope.test").finish()
    assert rc == 1
    assert out.splitlines() == ["alpha.test 10.1.2.3"]
    assert "nope.test error:" in err


# ---------------------------------------------------------------- TCP, UDP

def test_tcp_echo_server(run):
    srv = run("tcp_echo_server.py", "--port", 0).listening()
    payloads = [os.urandom(1024 * 1024), b"short line\n"]
    results = [None, None]

    def talk(i):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        got = bytearray()
        sender = threading.Thread(target=s.sendall, args=(payloads[i],))
        sender.start()
        while len(got) < len(payloads[i]):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        sender.join()
        s.close()
        results[i] = bytes(got)

    threads = [threading.Thread(target=talk, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == payloads
    out, _ = srv.stop_ok(signal.SIGINT)  # Ctrl+C
    assert out.count("accepted 127.0.0.1:") == 2 and out.count("closed") == 2


def test_udp_echo_server(run):
    srv = run("udp_echo_server.py", "--port", 0).listening()
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for s in (a, b):
            s.settimeout(5)
        for i, size in enumerate((1, 100, 8000)):
            da, db = os.urandom(size), os.urandom(size)
            a.sendto(da, ("127.0.0.1", srv.port))
            b.sendto(db, ("127.0.0.1", srv.port))
            assert a.recvfrom(65536)[0] == da  # one datagram back, to its sender
            assert b.recvfrom(65536)[0] == db
    finally:
        a.close()
        b.close()
    srv.stop_ok()


# ---------------------------------------------------------------- TLS

def _curl(*args):
    return subprocess.run([require_tool("curl"), "-s"] + list(args), capture_output=True, timeout=20)


def test_tls_https_server_certificate_and_sni(run):
    pki = make_pki()
    srv = run("tls_https_server.py", "--port", 0, "--cert", pki.path("server"), "--key", pki.path("server_key"))
    srv.listening()
    url = "https://localhost:%d/api/status" % srv.port
    resolve = "localhost:%d:127.0.0.1" % srv.port
    r = _curl("--cacert", pki.path("ca"), "--resolve", resolve, url)  # SNI "localhost", name checked
    assert r.returncode == 0, r.stderr
    status = json.loads(r.stdout)
    assert status["tls"] is True and status["host"] == "localhost:%d" % srv.port
    assert _curl("--cacert", pki.path("other_ca"), "--resolve", resolve, url).returncode != 0
    srv.stop_ok()


def test_tls_https_server_mutual_tls(run):
    pki = make_pki()
    srv = run("tls_https_server.py", "--port", 0, "--cert", pki.path("server"), "--key", pki.path("server_key"),
              "--ca", pki.path("ca")).listening()
    url = "https://127.0.0.1:%d/" % srv.port
    r = _curl("--cacert", pki.path("ca"), url)  # no client certificate: refused
    assert r.returncode != 0 and r.stdout == b""
    r = _curl("--cacert", pki.path("ca"), "--cert", pki.path("client"), "--key", pki.path("client_key"), url)
    assert r.stdout == b"Hello over TLS\n", r.stderr
    srv.stop_ok()


def test_tls_https_server_self_signed(run):
    require_tool("openssl")
    srv = run("tls_https_server.py", "--port", 0).listening()
    r = _curl("-k", "https://127.0.0.1:%d/" % srv.port)
    assert r.stdout == b"Hello over TLS\n", r.stderr
    srv.stop_ok()


# ---------------------------------------------------------------- proxy

def test_http_proxy_and_proxy_client(run):
    target = run("http_server.py", "--port", 0).listening()
    proxy = run("http_proxy.py", "--port", 0).listening()
    rc, out, err = run("http_proxy_client.py", "-v", "--proxy", proxy.base, target.base + "/api/info").finish()
    assert rc == 0, err
    assert json.loads(out)["server"] == "mongoose_py"
    assert err.startswith("HTTP/1.1 200")

    r = _curl("-p", "-x", proxy.base, target.base + "/api/echo", "-d", "through the tunnel")
    assert r.returncode == 0 and r.stdout == b"through the tunnel"
    status, headers, _ = get(proxy.base + "/")  # not CONNECT
    assert status == 405 and headers["Allow"] == "CONNECT"

    rc, out, err = run("http_proxy_client.py", "--proxy", proxy.base,
                       "http://127.0.0.1:%d/" % free_port()).finish()
    assert rc == 1 and "502" in err
    proxy.stop_ok()
    target.stop_ok()


# ---------------------------------------------------------------- threads

def test_multithreaded_server(run):
    srv = run("multithreaded_server.py", "--port", 0, "--workers", 4).listening()
    results = {}

    def work(i):
        results[i] = json.loads(get(srv.base + "/work?ms=1500", timeout=20)[2])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    fast = json.loads(get(srv.base + "/fast")[2])
    assert fast == {"fast": True, "thread": "MainThread"}
    assert not results, "the loop answered /fast only after the slow work"
    for t in threads:
        t.join(30)
    assert sorted(r["slept_ms"] for r in results.values()) == [1500] * 4
    assert len({r["thread"] for r in results.values()}) >= 2  # the work ran in parallel
    assert all(r["thread"].startswith("worker") for r in results.values())

    # SIGTERM with a request in flight: it is answered, then the server exits 0.
    late = {}
    t = threading.Thread(target=lambda: late.update(r=get(srv.base + "/work?ms=700", timeout=20)))
    t.start()
    time.sleep(0.3)
    os.kill(srv.p.pid, signal.SIGTERM)
    t.join(20)
    assert late["r"][0] == 200 and json.loads(late["r"][2])["slept_ms"] == 700
    rc, _, err = srv.finish(15)
    assert rc == 0, err
