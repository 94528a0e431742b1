"""Wakeup: lossless, ordered, any size, from any thread; never blocks."""
import socket
import struct
import threading

import pytest

from conftest import LoopThread, pump, wait_for
from mongoose_py import MG_EV_HTTP_MSG, MG_EV_WAKEUP, Connection, Manager


def wakeup_collector(got):
    """A handler that appends the data of each MG_EV_WAKEUP to ``got``."""
    def handler(conn, ev, data):
        if ev == MG_EV_WAKEUP:
            got.append(data)
    return handler


def test_wakeup_reaches_the_handler_as_bytes():
    got = []

    def handler(conn, ev, data):
        if ev == MG_EV_WAKEUP:
            got.append((conn, data))

    with Manager(enable_wakeup=True) as mgr:
        listener = mgr.listen("tcp://127.0.0.1:0", handler)
        assert mgr.wakeup(listener.id, b"hello") is True
        assert mgr.wakeup(listener.id, bytearray(b"ba")) is True
        assert mgr.wakeup(listener.id, memoryview(b"mv")) is True
        assert pump(mgr, lambda: len(got) == 3, 5)
    assert [d for _, d in got] == [b"hello", b"ba", b"mv"]
    assert all(c is listener and type(d) is bytes for c, d in got)


def test_wakeup_to_an_accepted_connection_and_on_wakeup_hook():
    class Pusher(Connection):
        woken = []

        def on_wakeup(self, data):
            self.woken.append(data)
            self.send(b"pushed:" + data)

    with Manager(enable_wakeup=True) as mgr:
        listener = mgr.listen("tcp://127.0.0.1:0", connection_class=Pusher)
        s = socket.create_connection(("127.0.0.1", listener.local_addr[1]), timeout=5)
        assert pump(mgr, lambda: len(mgr.connections) == 2, 5)
        child = [c for c in mgr.connections if c is not listener][0]
        assert isinstance(child, Pusher)
        mgr.wakeup(child.id, b"x1")
        buf = []

        def readable():
            s.setblocking(False)
            try:
                buf.append(s.recv(100))
            except BlockingIOError:
                pass
            return b"".join(buf) == b"pushed:x1"

        assert pump(mgr, readable, 5)
        s.close()
    assert Pusher.woken == [b"x1"]


def test_wakeup_returns_false_without_enable_wakeup_or_id_zero():
    with Manager() as mgr:
        listener = mgr.listen("tcp://127.0.0.1:0", lambda c, e, d: None)
        assert mgr.wakeup(listener.id, b"x") is False
        assert mgr.wakeup_id == 0
    with Manager(enable_wakeup=True) as mgr:
        assert mgr.wakeup(0, b"x") is False
        assert mgr.wakeup_id != 0


@pytest.mark.parametrize("bad", ["text", 5, None, [1, 2]])
def test_wakeup_data_must_be_bytes(bad):
    with Manager(enable_wakeup=True) as mgr:
        listener = mgr.listen("tcp://127.0.0.1:0", lambda c, e, d: None)
        with pytest.raises(TypeError):
            mgr.wakeup(listener.id, bad)


def test_wakeup_to_unknown_or_closed_id_is_dropped_and_later_ones_arrive():
    got = []
    handler = wakeup_collector(got)
    with Manager(enable_wakeup=True) as mgr:
        listener = mgr.listen("tcp://127.0.0.1:0", handler)
        other = mgr.listen("tcp://127.0.0.1:0", handler)
        gone = other.id
        other.close()
        assert pump(mgr, lambda: len(mgr.connections) == 1, 5)
        mgr.wakeup(gone, b"lost")
        mgr.wakeup(987654321, b"nobody")
        mgr.wakeup(listener.id, b"ok")
        assert pump(mgr, lambda: got, 5)
        for _ in range(3):
            mgr.poll(1)
    assert got == [b"ok"]


def test_wakeup_only_reaches_connections_that_listen_for_it():
    got = []

    def handler(conn, ev, data):
        got.append(ev)

    with Manager(enable_wakeup=True) as mgr:
        deaf = mgr.listen("tcp://127.0.0.1:0", handler, events={MG_EV_HTTP_MSG})
        plain = mgr.listen("tcp://127.0.0.1:0")  # base Connection, no hooks: nothing crosses
        mgr.wakeup(deaf.id, b"a")
        mgr.wakeup(plain.id, b"b")
        for _ in range(5):
            mgr.poll(1)
    assert MG_EV_WAKEUP not in got


@pytest.mark.parametrize("size", [0, 1, 16 * 1024, 64 * 1024, 1024 * 1024])
def test_wakeup_payload_sizes_intact(size):
    got = []
    handler = wakeup_collector(got)
    payload = bytes((i * 7 + size) & 0xFF for i in range(size))
    with Manager(enable_wakeup=True) as mgr:
        listener = mgr.listen("tcp://127.0.0.1:0", handler)
        loop = LoopThread(mgr, poll_ms=50).start()
        try:
            t = threading.Thread(target=mgr.wakeup, args=(listener.id, payload))
            t.start()
            t.join(5)
            assert wait_for(lambda: got, 5)
        finally:
            loop.stop()
    assert len(got) == 1
    assert len(got[0]) == size and got[0] == payload


def test_hundred_thousand_wakeups_from_eight_threads_none_lost_in_order():
    threads_n, per_thread = 8, 12500
    total = threads_n * per_thread
    seen = [[] for _ in range(threads_n)]
    count = [0]
    unpack = struct.Struct("<II").unpack

    def handler(conn, ev, data):
        if ev == MG_EV_WAKEUP:
            tid, seq = unpack(data)
            seen[tid].append(seq)
            count[0] += 1

    mgr = Manager(enable_wakeup=True)
    listener = mgr.listen("tcp://127.0.0.1:0", handler, events={MG_EV_WAKEUP})
    cid = listener.id
    loop = LoopThread(mgr, poll_ms=50).start()
    try:
        start = threading.Barrier(threads_n)
        results = []

        def producer(tid):
            pack = struct.Struct("<II").pack
            start.wait(10)
            ok = True
            for seq in range(per_thread):
                ok = mgr.wakeup(cid, pack(tid, seq)) and ok
            results.append(ok)

        producers = [threading.Thread(target=producer, args=(i,), daemon=True) for i in range(threads_n)]
        for p in producers:
            p.start()
        for p in producers:
            p.join(60)
            assert not p.is_alive(), "wakeup() blocked"
        assert results == [True] * threads_n
        assert wait_for(lambda: count[0] >= total, 60), "%d of %d delivered" % (count[0], total)
    finally:
        loop.stop()
    assert count[0] == total
    for tid in range(threads_n):
        assert seen[tid] == list(range(per_thread)), "thread %d out of order or lost" % tid


def test_wakeup_never_blocks_while_the_loop_is_busy_in_a_handler():
    release = threading.Event()
    entered = threading.Event()
    got = []
    handler = wakeup_collector(got)
    with Manager(enable_wakeup=True) as mgr:
        listener = mgr.listen("tcp://127.0.0.1:0", handler)

        def busy():
            entered.set()
            release.wait(10)  # the loop is stuck here until the other thread's wakeups returned

        mgr.timer_add(1, busy)
        loop = LoopThread(mgr, poll_ms=20).start()
        try:
            assert entered.wait(5)

            def pusher():
                for i in range(100):
                    mgr.wakeup(listener.id, b"%d" % i)
                mgr.stop()  # never blocks either
                release.set()

            th = threading.Thread(target=pusher, daemon=True)
            th.start()
            th.join(5)
            assert not th.is_alive() and release.is_set(), "wakeup()/stop() blocked on a busy loop"
            assert wait_for(lambda: len(got) == 100, 5)
        finally:
            release.set()
            loop.stop()
    assert got == [b"%d" % i for i in range(100)]


def test_wakeup_from_inside_a_handler_on_the_loop_thread():
    got = []

    def handler(conn, ev, data):
        if ev == MG_EV_WAKEUP:
            got.append(data)
            if data == b"first":
                assert conn.manager.wakeup(conn.id, b"second")

    with Manager(enable_wakeup=True) as mgr:
        listener = mgr.listen("tcp://127.0.0.1:0", handler)
        mgr.wakeup(listener.id, b"first")
        assert pump(mgr, lambda: len(got) == 2, 5)
    assert got == [b"first", b"second"]


def test_wakeup_after_close_raises():
    mgr = Manager(enable_wakeup=True)
    listener = mgr.listen("tcp://127.0.0.1:0", lambda c, e, d: None)
    cid = listener.id
    mgr.close()
    with pytest.raises(RuntimeError):
        mgr.wakeup(cid, b"x")
