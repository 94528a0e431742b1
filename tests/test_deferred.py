"""Deferred replies (from a timer or another thread) keep pipelined requests flowing."""
import socket
import threading
import time

from mongoose_py import Connection, Manager


PIPELINED = b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(5))


def pipelined(connection_class, marker, timeout=10):
    """Send PIPELINED to a server of ``connection_class`` in one write and poll
    until the five replies holding ``marker`` came back (or timeout): the bytes."""
    with Manager() as mgr:
        port = mgr.listen("http://127.0.0.1:0", connection_class=connection_class).local_addr[1]
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(PIPELINED)
        s.settimeout(0.02)
        buf = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and buf.count(marker) < 5:
            mgr.poll(20)
            try:
                buf += s.recv(65536)
            except socket.timeout:
                pass
        s.close()
    return buf


def test_timer_deferred_replies_serve_pipelined_requests_in_order():
    class Deferred(Connection):
        def on_http_msg(self, msg):
            uri = msg.uri
            self._mgr.timer_add(5, lambda: self.reply(200, "late " + uri))

    buf = pipelined(Deferred, b"late ")
    bodies = [part.split(b"\r\n\r\n", 1)[1][:7] for part in buf.split(b"HTTP/1.1 200")[1:]]
    assert bodies == [b"late /%d" % i for i in range(5)]


def test_reply_from_a_worker_thread_serves_pipelined_requests():
    class Threaded(Connection):
        def on_http_msg(self, msg):
            uri = msg.uri
            threading.Thread(target=lambda: self.reply(200, "thread " + uri)).start()

    buf = pipelined(Threaded, b"thread ")
    assert buf.count(b"thread /") == 5
    assert [int(x[:1]) for x in buf.split(b"thread /")[1:]] == [0, 1, 2, 3, 4]
