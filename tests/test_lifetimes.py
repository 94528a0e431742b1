"""Lifetimes: close() inside handlers, closed connections, stale message views,
raising handlers, and 10,000 connections that leave nothing behind."""
import base64
import gc
import logging
import os
import socket
import struct
import weakref

import pytest

from conftest import pump
from mongoose_py import (
    MG_EV_CLOSE, MG_EV_HTTP_MSG, MG_EV_READ, Connection, HttpMessage, Manager,
)
from netutil import http_get, in_thread, raw_exchange


def finish(mgr, job, timeout=15):
    assert pump(mgr, lambda: not job["thread"].is_alive(), timeout), "client thread hung"
    if "error" in job:
        raise job["error"]
    return job["result"]


def get(mgr, port, path):
    """GET ``path`` from a client thread while this thread polls ``mgr``: ``(status, body)``."""
    return finish(mgr, in_thread(http_get, port, path))


GET = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"


# ---- close() inside handlers -------------------------------------------------

@pytest.mark.parametrize("where", ["http_msg_after_reply", "http_msg_no_reply", "read", "close"])
def test_server_close_inside_own_handler(where):
    closes = []

    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            if data.uri == "/ok":
                conn.reply(200, b"ok")
                return
            if where == "http_msg_after_reply":
                conn.reply(200, b"bye")
                conn.close()
                conn.close()  # twice: still fine
            elif where == "http_msg_no_reply":
                conn.close()
            elif where == "close":
                conn.reply(200, b"x")
                conn.drain()
        elif ev == MG_EV_READ and where == "read" and conn.is_accepted and not closes:
            conn.close()  # the first accepted connection only (Mongoose has consumed the request)
        elif ev == MG_EV_CLOSE:
            closes.append(conn.id)
            if where == "close":
                conn.close()  # inside its own MG_EV_CLOSE: a no-op

    with Manager(handler) as mgr:
        port = mgr.listen("http://127.0.0.1:0").local_addr[1]
        out = finish(mgr, in_thread(raw_exchange, port, GET))
        if where == "http_msg_after_reply":
            # close() discards unsent data: either nothing or the reply, never garbage.
            assert out in (b"",) or out.startswith(b"HTTP/1.1 200")
        elif where == "close":
            assert out.startswith(b"HTTP/1.1 200") and out.endswith(b"x")
        else:
            assert out == b""
        assert pump(mgr, lambda: len(closes) == 1)
        # The loop goes on: a fresh request is served.
        assert get(mgr, port, "/ok") == (200, b"ok")


def test_close_in_close_handler_runs_once_and_after_is_no_op():
    calls = []

    class C(Connection):
        def on_http_msg(self, msg):
            self.reply(200, b"ok")

        def on_close(self):
            calls.append(self.id)
            self.close()
            self.drain()
            calls.append(self.is_closing)

    with Manager() as mgr:
        port = mgr.listen("http://127.0.0.1:0", connection_class=C).local_addr[1]
        assert finish(mgr, in_thread(http_get, port)) == (200, b"ok")
        assert pump(mgr, lambda: len(calls) == 2)
        for _ in range(5):
            mgr.poll(1)
        assert len(calls) == 2 and calls[0] != 0 and calls[1] is True


def test_close_other_connection_from_close_handler():
    conns = []

    class C(Connection):
        def on_accept(self):
            conns.append(self)

        def on_close(self):
            for other in list(conns):
                other.close()

    with Manager() as mgr:
        listener = mgr.listen("tcp://127.0.0.1:0", connection_class=C)
        port = listener.local_addr[1]
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        assert pump(mgr, lambda: len(conns) == 3)
        socks[0].close()
        # One goes away, its CLOSE handler closes the two others.
        assert pump(mgr, lambda: len(mgr.connections) == 1)
        assert all(c.id == 0 for c in conns)
        for s in socks[1:]:
            s.settimeout(5)
            assert s.recv(10) == b""
            s.close()


@pytest.mark.parametrize("where", ["connect", "read", "http_msg", "close"])
def test_client_close_inside_own_handler(where):
    def server(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            conn.reply(200, b"hello")

    seen = []

    class Client(Connection):
        def on_connect(self):
            seen.append("connect")
            if where == "connect":
                self.close()
            else:
                self.send(GET)

        def on_read(self):
            seen.append("read")
            if where == "read":
                self.close()

        def on_http_msg(self, msg):
            seen.append(("msg", msg.body_bytes))
            if where in ("http_msg", "close"):
                self.close()

        def on_close(self):
            seen.append("close")
            if where == "close":
                self.close()

    with Manager() as mgr:
        port = mgr.listen("http://127.0.0.1:0", server).local_addr[1]
        c = mgr.connect("http://127.0.0.1:%d" % port, connection_class=Client)
        assert pump(mgr, lambda: "close" in seen)
        assert seen.count("close") == 1
        if where in ("http_msg", "close"):
            assert ("msg", b"hello") in seen
        with pytest.raises(RuntimeError):
            c.send(b"x")
        assert pump(mgr, lambda: len(mgr.connections) == 1)
        assert finish(mgr, in_thread(http_get, port)) == (200, b"hello")


# ---- calls on a closed connection --------------------------------------------

def test_calls_on_a_closed_connection_raise():
    kept = []

    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            kept.append(conn)
            conn.reply(200, b"ok")
            conn.drain()

    with Manager(handler) as mgr:
        port = mgr.listen("http://127.0.0.1:0").local_addr[1]
        assert finish(mgr, in_thread(http_get, port)) == (200, b"ok")
        conn = kept[0]
        assert pump(mgr, lambda: conn.id == 0)
        for call in (lambda: conn.send(b"x"), lambda: conn.reply(200, b"x"), lambda: conn.read(),
                     lambda: conn.http_chunk(b"x"), lambda: conn.ws_send(b"x"),
                     lambda: conn.error("x"), lambda: conn.http_sse("e", "d"),
                     lambda: conn.resolve("tcp://127.0.0.1:1")):
            with pytest.raises(RuntimeError):
                call()
        conn.close()  # no-op
        conn.drain()  # no-op
        assert conn.is_closing is True
        assert conn.local_addr is None and conn.remote_addr is None
        assert conn.recv_data() == b"" and conn.send_len == 0
        assert not conn.is_listening
        assert "closed" in repr(conn)


# ---- message views -------------------------------------------------------------

def _check_copy(m):
    """Every accessor of an owned copy of the request sent by test_stored_view..."""
    assert bool(m)
    assert m.method == "POST"
    assert m.uri == "/p/a"
    assert m.query == "q=1&name=A%20b"
    assert m.proto == "HTTP/1.1"
    assert m.body_bytes == b"\x00body\xff"
    assert m.body_text == b"\x00body\xff".decode("utf-8", "surrogateescape")
    assert m.header("x-thing") == "v1"
    assert m.header("missing", "dflt") == "dflt"
    assert ("X-Thing", "v1") in m.headers()
    assert m.query_var("name") == "A b"
    assert m.query_var("q") == "1"
    assert m.header_var("Content-Type", "boundary") == "zz"
    assert m.credentials() == ("user", "pw")
    assert m.status() is None or isinstance(m.status(), int)
    return True


def test_stored_view_raises_and_copy_survives_in_any_thread():
    stored = []
    copies = []

    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            assert bool(data)
            stored.append(data)
            copies.append(data.copy())
            conn.reply(200, b"ok")

    with Manager(handler) as mgr:
        port = mgr.listen("http://127.0.0.1:0").local_addr[1]
        body = b"\x00body\xff"
        req = (b"POST /p/a?q=1&name=A%20b HTTP/1.1\r\nHost: t\r\nX-Thing: v1\r\n"
               b"Content-Type: multipart/form-data; boundary=zz\r\n"
               b"Authorization: Basic " + base64.b64encode(b"user:pw") + b"\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body)) + body

        def send():
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(req)
            data = s.recv(4096)
            s.close()
            return data

        assert finish(mgr, in_thread(send)).startswith(b"HTTP/1.1 200")
        # Let Mongoose reuse the receive buffer with more traffic first.
        assert get(mgr, port, "/" + "z" * 300) == (200, b"ok")

    msg = stored[0]
    assert isinstance(msg, HttpMessage)
    assert not bool(msg)
    for access in (lambda: msg.method, lambda: msg.uri, lambda: msg.query, lambda: msg.body_bytes,
                   lambda: msg.body_text, lambda: msg.header("Host"), lambda: msg.headers(),
                   lambda: msg.query_var("q"), lambda: msg.status(), lambda: msg.copy(),
                   lambda: msg.header_var("Content-Type", "boundary"), lambda: msg.proto):
        with pytest.raises(RuntimeError, match="copy"):
            access()
    # The copy outlives the callback and the manager, here and in another thread.
    copy = copies[0]
    assert _check_copy(copy)
    job = in_thread(_check_copy, copy)
    job["thread"].join(10)
    assert job.get("error") is None and job["result"] is True
    assert _check_copy(copy.copy())


def test_stored_ws_view_raises_and_copy_survives():
    got = []

    class Srv(Connection):
        def on_http_msg(self, msg):
            self.ws_upgrade(msg)

        def on_ws_msg(self, msg):
            got.append((msg, msg.copy()))
            self.ws_send(msg.data)

    class Cli(Connection):
        echoed = []

        def on_ws_open(self, msg):
            self.ws_send(b"\x00abc", 2)

        def on_ws_msg(self, msg):
            self.echoed.append(msg.data)

    with Manager() as mgr:
        port = mgr.listen("http://127.0.0.1:0", connection_class=Srv).local_addr[1]
        mgr.ws_connect("ws://127.0.0.1:%d/" % port, connection_class=Cli)
        assert pump(mgr, lambda: Cli.echoed)
    live, copy = got[0]
    assert not live
    with pytest.raises(RuntimeError):
        live.data
    assert copy.data == b"\x00abc" and copy.opcode == 2


# ---- raising handlers ------------------------------------------------------------

def boom_handler(body):
    """A handler that raises ValueError("boom") for /boom and answers 200 ``body`` otherwise."""
    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            if data.uri == "/boom":
                raise ValueError("boom")
            conn.reply(200, body)
    return handler


def test_raising_handler_gives_500_and_the_loop_goes_on(caplog):
    handler = boom_handler(b"fine")
    with caplog.at_level(logging.ERROR, logger="mongoose_py"):
        with Manager(handler) as mgr:
            port = mgr.listen("http://127.0.0.1:0").local_addr[1]
            for _ in range(3):
                status, _ = get(mgr, port, "/boom")
                assert status == 500
                assert get(mgr, port, "/ok") == (200, b"fine")
    assert any("boom" in (r.exc_text or "") or (r.exc_info and "boom" in str(r.exc_info[1]))
               for r in caplog.records)


def test_raising_hook_gives_500_too():
    class Bad(Connection):
        def on_http_msg(self, msg):
            if msg.uri == "/boom":
                raise KeyError("x")
            self.reply(200, b"ok")

    errors = []
    with Manager(error_handler=errors.append) as mgr:
        port = mgr.listen("http://127.0.0.1:0", connection_class=Bad).local_addr[1]
        assert get(mgr, port, "/boom")[0] == 500
        assert get(mgr, port, "/fine") == (200, b"ok")
    assert len(errors) == 1 and isinstance(errors[0], KeyError)


def test_error_handler_receives_the_exception():
    errors = []

    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            raise RuntimeError("from handler %s" % data.uri)

    with Manager(handler, error_handler=errors.append) as mgr:
        port = mgr.listen("http://127.0.0.1:0").local_addr[1]
        assert get(mgr, port, "/a")[0] == 500
        assert get(mgr, port, "/b")[0] == 500
    assert [str(e) for e in errors] == ["from handler /a", "from handler /b"]
    assert all(isinstance(e, RuntimeError) for e in errors)


def test_error_handler_that_raises_is_logged_and_loop_goes_on(caplog):
    def bad_error_handler(exc):
        raise ValueError("error handler broke")

    handler = boom_handler(b"ok")
    with caplog.at_level(logging.ERROR, logger="mongoose_py"):
        with Manager(handler, error_handler=bad_error_handler) as mgr:
            port = mgr.listen("http://127.0.0.1:0").local_addr[1]
            assert get(mgr, port, "/boom")[0] == 500
            assert get(mgr, port, "/ok") == (200, b"ok")
    assert caplog.records


def test_keyboard_interrupt_in_handler_propagates_out_of_poll():
    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            if data.uri == "/kbd":
                raise KeyboardInterrupt
            conn.reply(200, b"ok")

    errors = []
    with Manager(handler, error_handler=errors.append) as mgr:
        port = mgr.listen("http://127.0.0.1:0").local_addr[1]
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /kbd HTTP/1.1\r\nHost: t\r\n\r\n")
        with pytest.raises(KeyboardInterrupt):
            pump(mgr, lambda: False, 10)
        assert errors == []  # not an "error": it is the user's interrupt
        # The manager is still usable after the interrupt.
        assert get(mgr, port, "/ok") == (200, b"ok")
        s.close()


def test_system_exit_in_handler_propagates_out_of_poll():
    class C(Connection):
        def on_http_msg(self, msg):
            raise SystemExit(3)

    with Manager() as mgr:
        port = mgr.listen("http://127.0.0.1:0", connection_class=C).local_addr[1]
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(GET)
        with pytest.raises(SystemExit) as info:
            pump(mgr, lambda: False, 10)
        assert info.value.code == 3
        s.close()


# ---- 10,000 connections --------------------------------------------------------

def _rss():
    import psutil  # imported here: a broken psutil fails this test only, not the module
    return psutil.Process().memory_info().rss


def test_ten_thousand_connections_leave_no_live_handles():
    live = weakref.WeakSet()
    created = [0]
    closed = [0]

    class Tracked(Connection):
        def __init__(self):
            super().__init__()
            live.add(self)
            created[0] += 1

        def on_http_msg(self, msg):
            self.reply(200, b"ok")

        def on_close(self):
            closed[0] += 1

    total, batch = 10000, 250
    rss = {}

    def clients(port):
        for b in range(total // batch):
            socks = []
            for i in range(batch):
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                socks.append(s)
            for i, s in enumerate(socks):
                if i % 5 == 0:  # some real requests, the rest connect and go
                    s.sendall(GET)
                    assert s.recv(4096).startswith(b"HTTP/1.1 200")
            for i, s in enumerate(socks):
                if i % 2:
                    # RST instead of FIN (and no TIME_WAIT pile-up)
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
        return True

    with Manager() as mgr:
        listener = mgr.listen("http://127.0.0.1:0", connection_class=Tracked)
        port = listener.local_addr[1]
        # Warm up (allocator pools, JIT on PyPy) before the baseline.
        assert finish(mgr, in_thread(clients, port), 120)
        assert pump(mgr, lambda: closed[0] == total, 30), (closed[0], total)
        gc.collect()
        rss["base"] = _rss()
        assert finish(mgr, in_thread(clients, port), 120)
        assert pump(mgr, lambda: closed[0] == 2 * total, 30), (closed[0], 2 * total)
        assert created[0] == 2 * total + 1
        conns = mgr.connections
        assert conns == (listener,)
        del conns
        for _ in range(3):
            gc.collect()
        rss["end"] = _rss()
        leftovers = [c for c in list(live) if c is not listener]
        assert leftovers == [], "%d Connection objects still alive" % len(leftovers)
        assert len(mgr._conns) == 1
    growth = rss["end"] - rss["base"]
    bound = 64 << 20
    if "libasan" in os.environ.get("LD_PRELOAD", ""):
        bound += 256 << 20  # AddressSanitizer keeps freed memory in its quarantine (256 MiB by default)
    print("RSS growth over 10,000 connections: %.1f MiB" % (growth / 1048576.0))
    assert growth < bound, "RSS grew by %d MiB over 10,000 connections" % (growth >> 20)
