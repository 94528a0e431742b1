"""The thread contract: any thread may call any method while the loop runs;
every call takes effect, nothing crashes, nothing deadlocks; poll() itself is
not reentrant."""
import http.client
import socket
import threading
import time

import pytest

from conftest import LoopThread, pump, wait_for
from mongoose_py._ffi import lib
from mongoose_py import (
    MG_EV_ACCEPT, MG_EV_CONNECT, MG_EV_ERROR, MG_EV_HTTP_MSG, MG_EV_READ, Connection, Manager,
)

JOIN = 60  # seconds: a bounded join; a deadlock fails the test instead of hanging it


class Counter:
    def __init__(self):
        self.lock = threading.Lock()
        self.n = {}

    def add(self, key, k=1):
        with self.lock:
            self.n[key] = self.n.get(key, 0) + k

    def get(self, key):
        with self.lock:
            return self.n.get(key, 0)


def join_all(threads):
    deadline = time.monotonic() + JOIN
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
        assert not t.is_alive(), "thread %s deadlocked" % t.name


def run_threads(fns):
    errors = []

    def wrap(fn):
        def run():
            try:
                fn()
            except BaseException as exc:  # reported below
                errors.append(exc)
        return run

    threads = [threading.Thread(target=wrap(fn), daemon=True, name="w%d" % i) for i, fn in enumerate(fns)]
    return threads, errors


def test_eight_threads_send_connect_timer_add_listen_under_http_load():
    counts = Counter()
    n_workers, n_conns, n_sends, n_timers, chunk = 8, 5, 50, 25, 100
    http_threads, http_per_thread = 4, 75

    def http_handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            conn.reply(200, b"r:" + data.uri.encode())

    def sink(conn, ev, data):
        if ev == MG_EV_ACCEPT:
            counts.add("sink_accept")
        elif ev == MG_EV_READ:
            counts.add("sink_bytes", len(conn.read()))

    def client(conn, ev, data):
        if ev == MG_EV_CONNECT:
            counts.add("client_connect")

    def extra_listener(conn, ev, data):
        if ev == MG_EV_ACCEPT:
            counts.add("extra_accept")

    mgr = Manager()
    http_port = mgr.listen("http://127.0.0.1:0", http_handler).local_addr[1]
    sink_port = mgr.listen("tcp://127.0.0.1:0", sink).local_addr[1]
    loop = LoopThread(mgr, poll_ms=20).start()
    sockets = []
    try:
        http_results = []

        def http_client(tid):
            def run():
                for i in range(http_per_thread):
                    c = http.client.HTTPConnection("127.0.0.1", http_port, timeout=20)
                    path = "/t%d/%d" % (tid, i)
                    c.request("GET", path)
                    r = c.getresponse()
                    http_results.append((r.status, r.read() == b"r:" + path.encode()))
                    c.close()
            return run

        def worker(wid):
            def run():
                conns = [mgr.connect("tcp://127.0.0.1:%d" % sink_port, client) for _ in range(n_conns)]
                for j in range(n_sends):
                    conns[j % n_conns].send(b"x" * chunk)
                for j in range(n_timers):
                    mgr.timer_add(j % 5, lambda: counts.add("timer"))
                listener = mgr.listen("tcp://127.0.0.1:0", extra_listener)
                port = listener.local_addr[1]
                assert port > 0 and listener.is_listening
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                sockets.append(s)
                counts.add("worker_done")
            return run

        fns = [http_client(t) for t in range(http_threads)] + [worker(w) for w in range(n_workers)]
        threads, errors = run_threads(fns)
        for t in threads:
            t.start()
        join_all(threads)
        assert errors == [], errors
        assert counts.get("worker_done") == n_workers
        assert http_results == [(200, True)] * (http_threads * http_per_thread)
        expected = {
            "sink_accept": n_workers * n_conns,
            "client_connect": n_workers * n_conns,
            "sink_bytes": n_workers * n_sends * chunk,
            "timer": n_workers * n_timers,
            "extra_accept": n_workers,
        }
        assert wait_for(lambda: all(counts.get(k) >= v for k, v in expected.items()), 20), counts.n
        time.sleep(0.05)
        assert {k: counts.get(k) for k in expected} == expected
    finally:
        for s in sockets:
            s.close()
        loop.stop()


def test_connection_methods_from_threads_on_accepted_connections():
    """Threads push data to accepted connections while the loop serves them."""
    accepted = []

    class Conn(Connection):
        def on_accept(self):
            accepted.append(self)

    mgr = Manager()
    port = mgr.listen("tcp://127.0.0.1:0", connection_class=Conn).local_addr[1]
    loop = LoopThread(mgr, poll_ms=20).start()
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(8)]
    try:
        assert wait_for(lambda: len(accepted) == 8, 10)
        per, size = 200, 512

        def pusher(conn, tag):
            def run():
                for i in range(per):
                    conn.send(bytes([tag]) * size)
                    if i % 50 == 0:
                        assert conn.remote_addr[1] > 0  # properties too
                        assert not conn.is_closing
            return run

        threads, errors = run_threads([pusher(c, i) for i, c in enumerate(accepted)])
        for t in threads:
            t.start()
        received = [0] * 8
        # Read on this thread while the pushers push (the kernel buffers are small).
        deadline = time.monotonic() + 30
        for s in socks:
            s.setblocking(False)
        while (sum(received) < 8 * per * size and time.monotonic() < deadline and not errors
               and loop.thread.is_alive()):
            for i, s in enumerate(socks):
                try:
                    received[i] += len(s.recv(1 << 16))
                except BlockingIOError:
                    pass
            time.sleep(0.001)
        join_all(threads)
        assert errors == [], errors
        assert received == [per * size] * 8
    finally:
        for s in socks:
            s.close()
        loop.stop()


def test_handler_calls_back_into_the_manager_from_the_loop_thread():
    events = []

    def sink(conn, ev, data):
        if ev == MG_EV_ACCEPT:
            events.append("sink_accept")

    def out(conn, ev, data):
        if ev == MG_EV_CONNECT:
            events.append("connected")
            conn.send(b"hi")

    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            mgr = conn.manager

            def later():
                events.append("timer")
                conn.reply(200, b"from timer")

            mgr.timer_add(5, later)
            mgr.connect("tcp://127.0.0.1:%d" % sink_port, out)
            mgr.listen("tcp://127.0.0.1:0", sink)  # listen from a handler too
            events.append("handler")

    mgr = Manager()
    http_port = mgr.listen("http://127.0.0.1:0", handler).local_addr[1]
    sink_port = mgr.listen("tcp://127.0.0.1:0", sink).local_addr[1]
    loop = LoopThread(mgr).start()
    try:
        c = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
        c.request("GET", "/")
        r = c.getresponse()
        assert (r.status, r.read()) == (200, b"from timer")
        c.close()
        assert wait_for(lambda: {"handler", "timer", "connected", "sink_accept"} <= set(events), 10), events
    finally:
        loop.stop()


def test_calls_from_another_thread_take_effect_within_one_iteration_of_a_long_poll():
    got = []

    def sink(conn, ev, data):
        if ev == MG_EV_READ:
            got.append(bytes(conn.read()))

    mgr = Manager()
    port = mgr.listen("tcp://127.0.0.1:0", sink).local_addr[1]
    c = mgr.connect("tcp://127.0.0.1:%d" % port)
    assert pump(mgr, lambda: len(mgr.connections) == 3, 5)
    loop = LoopThread(mgr, poll_ms=5000).start()
    try:
        time.sleep(0.1)  # the loop now waits in a 5 s poll
        start = time.monotonic()
        c.send(b"ping")  # queued for the loop thread; the doorbell wakes it
        assert wait_for(lambda: got, 10)
        assert time.monotonic() - start < 2.5, "the call waited for the poll timeout"
    finally:
        loop.stop()
    assert b"".join(got) == b"ping"


def test_calls_from_another_thread_when_nobody_polls():
    mgr = Manager()
    try:
        out = {}

        def other():
            lst = mgr.listen("tcp://127.0.0.1:0")
            out["port"] = lst.local_addr[1]
            out["timer"] = mgr.timer_add(1, lambda: out.setdefault("fired", True))

        t = threading.Thread(target=other)
        t.start()
        t.join(10)
        assert not t.is_alive() and out["port"] > 0
        assert pump(mgr, lambda: out.get("fired"), 5)
    finally:
        mgr.close()


def test_poll_reentered_from_a_handler_raises():
    caught = []

    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            try:
                conn.manager.poll(0)
            except RuntimeError as exc:
                caught.append(str(exc))
            conn.reply(200, b"ok")

    mgr = Manager(handler)
    port = mgr.listen("http://127.0.0.1:0").local_addr[1]
    loop = LoopThread(mgr).start()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/")
        assert c.getresponse().status == 200
        c.close()
    finally:
        loop.stop()
    assert len(caught) == 1 and "reentrant" in caught[0]


def test_poll_reentered_from_a_timer_raises(manager):
    caught = []

    def cb():
        with pytest.raises(RuntimeError):
            manager.poll(0)
        with pytest.raises(RuntimeError):
            manager.run(10)
        caught.append(True)

    manager.timer_add(1, cb)
    assert pump(manager, lambda: caught, 5)


def test_poll_from_a_second_thread_while_the_loop_runs_raises():
    inside = threading.Event()
    release = threading.Event()

    mgr = Manager()
    mgr.timer_add(1, lambda: (inside.set(), release.wait(10)))
    loop = LoopThread(mgr).start()
    try:
        assert inside.wait(5)  # the loop thread is inside poll(), in a callback
        result = {}

        def second():
            try:
                mgr.poll(0)
                result["ok"] = True
            except RuntimeError as exc:
                result["error"] = str(exc)

        t = threading.Thread(target=second)
        t.start()
        t.join(10)
        assert not t.is_alive()
        assert "reentrant" in result.get("error", ""), result
    finally:
        release.set()
        loop.stop()


def test_poll_waits_for_a_direct_call_made_by_another_thread():
    """Nobody polls, so thread B's call runs directly on B (holding the loop
    lock) and fires a handler there; a poll() that starts meanwhile must wait
    for it, not fail as if it were a second poll."""
    entered = threading.Event()
    release = threading.Event()
    errors_seen = []

    def handler(conn, ev, data):
        if ev == MG_EV_ERROR:
            errors_seen.append(data)
            entered.set()
            release.wait(10)

    mgr = Manager()
    try:
        conn = mgr.listen("tcp://127.0.0.1:0", handler)
        b = threading.Thread(target=conn.error, args=("from B",), daemon=True)
        b.start()
        assert entered.wait(5)
        threading.Timer(0.2, release.set).start()
        mgr.poll(0)  # waits for B's call, then runs one iteration
        b.join(5)
        assert not b.is_alive()
        assert errors_seen == ["from B"]
        pump(mgr, lambda: conn.id == 0, 5)
        assert conn.id == 0  # error() closes the connection
    finally:
        release.set()
        mgr.close()


@pytest.mark.parametrize("stopper", ["the caller", "a third thread"])
def test_stop_from_another_thread_ends_run(stopper):
    mgr = Manager()
    mgr.listen("tcp://127.0.0.1:0")
    ticks = []
    mgr.timer_add(5, lambda: ticks.append(1), repeat=True)
    done = threading.Event()

    def runner():
        mgr.run(poll_ms=1000)
        done.set()

    t = threading.Thread(target=runner, daemon=True)
    t.start()
    assert wait_for(lambda: len(ticks) >= 3, 5)
    if stopper == "the caller":
        mgr.stop()
    else:
        third = threading.Thread(target=mgr.stop)
        third.start()
        third.join(5)
    t.join(5)
    assert done.is_set() and not t.is_alive()
    assert mgr.closed


def test_close_from_another_thread_while_the_loop_runs():
    closed = []

    class C(Connection):
        def on_close(self):
            closed.append(self)

    mgr = Manager()
    listener = mgr.listen("tcp://127.0.0.1:0", connection_class=C)
    stop = threading.Event()
    errors = []

    def looper():
        try:
            while not stop.is_set() and not mgr.closed:
                mgr.poll(20)
        except RuntimeError as exc:
            if not mgr.closed:
                errors.append(exc)

    t = threading.Thread(target=looper, daemon=True)
    t.start()
    time.sleep(0.05)
    mgr.close()
    t.join(10)
    stop.set()
    assert not t.is_alive() and errors == []
    assert mgr.closed and closed == [listener]


def test_a_connection_call_from_a_thread_that_raises_is_handed_to_the_caller():
    mgr = Manager()
    c = mgr.listen("tcp://127.0.0.1:0")
    loop = LoopThread(mgr).start()
    try:
        box = {}

        def other():
            try:
                c.tls_init(None)
            except TypeError as exc:
                box["error"] = exc

        t = threading.Thread(target=other)
        t.start()
        t.join(10)
        assert isinstance(box.get("error"), TypeError)
    finally:
        loop.stop()


def test_ws_send_from_another_thread_never_runs_beside_the_loop(serve, monkeypatch):
    """ws_send inlines the thread check (a hot path, no wrapper): from another
    thread each C call must still hold the Manager (marshalled to the loop
    thread, or run directly between two polls with the loop lock held)."""
    import websocket
    from mongoose_py import _ws

    opened, c_calls, mgrs = [], [], []

    class Probe(Connection):
        def on_http_msg(self, msg):
            self.ws_upgrade(msg)

        def on_ws_open(self, msg):
            opened.append(self)

    class RecordingLib:  # the real lib, noting who makes each mg_ws_send and who owns the Manager
        def __getattr__(self, name):
            return getattr(lib, name)

        def mg_ws_send(self, *args):
            c_calls.append((threading.get_ident(), mgrs[0]._owner))
            return lib.mg_ws_send(*args)

    monkeypatch.setattr(_ws, "lib", RecordingLib())
    mgr, _lst, port = serve(None, "ws://127.0.0.1:0", connection_class=Probe)
    mgrs.append(mgr)
    ws = websocket.create_connection("ws://127.0.0.1:%d/" % port, timeout=10)
    try:
        assert wait_for(lambda: opened, 10)
        t = threading.Thread(target=lambda: [opened[0].ws_send("m%d" % i) for i in range(50)])
        t.start()
        t.join(20)
        assert not t.is_alive()
        assert [ws.recv() for _ in range(50)] == ["m%d" % i for i in range(50)]
    finally:
        ws.close()
    assert len(c_calls) == 50
    assert all(me == owner for me, owner in c_calls), "mg_ws_send ran without owning the Manager"
