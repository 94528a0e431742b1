"""Raw TCP and UDP: listen/connect, MG_EV_READ and on_read(), the receive
buffer API (recv_data peeks, read takes, consume discards), buffer properties.

Peers are plain Python sockets on 127.0.0.1; servers run in a background loop
(the ``serve`` fixture) unless a test pumps the loop itself.
"""
import socket
import threading
import time

import pytest

from conftest import pump, wait_for
from mongoose_py import (
    MG_EV_CLOSE, MG_EV_CONNECT, MG_EV_ERROR, MG_EV_READ, Connection, Manager,
)
from netutil import free_port


def recv_exact(sock, n, timeout=10.0):
    sock.settimeout(timeout)
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def recv_until_closed(sock, timeout=10.0):
    sock.settimeout(timeout)
    out = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return out
        out += chunk


class Echo(Connection):
    def on_read(self):
        self.send(self.read())


# ---------------------------------------------------------------- TCP server


def test_tcp_echo_many_messages_exact_stream(serve):
    """A long-lived echo never resends old bytes: 300 distinct messages over
    one connection come back as exactly the bytes sent, in order."""
    mgr, listener, port = serve(None, url="tcp://127.0.0.1:0", connection_class=Echo)
    assert listener.is_listening and not listener.is_udp
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sent = b""
        got = b""
        for i in range(300):
            msg = b"msg-%04d:" % i + bytes([i % 256]) * (i % 37) + b";"
            sock.sendall(msg)
            sent += msg
            if i % 10 == 9:  # also pipeline: several messages in flight at once
                got += recv_exact(sock, len(sent) - len(got))
                assert got == sent
        got += recv_exact(sock, len(sent) - len(got))
        assert got == sent
        sock.settimeout(0.3)
        with pytest.raises(socket.timeout):
            extra = sock.recv(1)
            assert not extra, "echo sent bytes nobody wrote: %r" % extra
    finally:
        sock.close()


def test_tcp_echo_handler_function_and_large_payload(serve):
    reads = []

    def handler(conn, ev, data):
        if ev == MG_EV_READ:
            reads.append(conn.recv_len)
            conn.send(conn.read())

    mgr, listener, port = serve(handler, url="tcp://127.0.0.1:0")
    payload = bytes(range(256)) * 1024  # 256 KiB, every byte value, NULs included
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        t = threading.Thread(target=sock.sendall, args=(payload,))
        t.start()
        back = recv_exact(sock, len(payload))
        t.join(10)
        assert back == payload
    finally:
        sock.close()
    assert reads and all(n > 0 for n in reads)


def test_recv_data_peeks_read_takes(serve):
    """A line protocol: recv_data() peeks (bytes stay until read), read(n) takes."""
    seen = []

    def handler(conn, ev, data):
        if ev != MG_EV_READ:
            return
        peek = conn.recv_data()
        assert conn.recv_data(2) == peek[:2]
        assert conn.recv_data(10 ** 6) == peek
        assert conn.recv_data() == peek  # peeking twice gives the same bytes
        seen.append((peek, conn.recv_len))
        while b"\n" in conn.recv_data():
            line = conn.read(conn.recv_data().index(b"\n") + 1)
            conn.send(line.upper())
        assert conn.recv_len == len(conn.recv_data())

    mgr, listener, port = serve(handler, url="tcp://127.0.0.1:0")
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        for part in (b"hel", b"lo\nwor", b"ld\nab", b"c\n"):
            sock.sendall(part)
            time.sleep(0.05)
        assert recv_exact(sock, 16) == b"HELLO\nWORLD\nABC\n"
    finally:
        sock.close()
    assert all(n == len(p) for p, n in seen)
    # The first fragment was peeked at and left in the buffer, not lost.
    assert any(p.startswith(b"hel") and b"\n" not in p for p, _ in seen) or seen[0][0].startswith(b"hello")


def test_consume_discards(serve):
    """Frames of a 4-byte junk header + 5-byte body: consume(4), read(5)."""
    def handler(conn, ev, data):
        if ev == MG_EV_READ:
            while conn.recv_len >= 9:
                conn.consume(4)
                body = conn.read(5)
                assert len(body) == 5
                conn.send(body)

    mgr, listener, port = serve(handler, url="tcp://127.0.0.1:0")
    bodies = [b"%05d" % i for i in range(50)]
    stream = b"".join(b"\xff\x00HD" + b for b in bodies)
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        for i in range(0, len(stream), 7):  # odd-sized fragments
            sock.sendall(stream[i:i + 7])
        assert recv_exact(sock, 250) == b"".join(bodies)
    finally:
        sock.close()


def test_read_edge_cases_and_buffer_properties(serve):
    results = {}

    def handler(conn, ev, data):
        if ev == MG_EV_READ and conn.recv_len >= 10 and "done" not in results:
            results["recv_size_ok"] = conn.recv_size >= conn.recv_len
            results["read0"] = conn.read(0)
            results["read3"] = conn.read(3)
            results["rest"] = conn.read(10 ** 6)
            results["after"] = (conn.recv_len, conn.read(), conn.recv_data())
            results["consume_empty"] = conn.consume(5)
            conn.send(b"0123456789")
            results["send_after"] = (conn.send_len, conn.send_data(), conn.send_data(4))
            results["send_size_ok"] = conn.send_size >= conn.send_len
            results["done"] = True

    mgr, listener, port = serve(handler, url="tcp://127.0.0.1:0")
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(b"abcdefghij")
        assert recv_exact(sock, 10) == b"0123456789"
    finally:
        sock.close()
    assert results["read0"] == b""
    assert results["read3"] == b"abc"
    assert results["rest"] == b"defghij"
    assert results["after"] == (0, b"", b"")
    assert results["consume_empty"] is None
    assert results["send_after"] == (10, b"0123456789", b"0123")
    assert results["recv_size_ok"] and results["send_size_ok"]


def test_closed_connection_buffers(manager):
    """After close: recv_data()/send_data() give b"", read() raises RuntimeError."""
    listener = manager.listen("tcp://127.0.0.1:0")
    port = listener.local_addr[1]
    closed = []
    conn = manager.connect("tcp://127.0.0.1:%d" % port,
                           lambda c, ev, d: closed.append(ev) if ev == MG_EV_CLOSE else None)
    pump(manager, lambda: conn.is_writable or conn.is_closing, timeout=5)
    conn.close()
    pump(manager, lambda: closed, timeout=5)
    assert conn.recv_data() == b"" and conn.send_data() == b""
    assert conn.recv_len == conn.send_len == 0
    with pytest.raises(RuntimeError):
        conn.read()
    with pytest.raises(RuntimeError):
        conn.consume(1)
    with pytest.raises(RuntimeError):
        conn.send(b"x")


# ---------------------------------------------------------------- TCP client


def test_tcp_client_against_python_server():
    """mgr.connect("tcp://...") to a Python server: CONNECT, send, READ, close."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    got = []
    events = []

    class Client(Connection):
        def on_connect(self):
            events.append("connect")
            self.send(b"ping\x00\xff")

        def on_read(self):
            got.append(self.read())

        def on_close(self):
            events.append("close")

    def serve_one():
        s, _ = srv.accept()
        s.settimeout(5)
        data = recv_exact(s, 6)
        s.sendall(b"pong:" + data)
        s.close()

    t = threading.Thread(target=serve_one)
    t.start()
    try:
        with Manager() as mgr:
            conn = mgr.connect("tcp://127.0.0.1:%d" % port, connection_class=Client)
            assert conn.is_client and not conn.is_udp
            pump(mgr, lambda: "close" in events, timeout=10)
            assert b"".join(got) == b"pong:ping\x00\xff"
            assert events == ["connect", "close"]
    finally:
        t.join(5)
        srv.close()


def test_tcp_connect_refused_gives_error():
    port = free_port()  # nobody listens there
    events = []
    with Manager() as mgr:
        mgr.connect("tcp://127.0.0.1:%d" % port, lambda c, ev, d: events.append((ev, d)))
        pump(mgr, lambda: any(ev == MG_EV_CLOSE for ev, _ in events), timeout=5)
    errors = [d for ev, d in events if ev == MG_EV_ERROR]
    assert errors and isinstance(errors[0], str) and errors[0]
    assert MG_EV_CONNECT not in [ev for ev, _ in events]


def test_client_and_server_in_one_manager(manager):
    """Both ends are Mongoose connections in the same loop."""
    listener = manager.listen("tcp://127.0.0.1:0", connection_class=Echo)
    port = listener.local_addr[1]
    got = []
    msgs = [b"%d" % i * (i + 1) for i in range(20)]

    class Client(Connection):
        def on_connect(self):
            for m in msgs:
                self.send(m)

        def on_read(self):
            got.append(self.read())

    conn = manager.connect("tcp://127.0.0.1:%d" % port, connection_class=Client)
    want = b"".join(msgs)
    pump(manager, lambda: len(b"".join(got)) >= len(want), timeout=5)
    assert b"".join(got) == want
    assert conn.remote_addr == ("127.0.0.1", port, False)


# ---------------------------------------------------------------- UDP


def udp_client():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(5)
    return s


def test_udp_echo_replies_go_to_each_sender(serve):
    reads = []

    def handler(conn, ev, data):
        if ev == MG_EV_READ:
            dgram = conn.read()
            reads.append((dgram, conn.remote_addr))
            conn.send(b"echo:" + dgram)

    mgr, listener, port = serve(handler, url="udp://127.0.0.1:0")
    assert listener.is_udp
    a, b = udp_client(), udp_client()
    port_a, port_b = a.getsockname()[1], b.getsockname()[1]
    try:
        dest = ("127.0.0.1", port)
        a.sendto(b"a1", dest)
        assert a.recvfrom(100) == (b"echo:a1", dest)
        b.sendto(b"b1\x00", dest)
        assert b.recvfrom(100) == (b"echo:b1\x00", dest)
        a.sendto(b"a2", dest)
        b.sendto(b"b2", dest)
        assert a.recvfrom(100)[0] == b"echo:a2"
        assert b.recvfrom(100)[0] == b"echo:b2"
        for s in (a, b):  # nobody got the other's replies
            s.settimeout(0.2)
            with pytest.raises(socket.timeout):
                s.recvfrom(100)
    finally:
        a.close()
        b.close()
    by_data = {d: addr for d, addr in reads}
    assert len(reads) == 4
    assert by_data[b"a1"] == by_data[b"a2"] == ("127.0.0.1", port_a, False)
    assert by_data[b"b1\x00"] == by_data[b"b2"] == ("127.0.0.1", port_b, False)


def test_udp_one_datagram_per_read(serve):
    reads = []

    class Collect(Connection):
        def on_read(self):
            reads.append((self.read(), self.remote_addr[1]))

    mgr, listener, port = serve(None, url="udp://127.0.0.1:0", connection_class=Collect)
    a = udp_client()
    try:
        dgrams = [b"d%02d" % i + b"x" * i for i in range(20)]
        for d in dgrams:
            a.sendto(d, ("127.0.0.1", port))
        assert wait_for(lambda: len(reads) >= 20, timeout=5)
        assert [d for d, _ in reads] == dgrams  # boundaries kept, none merged
        assert {p for _, p in reads} == {a.getsockname()[1]}
    finally:
        a.close()


def test_udp_client_connect():
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("127.0.0.1", 0))
    srv.settimeout(5)
    port = srv.getsockname()[1]
    got = []

    class Client(Connection):
        def on_connect(self):
            self.send(b"hello")

        def on_read(self):
            got.append(self.read())

    try:
        with Manager() as mgr:
            conn = mgr.connect("udp://127.0.0.1:%d" % port, connection_class=Client)
            assert conn.is_udp
            pump(mgr, lambda: conn.is_closing, timeout=0.2)  # let CONNECT run
            data, peer = srv.recvfrom(100)
            assert data == b"hello"
            srv.sendto(b"one", peer)
            srv.sendto(b"two", peer)
            pump(mgr, lambda: len(got) >= 2, timeout=5)
            assert got == [b"one", b"two"]
            assert conn.remote_addr == ("127.0.0.1", port, False)
            assert conn.local_addr[1] == peer[1]
    finally:
        srv.close()
