"""run(): SIGTERM/SIGINT stop it (in a subprocess), shutdown_timeout lets an
in-flight chunked response finish (stop() from another thread: test_threads.py)."""
import os
import select
import signal
import socket
import sys
import textwrap
import time

import pytest

from mongoose_py import MG_EV_HTTP_MSG, Manager

SERVER = textwrap.dedent("""
    import sys
    from mongoose_py import Manager, MG_EV_HTTP_MSG

    CHUNKS = 20
    shutdown = float(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1] != "none" else None

    def handler(conn, ev, data):
        if ev != MG_EV_HTTP_MSG:
            return
        if data.uri != "/stream":
            conn.reply(200, b"ok")
            return
        conn.reply(200, b"", {"Transfer-Encoding": "chunked"})
        state = {"i": 0}

        def tick():
            if conn.id == 0:          # cut (no shutdown_timeout): stop streaming
                timer.cancel()
                return
            state["i"] += 1
            conn.http_chunk(b"chunk%03d\\n" % state["i"])
            if state["i"] == CHUNKS:
                conn.http_chunk(b"")
                timer.cancel()

        timer = mgr.timer_add(50, tick, repeat=True)

    mgr = Manager(handler)
    listener = mgr.listen("http://127.0.0.1:0")
    print("port %d" % listener.local_addr[1], flush=True)
    mgr.run(poll_ms=100, shutdown_timeout=shutdown)
    print("stopped closed=%s" % mgr.closed, flush=True)
""")


@pytest.fixture
def server_script(tmp_path):
    path = tmp_path / "server.py"
    path.write_text(SERVER)
    return str(path)


def read_line(proc, timeout=15):
    """One line of the subprocess's stdout, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    line = b""
    fd = proc.p.stdout.fileno()
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        assert left > 0, "no output from the server (got %r)" % line
        r, _, _ = select.select([fd], [], [], left)
        if r:
            ch = os.read(fd, 1)
            if not ch:
                break
            line += ch
    return line.decode().strip()


def start_server(procs, script, *args):
    proc = procs([sys.executable, script] + [str(a) for a in args])
    first = read_line(proc)
    assert first.startswith("port "), first
    return proc, int(first.split()[1])


def http_ok(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    data = b""
    while not data.endswith(b"ok"):
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    return data.startswith(b"HTTP/1.1 200") and data.endswith(b"ok")


def wait_exit(proc, timeout):
    try:
        return proc.p.wait(timeout)
    except Exception:
        return None


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_stops_on_signal_and_exits_zero(procs, server_script, sig):
    proc, port = start_server(procs, server_script)
    assert http_ok(port)  # it is in its loop
    start = time.monotonic()
    os.kill(proc.p.pid, sig)
    rc = wait_exit(proc, 10)
    elapsed = time.monotonic() - start
    out, err = proc.p.communicate()
    assert rc == 0, (rc, err.decode(errors="replace"))
    assert b"stopped closed=True" in out
    assert b"Traceback" not in err
    assert elapsed < 3.0, elapsed  # poll_ms=100: generous bound


def parse_chunked(data):
    """Decode a chunked body; returns (chunks, terminated)."""
    chunks = []
    while True:
        size_line, sep, rest = data.partition(b"\r\n")
        if not sep:
            return chunks, False
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return chunks, rest.startswith(b"\r\n")
        if len(rest) < size + 2:
            return chunks, False
        chunks.append(rest[:size])
        assert rest[size:size + 2] == b"\r\n"
        data = rest[size + 2:]


def stream_with_sigterm(procs, server_script, shutdown):
    proc, port = start_server(procs, server_script, shutdown)
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    s.sendall(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
    data = b""
    while b"chunk002" not in data:  # mid-stream
        chunk = s.recv(4096)
        assert chunk, "connection closed before the stream started: %r" % data
        data += chunk
    os.kill(proc.p.pid, signal.SIGTERM)
    refused = None
    while True:
        try:
            chunk = s.recv(4096)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
        if refused is None and b"chunk006" in data:
            # Well after the signal: the listener is gone, new clients are refused.
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                refused = False
            except OSError:
                refused = True
    s.close()
    rc = wait_exit(proc, 15)
    out, err = proc.p.communicate()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"transfer-encoding: chunked" in head.lower()
    return rc, out, err, body, refused


def test_shutdown_timeout_lets_an_in_flight_chunked_response_finish(procs, server_script):
    start = time.monotonic()
    rc, out, err, body, refused = stream_with_sigterm(procs, server_script, 30)
    chunks, terminated = parse_chunked(body)
    assert chunks == [b"chunk%03d\n" % i for i in range(1, 21)]
    assert terminated, body[-40:]
    assert refused is True
    assert rc == 0, err.decode(errors="replace")
    assert b"stopped closed=True" in out
    # It ended when the response was done, not at the 30 s timeout.
    assert time.monotonic() - start < 20


def test_without_shutdown_timeout_the_stream_is_cut(procs, server_script):
    rc, out, err, body, refused = stream_with_sigterm(procs, server_script, "none")
    chunks, terminated = parse_chunked(body)
    assert not terminated
    assert 2 <= len(chunks) < 20
    assert rc == 0, err.decode(errors="replace")
    assert b"stopped closed=True" in out


def test_shutdown_timeout_expires_on_a_stream_that_never_ends(procs, tmp_path):
    script = tmp_path / "forever.py"
    script.write_text(textwrap.dedent("""
        from mongoose_py import Manager, MG_EV_HTTP_MSG
        def handler(conn, ev, data):
            if ev == MG_EV_HTTP_MSG:
                conn.reply(200, b"", {"Transfer-Encoding": "chunked"})
                t = mgr.timer_add(20, lambda: conn.id and conn.http_chunk(b"x"), repeat=True)
        mgr = Manager(handler)
        print("port %d" % mgr.listen("http://127.0.0.1:0").local_addr[1], flush=True)
        mgr.run(poll_ms=50, shutdown_timeout=0.5)
        print("stopped closed=%s" % mgr.closed, flush=True)
    """))
    proc, port = start_server(procs, str(script))
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    assert s.recv(4096).startswith(b"HTTP/1.1 200")
    os.kill(proc.p.pid, signal.SIGTERM)
    rc = wait_exit(proc, 10)
    out, err = proc.p.communicate()
    s.close()
    assert rc == 0, err.decode(errors="replace")
    assert b"stopped closed=True" in out


def test_stop_from_a_handler_ends_run_on_the_main_thread():
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    mgr = Manager()
    ticks = []

    def tick():
        ticks.append(1)
        if len(ticks) == 3:
            mgr.stop()

    mgr.timer_add(5, tick, repeat=True)
    mgr.run(poll_ms=50)
    assert len(ticks) == 3 and mgr.closed
    # run() put the previous signal handlers back.
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_keyboard_interrupt_from_a_handler_leaves_run_and_closes():
    mgr = Manager()

    def boom():
        raise KeyboardInterrupt

    mgr.timer_add(5, boom)
    with pytest.raises(KeyboardInterrupt):
        mgr.run(poll_ms=50)
    assert mgr.closed


def test_signal_in_process_stops_run(tmp_path):
    """The signal handler run() installs only asks the loop to stop."""
    mgr = Manager()

    def http(conn, ev, data):
        if ev == MG_EV_HTTP_MSG:
            conn.reply(200, b"ok")

    mgr.listen("http://127.0.0.1:0", http)
    # Our own handler stays installed around run(): if run() did not install
    # its own, the signal lands here (instead of killing the test process) and
    # the fallback timer ends the loop, failing the test.
    caught = []

    def ours(signum, frame):
        caught.append(signum)

    previous = signal.signal(signal.SIGTERM, ours)
    fallback = []
    try:
        mgr.timer_add(50, lambda: os.kill(os.getpid(), signal.SIGTERM))
        mgr.timer_add(5000, lambda: (fallback.append(1), mgr.stop()))
        start = time.monotonic()
        mgr.run(poll_ms=100)
        elapsed = time.monotonic() - start
        assert signal.getsignal(signal.SIGTERM) is ours  # run() put ours back
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert mgr.closed
    assert caught == [] and fallback == []
    assert elapsed < 3.0
