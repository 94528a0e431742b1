"""Manager: context manager, idempotent close, calls after close, connections,
default handler and connection class, listen/connect failures."""
import gc
import socket
import weakref

import pytest

from conftest import pump
from mongoose_py import MG_EV_HTTP_MSG, Connection, Manager
from netutil import http_get, in_thread, raw_exchange

GET = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"


def test_manager_context_manager_and_idempotent_close():
    with Manager() as mgr:
        listener = mgr.listen("tcp://127.0.0.1:0")
        assert mgr.connections == (listener,)
        assert not mgr.closed
    assert mgr.closed
    mgr.close()
    mgr.close()
    assert listener.id == 0 and listener.is_closing
    for call in (lambda: mgr.poll(0), lambda: mgr.listen("tcp://127.0.0.1:0"),
                 lambda: mgr.connect("tcp://127.0.0.1:1"), lambda: mgr.timer_add(10, lambda: None),
                 lambda: mgr.wakeup(1, b"x"), lambda: mgr.ws_connect("ws://127.0.0.1:1/")):
        with pytest.raises(RuntimeError):
            call()
    mgr.stop()  # never blocks, never raises
    assert mgr.connections == ()


def test_run_on_a_closed_manager_raises():
    mgr = Manager()
    mgr.close()
    with pytest.raises(RuntimeError):
        mgr.run(10)


def test_manager_close_runs_close_handlers_of_every_connection():
    closed = []

    class C(Connection):
        def on_close(self):
            closed.append(self)

    mgr = Manager()
    listener = mgr.listen("tcp://127.0.0.1:0", connection_class=C)
    port = listener.local_addr[1]
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    assert pump(mgr, lambda: len(mgr.connections) == 4)
    kids = [c for c in mgr.connections if c is not listener]
    mgr.close()
    assert set(map(id, closed)) == set(map(id, kids + [listener]))
    assert all(c.id == 0 for c in closed)
    for s in socks:
        s.close()


def test_manager_close_inside_a_handler():
    class C(Connection):
        def on_http_msg(self, msg):
            self.reply(200, b"bye")
            self.manager.close()

    mgr = Manager()
    port = mgr.listen("http://127.0.0.1:0", connection_class=C).local_addr[1]
    job = in_thread(raw_exchange, port, GET, 5)
    assert pump(mgr, lambda: mgr.closed, 10) or mgr.closed
    job["thread"].join(10)
    assert mgr.closed and mgr.connections == ()
    with pytest.raises(RuntimeError):
        mgr.poll(0)


def test_connections_lists_live_connections():
    with Manager() as mgr:
        l1 = mgr.listen("tcp://127.0.0.1:0")
        l2 = mgr.listen("http://127.0.0.1:0")
        c = mgr.connect("tcp://127.0.0.1:%d" % l1.local_addr[1])
        assert pump(mgr, lambda: len(mgr.connections) == 4)
        assert set(mgr.connections) >= {l1, l2, c}
        c.close()
        assert pump(mgr, lambda: len(mgr.connections) == 2)
        assert set(mgr.connections) == {l1, l2}


def test_garbage_collected_manager_without_close():
    closed = []

    class C(Connection):
        def on_close(self):
            closed.append(1)

    def make():
        mgr = Manager()
        mgr.listen("tcp://127.0.0.1:0", connection_class=C)
        mgr.timer_add(1, lambda: closed.append("timer"), repeat=True)
        mgr.poll(0)
        return weakref.ref(mgr)

    ref = make()
    for _ in range(5):
        gc.collect()
        if ref() is None:
            break
    # Collected without close(): the C side is freed by the finalizer and no
    # event (MG_EV_CLOSE, timer) reaches Python objects being collected.
    assert ref() is None
    assert closed == []


def test_default_handler_serves_every_listener_without_its_own():
    seen = []

    def default(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            seen.append("default")
            conn.reply(200, b"default")

    def own(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            seen.append("own")
            conn.reply(200, b"own")

    with Manager(default) as mgr:
        p1 = mgr.listen("http://127.0.0.1:0").local_addr[1]
        p2 = mgr.listen("http://127.0.0.1:0", own).local_addr[1]
        for port, want in ((p1, b"default"), (p2, b"own")):
            job = in_thread(http_get, port)
            assert pump(mgr, lambda: not job["thread"].is_alive(), 10)
            assert job.get("result") == (200, want), job
    assert seen == ["default", "own"]


def test_connection_class_default_applies_to_connect_too():
    class Mine(Connection):
        connected = []

        def on_connect(self):
            self.connected.append(self)

    with Manager(connection_class=Mine) as mgr:
        listener = mgr.listen("tcp://127.0.0.1:0")
        c = mgr.connect("tcp://127.0.0.1:%d" % listener.local_addr[1])
        assert type(c) is Mine and type(listener) is Mine
        assert pump(mgr, lambda: Mine.connected, 5)
    assert Mine.connected == [c]


def test_listen_on_a_busy_port_raises():
    with Manager() as mgr:
        port = mgr.listen("tcp://127.0.0.1:0").local_addr[1]
        with pytest.raises(RuntimeError, match="listen"):
            mgr.listen("tcp://127.0.0.1:%d" % port)
        assert len(mgr.connections) == 1  # nothing half-made left behind


def test_wakeup_id_and_closed_properties():
    with Manager(enable_wakeup=True) as mgr:
        assert mgr.wakeup_id > 0
        assert not mgr.closed
    assert mgr.closed and mgr.wakeup_id == 0


def test_exception_in_with_block_still_closes_and_propagates():
    with pytest.raises(ValueError):
        with Manager() as mgr:
            mgr.listen("tcp://127.0.0.1:0")
            raise ValueError("inside")
    assert mgr.closed


def test_many_managers_open_and_close():
    for _ in range(50):
        with Manager(enable_wakeup=True) as mgr:
            mgr.listen("tcp://127.0.0.1:0")
            mgr.timer_add(1, lambda: None, repeat=True)
            mgr.poll(0)
    assert mgr.closed
