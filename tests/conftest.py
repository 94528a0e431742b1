"""Shared test helpers: real sockets on 127.0.0.1, ephemeral ports, bounded loops."""
import os
import shutil
import signal
import subprocess
import threading
import time

import pytest

from mongoose_py import Manager


def wait_for(cond, timeout=10.0, interval=0.01):
    """Poll ``cond()`` until true or ``timeout`` seconds; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


def pump(mgr, cond, timeout=10.0, step_ms=10):
    """Run ``mgr``'s loop on this thread until ``cond()`` or ``timeout``."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        mgr.poll(step_ms)
    return True


class LoopThread:
    """A Manager polled by a background thread; other threads may call into it."""

    def __init__(self, mgr, poll_ms=20):
        self.mgr = mgr
        self.poll_ms = poll_ms
        self._stop = threading.Event()
        self.errors = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            while not self._stop.is_set():
                self.mgr.poll(self.poll_ms)
        except BaseException as exc:  # surfaced by stop()
            self.errors.append(exc)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self._stop.set()
        self.mgr.stop()
        self.thread.join(10)
        assert not self.thread.is_alive(), "loop thread did not stop"
        self.mgr.close()
        if self.errors:
            raise self.errors[0]


@pytest.fixture
def serve():
    """``serve(handler=None, url="http://127.0.0.1:0", **listen_kwargs)`` ->
    ``(mgr, listener, port)`` with the loop running in a background thread."""
    loops = []

    def start(handler=None, url="http://127.0.0.1:0", manager_kwargs=None, **kwargs):
        mgr = Manager(**(manager_kwargs or {}))
        listener = mgr.listen(url, handler, **kwargs)
        port = listener.local_addr[1]
        loops.append(LoopThread(mgr).start())
        return mgr, listener, port

    yield start
    for loop in loops:
        loop.stop()


@pytest.fixture
def manager():
    mgr = Manager()
    yield mgr
    mgr.close()


def require_tool(name):
    """Tests use real peers; a missing one is a CI defect, not a skip."""
    path = shutil.which(name)
    assert path, "%s is not installed: scripts/test-all installs it" % name
    return path


class Proc:
    """A subprocess stopped by its pid at the end of the test."""

    def __init__(self, args, **kw):
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)

    def stop(self):
        if self.p.poll() is None:
            os.kill(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.p.pid, signal.SIGKILL)
                self.p.wait(5)
        out, err = self.p.communicate()
        return out, err


@pytest.fixture
def procs():
    started = []

    def start(args, **kw):
        p = Proc(args, **kw)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()
