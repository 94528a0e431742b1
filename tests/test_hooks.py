"""Subclass hooks, event masks, handler inheritance, connection classes.

Every test talks over real sockets on 127.0.0.1 (port 0). The loop is pumped
on the test thread unless a test says otherwise, so that what the handlers
record can be read without races.
"""
import http.client
import socket
import threading
import time

import pytest

from conftest import pump
from mongoose_py import (
    MG_EV_ACCEPT, MG_EV_CLOSE, MG_EV_HTTP_HDRS, MG_EV_HTTP_MSG, MG_EV_OPEN, MG_EV_POLL,
    MG_EV_READ, MG_EV_WRITE, Connection, HttpMessage, Manager, WsMessage, _ffi,
)
from netutil import free_port

LIB = _ffi.lib


def listen_port(listener):
    return listener.local_addr[1]


class RawClient:
    """A non-blocking client socket driven alongside ``mgr.poll`` on one thread."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setblocking(False)
        self.buf = b""
        self.eof = False

    def send(self, data):
        self.sock.setblocking(True)
        self.sock.sendall(data)
        self.sock.setblocking(False)

    def _read(self):
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    self.eof = True
                    return
                self.buf += chunk
        except BlockingIOError:
            pass

    def response_complete(self):
        self._read()
        head, sep, body = self.buf.partition(b"\r\n\r\n")
        if not sep:
            return False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                return len(body) >= int(value)
        return self.eof

    def wait_response(self, mgr, timeout=10):
        assert pump(mgr, self.response_complete, timeout), "no complete response: %r" % self.buf
        head, _, body = self.buf.partition(b"\r\n\r\n")
        self.buf = b""
        return int(head.split(b" ")[1]), body

    def wait_eof(self, mgr, timeout=10):
        return pump(mgr, lambda: self._read() or self.eof, timeout)

    def close(self):
        self.sock.close()


GET = b"GET /path?x=1 HTTP/1.1\r\nHost: t\r\n\r\n"


def first(seen, name):
    names = [e[0] for e in seen]
    assert name in names, "%s never seen in %r" % (name, names)
    return names.index(name)


def test_server_hooks_each_get_their_event():
    accepted = []

    class Recorder(Connection):
        def __init__(self):
            super().__init__()
            self.seen = []
            self.polls = 0
            accepted.append(self)

        def on_open(self):
            self.seen.append(("open",))

        def on_accept(self):
            self.seen.append(("accept",))

        def on_read(self):
            self.seen.append(("read",))

        def on_write(self, nbytes):
            self.seen.append(("write", nbytes))

        def on_poll(self):
            self.polls += 1

        def on_http_hdrs(self, msg):
            self.seen.append(("hdrs", type(msg), msg.method, msg.uri))

        def on_http_msg(self, msg):
            self.seen.append(("msg", type(msg), msg.method, msg.uri, msg.query, msg.body_bytes))
            self.reply(200, b"hello")

        def on_close(self):
            self.seen.append(("close",))

    with Manager() as mgr:
        listener = mgr.listen("http://127.0.0.1:0", connection_class=Recorder)
        assert isinstance(listener, Recorder)
        cli = RawClient(listen_port(listener))
        cli.send(b"POST /path?x=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
        status, body = cli.wait_response(mgr)
        assert (status, body) == (200, b"hello")
        cli.close()
        assert pump(mgr, lambda: len(accepted) == 2 and ("close",) in accepted[1].seen)
        child = accepted[1]
        seen = child.seen
        # Mongoose's protocol handler runs before the user's fn: the request's
        # HTTP events come before the MG_EV_READ that delivered its bytes.
        order = [first(seen, n) for n in ("open", "accept", "hdrs", "msg", "write", "close")]
        assert order == sorted(order), seen
        assert first(seen, "accept") < first(seen, "read") < first(seen, "close")
        hdrs = seen[first(seen, "hdrs")]
        assert hdrs[1:] == (HttpMessage, "POST", "/path")
        msg = seen[first(seen, "msg")]
        assert msg[1:] == (HttpMessage, "POST", "/path", "x=1", b"abc")
        written = sum(e[1] for e in seen if e[0] == "write")
        assert written >= len(b"HTTP/1.1 200 OK\r\n") + 5
        assert all(isinstance(e[1], int) and e[1] > 0 for e in seen if e[0] == "write")
        assert child.polls > 0 and accepted[0].polls > 0
        # The listener itself never accepts or reads.
        assert [e[0] for e in accepted[0].seen] == ["open"]


def test_client_hooks_resolve_connect_read_write_http_msg_close():
    def server(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            conn.reply(201, b"created")

    class Client(Connection):
        def __init__(self):
            super().__init__()
            self.seen = []

        def on_open(self):
            self.seen.append("open")

        def on_resolve(self):
            self.seen.append("resolve")

        def on_connect(self):
            self.seen.append("connect")
            self.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")

        def on_write(self, nbytes):
            self.seen.append(("write", nbytes))

        def on_read(self):
            self.seen.append("read")

        def on_http_msg(self, msg):
            self.seen.append(("msg", msg.status(), msg.body_bytes))
            self.close()

        def on_close(self):
            self.seen.append("close")

    with Manager() as mgr:
        port = listen_port(mgr.listen("http://127.0.0.1:0", server))
        c = mgr.connect("http://127.0.0.1:%d" % port, connection_class=Client)
        assert isinstance(c, Client)
        assert pump(mgr, lambda: "close" in c.seen)
        s = c.seen
        assert ("msg", 201, b"created") in s
        assert ("write", len(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")) in s
        names = [e if isinstance(e, str) else e[0] for e in s]
        order = [names.index(n) for n in ("open", "resolve", "connect", "write", "msg", "close")]
        assert order == sorted(order), s
        assert names.index("write") < names.index("read") < names.index("close")


def test_on_error_gets_the_message():
    port = free_port()  # nobody listens there

    class Client(Connection):
        errors = []
        closed = []

        def on_error(self, message):
            self.errors.append(message)

        def on_close(self):
            self.closed.append(True)

    with Manager() as mgr:
        mgr.connect("tcp://127.0.0.1:%d" % port, connection_class=Client)
        assert pump(mgr, lambda: Client.closed)
        assert len(Client.errors) == 1
        assert isinstance(Client.errors[0], str) and Client.errors[0]


def test_ws_hooks():
    class WsServer(Connection):
        def on_http_msg(self, msg):
            self.ws_upgrade(msg)

        def on_ws_msg(self, msg):
            self.ws_send(b"echo:" + msg.data)

    class WsClient(Connection):
        def __init__(self):
            super().__init__()
            self.seen = []

        def on_ws_open(self, msg):
            self.seen.append(("open", type(msg), msg.status()))
            self.ws_send("hi")

        def on_ws_msg(self, msg):
            self.seen.append(("msg", type(msg), msg.data))

    with Manager() as mgr:
        port = listen_port(mgr.listen("http://127.0.0.1:0", connection_class=WsServer))
        c = mgr.ws_connect("ws://127.0.0.1:%d/ws" % port, connection_class=WsClient)
        assert pump(mgr, lambda: len(c.seen) == 2)
        assert c.seen == [("open", HttpMessage, 101), ("msg", WsMessage, b"echo:hi")]


def test_on_event_catch_all_and_specific_hook_wins():
    class All(Connection):
        seen = []

        def on_event(self, ev, data):
            self.seen.append((ev, data))

    class Mixed(Connection):
        events = []
        msgs = []

        def on_http_msg(self, msg):
            self.msgs.append(msg.uri)
            self.reply(200, b"m")

        def on_event(self, ev, data):
            self.events.append(ev)

    with Manager() as mgr:
        port = listen_port(mgr.listen("http://127.0.0.1:0", connection_class=All))
        cli = RawClient(port)
        cli.send(GET)
        # Nobody replies: wait for the request to be seen, then close.
        assert pump(mgr, lambda: any(ev == MG_EV_HTTP_MSG for ev, _ in All.seen))
        cli.close()
        assert pump(mgr, lambda: any(ev == MG_EV_CLOSE for ev, _ in All.seen))
        evs = [ev for ev, _ in All.seen]
        for ev in (MG_EV_OPEN, MG_EV_POLL, MG_EV_ACCEPT, MG_EV_READ, MG_EV_HTTP_HDRS, MG_EV_HTTP_MSG):
            assert ev in evs
        data = [d for ev, d in All.seen if ev == MG_EV_HTTP_MSG][0]
        assert isinstance(data, HttpMessage) and not data  # stale after its callback

        port2 = listen_port(mgr.listen("http://127.0.0.1:0", connection_class=Mixed))
        cli = RawClient(port2)
        cli.send(GET)
        assert cli.wait_response(mgr) == (200, b"m")
        cli.close()
        assert pump(mgr, lambda: MG_EV_CLOSE in Mixed.events)
        assert Mixed.msgs == ["/path"]
        assert MG_EV_HTTP_MSG not in Mixed.events
        assert MG_EV_POLL in Mixed.events and MG_EV_WRITE in Mixed.events


def _drive_requests(mgr, port, n, counter):
    """``n`` HTTP requests (a new connection each) from a client thread while
    this thread polls with a 1 ms wait; returns (responses, loop iterations)."""
    results = []

    def client():
        for i in range(n):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/r%d" % i)
            r = c.getresponse()
            results.append((r.status, r.read()))
            c.close()

    t = threading.Thread(target=client, daemon=True)
    iterations = 0
    before = counter()
    t.start()
    deadline = time.monotonic() + 30
    while (t.is_alive() or iterations < 300) and time.monotonic() < deadline:
        mgr.poll(1)
        iterations += 1
    t.join(5)
    # Let the server see the last CLOSE.
    pump(mgr, lambda: len(mgr.connections) == 1, 5)
    return results, iterations, counter() - before


def trampoline_calls():
    return LIB.mgpy_trampoline_calls


def test_events_without_hook_never_cross_into_python():
    class OnlyMsg(Connection):
        def on_http_msg(self, msg):
            self.reply(200, b"ok")

    n = 50
    with Manager() as mgr:
        port = listen_port(mgr.listen("http://127.0.0.1:0", connection_class=OnlyMsg))
        results, iterations, calls = _drive_requests(mgr, port, n, trampoline_calls)
    assert results == [(200, b"ok")] * n
    assert iterations >= 300
    # OPEN + HTTP_MSG + CLOSE per request (the binding needs OPEN/CLOSE): nothing per poll.
    assert n * 3 <= calls <= n * 3 + 5, (calls, iterations)


def test_handler_function_gets_every_event_including_poll():
    polls = []

    def handler(conn, ev, data):
        if ev == MG_EV_POLL:
            polls.append(1)
        elif ev == MG_EV_HTTP_MSG:
            conn.reply(200, b"ok")

    n = 50
    with Manager() as mgr:
        port = listen_port(mgr.listen("http://127.0.0.1:0", handler))
        results, iterations, calls = _drive_requests(mgr, port, n, trampoline_calls)
    assert results == [(200, b"ok")] * n
    # At least one POLL per iteration (the listener), plus every I/O event.
    assert len(polls) >= iterations
    assert calls >= iterations + n * 6, (calls, iterations)


def recording_ok_handler(seen):
    """A handler that records every event it gets in ``seen`` and answers each request 200 "ok"."""
    def handler(conn, ev, data):
        seen.append(ev)
        if ev == MG_EV_HTTP_MSG:
            conn.reply(200, b"ok")
    return handler


def test_events_argument_narrows_a_handler():
    seen = []
    handler = recording_ok_handler(seen)

    n = 20
    with Manager() as mgr:
        port = listen_port(mgr.listen("http://127.0.0.1:0", handler, events={MG_EV_HTTP_MSG}))
        results, iterations, calls = _drive_requests(mgr, port, n, trampoline_calls)
    assert results == [(200, b"ok")] * n
    assert seen == [MG_EV_HTTP_MSG] * n
    assert calls <= n * 3 + 5  # OPEN/CLOSE cross for the binding, but never reach the handler


def test_manager_events_argument_narrows_the_default_handler():
    seen = []
    handler = recording_ok_handler(seen)

    with Manager(handler, events={MG_EV_HTTP_MSG, MG_EV_CLOSE}) as mgr:
        cli = RawClient(listen_port(mgr.listen("http://127.0.0.1:0")))
        cli.send(GET)
        assert cli.wait_response(mgr) == (200, b"ok")
        cli.close()
        assert pump(mgr, lambda: MG_EV_CLOSE in seen)
    assert set(seen) == {MG_EV_HTTP_MSG, MG_EV_CLOSE}


def test_accepted_children_inherit_the_listener_handler_and_set_handler_affects_future_children():
    calls = []

    def h1(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            calls.append(("h1", conn.id))
            conn.reply(200, b"one")

    def h2(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            calls.append(("h2", conn.id))
            conn.reply(200, b"two")

    with Manager() as mgr:
        listener = mgr.listen("http://127.0.0.1:0", h1)
        port = listen_port(listener)
        old = RawClient(port)
        old.send(GET)
        assert old.wait_response(mgr) == (200, b"one")
        child = [c for c in mgr.connections if c is not listener and c.is_accepted][0]
        assert child.handler is h1

        listener.set_handler(h2)
        assert listener.handler is h2
        new = RawClient(port)
        new.send(GET)
        assert new.wait_response(mgr) == (200, b"two")
        # The child accepted before keeps its handler.
        old.send(GET)
        assert old.wait_response(mgr) == (200, b"one")
        assert child.handler is h1
        old.close()
        new.close()
    assert [c[0] for c in calls] == ["h1", "h2", "h1"]


def test_connection_class_on_manager_and_on_listen():
    class Default(Connection):
        def on_http_msg(self, msg):
            self.reply(200, b"default")

    class Special(Connection):
        def on_http_msg(self, msg):
            self.reply(200, b"special")

    with Manager(connection_class=Default) as mgr:
        l1 = mgr.listen("http://127.0.0.1:0")
        l2 = mgr.listen("http://127.0.0.1:0", connection_class=Special)
        assert type(l1) is Default and type(l2) is Special
        c1, c2 = RawClient(listen_port(l1)), RawClient(listen_port(l2))
        c1.send(GET)
        c2.send(GET)
        assert c1.wait_response(mgr) == (200, b"default")
        assert c2.wait_response(mgr) == (200, b"special")
        kids = [c for c in mgr.connections if c.is_accepted]
        assert sorted(type(k).__name__ for k in kids) == ["Default", "Special"]
        c1.close()
        c2.close()


def test_same_object_for_the_whole_life_and_userdata():
    objs = []
    ids = []

    class Same(Connection):
        def on_open(self):
            objs.append(self)
            self.userdata = {"n": 0}

        def on_read(self):
            objs.append(self)
            self.userdata["n"] += 1

        def on_http_msg(self, msg):
            objs.append(self)
            ids.append(self.id)
            self.reply(200, str(self.userdata["n"]))

        def on_close(self):
            objs.append(self)

    with Manager() as mgr:
        listener = mgr.listen("http://127.0.0.1:0", connection_class=Same)
        del objs[:]
        cli = RawClient(listen_port(listener))
        cli.send(GET)
        assert cli.wait_response(mgr)[0] == 200
        cli.send(GET)
        assert cli.wait_response(mgr)[0] == 200
        child = [c for c in mgr.connections if c is not listener][0]
        cli.close()
        assert pump(mgr, lambda: child.is_closing and len(mgr.connections) == 1)
        assert len(objs) >= 6
        assert all(o is child for o in objs)
    assert ids[0] == ids[1] != 0
    assert child.userdata["n"] >= 2  # userdata survives close
    assert child.id == 0


def test_userdata_on_handler_connections():
    def handler(conn, ev, data):
        if ev == MG_EV_OPEN:
            conn.userdata = []
        elif ev == MG_EV_HTTP_MSG:
            conn.userdata.append(data.uri)
            conn.reply(200, ",".join(conn.userdata))

    with Manager(handler) as mgr:
        cli = RawClient(listen_port(mgr.listen("http://127.0.0.1:0")))
        for _ in range(3):
            cli.send(GET)
            status, body = cli.wait_response(mgr)
        assert body == b"/path,/path,/path"
        cli.close()


def test_hook_and_handler_coexist_handler_wins():
    got = []

    class Hooked(Connection):
        def on_http_msg(self, msg):
            got.append("hook")
            self.reply(200, b"hook")

    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            got.append("handler")
            conn.reply(200, b"handler")

    with Manager() as mgr:
        l1 = mgr.listen("http://127.0.0.1:0", handler, connection_class=Hooked)
        cli = RawClient(listen_port(l1))
        cli.send(GET)
        assert cli.wait_response(mgr) == (200, b"handler")
        cli.close()
    assert got == ["handler"]


def test_on_wakeup_hook_receives_bytes():
    class Woken(Connection):
        got = []

        def on_wakeup(self, data):
            self.got.append(data)

    with Manager(enable_wakeup=True) as mgr:
        listener = mgr.listen("tcp://127.0.0.1:0", connection_class=Woken)
        assert mgr.wakeup(listener.id, b"ping")
        assert pump(mgr, lambda: Woken.got)
    assert Woken.got == [b"ping"]


@pytest.mark.parametrize("hook", ["on_poll", "on_write", "on_read"])
def test_each_overridden_hook_adds_only_its_event_to_the_mask(hook):
    counts = {"n": 0}

    def bump(self, *args):
        counts["n"] += 1

    cls = type("Only", (Connection,), {hook: bump})
    with Manager() as mgr:
        listener = mgr.listen("http://127.0.0.1:0", connection_class=cls)
        cli = RawClient(listen_port(listener))
        cli.send(GET)
        # No on_http_msg: nobody replies; the request is still read.
        for _ in range(30):
            mgr.poll(1)
        if hook == "on_poll":
            assert counts["n"] >= 30
        elif hook == "on_read":
            assert counts["n"] >= 1
        else:
            assert counts["n"] == 0  # nothing written
        cli.close()


def test_on_read_hook_reads_bytes():
    got = []

    class Upper(Connection):
        def on_read(self):
            peek = self.recv_data()
            data = self.read()
            got.append((type(peek), peek, type(data), data, self.recv_len))
            self.send(bytes(data).upper())

    with Manager() as mgr:
        port = listen_port(mgr.listen("tcp://127.0.0.1:0", connection_class=Upper))
        cli = RawClient(port)
        cli.send(b"hello")
        assert pump(mgr, lambda: cli._read() or cli.buf == b"HELLO", 5), cli.buf
        cli.close()
    assert got[0] == (bytes, b"hello", bytes, b"hello", 0)
