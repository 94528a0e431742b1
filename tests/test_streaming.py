"""Streaming with backpressure: chunked and SSE responses read by real clients,
a 1 GiB generator with flat RSS, a slow reader with a bounded send buffer,
and paused reads that cost no CPU."""
import http.client
import os
import socket
import threading
import time

from conftest import wait_for
from mongoose_py import MG_EV_ACCEPT, MG_EV_HTTP_MSG, MG_EV_READ, Connection
from mongoose_py._stream import (pause_reading, resume_reading, set_read_high_water, stream, stream_response,
                                 stream_sse)

try:  # psutil's PyPy build may be broken (undefined PyErr_FormatV): fall back to os.times()
    import psutil
    _proc = psutil.Process()

    def cpu_seconds():
        t = _proc.cpu_times()
        return t.user + t.system
except Exception:  # pragma: no cover - PyPy
    psutil = None

    def cpu_seconds():
        t = os.times()
        return t.user + t.system


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def read_raw(port, request, until, timeout=20):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    with s:
        s.sendall(request)
        data = b""
        deadline = time.monotonic() + timeout
        while not until(data) and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data


def test_chunked_response_read_by_http_client(serve):
    parts = [("part %d;" % i).encode() * (i % 7 + 1) for i in range(2000)]
    done = []

    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            stream_response(conn, iter(parts), headers={"Content-Type": "text/plain"}, high_water=8192,
                            on_done=done.append)

    mgr, lst, port = serve(handler)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(2):  # keep-alive: the chunked response ends properly
        c.request("GET", "/")
        r = c.getresponse()
        assert r.status == 200 and r.getheader("Transfer-Encoding") == "chunked"
        assert r.getheader("Content-Length") is None
        assert r.read() == b"".join(parts)
    c.close()
    assert done == [True, True]


def test_sse_read_by_raw_socket(serve):
    def events():
        yield ("tick", "1")
        yield "multi\nline"
        yield ("bye", "")

    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            stream_sse(conn, events())

    mgr, lst, port = serve(handler)
    raw = read_raw(port, b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n", lambda d: d.endswith(b"0\r\n\r\n"))
    head, body = raw.split(b"\r\n\r\n", 1)
    assert b"Content-Type: text/event-stream" in head and b"Transfer-Encoding: chunked" in head
    # de-chunk
    out, rest = b"", body
    while True:
        size, rest = rest.split(b"\r\n", 1)
        n = int(size, 16)
        if n == 0:
            break
        out, rest = out + rest[:n], rest[n + 2:]
    assert out == b"event: tick\ndata: 1\n\ndata: multi\ndata: line\n\nevent: bye\ndata: \n\n"


def test_raw_tcp_stream_then_close(serve):
    blob = os.urandom(3 * 1024 * 1024)

    def handler(conn, ev, data):
        if ev == MG_EV_ACCEPT:
            stream(conn, (blob[i:i + 50000] for i in range(0, len(blob), 50000)), high_water=65536, close=True)

    mgr, lst, port = serve(handler, url="tcp://127.0.0.1:0")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        got = bytearray()
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            got += chunk
    assert bytes(got) == blob


class _Streamer(Connection):
    """Hook-style connection: stream() must coexist with the class's own hooks."""
    size = 0
    chunk = b""
    writes = 0
    result = []

    def on_http_msg(self, msg):
        n, chunk = type(self).size, type(self).chunk

        def gen():
            for _ in range(n // len(chunk)):
                yield chunk

        stream_response(self, gen(), headers={"Content-Type": "application/octet-stream"},
                        high_water=1 << 20, on_done=type(self).result.append)

    def on_write(self, nbytes):
        type(self).writes += 1  # the user's own on_write still runs while streaming


def test_one_gib_generator_keeps_rss_flat(serve):
    total = 1 << 30
    _Streamer.size, _Streamer.chunk = total, b"\xab" * (256 * 1024)
    mgr, lst, port = serve(connection_class=_Streamer)
    rss0 = rss_bytes()
    peak = [rss0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.monotonic()
    received = 0
    tail = b""
    buf = bytearray(1 << 20)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        view = memoryview(buf)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            n = s.recv_into(view)
            if not n:
                break
            received += n
            tail = (tail + bytes(view[max(0, n - 16):n]))[-16:]
            if tail.endswith(b"\r\n0\r\n\r\n"):
                break
    elapsed = time.monotonic() - t0
    stop.set()
    sampler.join(5)
    print("\n1 GiB streamed in %.2f s (%.0f MiB/s), RSS %d -> peak %d MiB"
          % (elapsed, total / elapsed / 2 ** 20, rss0 >> 20, peak[0] >> 20))
    assert received > total  # body + chunk framing + headers
    assert tail.endswith(b"\r\n0\r\n\r\n")
    assert wait_for(lambda: _Streamer.result == [True], 10)
    assert _Streamer.writes > 0
    assert peak[0] - rss0 < 64 * 2 ** 20, "RSS grew by %d MiB" % ((peak[0] - rss0) >> 20)


def test_slow_reader_bounded_send_buffer(serve):
    high_water, chunk = 64 * 1024, b"z" * 16384
    produced = [0]
    finished = []
    conns = []
    max_send = [0]

    def endless():
        try:
            while True:
                produced[0] += len(chunk)
                yield chunk
        finally:
            finished.append("generator closed")

    def handler(conn, ev, data):
        if ev == MG_EV_ACCEPT:
            conns.append(conn)
            stream(conn, endless(), high_water=high_water, on_done=finished.append)

    mgr, lst, port = serve(handler, url="tcp://127.0.0.1:0")

    def watch():
        for c in conns:
            max_send[0] = max(max_send[0], c.send_len)

    timer = mgr.timer_add(5, watch, repeat=True)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.connect(("127.0.0.1", port))
    received = 0
    with s:
        for _ in range(40):  # a slow reader: 8 KiB every 10 ms
            received += len(s.recv(8192))
            time.sleep(0.01)
        backlog = produced[0] - received
    timer.cancel()
    assert wait_for(lambda: len(finished) == 2, 10), finished
    assert finished == ["generator closed", False]  # the generator's finally ran, then on_done(False)
    # our send buffer never held more than high water + one chunk ...
    assert 0 < max_send[0] <= high_water + len(chunk), max_send[0]
    # ... and the producer ran only as far ahead as that plus the kernel's socket buffers
    assert backlog < high_water + len(chunk) + 8 * 2 ** 20, backlog


def test_generator_error_closes_connection(serve):
    def bad():
        yield b"first"
        raise ValueError("producer failed")

    errors = []

    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            stream_response(conn, bad(), high_water=1)

    mgr, lst, port = serve(handler, manager_kwargs={"error_handler": errors.append})
    raw = read_raw(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", lambda d: False, timeout=10)
    assert b"first" in raw and not raw.endswith(b"0\r\n\r\n")  # cut short: never looks complete
    assert wait_for(lambda: errors, 5) and "producer failed" in str(errors[0])


def _paused_cpu(serve, pending_output):
    seen = []
    conns = []

    def handler(conn, ev, data):
        if ev == MG_EV_ACCEPT:
            conns.append(conn)
            if pending_output:
                conn.send(b"o" * (16 * 2 ** 20))  # the peer never reads: stays queued
        elif ev == MG_EV_READ:
            seen.append(conn.recv_len)  # never consumed here

    mgr, lst, port = serve(handler, url="tcp://127.0.0.1:0")
    set_read_high_water(lst, 64 * 1024)
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setblocking(False)
    sent = 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # fill our send buffer and the server's receive buffer
        try:
            sent += s.send(b"i" * 65536)
        except BlockingIOError:
            if conns and conns[0].is_full:
                break
            time.sleep(0.01)
    assert wait_for(lambda: conns and conns[0].is_full, 5)
    recv_len = conns[0].recv_len
    assert 64 * 1024 <= recv_len < sent
    reads = len(seen)
    cpu0, t0 = cpu_seconds(), time.monotonic()
    time.sleep(1.0)
    cpu, wall = cpu_seconds() - cpu0, time.monotonic() - t0
    assert len(seen) == reads  # nothing read while paused
    # resume: consume, and the rest flows in
    conns[0].consume(recv_len)
    resume_reading(conns[0])
    assert wait_for(lambda: len(seen) > reads, 5)
    s.close()
    return cpu / wall


def test_paused_reads_do_not_spin(serve):
    share = _paused_cpu(serve, pending_output=False)
    print("\nCPU while paused: %.1f %% of one core" % (share * 100))
    assert share < 0.25  # a busy loop would be ~100 %


def test_paused_reads_with_unsent_output_do_not_spin(serve):
    share = _paused_cpu(serve, pending_output=True)
    print("\nCPU while paused with unsent output: %.1f %% of one core" % (share * 100))
    assert share < 0.25


def test_pause_and_resume_explicitly(serve):
    got = []
    conns = []

    def handler(conn, ev, data):
        if ev == MG_EV_ACCEPT:
            conns.append(conn)
            pause_reading(conn)
        elif ev == MG_EV_READ:
            got.append(conn.read())

    mgr, lst, port = serve(handler, url="tcp://127.0.0.1:0")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"held back")
        assert wait_for(lambda: conns, 5)
        time.sleep(0.2)
        assert got == [] and conns[0].is_full
        resume_reading(conns[0])
        assert wait_for(lambda: b"".join(got) == b"held back", 5)


def test_stream_rejects_second_stream_and_bad_high_water(serve):
    results = []

    def handler(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            s = stream_response(conn, iter([b"a"] * 3), high_water=1)
            for args in ((iter([b"b"]),), ):
                try:
                    stream(conn, *args)
                except RuntimeError as exc:
                    results.append(str(exc))
            try:
                stream(conn, iter([]), high_water=0)
            except ValueError as exc:
                results.append(str(exc))
            results.append(s.done)

    mgr, lst, port = serve(handler)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/")
    assert c.getresponse().read() == b"aaa"
    c.close()
    assert len(results) == 3 and "already running" in results[0] and "positive" in results[1]


def test_paused_tls_connection_stops_reading(serve):
    """TLS: Mongoose marks a connection with buffered TLS records readable even
    when paused; the shim keeps it paused (no unbounded decrypting into recv)."""
    import ssl
    from certs import make_pki, retry_bad_signature
    from mongoose_py import TlsOpts
    pki = make_pki()
    conns, reads = [], []

    def handler(conn, ev, data):
        if ev == MG_EV_ACCEPT:
            conns.append(conn)
        elif ev == MG_EV_READ:
            reads.append(1)

    mgr, lst, port = serve(handler, url="tls://127.0.0.1:0", tls=TlsOpts(cert=pki.server, key=pki.server_key))
    set_read_high_water(lst, 64 * 1024)
    ctx = ssl.create_default_context(cafile=pki.path("ca"))
    s = retry_bad_signature(lambda: ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                                                    server_hostname="localhost"))
    with s:
        # conns[-1]: a handshake retried by retry_bad_signature left a dead connection before it
        s.settimeout(0.3)
        sent, deadline = 0, time.monotonic() + 15
        while sent < 8 * 2 ** 20 and time.monotonic() < deadline:  # 3 MiB would kill a connection
            try:
                sent += s.send(b"t" * 16384)
            except (socket.timeout, ssl.SSLWantWriteError):
                if conns[-1].is_full:  # blocked because the server paused, not because it is slow
                    break
        assert wait_for(lambda: conns[-1].is_full, 5)
        c = conns[-1]
        n, recv_len = len(reads), c.recv_len
        cpu0, t0 = cpu_seconds(), time.monotonic()
        time.sleep(1.0)
        share = (cpu_seconds() - cpu0) / (time.monotonic() - t0)
        assert len(reads) == n and c.recv_len == recv_len < 64 * 1024 + 16 * 1024 + 64
        assert not c.is_closing
        print("\nCPU while a TLS connection is paused: %.1f %% of one core" % (share * 100))
        assert share < 0.25
