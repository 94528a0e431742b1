"""WebSocket server against a real client (websocket-client), over ws:// and wss://."""
import os
import ssl
import threading

import pytest
import websocket  # websocket-client

from certs import make_pki, retry_bad_signature
from conftest import wait_for
from mongoose_py import (MG_EV_HTTP_MSG, MG_EV_WS_CTL, MG_EV_WS_MSG, MG_EV_WS_OPEN, WEBSOCKET_OP_BINARY,
                         WEBSOCKET_OP_CLOSE, WEBSOCKET_OP_PING, WEBSOCKET_OP_PONG, WEBSOCKET_OP_TEXT,
                         Connection, TlsOpts, WsMessage)


def make_server_class():
    """A fresh echo server class per test, recording what it saw."""

    class Echo(Connection):
        seen = []       # (kind, ...) tuples, appended on the loop thread
        closed = threading.Event()
        errors = []

        def on_http_msg(self, msg):
            if msg.uri == "/bad-header":
                try:
                    self.ws_upgrade(msg, {"X-Evil": "a\r\nInjected: yes"})
                except ValueError as exc:
                    type(self).errors.append(str(exc))
                self.reply(400, "no")
                return
            self.ws_upgrade(msg, {"X-Server": "mongoose_py"})

        def on_ws_open(self, msg):
            type(self).seen.append(("open", msg.uri, msg.header("Sec-WebSocket-Protocol")))

        def on_ws_msg(self, msg):
            data = msg.data
            type(self).seen.append(("msg", msg.opcode, len(data)))
            if msg.opcode == WEBSOCKET_OP_TEXT and msg.text.startswith("close:"):
                _, code, reason = msg.text.split(":", 2)
                self.ws_close(int(code), reason)
            elif msg.opcode == WEBSOCKET_OP_TEXT and msg.text == "ping-me":
                self.ws_send(b"srv", WEBSOCKET_OP_PING)
            else:
                self.ws_send(data, msg.opcode)

        def on_ws_ctl(self, msg):
            type(self).seen.append(("ctl", msg.opcode, msg.data, msg.close_code, msg.close_reason))

        def on_close(self):
            type(self).closed.set()

    Echo.seen, Echo.errors, Echo.closed = [], [], threading.Event()
    return Echo


@pytest.fixture(scope="module")
def pki():
    return make_pki()


@pytest.fixture(params=["ws", "wss"])
def ws_server(request, serve, pki):
    cls = make_server_class()
    if request.param == "ws":
        mgr, lst, port = serve(url="ws://127.0.0.1:0", connection_class=cls)
        url, sslopt = "ws://127.0.0.1:%d" % port, None
    else:
        mgr, lst, port = serve(url="wss://127.0.0.1:0", connection_class=cls,
                               tls=TlsOpts(cert=pki.server, key=pki.server_key))
        url, sslopt = "wss://127.0.0.1:%d" % port, {"ca_certs": pki.path("ca"), "cert_reqs": ssl.CERT_REQUIRED}
    return cls, url, sslopt


def connect(url, sslopt, path="/chat", **kw):
    return retry_bad_signature(lambda: websocket.create_connection(url + path, timeout=10, sslopt=sslopt, **kw))


def test_text_and_binary_echo(ws_server):
    cls, url, sslopt = ws_server
    ws = connect(url, sslopt, subprotocols=["chat"])
    try:
        assert ws.getheaders().get("x-server") == "mongoose_py"
        assert ws.getsubprotocol() == "chat"
        ws.send("héllo wörld")
        assert ws.recv() == "héllo wörld"
        blob = b"\x00\x01\x00binary\xff\x00"
        ws.send_binary(blob)
        opcode, data = ws.recv_data()
        assert (opcode, data) == (websocket.ABNF.OPCODE_BINARY, blob)
        big = os.urandom(1024 * 1024) + b"\x00" * 16
        ws.send_binary(big)
        opcode, data = ws.recv_data()
        assert opcode == websocket.ABNF.OPCODE_BINARY and data == big
        ws.send("")
        assert ws.recv() == ""
    finally:
        ws.close()
    assert ("open", "/chat", "chat") in cls.seen
    assert ("msg", WEBSOCKET_OP_BINARY, len(big)) in cls.seen


def test_fragmented_message_arrives_reassembled(ws_server):
    cls, url, sslopt = ws_server
    ws = connect(url, sslopt)
    try:
        A = websocket.ABNF
        ws.send_frame(A.create_frame("frag", A.OPCODE_TEXT, fin=0))
        ws.send_frame(A.create_frame("men", A.OPCODE_CONT, fin=0))
        ws.ping(b"in-between")  # control frames may come between fragments
        ws.send_frame(A.create_frame("ted", A.OPCODE_CONT, fin=1))
        frames = []
        while len(frames) < 2:
            frames.append(ws.recv_data_frame(True))
        got = {op: f.data for op, f in frames}
        assert got[A.OPCODE_TEXT] == b"fragmented"
        assert got[A.OPCODE_PONG] == b"in-between"
        big = [os.urandom(300 * 1024) for _ in range(4)]
        ws.send_frame(A.create_frame(big[0], A.OPCODE_BINARY, fin=0))
        for i, part in enumerate(big[1:]):
            ws.send_frame(A.create_frame(part, A.OPCODE_CONT, fin=int(i == 2)))
        assert ws.recv_data() == (A.OPCODE_BINARY, b"".join(big))
    finally:
        ws.close()
    msgs = [s for s in cls.seen if s[0] == "msg"]
    assert ("msg", WEBSOCKET_OP_TEXT, 10) in msgs and ("msg", WEBSOCKET_OP_BINARY, 1200 * 1024) in msgs


def test_ping_pong_both_ways(ws_server):
    cls, url, sslopt = ws_server
    ws = connect(url, sslopt)
    try:
        ws.ping(b"p1\x00")
        op, frame = ws.recv_data_frame(True)
        assert (op, frame.data) == (websocket.ABNF.OPCODE_PONG, b"p1\x00")
        ws.send("ping-me")  # server pings us; websocket-client answers with a pong
        op, frame = ws.recv_data_frame(True)
        assert (op, frame.data) == (websocket.ABNF.OPCODE_PING, b"srv")
        ws.pong(b"srv")
        ws.send("after")
        assert ws.recv() == "after"
    finally:
        ws.close()
    ctl = [s for s in cls.seen if s[0] == "ctl"]
    assert (("ctl", WEBSOCKET_OP_PING, b"p1\x00", None, "") in ctl)
    assert (("ctl", WEBSOCKET_OP_PONG, b"srv", None, "") in ctl)


def test_client_initiated_close_code(ws_server):
    cls, url, sslopt = ws_server
    ws = connect(url, sslopt)
    ws.send("x")
    assert ws.recv() == "x"
    ws.send_close(4001, b"client says bye")
    op, frame = ws.recv_data_frame(True)  # the server echoes the CLOSE
    assert op == websocket.ABNF.OPCODE_CLOSE
    assert frame.data[:2] == (4001).to_bytes(2, "big") and frame.data[2:] == b"client says bye"
    ws.shutdown()
    assert cls.closed.wait(10)
    assert ("ctl", WEBSOCKET_OP_CLOSE, (4001).to_bytes(2, "big") + b"client says bye", 4001,
            "client says bye") in cls.seen


def test_server_initiated_close_handshake(ws_server):
    cls, url, sslopt = ws_server
    ws = connect(url, sslopt)
    ws.send("close:4002:server says bye")
    op, frame = ws.recv_data_frame(True)
    assert op == websocket.ABNF.OPCODE_CLOSE
    assert frame.data == (4002).to_bytes(2, "big") + b"server says bye"
    # websocket-client answered with CLOSE(1000) inside recv_data_frame; the
    # server waited for it, delivers it once (no second echo) and closes
    assert cls.closed.wait(10)
    closes = [s for s in cls.seen if s[0] == "ctl" and s[1] == WEBSOCKET_OP_CLOSE]
    assert closes == [("ctl", WEBSOCKET_OP_CLOSE, (1000).to_bytes(2, "big"), 1000, "")]
    try:
        rest = ws.sock.recv(100)
    except (OSError, ssl.SSLError):
        rest = b""
    assert rest == b""  # nothing after the CLOSE: a clean TCP close
    ws.shutdown()


def test_server_close_times_out_without_answer(serve):
    cls = make_server_class()
    mgr, lst, port = serve(url="ws://127.0.0.1:0", connection_class=cls)
    ws = connect("ws://127.0.0.1:%d" % port, None)
    ws.send("close:1001:going away")
    frame = ws.recv_frame()  # raw: websocket-client does not answer the CLOSE here
    assert frame.opcode == websocket.ABNF.OPCODE_CLOSE and frame.data[:2] == (1001).to_bytes(2, "big")
    assert not cls.closed.wait(0.5)  # the server waits for our answer...
    # we never answer: the server drops the connection after its close timeout (2 s)
    assert cls.closed.wait(10)
    ws.shutdown()


def test_ws_upgrade_rejects_header_injection(serve):
    cls = make_server_class()
    mgr, lst, port = serve(url="ws://127.0.0.1:0", connection_class=cls)
    with pytest.raises(websocket.WebSocketBadStatusException) as ei:
        connect("ws://127.0.0.1:%d" % port, None, path="/bad-header")
    assert ei.value.status_code == 400
    assert cls.errors and "illegal character" in cls.errors[0]


def test_plain_get_on_ws_endpoint_gets_426(serve):
    import http.client

    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            conn.ws_upgrade(data)

    mgr, lst, port = serve(handler, url="http://127.0.0.1:0")
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/")
    r = c.getresponse()
    assert r.status == 426
    c.close()


def test_handler_style_events_and_message_views(serve):
    """cymongoose-style handler: WS_OPEN gets the HttpMessage, WS_MSG/WS_CTL a WsMessage view."""
    got = []

    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            conn.ws_upgrade(data)
        elif ev == MG_EV_WS_OPEN:
            got.append(("open", data.uri))
        elif ev == MG_EV_WS_MSG:
            assert isinstance(data, WsMessage)
            got.append(("msg", data.copy(), data))
            conn.ws_send(data.data, WEBSOCKET_OP_BINARY)
        elif ev == MG_EV_WS_CTL:
            got.append(("ctl", data.opcode, data.close_code))

    mgr, lst, port = serve(handler, url="ws://127.0.0.1:0")
    ws = connect("ws://127.0.0.1:%d" % port, None)
    ws.send("view")
    assert ws.recv() == b"view"
    ws.close(status=1000)
    assert wait_for(lambda: any(g[0] == "ctl" and g[1] == WEBSOCKET_OP_CLOSE for g in got), 10)
    msg = [g for g in got if g[0] == "msg"][0]
    assert msg[1].text == "view" and msg[1].opcode == WEBSOCKET_OP_TEXT  # the copy lives on
    with pytest.raises(RuntimeError, match="copy"):
        msg[2].data  # the view expired with its callback
    assert ("ctl", WEBSOCKET_OP_CLOSE, 1000) in got


def test_ws_send_and_close_argument_checks(serve):
    cls = make_server_class()
    results = {}

    class Checker(cls):
        def on_ws_open(self, msg):
            for name, fn in (("ctl_too_big", lambda: self.ws_send(b"x" * 126, WEBSOCKET_OP_PING)),
                             ("bad_op", lambda: self.ws_send(b"x", 16)),
                             ("bad_code", lambda: self.ws_close(1005)),
                             ("long_reason", lambda: self.ws_close(1000, "r" * 124))):
                try:
                    fn()
                    results[name] = None
                except ValueError as exc:
                    results[name] = str(exc)

    mgr, lst, port = serve(url="ws://127.0.0.1:0", connection_class=Checker)
    ws = connect("ws://127.0.0.1:%d" % port, None)
    assert wait_for(lambda: len(results) == 4, 10)
    ws.close()
    assert all(results.values()), results
