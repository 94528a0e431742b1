"""reuse_port listeners and serve(workers=N): several processes share one port."""
import http.client
import os
import queue
import signal
import threading
import socket
import sys
import time

import pytest

from mongoose_py import Manager



def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_reuse_port_lets_two_listeners_share_a_port():
    port = _free_port()
    a, b = Manager(), Manager()
    try:
        a.listen("tcp://127.0.0.1:%d" % port, reuse_port=True)
        b.listen("tcp://127.0.0.1:%d" % port, reuse_port=True)
        c = Manager()
        try:
            with pytest.raises(RuntimeError, match="Failed to listen"):
                c.listen("tcp://127.0.0.1:%d" % port)  # without the option: refused
        finally:
            c.close()
    finally:
        a.close()
        b.close()


SERVER = r"""
import os, sys
from mongoose_py import Connection, serve
class Pid(Connection):
    def on_http_msg(self, msg):
        self.reply(200, str(os.getpid()), {"Connection": "close"})
serve(Pid, "http://127.0.0.1:%s" % sys.argv[1], workers=3, poll_ms=50, shutdown_timeout=1,
      ready=lambda l: print("ready", flush=True))
"""


def _start_workers(procs):
    """Start the 3-worker server; retry on another port if one was taken meanwhile."""
    for _ in range(3):
        port = _free_port()
        p = procs([sys.executable, "-c", SERVER, str(port)])
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in iter(p.p.stdout.readline, b"")],
                         daemon=True).start()
        ready = 0
        deadline = time.monotonic() + 30
        while ready < 3 and time.monotonic() < deadline:
            try:
                # count, not startswith: with PYTHONUNBUFFERED the workers' "ready"
                # and "\n" are separate writes and may interleave ("readyready\n")
                ready += lines.get(timeout=0.5).count(b"ready")
            except queue.Empty:
                pass
        if ready == 3:
            return p, port
        p.stop()
    raise AssertionError("workers did not start")


def test_serve_with_workers_spreads_connections_and_stops_on_sigterm(procs):
    p, port = _start_workers(procs)
    pids = set()
    for _ in range(60):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/")
        pids.add(conn.getresponse().read())
        conn.close()
    assert len(pids) >= 2, "all 60 connections went to one worker: %r" % pids
    os.kill(p.p.pid, signal.SIGTERM)
    assert p.p.wait(15) == 0


def test_workers_stop_when_the_parent_is_killed(procs):
    import psutil  # installed by scripts/test-all on both interpreters
    p, port = _start_workers(procs)
    workers = psutil.Process(p.p.pid).children()
    assert len(workers) == 3, workers
    os.kill(p.p.pid, signal.SIGKILL)  # no chance to forward anything
    p.p.wait(5)

    def gone(w):
        try:
            return w.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    deadline = time.monotonic() + 15
    while not all(gone(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = [w.pid for w in workers if not gone(w)]
    for pid in alive:  # do not leak them whatever the outcome
        os.kill(pid, signal.SIGKILL)
    assert not alive, "workers outlived their parent"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
